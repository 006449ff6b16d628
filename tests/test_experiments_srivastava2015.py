"""srivastava2015.py --quick: the composite LSTM beats every untrained baseline on the future."""

import pytest

from experiments import srivastava2015


@pytest.mark.slow
def test_srivastava2015_quick_composite_beats_the_baselines(tmp_path):
    metrics = srivastava2015.main(
        ["--quick", "--out", str(tmp_path), "--results-dir", str(tmp_path), "--no-progress"]
    )
    baselines = ("copy last input frame", "mean of input frames", "constant probability")
    for measure in ("future cross-entropy", "future squared error per frame"):
        best = min(v for k, v in metrics.items() if k.startswith(baselines) and f"/{measure}/" in k)
        composite = metrics[f"LSTM composite/{measure}/test"]
        assert composite < best, (measure, composite, best)
    assert (tmp_path / "metrics.json").exists()
