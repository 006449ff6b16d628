"""The image-retrieval experiment's quick mode end to end on real MNIST (its two-stage search is
tested in tests/test_retrieval.py)."""

import json

import pytest
from splits import unsliced

from experiments import image_retrieval
from jaxae import results


@pytest.mark.slow
def test_image_retrieval_quick(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        image_retrieval.main(
            ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
        )
    )
    methods = (
        "raw pixels (Euclidean)",
        "PCA-30 (Euclidean)",
        "deep AE 30-d real codes (Euclidean)",
        "deep AE 28-bit (Hamming)",
        "deep AE 256-bit (Hamming)",
        f"28-bit shortlist {image_retrieval.QUICK.shortlist}, 256-bit rerank",
    )
    timed = f"queries/s (top 100, {image_retrieval.QUICK.timed_queries} queries)"
    for method in methods:
        for k in image_retrieval.KS:
            assert 0.0 < metrics[f"{method}/precision@{k}/test"] <= 1.0, (method, k)
        assert 0.0 < metrics[f"{method}/mAP/test"] <= 1.0
        assert metrics[f"{method}/{timed}/test"] > 0
        # Ten digits: chance is about 0.1 at every cut-off. Every method is far above it.
        assert metrics[f"{method}/precision@10/test"] > 0.4, method
        assert metrics[f"{method}/mAP/test"] > 0.15, method
    # Precision falls as k grows (a ranking, not a random order).
    for method in methods:
        curve = [metrics[f"{method}/precision@{k}/test"] for k in image_retrieval.KS]
        assert curve == sorted(curve, reverse=True), (method, curve)
    for sizes in (image_retrieval.QUICK.short_sizes, image_retrieval.QUICK.long_sizes):
        model = "deep AE " + "-".join(map(str, sizes))
        assert 0.0 <= metrics[f"{model}/fraction of code activations < 0.1 or > 0.9/test"] <= 1.0
    for name in ("neighbours.png", "precision.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "image_retrieval.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert {row["model"] for row in rows} >= set(methods)
    assert all(row["paper_value"] is None for row in rows)  # no paper reports MNIST retrieval
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"
