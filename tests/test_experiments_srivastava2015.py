"""srivastava2015.py --quick: the composite LSTM beats every untrained baseline on the future,
and the run writes its figures and validation rows (one quick run, shared by the tests)."""

import pytest

from experiments import srivastava2015

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("srivastava2015")
    metrics = srivastava2015.main(
        ["--quick", "--out", str(out), "--results-dir", str(out), "--no-progress"]
    )
    return metrics, out


@pytest.mark.slow
def test_srivastava2015_quick_composite_beats_the_baselines(quick_run):
    metrics, out = quick_run
    baselines = ("copy last input frame", "mean of input frames", "constant probability")
    for measure in ("future cross-entropy", "future squared error per frame"):
        best = min(v for k, v in metrics.items() if k.startswith(baselines) and f"/{measure}/" in k)
        composite = metrics[f"LSTM composite/{measure}/test"]
        assert composite < best, (measure, composite, best)
    assert (out / "metrics.json").exists()


@pytest.mark.slow
def test_srivastava2015_quick_writes_figures_and_validation_rows(quick_run):
    metrics, out = quick_run
    for name in ("sequences.png", "training_curves.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    for kind, decoders in (
        ("autoencoder", ("reconstruction",)),
        ("future", ("future",)),
        ("composite", ("reconstruction", "future")),
    ):
        for decoder in decoders:
            value = metrics[f"LSTM {kind}/{decoder} cross-entropy/validation"]
            assert 0 < value < float("inf"), (kind, decoder, value)
