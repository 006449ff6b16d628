"""Quick modes of the regularized-autoencoder reproductions, end to end on real MNIST."""

import json

import numpy as np
import pytest
from splits import unsliced

from experiments import makhzani2013, rifai2011, vincent2010
from jaxae import experiment, results

PNG = b"\x89PNG\r\n\x1a\n"


def _run(module, tmp_path, *extra):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    argv = ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
    return unsliced(module.main(argv + list(extra))), out, results_dir


def _paper_values(path):
    return {row["model"]: row["paper_value"] for row in results.read_results(path)}


@pytest.mark.slow
def test_rifai2011_quick(tmp_path):
    metrics, out, results_dir = _run(rifai2011, tmp_path)
    for label in ("AE", "DAE-g (Gaussian noise)", "CAE"):
        error = metrics[f"{label}/classification error (%)/test"]
        assert error < 25, f"{label}: {error:.1f} % error, chance is 90 %"
    for name in ("filters.png", "denoising.png", "finetune_curves.png"):
        assert (out / name).read_bytes()[:8] == PNG
    paper = _paper_values(results_dir / "rifai2011.json")
    assert paper == {"AE": 1.78, "DAE-g (Gaussian noise)": 1.18, "CAE": 1.14}
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"


@pytest.mark.slow
def test_vincent2010_quick(tmp_path):
    metrics, out, results_dir = _run(vincent2010, tmp_path)
    for label in ("SDAE-3 (masking)", "SAE-3", "DBN-3"):
        error = metrics[f"{label}/classification error (%)/test"]
        assert error < 35, f"{label}: {error:.1f} % error, chance is 90 %"
    for name in ("filters.png", "denoising.png", "finetune_curves.png"):
        assert (out / name).read_bytes()[:8] == PNG
    paper = _paper_values(results_dir / "vincent2010.json")
    assert paper == {"SDAE-3 (masking)": 1.28, "SAE-3": 1.40, "DBN-3": 1.24}


@pytest.mark.slow
def test_makhzani2013_quick(tmp_path):
    metrics, out, results_dir = _run(makhzani2013, tmp_path)
    label = "k-sparse AE (500 units, k=25, α=3)"
    logistic = metrics[f"{label} + logistic regression/classification error (%)/test"]
    tuned = metrics[f"{label}, fine-tuned/classification error (%)/test"]
    assert logistic < 25 and tuned < 25
    assert metrics[f"{label}/active units per example (α·k rule)/test"] == 75.0
    for name in ("filters.png", "reconstructions.png", "finetune_curves.png"):
        assert (out / name).read_bytes()[:8] == PNG
    paper = _paper_values(results_dir / "makhzani2013.json")
    assert paper[f"{label} + logistic regression"] == 1.35


@pytest.mark.slow
def test_validation_mode_never_reports_test(tmp_path):
    metrics, _, results_dir = _run(
        rifai2011,
        tmp_path,
        "--validation",
        "--set",
        "models=cae",
        "--set",
        "filters_comparison=false",
    )
    assert set(metrics) == {
        "CAE/classification error (%)/validation",
        "CAE/best fine-tuning epoch (lowest error)/validation",
    }
    rows = results.read_results(results_dir / "rifai2011_validation.json")
    assert {row["split"] for row in rows} == {"validation[:1000]"}  # quick: a named subset


# Tiny runs (a few seconds each): 1,000 training and 200 eval images, a narrow layer, few epochs.
_TINY = ["train_examples=1000", "eval_examples=200", "batch_size=20"]
_TINY_RUNS = {
    "vincent2010": (
        vincent2010,
        ["sizes=784,32", "models=sdae", "pretrain_epochs=1", "finetune_epochs=3"],
        ["--validation"],
        {"SDAE-3 (masking)": 3},
        ["sdae/pretrain/layer_0", "sdae/finetune"],
    ),
    "rifai2011": (
        rifai2011,
        ["hidden=32", "models=cae", "filters_comparison=false", "pretrain_epochs=1"]
        + ["finetune_epochs=3"],
        [],  # the test split: no best-epoch row
        {"CAE": 3},
        ["cae/pretrain/layer_0", "cae/finetune"],
    ),
    "makhzani2013": (
        makhzani2013,
        ["hidden=64", "k=5", "initial_k=10", "pretrain_epochs=1", "classifier_epochs=3"]
        + ["classifier_lr=0.01", "finetune_epochs=2"],
        ["--validation"],
        {
            "k-sparse AE (64 units, k=5, α=3) + logistic regression": 3,
            "k-sparse AE (64 units, k=5, α=3), fine-tuned": 2,
        },
        ["pretrain/layer_0", "classifier", "finetune"],
    ),
}


