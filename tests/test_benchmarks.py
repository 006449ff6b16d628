"""Smoke tests of the benchmark scripts: they run and return finite numbers. Timings never go
into tests as pass/fail thresholds (benchmarks/README.md)."""

import math

import pytest

from benchmarks import lstm_step


@pytest.mark.slow
def test_lstm_step_quick_runs_the_same_model_in_both_frameworks(capsys):
    pytest.importorskip("torch")
    results = lstm_step.main(["--quick", "--frame-size", "32", "--features", "16", "--batch", "4"])
    ratio = results["ratio_torch_over_jaxae"]
    assert math.isfinite(ratio) and ratio > 0, ratio
    assert all(math.isfinite(s) and s > 0 for s in results["median_s"].values()), results
    loss = results["first_batch_loss"]  # same weights, same batch: the same computation
    assert loss["torch"] == pytest.approx(loss["jaxae"], rel=1e-5), loss
    assert "| jaxae.fit epoch |" in capsys.readouterr().out
