"""The run report: Markdown table and real PNG plots from a metrics log."""

from llara.evaluation.report import read_metrics_log, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_has_table_and_plots(tmp_path):
    log = [{"step": s, "epoch": 0, "loss": 3.0 - 0.1 * s, "hybrid": int(s % 3 == 0),
            "p_hybrid": s / 10} for s in range(1, 11)]
    log.append({"step": 10, "epoch": 0, "val_HitRatio@1": 0.2})
    (tmp_path / "metrics.jsonl").write_text("".join(f"{__import__('json').dumps(r)}\n"
                                                    for r in log))
    out = write_report(tmp_path / "report", "Demo", {"SASRec": 0.43, "LLaRA": 0.12},
                       {"SASRec": 0.3444, "LLaRA": 0.4421},
                       read_metrics_log(tmp_path / "metrics.jsonl"), ["a note"])
    text = (out / "README.md").read_text()
    assert "| SASRec | 0.4300 | 0.3444 |" in text and "| LLaRA | 0.1200 | 0.4421 |" in text
    assert "10 optimiser steps, 3 on hybrid prompts" in text and "- a note" in text
    for name in ("loss.png", "hybrid.png", "hit_ratio.png"):
        assert (out / name).read_bytes()[:8] == PNG and f"({name})" in text


def test_reference_results_read_curves_and_gpu_runs_with_their_budgets(tmp_path):
    import json

    from llara.evaluation.report import best_per_head, reference_results

    curve = {"machine": "CPU (2 cores)", "llm": "smollm2-135m", "split": "val (94 rows)",
             "sasrec": {"HitRatio@1": 0.45},
             "points": [{"model": "LLaRA curriculum", "budget": b, "HitRatio@1": hr}
                        for b, hr in ((0, 0.05), (2048, 0.12), (512, 0.08))]}
    gpu = {"card": "NVIDIA H200", "llm": "x.gguf", "budget": {"samples": 40000},
           "metrics": {"LLaRA (curriculum)": {"val": {"score": {"HitRatio@1": 0.4},
                                                      "generate": {"HitRatio@1": 0.38}}},
                       "fused (w=2)": {"val": {"score": {"HitRatio@1": 0.5}}}}}
    (tmp_path / "a-curve.json").write_text(json.dumps(curve))
    (tmp_path / "b-gpu.json").write_text(json.dumps(gpu))
    (tmp_path / "c-broken.json").write_text("{not json")
    (tmp_path / "d-other-dataset.json").write_text(json.dumps({**gpu, "dataset": "lastfm"}))
    rows = reference_results(tmp_path)
    assert [(r["model"], r["hr1"], r["budget"]) for r in rows] == [
        ("LLaRA curriculum", 0.12, "2048 samples"), ("SASRec", 0.45, "-"),
        ("LLaRA (curriculum) (generate)", 0.38, "40000 samples"),
        ("LLaRA (curriculum) (score)", 0.4, "40000 samples"),
        ("fused (w=2) (score)", 0.5, "40000 samples")]
    # The fused ranking beside a GPU run's LLaRA is no head's run, however high it scores.
    assert [r["model"] for r in best_per_head(rows)] == ["LLaRA (curriculum) (score)"]
    assert [r["source"] for r in reference_results(tmp_path, "lastfm")] == \
        ["d-other-dataset.json"] * 3  # each dataset's demo shows its own runs
    out = write_report(tmp_path / "report", "Demo", {"SASRec": 0.4}, {}, [], [], rows)
    assert "| LLaRA curriculum | 0.1200 | 0.4500 | CPU (2 cores), smollm2-135m | 2048 samples |" \
        in (out / "README.md").read_text()


def test_a_newcomer_sees_the_best_run_of_each_head_and_no_baseline_rows():
    from llara.evaluation.report import best_per_head

    rows = [{"model": "LLaRA slot:none", "hr1": 0.34, "head": "slot"},
            {"model": "LLaRA slot:cond", "hr1": 0.47, "head": "slot"},
            {"model": "LLaRA title:none", "hr1": 0.09, "head": "title"},
            {"model": "LLaRA (curriculum) (score)", "hr1": 0.40, "head": "title"},
            {"model": "sasrec", "hr1": 0.51, "head": None},
            {"model": "popularity", "hr1": 0.23}]
    assert [r["model"] for r in best_per_head(rows)] == ["LLaRA slot:cond",
                                                        "LLaRA (curriculum) (score)"]


def test_the_loss_plot_names_the_loss_the_head_trains(tmp_path, monkeypatch):
    import matplotlib.axes

    from llara.config.scoring import TRAINING_LOSSES

    labels = []
    original = matplotlib.axes.Axes.set
    monkeypatch.setattr(matplotlib.axes.Axes, "set",
                        lambda self, **kw: labels.append(kw.get("ylabel")) or original(self, **kw))
    log = [{"step": 1, "loss": 3.0, "hybrid": 1, "p_hybrid": 1.0}]
    write_report(tmp_path / "report", "Demo", {"SASRec": 0.4}, {}, log, [],
                 loss_name=TRAINING_LOSSES["slot"])
    assert "cross-entropy of the candidates' slot scores" in labels


def test_the_report_gives_the_intervals_against_the_recommender(tmp_path):
    import numpy as np

    from llara.evaluation.intervals import comparison_report

    rng = np.random.default_rng(0)
    ranks = {"LLM": rng.integers(0, 20, 30), "recommender": rng.integers(0, 20, 30)}
    report = comparison_report(ranks, "recommender", [str(i % 10) for i in range(30)],
                               np.arange(30), rng.integers(0, 40, 30), np.full(30, 10),
                               rng.integers(0, 5, 40).astype(float))
    out = write_report(tmp_path / "report", "Demo", {"SASRec": 0.4}, {}, [], [],
                       comparison=report)
    text = (out / "README.md").read_text()
    llm = report["against"]["LLM"]["HitRatio@1"]
    assert "## Against recommender on the same rows" in text
    assert f"{llm['mean']:+.4f} [{llm['low']:+.4f}, {llm['high']:+.4f}]" in text
    assert "30 rows of 10 users" in text
    assert "| tail |" in text and "| 10+ | 30 |" in text