def _files(directory):
    """Every file below ``directory`` with its size and modification time."""
    return {
        path.relative_to(directory).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_TINY_RUNS))
def test_finetune_curves_and_a_rerun_that_restores_from_checkpoint_dir(name, tmp_path, monkeypatch):
    module, settings, flags, epochs, folders = _TINY_RUNS[name]
    draw, drawn = experiment.error_curves_figure, []

    def spy(curves, **kwargs):  # what the figure draws: the curves, the split, the paper lines
        drawn.append((dict(curves), kwargs))
        return draw(curves, **kwargs)

    monkeypatch.setattr(experiment, "error_curves_figure", spy)
    ckpt = tmp_path / "ckpt"
    argv = ["--quick", "--no-progress", "--results-dir", str(tmp_path / "results"), *flags]
    for setting in [*_TINY, "finetune_lr=0.01", *settings, f"checkpoint_dir={ckpt}"]:
        argv += ["--set", setting]
    first = module.main([*argv, "--out", str(tmp_path / "a")])
    saved = _files(ckpt)
    split = ("validation" if "--validation" in flags else "test") + "[:200]"  # eval_examples

    # (a) one value per fine-tuning epoch, the last one the recorded error
    ((curves, kwargs),) = drawn
    assert kwargs["split"] == split
    assert {label: len(curve) for label, curve in curves.items()} == epochs
    for label, curve in curves.items():
        error = first[f"{label}/classification error (%)/{split}"]
        assert error < 60, f"{label}: {error:.1f} % error, chance is 90 %"
        # The logistic regression's curve is computed on features computed once, its row on
        # the images: the same predictions up to float rounding (one image is 0.5 %).
        tolerance = 0.5 if "logistic" in label else 1e-9
        assert curve[-1] == pytest.approx(error, abs=tolerance)
        best = [v for k, v in first.items() if k.startswith(f"{label}/best ")]
        validation = split.startswith("validation")  # a slice of it still selects epochs
        assert best == ([1 + int(np.argmin(curve))] if validation else [])
    # (c) the figure
    assert (tmp_path / "a" / "finetune_curves.png").read_bytes()[:8] == PNG

    # (b) a second identical run restores every fit: nothing is saved again, the same numbers
    found = {path.relative_to(ckpt).as_posix() for path in ckpt.rglob("*") if path.is_dir()}
    assert set(folders) <= found
    second = module.main([*argv, "--out", str(tmp_path / "b")])
    assert _files(ckpt) == saved, "the rerun trained again instead of restoring"
    assert second == first
    assert drawn[1][0] == curves


@pytest.mark.slow
def test_rifai2011_trains_with_sgd_as_the_paper_did(tmp_path):
    settings = [*_TINY, "hidden=64", "models=cae", "filters_comparison=false"]
    settings += ["pretrain_optimizer=sgd", "pretrain_lr=0.1", "finetune_optimizer=sgd"]
    settings += ["finetune_lr=0.1", "pretrain_epochs=2", "finetune_epochs=5"]
    argv = [arg for setting in settings for arg in ("--set", setting)]
    metrics, out, _ = _run(rifai2011, tmp_path, *argv)
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["pretrain_optimizer"], config["finetune_optimizer"]) == ("sgd", "sgd")
    error = metrics["CAE/classification error (%)/test"]
    assert error < 40, f"{error:.1f} % error after SGD, chance is 90 %"
    with pytest.raises(ValueError, match="--set pretrain_optimizer: expected one of"):
        _run(rifai2011, tmp_path, "--set", "pretrain_optimizer=lbfgs")


def test_a_bad_finetune_optimizer_fails_before_any_pretraining(tmp_path, monkeypatch):
    import jaxae

    def pretrain_stack(*args, **kwargs):
        raise AssertionError("pretrained before the fine-tuning optimizer was checked")

    monkeypatch.setattr(jaxae, "pretrain_stack", pretrain_stack)
    with pytest.raises(ValueError, match=r"finetune_optimizer: expected one of \('adam', 'sgd'\)"):
        _run(rifai2011, tmp_path, "--set", "models=cae", "--set", "finetune_optimizer=lbfgs")
