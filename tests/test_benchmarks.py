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
