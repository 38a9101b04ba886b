"""The LLM-stage study (`bench/llara_quality.py --curve`): arms of ranking head x user state x
curriculum at training budgets, each reported beside popularity and SASRec on the same rows,
with the diagnostics that say whether the LLM reads the user.

An arm is `head[:user[:schedule]][:key=value...]`, a change of the study's base run config:
head title|letter|slot; user none (item embeddings only), token (a [UserEmb] slot) or cond
(candidates carry [e ; u*e]); schedule a curriculum (user and schedule default to the base's);
extra run options as dotted keys, e.g. `lr=0.003` or `lora.dropout=0.1`. The
report's tables are written by study_markdown.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llara.common.device import autocast_for, resolve_device
from llara.common.paths import absolute_paths
from llara.config.io import apply_overrides, first_difference, to_dict
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.config.run import FinetuneConfig
from llara.config.scoring import ScoringConfig
from llara.data.candidates import sample_candidates
from llara.data.holdout import newest_rows
from llara.data.tables import Samples
from llara.evaluation.diagnostics import history_sensitivity
from llara.evaluation.fusion import choose_weight, fused_scores, fusion_grid, ranks_of
from gate import fit_gate, gate_features
from llara.evaluation.intervals import comparison_report, user_groups
from llara.evaluation.metrics import ranking_metrics
from llara.evaluation.scoring import score_candidates
from llara.inference.trained import TrainedModel, load_trained
from llara.model.batch import collate_prompts
from llara.model.checkpoint import read_run_json, run_config_of
from llara.model.llara import build_llara
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import run_templates
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.popularity import popularity_scores, target_counts
from llara.recsys.ranking import candidate_scores
from llara.training.inputs import run_inputs
from llara.training.loop import train_local
from study_markdown import PAPER_BASE

STUDY_SASREC = RecRunConfig(model=RecommenderConfig(model="sasrec"),
                           train=RecTrainConfig(epochs=8, batch_size=512, lr=2e-3, patience=3))
"""The SASRec every study trains on its data (and bench/holdout_split.py on its own part)."""
USER_STATES = {
    "none": {"prompt.user_token": False, "prompt.conditioned_candidates": False},
    "token": {"prompt.user_token": True, "prompt.conditioned_candidates": False},
    "cond": {"prompt.user_token": False, "prompt.conditioned_candidates": True}}


@dataclass
class Arm:
    name: str
    head: str
    user: str | None
    """None: the base's own user state (so with the schedule)."""
    schedule: str | None
    options: dict


def parse_arm(text: str) -> Arm:
    head, *rest = text.split(":")
    named = []  # the user state and schedule, where given, come before any key=value
    while rest and "=" not in rest[0] and len(named) < 2:
        named.append(rest.pop(0))
    user, schedule = (named + [None, None])[:2]
    if any("=" not in part for part in rest):
        raise SystemExit(f"arm {text}: after head[:user[:schedule]] come key=value options")
    options = dict(part.split("=", 1) for part in rest)
    if user is not None and user not in USER_STATES:
        raise SystemExit(f"arm {text}: user state {user!r} is not one of {list(USER_STATES)}")
    return Arm(text, head, user, schedule, options)


@dataclass
class Rows:
    """One split's rows and paper lists, with the baselines' scores of those lists."""

    samples: Samples
    lists: np.ndarray
    sasrec: np.ndarray
    popularity: np.ndarray
    train_counts: np.ndarray

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        return ranks_of(scores, self.lists, self.samples.next)

    def metrics(self, scores: np.ndarray) -> dict[str, float]:
        return ranking_metrics(self.ranks(scores))

    def target_index(self) -> np.ndarray:
        return (self.lists == self.samples.next[:, None]).argmax(1)

    def gate_features(self) -> np.ndarray:
        return gate_features(self.sasrec, self.samples.len_history)

    def comparison(self, llm: np.ndarray, fused: np.ndarray) -> dict:
        """The LLM, the fused ranking and popularity against SASRec on these rows, with the
        per-row ranks kept, so that arms and seeds can be paired later."""
        ranks = {"LLM": self.ranks(llm), "fused": self.ranks(fused),
                 "recommender": self.ranks(self.sasrec), "popularity": self.ranks(self.popularity)}
        report = comparison_report(ranks, "recommender", self.samples.user,
                                   self.samples.sample_id, self.samples.next,
                                   self.samples.len_history, self.train_counts)
        report["ranks"] = {name: r.tolist() for name, r in ranks.items()}
        report["groups"] = user_groups(self.samples.user, self.samples.sample_id).tolist()
        return report

    def identities(self) -> dict[str, list[int]]:
        """Each row's sample id and target, in order: what pooling seeds or pairing arms
        checks (study_markdown.check_same_rows) before it treats rows as the same rows."""
        return {"sample_ids": self.samples.sample_id.tolist(),
                "targets": self.samples.next.tolist()}


