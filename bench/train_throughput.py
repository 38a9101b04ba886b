"""LLaRA training-step and evaluation throughput against the original code's style, same run.

    python bench/train_throughput.py                 # GPU: Llama-2-7B shape, random bf16 weights
    python bench/train_throughput.py --cpu           # smoke run with a tiny model

Training variants share one base model, one set of MovieLens-shaped hybrid prompts (10 history
items, 20 candidates) and micro-batch 8, one optimiser step per micro-batch:
  original  eager attention, a Python loop writing each slot, logits over every token,
            foreach AdamW, attention mask over padding to the longest prompt
  llara     the library's step: SDPA without a mask (rows are right-padded), one masked_scatter,
            logits only on answer tokens, fused AdamW
  +nodrop   the same with LoRA dropout 0 (dropout copies every activation it touches)
  +compile  the same with every decoder layer compiled (torch.compile)
Evaluation: samples/s of candidate scoring (shared prompt cache) against greedy 64-token
generation, batch 8. TFLOP/s counts 4 * params * real tokens per step (frozen weights need no
weight gradients). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

from llara.common.device import autocast_for
from llara.config.lora import LoRAConfig
from llara.config.run import FinetuneConfig
from paper_method import paper_method
from llara.data.candidates import sample_candidates
from llara.data.tables import Samples
from llara.evaluation.generation import generate_answers, left_aligned
from llara.evaluation.scoring import score_candidates
from llara.model.batch import collate_prompts
from llara.model.llara import build_llara, compile_decoder_layers
from llara.model.llm import add_llara_tokens, tiny_tokenizer
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import TEMPLATES

WORDS = ("river night story love city dark last house king man woman war star blue day life "
         "time dead world girl boy heart return secret game fire summer road family ghost "
         "island dream street moon wild lost angel little big american golden iron").split()


def catalogue(num_items: int, rng: np.random.Generator) -> list[str]:
    """MovieLens-like titles: three to six words and a year."""
    return [" ".join(rng.choice(WORDS, rng.integers(3, 7))).title() +
            f" ({rng.integers(1930, 1999)})" for _ in range(num_items)]


def samples(count: int, num_items: int, rng: np.random.Generator) -> Samples:
    history = np.stack([rng.choice(num_items, 10, replace=False) for _ in range(count)])
    nxt = np.array([rng.choice(np.setdiff1d(np.arange(num_items), h)) for h in history])
    return Samples(np.arange(count), [None] * count, history, np.full(count, 10), nxt,
                   np.zeros((count, 10), np.float32), np.zeros(count, np.float32))


def build_base(args, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    if args.cpu:
        shape = dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4)
    else:  # Llama-2-7B
        shape = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=32)
    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=4096, **shape)
    dtype = torch.float32 if args.cpu else torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(args.device):
            return LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)


def original_style_loss(model, batch) -> torch.Tensor:
    """The released code's shape: per-slot writes in Python, every logit, a padding mask."""
    llm = model.llm
    embeds = llm.get_input_embeddings()(batch.input_ids).clone()  # (B, T, H)
    slot_ids = model.slot_token_ids.tolist()
    for row in range(batch.input_ids.shape[0]):
        items = batch.slot_items[row]
        positions = torch.nonzero(torch.isin(batch.input_ids[row],
                                             torch.tensor(slot_ids, device=embeds.device)))
        for k, position in enumerate(positions.flatten().tolist()):
            vector = model.projector(model.item_embeddings[items[k]])  # (H,)
            embeds[row, position] = vector.to(embeds.dtype)
    labels = torch.where(batch.label_mask, batch.input_ids, -100)
    return llm(inputs_embeds=embeds, attention_mask=batch.attention_mask, labels=labels).loss


