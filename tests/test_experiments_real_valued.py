"""experiments/real_valued_rbm.py: its quick mode end to end (what CI runs), its data fallback."""

import argparse
import json
import math

import numpy as np
import pytest
from splits import unsliced

from experiments import real_valued_rbm
from jaxae import results
from jaxae.data import DataFileError
from jaxae.experiment import MnistSplits, apply_overrides

METRIC = "squared error per image ([0,1] pixels)"


@pytest.mark.slow
def test_real_valued_rbm_quick_both_stacks_beat_the_mean_image(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        real_valued_rbm.main(
            ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
        )
    )
    # " [MNIST fallback]" where Debian's dataset-fashion-mnist is not installed.
    (mean_key,) = [k for k in metrics if k.startswith("mean training image")]
    suffix = mean_key[len("mean training image") : -len(f"/{METRIC}/test")]
    sizes = "784-1000-500-250-30"

    def value(model):
        return metrics[f"{model}{suffix}/{METRIC}/test"]

    mean = value("mean training image")
    real = value(f"Gaussian-NReLU stack {sizes}, fine-tuned")
    binary = value(f"Bernoulli stack {sizes}, fine-tuned")
    assert math.isfinite(real) and math.isfinite(
        value(f"Gaussian-NReLU stack {sizes}, pretrained only")
    )
    assert 20.0 < mean < 120.0  # Σ pixel variances: ~69 on Fashion-MNIST, ~53 on MNIST
    assert real < 0.8 * mean, f"real-valued stack {real:.1f} vs the mean image {mean:.1f}"
    assert binary < mean, f"Bernoulli stack {binary:.1f} vs the mean image {mean:.1f}"
    assert value("pca-30") < 0.5 * mean
    for name in ("reconstructions.png", "training_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "real_valued_rbm.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert {row["metric"] for row in rows} >= {METRIC, "pretraining + fine-tuning wall time (s)"}
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["mode"] == "quick" and summary["config"]["sizes"] == [784, 1000, 500, 250, 30]


def test_quick_mode_falls_back_to_mnist_when_fashion_mnist_is_not_on_disk(monkeypatch, tmp_path):
    calls = []

    def load_mnist_splits(**kwargs):
        calls.append((kwargs["dataset"], kwargs.get("download", True)))
        if kwargs["dataset"] == "fashion_mnist":
            raise DataFileError("fashion_mnist/train-images-idx3-ubyte.gz is missing")
        x = np.zeros((4, 784), np.float32)
        return MnistSplits(x, np.zeros(4, np.int32), x, np.zeros(4, np.int32), "test")

    monkeypatch.setattr(real_valued_rbm, "load_mnist_splits", load_mnist_splits)
    args = argparse.Namespace(
        quick=True, validation=False, seed=0, results_dir=str(tmp_path), out=str(tmp_path)
    )
    args.experiments_dir = str(tmp_path)
    run = real_valued_rbm.Run("real_valued_rbm", args, real_valued_rbm.QUICK)
    data, suffix = real_valued_rbm.load(real_valued_rbm.QUICK, args, run)
    assert suffix == " [MNIST fallback]" and data.x_train.shape == (4, 784)
    assert calls == [("fashion_mnist", False), ("mnist", True)]  # quick mode never downloads it
    run.record("mean training image", "squared error per image", 1.0)  # finish needs a row
    run.finish()
    assert "quick mode falls back to MNIST" in (tmp_path / "log.txt").read_text()
    # A full run does not fall back: it downloads, or says why it cannot.
    calls.clear()
    args.quick = False
    with pytest.raises(DataFileError, match="missing"):
        real_valued_rbm.load(real_valued_rbm.Config(), args, run)
    assert calls == [("fashion_mnist", True)]


def test_dl4j_variant_is_one_set_option():
    _, config = real_valued_rbm.parse(
        real_valued_rbm.__file__,
        real_valued_rbm.__doc__,
        ["--set", "sizes=784,1000,500,250,100,30", "--set", "checkpoint_dir=ckpt"],
        config=real_valued_rbm.Config(),
        quick=real_valued_rbm.QUICK,
        validation=True,
    )
    assert config.sizes == (784, 1000, 500, 250, 100, 30) and config.checkpoint_dir == "ckpt"
    assert len(real_valued_rbm.pretrain_configs(config, 60_000)) == 5
    assert all(c.optimizer is None for c in real_valued_rbm.pretrain_configs(config, 60_000))
    # A rate override reaches the layers below the top; the linear top keeps the paper's rate.
    tuned = apply_overrides(config, ["real_valued_pretrain_lr=0.003"])
    configs = real_valued_rbm.pretrain_configs(tuned, 60_000)
    assert [c.optimizer is None for c in configs] == [False] * 4 + [True]


@pytest.mark.slow
def test_a_rerun_with_the_same_checkpoint_dir_resumes_every_fit(tmp_path):
    ckpt = tmp_path / "ckpt"
    small = [
        "--quick",
        "--no-progress",
        "--results-dir",
        str(tmp_path / "results"),
        "--set",
        "sizes=784,64,32,8",
        "--set",
        "train_examples=400",
        "--set",
        "test_examples=100",
        "--set",
        "pretrain_epochs=1",
        "--set",
        "finetune_epochs=2",
        "--set",
        f"checkpoint_dir={ckpt}",
    ]
    first = real_valued_rbm.main([*small, "--out", str(tmp_path / "a")])
    layers = {p.relative_to(ckpt).as_posix() for p in ckpt.glob("*/*/*") if p.is_dir()}
    for stack in ("real_valued", "bernoulli"):
        assert {f"{stack}/pretrain/layer_{i}" for i in range(3)} <= layers
        assert (ckpt / stack / "finetune").is_dir()
    second = real_valued_rbm.main([*small, "--out", str(tmp_path / "b")])
    timed = [k for k in first if "wall time" in k]
    assert len(timed) == 2 and all(second[k] < 0.5 * first[k] for k in timed)  # restored
    errors = {k: v for k, v in first.items() if k not in timed}
    assert errors == {k: v for k, v in second.items() if k not in timed}  # the same numbers
