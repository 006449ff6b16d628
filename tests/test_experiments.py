"""The experiments' quick modes, end to end on real MNIST (what CI runs)."""

import json

import pytest
from splits import unsliced

from experiments import hinton2006, linear_pca
from jaxae import results


def _run(module, tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        module.main(
            ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
        )
    )
    return metrics, out, results_dir


@pytest.mark.slow
def test_linear_pca_quick(tmp_path):
    metrics, out, results_dir = _run(linear_pca, tmp_path)
    pca = metrics["pca-30/test squared error per image/test"]
    ae = metrics["linear-ae-30/test squared error per image/test"]
    assert 13.0 < pca < 15.5  # PCA-30 on a 10k subset (13.76 with all 60k)
    assert ae < 1.02 * pca  # the linear AE is near PCA even after a short run
    assert metrics["linear-ae-30/min principal-angle cosine vs PCA-30/weights"] > 0.9
    sweep_pca = [metrics[f"pca (code {k})/test squared error per image/test"] for k in (2, 30, 100)]
    assert sweep_pca == sorted(sweep_pca, reverse=True)
    for name in ("compression_sweep.png", "reconstructions.png", "principal_components.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "linear_pca.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"


@pytest.mark.slow
def test_hinton2006_quick_pretrained_autoencoder_beats_pca(tmp_path):
    metrics, out, results_dir = _run(hinton2006, tmp_path)
    deep = metrics["deep AE, pretrained + fine-tuned/squared error per image/test"]
    pca = metrics["pca-30/squared error per image/test"]
    assert deep < pca, f"deep AE {deep:.2f} should beat PCA-30 {pca:.2f} even in quick mode"
    assert "deep AE, random init (same fine-tuning)/squared error per image/test" in metrics
    logistic = metrics["logistic pca-30/squared error per image/test"]
    assert logistic < pca, f"logistic PCA-30 {logistic:.2f} should beat PCA-30 {pca:.2f}"
    for name in ("reconstructions.png", "codes_2d.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "hinton2006.json")
    paper = {row["model"]: row["paper_value"] for row in rows if row["paper_value"] is not None}
    assert paper["deep AE, pretrained + fine-tuned"] == 3.00 and paper["pca-30"] == 13.87
    assert paper["logistic pca-30"] == 8.01


@pytest.mark.slow
def test_hinton2006_rerun_with_its_checkpoint_dir_resumes_every_fit(tmp_path):
    ckpt = tmp_path / "ckpt"
    tiny = [
        "--no-progress",
        "--results-dir",
        str(tmp_path / "results"),
        "--set",
        "sizes=784,32,16,4",
        "--set",
        "train_examples=1000",
        "--set",
        "test_examples=200",
        "--set",
        "pretrain_epochs=2",
        "--set",
        "finetune_epochs=2",
        "--set",
        "codes_2d_finetune_epochs=1",
        "--set",
        f"checkpoint_dir={ckpt}",
    ]
    first = hinton2006.main([*tiny, "--out", str(tmp_path / "first")])
    fits = ["codes_2d/finetune", "codes_2d/pretrain/layer_0", "finetune", "random_init"]
    fits += [f"pretrain/layer_{i}" for i in range(3)]
    assert all((ckpt / fit).is_dir() for fit in fits), sorted(p for p in ckpt.rglob("*"))
    again = hinton2006.main([*tiny, "--out", str(tmp_path / "again")])
    deep = "deep AE, pretrained + fine-tuned"
    for name in (
        f"{deep}/squared error per image/test[:200]",
        f"{deep}/training wall time (s)/train",
    ):
        assert again[name] == first[name], name  # restored, not retrained: the same epochs' times