def split_rows(data, split: str, sasrec_model) -> Rows:
    samples = data.samples(split)
    lists = sample_candidates(samples, data.num_items, data.config.num_candidates,
                              data.config.candidate_seed)
    counts = target_counts(data.samples("train"), data.num_items)
    return Rows(samples, lists, candidate_scores(sasrec_model, samples, lists),
                popularity_scores(counts, lists), counts)


def arm_config(base: FinetuneConfig, arm: Arm, budget: int, out: Path) -> FinetuneConfig:
    overrides = {"scoring.head": arm.head, "train.max_train_samples": budget or "null",
                 "output_dir": str(out), **USER_STATES.get(arm.user, {}), **arm.options}
    if arm.schedule:
        overrides["curriculum.schedule"] = arm.schedule
    if "holdout" in arm.options:  # stacking on the parts bench/holdout_split.py --last N wrote
        tag = f"last{overrides.pop('holdout')}"
        overrides["data_dir"] = str(out.parent / f"data-llm-{tag}")
        overrides["rec_checkpoint"] = str(out.parent / f"sasrec-{tag}")
        overrides["fusion_rec_checkpoint"] = str(out.parent / "sasrec")
    if "lr" in arm.options:
        overrides["train.lr"] = overrides.pop("lr")
        overrides["train.min_lr"] = float(overrides["train.lr"]) / 100
    return apply_overrides(base, [f"{k}={v}" for k, v in overrides.items()])


def untrained(config: FinetuneConfig, device: str, cache_dir) -> TrainedModel:
    """A fresh LLaRA (LoRA at its zero start, projector and head at their seeded start)."""
    torch.manual_seed(config.train.seed)  # the same start train_local draws
    inputs = run_inputs(config, device, cache_dir, print, inference=True)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder, inputs.cold, inputs.untrained).to(device)
    return TrainedModel(model, config, inputs.dataset, inputs.titles,
                        PromptBuilder.for_run(inputs.tokenizer, inputs.titles, config),
                        run_templates(config.prompt, inputs.dataset.config)[0], {})


def llm_scores(trained: TrainedModel, samples: Samples, lists: np.ndarray) -> np.ndarray:
    with trained.autocast():
        return score_candidates(trained.model, trained.builder, samples, lists,
                                trained.template, hybrid=trained.hybrid).scores


def choice_loss(scores: np.ndarray, rows: Rows) -> float:
    """Held-out loss of the choice: -log softmax over the candidates at the true one."""
    logp = fused_scores(scores, scores, 0.0)  # the log-softmax over each row
    target = (rows.lists == rows.samples.next[:, None]).argmax(1)
    return float(-logp[np.arange(len(logp)), target].mean())


