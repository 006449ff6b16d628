"""The image-retrieval experiment: its two-stage search against brute force, and its quick mode
end to end on real MNIST."""

import json

import jax
import numpy as np
import pytest

from experiments import image_retrieval
from jaxae import results, retrieval


def _codes(rng, n, bits):
    codes = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    return codes, np.asarray(retrieval.pack_bits(codes))


def _reference_ranking(q_short, q_long, db_short, db_long, shortlist):
    """The two-stage ranking by NumPy sorts over unpacked bits, one query at a time."""
    rankings = []
    for qs, ql in zip(q_short, q_long, strict=True):
        d_short = (db_short != qs).sum(axis=1)
        d_long = (db_long != ql).sum(axis=1)
        by_short = np.lexsort((np.arange(len(db_short)), d_short))
        head = by_short[:shortlist]
        head = head[np.lexsort((head, d_short[head], d_long[head]))]
        rankings.append(np.concatenate([head, by_short[shortlist:]]))
    return np.stack(rankings)


def test_shortlist_rerank_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    db_short, db_short_words = _codes(rng, 300, 6)  # 6 bits: many ties in the short distance
    db_long, db_long_words = _codes(rng, 300, 40)
    q_short, q_short_words = _codes(rng, 7, 6)
    q_long, q_long_words = _codes(rng, 7, 40)
    expected = _reference_ranking(q_short, q_long, db_short, db_long, shortlist=50)

    ids = image_retrieval.shortlist_rerank(
        q_short_words,
        q_long_words,
        db_short_words,
        db_long_words,
        short_bits=6,
        shortlist=50,
        k=20,
        batch_size=4,
    )
    assert ids.shape == (7, 20)
    assert all(len(set(row)) == 20 for row in ids.tolist())  # k distinct database items
    np.testing.assert_array_equal(ids, expected[:, :20])

    distance = jax.jit(
        image_retrieval.two_stage_distance, static_argnames=("short_bits", "shortlist")
    )
    d = np.asarray(
        distance(
            q_short_words, q_long_words, db_short_words, db_long_words, short_bits=6, shortlist=50
        )
    )
    np.testing.assert_array_equal(np.argsort(d, axis=1, kind="stable"), expected)


def test_shortlist_rerank_checks_its_sizes():
    rng = np.random.default_rng(1)
    _, words = _codes(rng, 10, 8)
    with pytest.raises(ValueError, match="shortlist"):
        image_retrieval.shortlist_rerank(
            words, words, words, words, short_bits=8, shortlist=20, k=5
        )
    with pytest.raises(ValueError, match="k"):
        image_retrieval.shortlist_rerank(words, words, words, words, short_bits=8, shortlist=4, k=5)


@pytest.mark.slow
def test_image_retrieval_quick(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = image_retrieval.main(
        ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
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
