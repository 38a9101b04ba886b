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


def test_the_report_gives_the_new_item_slices(tmp_path):
    import numpy as np

    from llara.evaluation.cold import cold_only_report, cold_slices

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 40, 120)
    cold = np.zeros(40, bool)
    cold[30:] = True
    ranks = {"LLM": rng.integers(0, 20, 120), "recommender": rng.integers(0, 20, 120),
             "content": rng.integers(0, 20, 120)}
    groups = np.arange(120) % 20
    inside = cold[targets]
    assert inside.sum() >= 20  # enough rows for a slice
    report = {"items": 10, "slices": cold_slices(ranks, groups, targets, cold),
              "cold_only": cold_only_report({m: r[inside] for m, r in ranks.items()},
                                            groups[inside])}
    out = write_report(tmp_path / "report", "Demo", {"SASRec": 0.4}, {}, [], [], cold=report)
    text = (out / "README.md").read_text()
    assert "## New items" in text and "(10 such items)" in text
    warm = next(row for row in report["slices"] if row["slice"] == "warm")
    llm = warm["against"]["recommender"]["LLM"]["HitRatio@1"]
    content = warm["against"]["content"]["LLM"]["HitRatio@1"]
    line = next(line for line in text.splitlines() if line.startswith(
        f"| warm | {int((~inside).sum())} | LLM |"))
    assert line.endswith(f"| {llm['mean']:+.4f} [{llm['low']:+.4f}, {llm['high']:+.4f}] | "
                         f"{content['mean']:+.4f} [{content['low']:+.4f}, "
                         f"{content['high']:+.4f}] |")  # recommender, then content
    assert f"| cold, cold-only negatives | {int(inside.sum())} | recommender |" in text
    assert "| cold | " in text
    # No new items: no section; too few rows with a new target: a line, not a table.
    plain = write_report(tmp_path / "plain", "Demo", {"SASRec": 0.4}, {}, [], [])
    assert "New items" not in (plain / "README.md").read_text()
    few = np.isin(np.arange(120), np.flatnonzero(inside)[:3]) | ~inside  # 3 new-target rows
    sparse = {"items": 10, "slices": cold_slices({m: r[few] for m, r in ranks.items()},
                                                 groups[few], targets[few], cold)}
    text = (write_report(tmp_path / "sparse", "Demo", {"SASRec": 0.4}, {}, [], [],
                         cold=sparse) / "README.md").read_text()
    assert "3 row(s) have a target the training rows never hold (10 such items): too few" in text
    assert "| cold | " not in text
