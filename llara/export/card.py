"""The model card (README.md) of an export: what the model is, what it learned from, how well
it ranks (with intervals), how to load it, what it is for and where it stops."""

from __future__ import annotations

from llara.data.prepare import PreparedDataset
from llara.evaluation.intervals import interval_text
from llara.evaluation.report import comparison_markdown

CITATION = """@inproceedings{liao2024llara,
  title     = {LLaRA: Large Language-Recommendation Assistant},
  author    = {Liao, Jiayi and Li, Sihang and Yang, Zhengyi and Wu, Jiancan and Yuan, Yancheng
               and Wang, Xiang and He, Xiangnan},
  booktitle = {Proceedings of the 47th International ACM SIGIR Conference on Research and
               Development in Information Retrieval},
  year      = {2024}
}"""


def _validation(run: dict) -> list[str]:
    metrics = run.get("val_metrics") or {}
    fusion = run.get("fusion") or {}
    if not metrics:
        return ["Training recorded no validation figures."]
    lines = [f"Validation rows ({fusion.get('rows', '?')} rows), as training chose the epoch "
             "and the fusion weight on them:", "",
             "| ranking | HR@1 | NDCG@5 |", "|---|---|---|",
             f"| LLM | {metrics.get('HitRatio@1', float('nan')):.4f} | "
             f"{metrics.get('NDCG@5', float('nan')):.4f} |"]
    if "fused_HitRatio@1" in metrics:
        level = fusion.get("cold_level")
        level = "" if level is None else f", new items at the {level:g} quantile"
        text = fusion.get("text_weight", 0.0)
        text = f", text-only prompts a = {text:g}" if text else ""
        lines.append(f"| fused (w = {fusion.get('weight', 0):g}{level}{text}) | "
                     f"{metrics['fused_HitRatio@1']:.4f} | {metrics['fused_NDCG@5']:.4f} |")
    lines.append("")
    gain = fusion.get("gain") or {}
    if gain:
        share = fusion.get("new_target_share")
        weighted = "" if share is None else \
            f", rows weighted so that {share:g} of them have a new target"
        lines.append(f"Fused minus the recommender alone (mean [95% interval], users "
                     f"resampled{weighted}): " + ", ".join(f"{name} {interval_text(value)}"
                                                            for name, value in gain.items()) + ".")
    what = ("the recommender's own ranking (fusing did not beat it by more than chance)"
            if fusion.get("serves", "fused") == "recommender" else "the fused ranking")
    lines.append(f"It serves {what} unless told otherwise (`--set fusion=...` when serving).")
    return lines


def _test(metrics: dict | None) -> list[str]:
    if not metrics:
        return ["No test report was given at export (`llara evaluate --checkpoint ... --json "
                "eval.json`, then `llara export ... --metrics eval.json`); `llara evaluate "
                "--checkpoint <this folder> --local` measures it from the rows it carries."]
    lines = [f"`llara evaluate` on the {metrics.get('split', 'test')} rows "
             f"({metrics.get('rows', '?')} rows, protocol {metrics.get('protocol', '?')}):", ""]
    comparison = metrics.get("comparison")
    if comparison:
        table = comparison_markdown(comparison)
        end = table.index("", 6) if "" in table[6:] else len(table)
        lines += table[2:end]  # the intro line and the overall table, not the slices
    else:
        lines += ["| ranking | HR@1 | NDCG@5 |", "|---|---|---|"] + [
            f"| {name} | {metrics[key]['HitRatio@1']:.4f} | {metrics[key]['NDCG@5']:.4f} |"
            for name, key in (("LLM", "score"), ("fused", "fused"), ("recommender",
                                                                     "recommender"))
            if isinstance(metrics.get(key), dict)]
    cold = metrics.get("cold")
    if cold:
        lines += ["", f"New items: {cold.get('items', '?')} items no training row holds; "
                  "the evaluation report's `cold` section has their slices."]
    return lines