def drop_lora_dropout(model) -> None:
    for module in model.modules():
        if hasattr(module, "lora_dropout"):
            for name in list(module.lora_dropout.keys()):
                module.lora_dropout[name] = nn.Identity()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_training(model, batches, loss_fn, optimizer, args) -> dict:
    times = []
    model.train()
    for i, batch in enumerate(batches[:args.warmup + args.steps]):
        sync(args.device)
        start = time.perf_counter()
        with autocast_for("auto", args.device):
            loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(args.device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    per_step = statistics.median(times)
    tokens = statistics.mean(int(b.attention_mask.sum()) for b in batches[args.warmup:])
    return {"samples_s": args.micro_batch / per_step, "step_s": per_step,
            "tflops": 4 * args.params * tokens / per_step / 1e12, "loss": float(loss)}


def peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny model on the CPU (smoke run)")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--variants", default="original,llara,+nodrop,+compile")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    args.device = "cpu" if args.cpu else "cuda"
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    titles = catalogue(1682, rng)
    tokenizer = tiny_tokenizer(titles)
    base = build_base(args, vocab=32000)
    add_llara_tokens(base, tokenizer)
    args.params = sum(p.numel() for p in base.parameters())
    item_table = torch.randn(len(titles), 64)
    config = paper_method(FinetuneConfig(lora=LoRAConfig(r=8, alpha=32, dropout=0.1)))
    model = build_llara(config, base, tokenizer, item_table).to(args.device)
    builder = PromptBuilder(tokenizer, titles, 4096)
    count = args.micro_batch * (args.warmup + args.steps)
    train = samples(count, len(titles), rng)
    candidates = sample_candidates(train, len(titles), 20, seed=0)
    template = TEMPLATES["movies"][0]
    batches = []
    for start in range(0, count, args.micro_batch):
        rows = list(range(start, start + args.micro_batch))
        batch = collate_prompts(builder.build(train, candidates, rows, template, True, True),
                                tokenizer.pad_token_id)
        batches.append(type(batch)(*(t.to(args.device) for t in vars(batch).values())))
    mean_tokens = statistics.mean(int(b.attention_mask.sum()) / args.micro_batch
                                  for b in batches)
    print(f"device {torch.cuda.get_device_name() if not args.cpu else 'cpu'}; "
          f"{args.params / 1e9:.2f}B parameters; {mean_tokens:.0f} tokens per prompt; "
          f"micro-batch {args.micro_batch}", flush=True)
    results: dict[str, dict] = {}
    params = model.trainable_parameters()
    fused = {"fused": True} if args.device.startswith("cuda") else {}
    library_loss = lambda m, b: m.loss(b, hybrid=True)  # noqa: E731
    plan = {"original": (original_style_loss, {"foreach": True}, "eager"),
            "llara": (library_loss, fused, "sdpa"),
            "+nodrop": (library_loss, fused, "sdpa"),
            "+compile": (library_loss, fused, "sdpa")}
    wanted = args.variants.split(",")
    for name in wanted:
        loss_fn, opt_kwargs, attention = plan[name]
        try:
            if name == "+nodrop":
                drop_lora_dropout(model)
            if name == "+compile":
                drop_lora_dropout(model)
                compile_decoder_layers(model)
            model.llm.set_attn_implementation(attention)
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            optimizer = torch.optim.AdamW(params, lr=1e-4, **opt_kwargs)
            results[name] = time_training(model, batches, loss_fn, optimizer, args)
            results[name]["peak_gib"] = peak_gib(args.device)
        except Exception as err:  # one failing variant must not lose the others' figures
            results[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
        print(name, json.dumps(results[name]), flush=True)
        if name == "+nodrop" or (name == wanted[-1] and "evaluation" not in results):
            results["evaluation"] = evaluate(model, builder, titles, rng, args)
            print("evaluation", json.dumps(results["evaluation"]), flush=True)
    report(results, args)


def evaluate(model, builder, titles, rng, args) -> dict:
    model.llm.set_attn_implementation("sdpa")
    test = samples(args.eval_samples, len(titles), rng)
    candidates = sample_candidates(test, len(titles), 20, seed=1)
    template = TEMPLATES["movies"][0]
    out = {}
    with autocast_for("auto", args.device):
        score_candidates(model, builder, test.select(np.arange(8)), candidates[:8], template)
        sync(args.device)
        start = time.perf_counter()
        score_candidates(model, builder, test, candidates, template, batch_size=8)
        sync(args.device)
        out["scoring_samples_s"] = args.eval_samples / (time.perf_counter() - start)
        start = time.perf_counter()
        answers = generate_answers(model, builder, test, candidates, template, batch_size=8,
                                   max_new_tokens=64)
        sync(args.device)
        seconds = time.perf_counter() - start
    out["generation_samples_s"] = args.eval_samples / seconds
    out["generation_s_per_batch8"] = seconds / (args.eval_samples / 8)
    out["answers"] = len(answers)
    # Random weights emit ids the small tokenizer cannot decode, so count new tokens on ids.
    batch = collate_prompts(builder.build(test, candidates, range(8), template, True, False),
                            builder.tokenizer.pad_token_id)
    ids, attention = (t.to(args.device) for t in left_aligned(batch))
    with torch.no_grad(), autocast_for("auto", args.device):
        embeds = model.embed(ids, batch.slot_items.to(args.device), True)
        newline = builder.tokenizer("\n", add_special_tokens=False)["input_ids"][-1:]
        new = model.llm.generate(inputs_embeds=embeds, attention_mask=attention,
                                 max_new_tokens=64, do_sample=False,
                                 eos_token_id=[builder.tokenizer.eos_token_id] + newline,
                                 pad_token_id=builder.tokenizer.pad_token_id)
    out["new_tokens_first_batch"] = int(new.shape[1])
    # The original protocol's cost: exactly 64 new tokens per prompt, batch 8.
    sync(args.device)
    start = time.perf_counter()
    with torch.no_grad(), autocast_for("auto", args.device):
        for first in range(0, args.eval_samples, 8):
            batch = collate_prompts(builder.build(test, candidates, range(first, first + 8),
                                                  template, True, False),
                                    builder.tokenizer.pad_token_id)
            ids, attention = (t.to(args.device) for t in left_aligned(batch))
            embeds = model.embed(ids, batch.slot_items.to(args.device), True)
            model.llm.generate(inputs_embeds=embeds, attention_mask=attention,
                               max_new_tokens=64, min_new_tokens=64, do_sample=False,
                               pad_token_id=builder.tokenizer.pad_token_id)
    sync(args.device)
    out["generation64_samples_s"] = args.eval_samples / (time.perf_counter() - start)
    return out


def report(results: dict, args) -> None:
    baseline = results.get("original", {}).get("samples_s")
    print(f"\n{'variant':<10} {'samples/s':>10} {'x original':>11} {'TFLOP/s':>8} "
          f"{'peak GiB':>9} {'step s':>8}")
    for name, row in results.items():
        if name == "evaluation":
            continue
        if "error" in row:
            print(f"{name:<10} failed: {row['error']}")
            continue
        ratio = row["samples_s"] / baseline if baseline else float("nan")
        print(f"{name:<10} {row['samples_s']:>10.2f} {ratio:>11.2f} {row['tflops']:>8.1f} "
              f"{row['peak_gib']:>9.1f} {row['step_s']:>8.3f}")
    ev = results.get("evaluation")
    if ev:
        print(f"evaluation: candidate scoring {ev['scoring_samples_s']:.2f} samples/s, greedy "
              f"64-token generation {ev['generation_samples_s']:.2f} samples/s "
              f"({ev['generation_s_per_batch8']:.2f} s per batch of 8), ratio "
              f"{ev['scoring_samples_s'] / ev['generation_samples_s']:.1f}x; forced 64 new "
              f"tokens: {ev['generation64_samples_s']:.2f} samples/s, scoring "
              f"{ev['scoring_samples_s'] / ev['generation64_samples_s']:.1f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
