"""Smoke tests of the benchmark scripts: they run and return finite numbers. Timings never go
into tests as pass/fail thresholds (benchmarks/README.md)."""

import math

import pytest

from benchmarks import lstm_step


@pytest.mark.slow
def test_lstm_step_quick_runs_the_same_model_in_both_frameworks(capsys, tmp_path):
    pytest.importorskip("torch")
    report = tmp_path / "lstm_step.md"
    results = lstm_step.main(
        ["--quick", "--frame-size", "32", "--features", "16", "--batch", "4", "--out", str(report)]
    )
    ratio = results["ratio_torch_over_jaxae"]
    assert math.isfinite(ratio) and ratio > 0, ratio
    assert all(math.isfinite(s) and s > 0 for s in results["median_s"].values()), results
    loss = results["first_batch_loss"]  # same weights, same batch: the same computation
    assert loss["torch"] == pytest.approx(loss["jaxae"], rel=1e-5), loss
    assert "| jaxae.fit epoch |" in capsys.readouterr().out
    text = report.read_text()  # the report: the command, the load, every runner, the ratio
    assert "--features 16" in text and "load average" in text
    assert all(f"| {name} |" in text for name in results["median_s"])
    assert f"**Ratio: {ratio:.2f}×**" in text


@pytest.mark.slow
def test_fit_vs_scan_quick_needs_no_peer_and_reports_a_ratio_per_family(tmp_path):
    """The jaxae-only row of benchmarks/run.py: runs where neither torch nor scikit-learn is
    installed (CI), so the benchmark harness itself is always exercised."""
    from benchmarks import run

    report = tmp_path / "RESULTS.md"
    report.write_text("# jaxae benchmarks\n\nkept text\n")
    summary = run.main(["--quick", "--only", "fit-vs-scan", "--out", str(report)])
    ratios = summary["ratios"]
    assert len(ratios) == 3 and all(name.startswith("fit_vs_scan ") for name in ratios), ratios
    assert all(math.isfinite(v) and v > 0 for v in ratios.values()), ratios
    text = report.read_text()
    assert text.startswith("# jaxae benchmarks\n\nkept text\n")  # the rest of a report is kept
    assert text.count(run._FIT_VS_SCAN_BEGIN) == 1 and text.count(run._FIT_VS_SCAN_END) == 1