def model_card(manifest: dict, run: dict, dataset: PreparedDataset) -> str:
    """README.md of an export (manifest: export.json; run: the exported run.json; dataset: the
    prepared dataset it was exported from)."""
    config = run["config"]
    base = manifest["base_llm"]
    data = dataset.config
    meta = dataset.meta
    rows = manifest["rows"]
    cold = meta.get("cold") or {}
    recommender = run.get("inputs", {})
    name = manifest["name"]
    lines = [
        "---",
        "library_name: llara",
        f"base_model: {base['source']}",
        "tags: [recommendation, sequential-recommendation, llara, lora]",
        "---",
        "",
        f"# {name}",
        "",
        f"A LLaRA model (Liao et al., SIGIR 2024) for next-item recommendation of "
        f"{dataset.domain}: it ranks a short candidate list for a user's history. A frozen "
        "sequential recommender supplies item embeddings; a projector maps them into the LLM's "
        "input beside each item's title (the hybrid prompt); LoRA adapters and a ranking head "
        f"were trained on top. Exported by llara {manifest['llara']} on {manifest['created']}.",
        "",
        "## Model",
        "",
        f"- Base LLM: `{base['source']}`" + (f", its first {base['layers']} decoder layers"
                                             if base["layers"] else ", every layer") +
        ("; included in this folder (`llm/`)." if base["included"] else
         "; not included: loading fetches it as training did (a packaged name or a hub id), "
         "and a different copy is reported."),
        f"- Ranking head `{config['scoring']['head']}`; projector `{config['projector']['kind']}` "
        f"(depth {config['projector']['depth']}); LoRA r={config['lora']['r']} "
        f"alpha={config['lora']['alpha']} on {', '.join(config['lora']['target_modules'])}; "
        f"curriculum `{config['curriculum']['schedule']}`; new items read by "
        f"`cold.content={config['cold']['content']}`.",
        f"- Trained {run.get('step', '?')} steps (epoch {run.get('epoch', '?')}), at most "
        f"{config['train'].get('max_train_samples')} samples.",
        "- Frozen recommender: `recommender/`" + (
            ", fused with `fusion-recommender/`" if config.get("fusion_rec_checkpoint") else "")
        + f" (weights digest {str(recommender.get('rec_checkpoint'))[:12]}).",
        "",
        "## Data",
        "",
        f"- Source `{meta.get('source', 'unknown')}`, domain `{dataset.domain}`: "
        f"{dataset.num_items} items, {meta.get('num_users', '?')} users, "
        f"{meta.get('num_interactions', '?')} interactions; training rows "
        f"{meta.get('samples', {}).get('train', '?')}.",
        f"- Histories of up to {data.max_history} items; {data.num_candidates} candidates per "
        f"evaluation row; users split {list(data.split_ratios)} (seed {data.split_seed}).",
    ]
    if cold:
        lines.append(f"- Cold-item protocol: {len(cold.get('items', []))} items "
                     f"({data.cold_items:g} of the catalogue, the {data.cold_by}) left out "
                     "of every training row.")
    lines += [
        f"- This folder carries the item table and each item's training statistics "
        f"(`data/`), and {rows.get('val', 0)} validation and {rows.get('test', 0)} test rows "
        "with users replaced by pseudonyms; no training row.",
        "",
        "## Metrics",
        "",
        *_test(manifest.get("metrics")),
        "",
        *_validation(run),
        "",
        "## How to use",
        "",
        "```bash",
        "# with llara installed (its README's first command), from anywhere:",
        f'llara recommend --checkpoint {name} --history "<a title>, <another>" --k 5',
        f"llara serve --checkpoint {name}         # POST /v1/recommend on 127.0.0.1:8000",
        f"llara evaluate --checkpoint {name} --local",
        "```",
        "",
        "A hub id works where a folder does (`--checkpoint owner/name`). Every part is checked "
        "against the digest `export.json` records before use; a damaged or edited part is "
        "refused by name.",
        "",
        "## Intended use",
        "",
        f"Reranking a short list of {dataset.domain} from this catalogue for a user's recent "
        "history, in research and in services that show a recommender's top items; as a "
        "baseline to reproduce and compare LLM-based sequential recommenders.",
        "",
        "## Limits",
        "",
        "- It knows this catalogue only. Items added later are read by their text alone where "
        "it was trained with `cold.content=map` (`llara serve --new-items`), and not at all "
        "otherwise.",
        "- Its figures hold for histories and candidate lists like those it was evaluated on "
        "(the lists above are the true item among random others, unless the protocol says "
        "`full`); quality on the recommender's own top-N is lower.",
        "- It inherits the biases of its interaction log (popular items, active users) and of "
        "its base LLM. Recommendations are not advice.",
        "- The digests find damage and edits; they do not prove who made the export.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
        "## Parts",
        "",
        "| part | path | SHA-256 |",
        "|---|---|---|",
        *[f"| {p['name']} | `{p['path']}` | `{p['digest'][:16]}` |" for p in manifest["parts"]],
        "",
    ]
    return "\n".join(lines)