def priors(scores: np.ndarray, rows: Rows) -> dict[str, float]:
    """Is it a position or popularity prior? The share of rows whose top-1 sits at the most
    chosen list position (1/C without a position prior), and the mean per-row rank
    correlation of the scores with popularity."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, 0]
    positions = np.bincount(top, minlength=rows.lists.shape[1]) / len(top)

    def spearman(a: np.ndarray, b: np.ndarray) -> float:
        ra, rb = a.argsort().argsort(), b.argsort().argsort()
        return float(np.corrcoef(ra, rb)[0, 1]) if ra.std() and rb.std() else 0.0

    corr = [spearman(s, p) for s, p in zip(scores, rows.popularity)]
    return {"top1_position_share": float(positions.max()),
            "popularity_rank_corr": float(np.mean(corr))}


@torch.no_grad()
def geometry(trained: TrainedModel, rows: Rows, count: int = 8) -> dict[str, float]:
    """Do projected vectors land in the norm range of real token embeddings, and does
    attention from the candidate slots reach the history slots?"""
    model = trained.model
    tokens = model.llm.get_input_embeddings().weight.float()
    items = torch.arange(min(256, model.item_embeddings.shape[0]),
                         device=model.item_embeddings.device)
    vectors = model.item_embeddings[items]
    if model.conditioned:
        vectors = torch.cat([vectors, torch.zeros_like(vectors)], dim=1)
    projected = model.projector(vectors).float()
    result = {"token_embedding_norm": float(tokens.norm(dim=1).median()),
              "projected_item_norm": float(projected.norm(dim=1).median())}
    subset = rows.samples.select(np.arange(min(count, len(rows.samples))))
    prompts = trained.builder.build(subset, rows.lists[:len(subset)], range(len(subset)),
                                    trained.template, trained.hybrid, False)
    batch = collate_prompts(prompts, trained.builder.tokenizer.pad_token_id).to(
        model.item_embeddings.device)
    if model.user_encoder is not None and trained.hybrid:
        users = model.user_states(batch.input_ids, batch.slot_items)
        if model.conditioned:
            users = torch.cat([users, torch.zeros_like(users)], dim=1)
        result["projected_user_norm"] = float(model.projector(users).float().norm(dim=1).median())
    history_token = model.history_token if trained.hybrid else None
    implementation = model.llm.config._attn_implementation
    model.llm.set_attn_implementation("eager")  # only eager attention returns its weights
    try:
        with autocast_for(trained.config.train.precision, str(batch.input_ids.device)):
            embeds = model.embed(batch.input_ids, batch.slot_items, trained.hybrid)
            out = model.llm.get_decoder()(inputs_embeds=embeds, attention_mask=batch.
                                          attention_mask, output_attentions=True,
                                          use_cache=False)
    finally:
        model.llm.set_attn_implementation(implementation)
    attention = torch.stack([a.float().mean(1) for a in out.attentions]).mean(0)  # (B, T, T)
    shares = []
    for row in range(len(prompts)):
        queries = batch.candidate_positions[row][batch.candidate_positions[row] >= 0]
        ids = batch.input_ids[row]
        keys = (ids == history_token).nonzero()[:, 0] if history_token is not None else \
            torch.arange(int(queries.min()), device=ids.device)  # text: all before the list
        shares.append(float(attention[row][queries][:, keys].sum(-1).mean()))
    result["candidate_to_history_attention"] = float(np.mean(shares))
    return result


def evaluate_point(trained: TrainedModel, val: Rows, test: Rows | None,
                   weight: float | None, grid: tuple[float, ...]) -> dict:
    """Everything one point reports: the val rows (the paper's), the test users, the
    history diagnostic on val, and fusion with w chosen on val."""
    started = time.perf_counter()
    own = llm_scores(trained, val.samples, val.lists)
    table = fusion_grid(own, val.sasrec, val.lists, val.samples.next, grid)
    weight = choose_weight(table) if weight is None else weight

    def other(samples: Samples) -> np.ndarray:
        return llm_scores(trained, samples, val.lists)

    history = history_sensitivity(other, val.samples, val.lists, own=own)
    test_scores = None if test is None else llm_scores(trained, test.samples, test.lists)
    val_fused = fused_scores(own, val.sasrec, weight)
    test_fused = None if test is None else fused_scores(test_scores, test.sasrec, weight)
    point = {"val": val.metrics(own),
             "test": None if test is None else test.metrics(test_scores),
             "val_fused": val.metrics(val_fused),
             "test_fused": None if test is None else test.metrics(test_fused),
             "val_comparison": val.comparison(own, val_fused),
             "test_comparison": None if test is None else test.comparison(test_scores,
                                                                          test_fused),
             "fusion_weight": weight, "fusion_grid_val": table, "history": history,
             "val_choice_loss": choice_loss(own, val), **priors(own, val)}
    if test is not None:  # which rows these are, so that seeds and arms pool row for row
        point["test_comparison"].update(test.identities())
    if test is not None:  # a per-row fusion weight, fitted on the val rows
        gate = fit_gate(own, val.sasrec, val.target_index(), val.gate_features(),
                        start_weight=weight or 1.0)
        point["gate_theta"] = gate.theta.tolist()
        point["test_gated"] = test.comparison(test_scores, gate.fused(
            test_scores, test.sasrec, test.gate_features()))
    point.update(geometry(trained, val))
    point["eval_seconds"] = round(time.perf_counter() - started, 1)
    return point


def check_same_run(best: Path, config: FinetuneConfig) -> None:
    """A finished run in the arm's folder is reused only if it was trained as this arm asks
    now: arm names are relative to the study's base, which can change between invocations."""
    done = to_dict(absolute_paths(run_config_of(read_run_json(best))))
    wanted = to_dict(absolute_paths(config))
    for side in (done, wanted):  # `best` holds only the best epoch's weights
        side.pop("output_dir")
    differs = first_difference(json.loads(json.dumps(done)), json.loads(json.dumps(wanted)))
    if differs:
        raise SystemExit(f"--resume: the finished run in {best} was trained with another "
                         f"'{differs}' than this arm asks now (arm names are relative to "
                         "--base); name that setting in the arm, or use another --workdir")


def point_dir(work: Path, arm: Arm, budget: int) -> Path:
    return work / f"{arm.name.replace(':', '-').replace('=', '')}-{budget}"


def check_done_points(done: set[tuple[str, int]], wanted: list[tuple[Arm, int]],
                      base: FinetuneConfig, work: Path) -> None:
    """--resume keeps the report's finished points only where each was trained as its arm
    asks now: an arm's name is relative to the --base file, and an edited file (a new
    default) would otherwise leave points of the old settings under the arm's name."""
    for arm, budget in wanted:
        best = point_dir(work, arm, budget) / "best"
        if (arm.name, budget) in done and (best / "run.json").is_file():
            check_same_run(best, arm_config(base, arm, budget, best.parent))


def run_point(base: FinetuneConfig, arm: Arm, budget: int, work: Path, val: Rows,
              test: Rows | None,
              device: str, cache_dir, log) -> dict:
    out = point_dir(work, arm, budget)
    config = arm_config(base, arm, budget, out)
    started = time.perf_counter()
    trend: dict = {}
    if budget == 0:
        trained, weight = untrained(config, device, cache_dir), None
    else:
        best = out / "best"
        if (best / "run.json").is_file():
            check_same_run(best, config)
            log(f"--resume: the finished run in {best}")
            trend["resumed"] = True
        else:
            train_local(config, cache_dir, log=log)
        trained = load_trained(best, device, cache_dir)
        # The weight training chose is the study's where the run fused with the study's
        # SASRec (holdout=N arms name it as fusion_rec_checkpoint); else it is chosen anew.
        fused_with = config.fusion_rec_checkpoint or config.rec_checkpoint
        same = Path(fused_with).resolve() == (work / "sasrec").resolve()
        weight = trained.fusion_weight if same else None
        steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses = [r["loss"] for r in steps if "loss" in r]
        tenth = max(1, len(losses) // 10)
        trend.update(steps=len(losses), loss_first_tenth=float(np.mean(losses[:tenth])),
                     loss_last_tenth=float(np.mean(losses[-tenth:])))
    trained_seconds = time.perf_counter() - started
    point = {"arm": arm.name, "head": arm.head, "user": arm.user, "schedule": arm.schedule,
             "options": arm.options, "budget": budget, **trend,
             **evaluate_point(trained, val, test, weight, config.scoring.fusion_grid),
             "train_seconds": round(trained_seconds, 1)}
    del trained
    return point


def memorised(data, count: int = 1024) -> dict[str, float]:
    """SASRec on a seeded sample of its own training rows (random lists, as the LLM stage
    trains on them): what a conditioned candidate's u.e tells the LLM while it trains,
    against what it tells on held-out rows."""
    train = data.samples("train")
    rows = train.select(np.sort(np.random.default_rng(0).permutation(len(train))[:count]))
    lists = sample_candidates(rows, data.num_items, data.config.num_candidates,
                              data.config.candidate_seed, 0)
    return ranking_metrics(ranks_of(candidate_scores(SASREC[0], rows, lists), lists, rows.next))


RECENT_ROWS = 5
"""Rows per user whose targets count for the recent-popularity control."""


def recent_counts(train: Samples, num_items: int, last: int = RECENT_ROWS) -> np.ndarray:
    """How often each item is the target of a user's last `last` training rows: what was
    popular at the end of the training period."""
    return target_counts(train.select(newest_rows(train.user, last)), num_items)


def recency_control(val: Rows, test: Rows | None, data) -> dict:
    """A control for any gain over SASRec: the recent popularity alone, and fused with SASRec
    as the LLM is (the weight chosen on val), against SASRec on the test rows. An LLM arm
    that adds only what was popular lately gains no more than this."""
    counts = recent_counts(data.samples("train"), data.num_items)
    own = popularity_scores(counts, val.lists)
    grid = tuple(w for w in ScoringConfig().fusion_grid if w)  # w = 0 would be the control alone
    weight = choose_weight(fusion_grid(own, val.sasrec, val.lists, val.samples.next, grid))
    control = {"rows_per_user": RECENT_ROWS, "val": val.metrics(own), "weight": weight}
    if test is not None:
        scores = popularity_scores(counts, test.lists)
        control["test"] = test.metrics(scores)
        control["test_comparison"] = test.comparison(scores, fused_scores(scores, test.sasrec,
                                                                          weight))
        # the fused control's ranks stay, so that arms can be paired with it row by row
        control["fused_ranks"] = control["test_comparison"]["ranks"]["fused"]
        for bulky in ("ranks", "groups"):
            del control["test_comparison"][bulky]
    return control


def baselines(val: Rows, test: Rows | None, data) -> dict:
    return {"popularity": {"val": val.metrics(val.popularity),
                           "test": test and test.metrics(test.popularity)},
            "sasrec": {"val": val.metrics(val.sasrec), "test": test and test.metrics(test.sasrec),
                       "train": memorised(data)},
            "recent_popularity": recency_control(val, test, data),
            "sasrec_history": history_sensitivity(
                lambda samples: candidate_scores(SASREC[0], samples, val.lists),
                val.samples, val.lists, own=val.sasrec)}


def carved(data) -> bool:
    """Whether validation users were carved out of a released training table (LastFM): the
    released validation rows are the test rows then."""
    return data.meta.get("validation_source", "released") != "released"


def rows_described(data, val: Rows, test: Rows | None) -> dict[str, str]:
    if carved(data):
        return {"val": f"{len(val.samples)} (users carved out of the released training table)",
                "test": f"{len(test.samples)} (the paper's released validation rows, reported "
                "only)"}
    return {"val": f"{len(val.samples)} (the paper's released validation rows)",
            "test": "none" if test is None else f"{len(test.samples)} (test users of our own "
            f"split, {len(set(test.samples.user))} users)"}


SASREC: list = []
"""The SASRec module of the run, for the baselines' history diagnostic."""


def report_to_continue(path: Path, resume: bool, base: str) -> dict:
    """The report --resume adds to (a fresh one without it), refused when its arms were made
    on another base: the same arm name means another run there."""
    report = json.loads(path.read_text()) if resume and path.is_file() else {"points": []}
    # Reports from before --base existed were all made on the paper's method.
    made_on = report.get("base", PAPER_BASE if report["points"] else base)
    if made_on != base:
        raise SystemExit(f"--resume: {path} holds arms on the base {made_on!r}, this run asks "
                         f"--base {base!r}; write to another --out")
    report["base"] = base
    return report


def run_study(args, inputs, base: FinetuneConfig, console, out: Path) -> dict:
    """Every arm at every budget (finished points are kept across invocations)."""
    device = resolve_device(args.device)
    SASREC[:] = [load_checkpoint(inputs.work / "sasrec").model]
    val = split_rows(inputs.data, "val", SASREC[0])
    test = split_rows(inputs.data, "test", SASREC[0]) if inputs.data.has("test") else None
    path = out.with_suffix(".json")
    report = report_to_continue(path, args.resume, args.base)
    report.update({"date": time.strftime("%Y-%m-%d"), "machine": "CPU (2 cores)",
                   "llm": args.llm, "candidates": inputs.data.config.num_candidates,
                   "rows": rows_described(inputs.data, val, test),
                   # Where the paper's released rows are: what the demo's references read.
                   "paper_rows": "test" if carved(inputs.data) else "val",
                   "dataset": args.dataset,
                   "baselines": baselines(val, test, inputs.data), "chance": 1 / val.lists.shape[1],
                   "settings": {"lr": args.lr, "batch_size": args.batch_size,
                                "micro_batch": args.micro_batch, "precision": args.precision,
                                "epochs": 1}})
    if test is not None:
        report["test_groups"] = user_groups(test.samples.user, test.samples.sample_id).tolist()
    if getattr(args, "reference_arm", None):
        report["reference_arm"] = args.reference_arm
    done = {(p["arm"], p["budget"]) for p in report["points"]}
    wanted = [(parse_arm(text), int(budget)) for budget in args.budgets.split(",")
              for text in args.arms.split(",")]
    check_done_points(done, wanted, base, inputs.work)  # before any training
    for arm, budget in wanted:
        if (arm.name, budget) in done:
            continue
        console.rule(f"{arm.name}, budget {budget}")
        point = run_point(base, arm, budget, inputs.work, val, test, device,
                          args.cache_dir, console.print)
        report["points"].append(point)
        console.print(f"{arm.name} @ {budget}: val HR@1 {point['val']['HitRatio@1']:.4f}, "
                      f"top-1 changed {point['history']['top1_changed']:.2f}, "
                      f"fused val HR@1 {point['val_fused']['HitRatio@1']:.4f}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return report
