"""Quick modes of the regularized-autoencoder reproductions, end to end on real MNIST."""

import json

import pytest

from experiments import makhzani2013, rifai2011, vincent2010
from jaxae import results

PNG = b"\x89PNG\r\n\x1a\n"


def _run(module, tmp_path, *extra):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    argv = ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
    return module.main(argv + list(extra)), out, results_dir


def _paper_values(path):
    return {row["model"]: row["paper_value"] for row in results.read_results(path)}


@pytest.mark.slow
def test_rifai2011_quick(tmp_path):
    metrics, out, results_dir = _run(rifai2011, tmp_path)
    for label in ("AE", "DAE-g (Gaussian noise)", "CAE"):
        error = metrics[f"{label}/classification error (%)/test"]
        assert error < 25, f"{label}: {error:.1f} % error, chance is 90 %"
    for name in ("filters.png", "denoising.png"):
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
    for name in ("filters.png", "denoising.png"):
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
    for name in ("filters.png", "reconstructions.png"):
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
    assert set(metrics) == {"CAE/classification error (%)/validation"}
    rows = results.read_results(results_dir / "rifai2011_validation.json")
    assert {row["split"] for row in rows} == {"validation"}
