"""The run report: Markdown table and real PNG plots from a metrics log."""

from llara.report import read_metrics_log, write_report

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
