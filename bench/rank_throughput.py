"""Candidate scoring throughput: the packed path (llara.evaluation.score_candidates: prompt and
all candidates in one forward pass) against the earlier path kept here as the baseline (the
prompt's key/value cache copied once per candidate, then a second pass over the answers),
each in fp32, with bf16 autocast over fp32 weights, and with bf16 weights, in one run.

    python bench/rank_throughput.py                     # CPU: SmolLM2-135M, the 94 paper rows
    python bench/rank_throughput.py --device cuda --batch-sizes 8 32

Prints samples/s, the ratio to the baseline in fp32, and how far each variant's scores are
from the baseline's (the largest absolute difference of a candidate's log-likelihood).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from llara.config.data import DataConfig
from llara.config.run import FinetuneConfig
from paper_method import paper_method
from llara.data.candidates import sample_candidates
from llara.data.fetch import fetch_dataset
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.evaluation.generation import left_aligned
from llara.evaluation.scoring import LLMRanking, score_candidates
from llara.model.batch import collate_prompts
from llara.model.llara import build_llara
from llara.model.llm import load_llm, resolve_llm
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import ANSWER_END, TEMPLATES

REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def score_with_cache_copies(model, builder, samples, candidates, template,
                            batch_size: int = 1) -> LLMRanking:
    """The earlier scoring path, kept as this benchmark's baseline: the prompt runs once and
    its key/value cache is repeated C times for a second pass over the C answers."""
    device = model.item_embeddings.device
    tokenizer = builder.tokenizer
    decoder, head = model.llm.get_decoder(), model.llm.get_output_embeddings()
    cache_arg = "cache" if "cache" in inspect.signature(decoder.forward).parameters \
        else "past_key_values"
    count = candidates.shape[1]
    all_scores = np.zeros(candidates.shape, np.float32)
    for start in range(0, len(samples), batch_size):
        rows = list(range(start, min(start + batch_size, len(samples))))
        batch = collate_prompts(builder.build(samples, candidates, rows, template, True, False),
                                tokenizer.pad_token_id)
        ids, attention = (t.to(device) for t in left_aligned(batch))  # (B, P)
        embeds = model.embed(ids, batch.slot_items.to(device), True)
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        prefix = decoder(inputs_embeds=embeds, attention_mask=attention, position_ids=positions,
                         use_cache=True)
        encoded = [tokenizer(" " + builder.titles[i] + ANSWER_END,
                             add_special_tokens=False)["input_ids"]
                   for i in candidates[rows].reshape(-1).tolist()]
        width = max(len(e) for e in encoded)
        answer = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool)
        for i, tokens in enumerate(encoded):
            answer[i, :len(tokens)], mask[i, :len(tokens)] = torch.tensor(tokens), True
        answer, mask = answer.to(device), mask.to(device)
        cache = getattr(prefix, cache_arg)
        cache.batch_repeat_interleave(count)  # (B*C) rows share each prompt's keys/values
        full_mask = torch.cat([attention.repeat_interleave(count, 0), mask.long()], dim=1)
        lengths = attention.sum(1).repeat_interleave(count)[:, None]  # (B*C, 1)
        answer_positions = lengths + torch.arange(width, device=device)[None, :]
        hidden = decoder(input_ids=answer, attention_mask=full_mask,
                         position_ids=answer_positions, use_cache=True,
                         **{cache_arg: cache}).last_hidden_state  # (B*C, W, H)
        last = prefix.last_hidden_state[:, -1:].repeat_interleave(count, 0)
        states = torch.cat([last, hidden[:, :-1]], dim=1)
        logits = head(states).float()
        token_lp = logits.gather(2, answer.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        all_scores[rows] = (token_lp * mask).sum(dim=1).view(len(rows), count).cpu().numpy()
    return LLMRanking(all_scores, np.zeros(len(samples), np.int64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--rows", type=int, default=94, help="Validation rows to score.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-rank"))
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--reference-split", type=Path,
                        default=REPO.parent / "shared" / "data" / "llara_ref" / "movielens")
    args = parser.parse_args()
    console = Console(width=130)
    if not (args.workdir / "data" / "dataset.json").is_file():
        raw = fetch_dataset("movielens-100k", args.cache_dir, log=console.print)
        prepare_dataset(raw, args.workdir / "data", DataConfig(),
                        reference_dir=args.reference_split)
    data = PreparedDataset.open(args.workdir / "data")
    samples = data.samples("val").select(np.arange(min(args.rows, len(data.samples("val")))))
    candidates = sample_candidates(samples, data.num_items, 20, data.config.candidate_seed)
    titles = data.titles()
    source = resolve_llm(args.llm, args.cache_dir, console.print)
    torch.manual_seed(0)
    llm, tokenizer = load_llm(source, extra_text=titles)
    model = build_llara(paper_method(FinetuneConfig(llm=source)), llm, tokenizer,
                        torch.randn(data.num_items, 64)).to(args.device).eval()
    with torch.no_grad():  # trained-looking adapters: LoRA B is zero at the start
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    builder = PromptBuilder(tokenizer, titles, 1024)
    template = TEMPLATES["movies"][0]
    autocast = lambda: torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16)  # noqa
    precisions = {"fp32": (model, contextlib.nullcontext),
                  "bf16 autocast": (model, autocast),
                  "bf16 weights": (bf16_model, contextlib.nullcontext)}
    paths = {"cache copies (baseline)": score_with_cache_copies, "packed": score_candidates}
    rows, baseline = [], None
    for path_name, score in paths.items():
        for precision, (net, context) in precisions.items():
            for batch in args.batch_sizes:
                with context():
                    score(net, builder, samples.select(np.arange(2)), candidates[:2],
                          template, batch_size=batch)  # warm-up
                    started = time.perf_counter()
                    ranking = score(net, builder, samples, candidates, template,
                                    batch_size=batch)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - started
                if baseline is None:
                    baseline = (ranking.scores, len(samples) / seconds)
                rows.append((path_name, precision, batch, len(samples) / seconds,
                             float(np.abs(ranking.scores - baseline[0]).max())))
                console.print(f"{path_name}, {precision}, batch {batch}: "
                              f"{len(samples) / seconds:.2f} samples/s")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    table = Table(title=f"Candidate scoring, {args.llm}, {len(samples)} rows x 20 candidates, "
                  f"{device} ({torch.get_num_threads()} threads)")
    for column in ("path", "precision", "batch", "samples/s", "x baseline fp32",
                   "max |score - baseline|"):
        table.add_column(column, justify="right")
    for path_name, precision, batch, rate, diff in rows:
        table.add_row(path_name, precision, str(batch), f"{rate:.2f}",
                      f"{rate / baseline[1]:.2f}", f"{diff:.4f}")
    console.print(table)


if __name__ == "__main__":
    main()
