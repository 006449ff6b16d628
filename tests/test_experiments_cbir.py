"""experiments/cbir.py: its quick mode end to end on real MNIST, and its checkpoint folders."""

import dataclasses
import json
import pathlib

import pytest
from splits import unsliced

from experiments import cbir
from jaxae import results


def test_fit_checkpoint_dir_is_one_folder_a_fit_and_none_without_checkpoint_dir(tmp_path):
    assert cbir.fit_checkpoint_dir(cbir.QUICK, "mlp") is None
    config = dataclasses.replace(cbir.QUICK, checkpoint_dir=str(tmp_path))
    assert pathlib.Path(cbir.fit_checkpoint_dir(config, "mlp")) == tmp_path / "mnist_mlp"
    fashion = dataclasses.replace(config, dataset="fashion_mnist")
    assert cbir.fit_checkpoint_dir(fashion, "mlp") != cbir.fit_checkpoint_dir(config, "mlp")


@pytest.mark.slow
def test_cbir_quick_conv_codes_beat_pca_16(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        cbir.main(
            ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
        )
    )
    conv = "conv AE (CBIR) 16-d (z1 + z2) / 2"
    for metric in ("mAP", "precision@100"):
        ours, pca = metrics[f"{conv}/{metric}/test"], metrics[f"PCA-16/{metric}/test"]
        assert ours > pca, f"conv {metric} {ours:.3f} should beat PCA-16 {pca:.3f}"
    for name in ("neighbours.png", "precision.png", "reconstructions.png", "code_size_sweep.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for method in ("sweep: conv AE 4-d (1 epochs)", "sweep: PCA-4"):  # the sweep ran, scored
        assert 0.0 < metrics[f"{method}/mAP/test"] <= 1.0
    rows = results.read_results(results_dir / "cbir_mnist.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"
