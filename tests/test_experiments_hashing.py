"""The semantic-hashing experiment's quick mode, end to end on real 20-newsgroups."""

import json

import numpy as np
import pytest
from splits import unsliced

import jaxae
from experiments import semantic_hashing
from jaxae import results

METHODS = (
    "deep AE 128-bit (Hamming)",
    "deep AE 128-d real (cosine)",
    "LSA-128 (cosine)",
    "binarised LSA-128 (Hamming)",
    "LSH-128 of TF-IDF (Hamming)",
    "TF-IDF (cosine)",
)


@pytest.mark.slow
def test_semantic_hashing_quick(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        semantic_hashing.main(
            ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
        )
    )
    for method in METHODS:
        curve = [
            metrics[f"{method}/precision at recall {r:g}/test"]
            for r in semantic_hashing.REPORTED_RECALLS
        ]
        assert all(0.0 < p <= 1.0 for p in curve), (method, curve)
        assert 0.0 < metrics[f"{method}/mAP/test"] <= 1.0
    # The baselines are far above chance (20 balanced topics: about 0.05 at every recall).
    assert metrics["LSA-128 (cosine)/precision at recall 0.01/test"] > 0.4
    assert metrics["TF-IDF (cosine)/precision at recall 0.01/test"] > 0.4
    lsa = metrics["LSA-128 (cosine)/precision at recall 0.1/test"]
    assert lsa > metrics["LSH-128 of TF-IDF (Hamming)/precision at recall 0.1/test"]
    binariness = metrics["deep AE 128-bit/fraction of code activations < 0.1 or > 0.9/test"]
    assert 0.5 < binariness <= 1.0  # the code noise pushes the units into the tails (0.62)
    # The deep codes carry the topic even in this short run (0.21; chance is about 0.05).
    assert metrics["deep AE 128-bit (Hamming)/precision at recall 0.1/test"] > 0.12
    assert np.isfinite(metrics["deep AE 128-bit/training wall time (s)/train"])
    ball = "binarised LSA-20, Hamming ball"
    recalls = [metrics[f"{ball}/radius {r} recall/test"] for r in range(5)]
    assert recalls == sorted(recalls) and recalls[-1] > 0  # a larger ball finds more
    assert metrics[f"{ball}/radius 4 fraction of empty balls/test"] < 0.1
    assert metrics[f"{ball}/radius 2 precision (non-empty balls)/test"] > 0.2
    assert metrics[f"{ball}/radius 2 lookup time per query (ms)/test"] > 0
    assert metrics["TF-IDF (cosine)/full scan time per query (ms)/test"] > 0
    # Shortlists reranked: every reported level has its coverage; a precision where it is > 0.
    coverage = {}
    for radius in range(5):
        scan = f"TF-IDF scan on the queries the binarised LSA-20 radius-{radius} ball covers"
        models = [scan] + [
            f"binarised LSA-20 + {label} rerank, radius {radius}"
            for label in ("TF-IDF", "deep AE 128-bit")
        ]
        for level in semantic_hashing.REPORTED_RECALLS:
            covered = metrics[f"{scan}/fraction of all queries covered at recall {level:g}/test"]
            coverage[radius, level] = covered
            for model in models:
                precision = metrics.get(f"{model}/precision at recall {level:g}/test")
                assert (precision is not None) == (covered > 0), (model, level)
                assert precision is None or 0.0 < precision <= 1.0, (model, level, precision)
        for model in models[1:]:
            assert metrics[f"{model}/time per query (ms)/test"] > 0
            assert metrics[f"{model}/speed-up over the TF-IDF scan/test"] > 0
    for level in semantic_hashing.REPORTED_RECALLS:  # a larger ball covers a superset
        column = [coverage[radius, level] for radius in range(5)]
        assert column == sorted(column) and 0.0 <= column[0] and column[-1] <= 1.0, column
    assert coverage[4, 0.01] > 0.5  # radius 4 reaches recall 0.01 for most queries (0.94)
    assert (out / "precision_recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The deep 20-bit address model and the 2-D embedding model run too (on the count layer the
    # 128-bit model shares), from the word counts, not from anything computed in between.
    ball = "deep AE 20-bit, Hamming ball"
    recalls = [metrics[f"{ball}/radius {r} recall/test"] for r in range(5)]
    assert recalls == sorted(recalls) and recalls[-1] > 0, recalls
    assert 0.0 < metrics["deep AE 20-bit/fraction of code activations < 0.1 or > 0.9/test"] <= 1
    assert metrics["deep AE 20-bit + deep AE 128-bit rerank, radius 2/time per query (ms)/test"] > 0
    assert (out / "embedding_2d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "semantic_hashing.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"


def test_validation_split_holds_out_training_documents_and_never_reads_test(monkeypatch):
    import logging
    import types

    loaded = []
    load = jaxae.data.load

    def spy(name, split, *args, **kwargs):
        loaded.append(split)
        return load(name, split, *args, **kwargs)

    monkeypatch.setattr(jaxae.data, "load", spy)
    config = semantic_hashing.dataclasses.replace(
        semantic_hashing.Config(), vocabulary_size=300, train_examples=400, validation_examples=50
    )
    run = types.SimpleNamespace(log=logging.getLogger("test"))
    ((x_db, y_db), (x_q, y_q)), vocabulary = semantic_hashing.bag_of_words(
        config, run, validation=True
    )
    assert loaded == ["train"]
    assert len(x_q) <= 50 < len(x_q) + 5  # a few held-out posts may have no vocabulary word
    assert 390 < len(x_db) <= 400 and len(vocabulary) == 300
    assert x_q.shape[1] == x_db.shape[1] == 300 and len(y_q) == len(x_q)
    # The held-out queries are not in the database (no post is retrieved against itself).
    db_rows = {row.tobytes() for row in x_db}
    assert sum(row.tobytes() in db_rows for row in x_q) <= 1  # allow a rare duplicate post


def test_hamming_ball_rerank_scores_the_reranked_ball_and_the_scan_on_the_covered_queries():
    import types

    metrics = {}
    run = types.SimpleNamespace(
        record=lambda model, metric, value, *, split: metrics.__setitem__((model, metric), value)
    )
    # 3-bit addresses; labels 0: docs 0, 2, 5 and 1: docs 1, 3, 4 (R = 3 each), so m = 1 at
    # every reported level up to 0.2 and m = 2 at 0.5.
    train_bits = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0]])
    y_train = np.array([0, 1, 0, 1, 1, 0])
    test_bits = np.array([[0, 0, 0], [1, 1, 1]])
    y_test = np.array([0, 0])
    # Reranked by the distance to a position on a line: doc i sits at i.
    positions = np.arange(6.0)[:, None]
    levels = semantic_hashing.RECALL_LEVELS
    scan_precision = np.array([[0.25] * len(levels), [0.75] * len(levels)], np.float32)
    semantic_hashing.hamming_ball_rerank(
        run, "codes", train_bits, test_bits, y_train, y_test, (0, 1),
        rerankers={"line": (np.array([[0.9], [3.0]]), positions, "euclidean")},
        scan_precision=scan_precision, scan_ms=2.0, timed_queries=1,
    )  # fmt: skip
    low, high = (level for level in semantic_hashing.REPORTED_RECALLS if level in (0.01, 0.5))

    def row(model, metric):
        return metrics.get((model, metric))

    ball0, ball1 = "codes + line rerank, radius 0", "codes + line rerank, radius 1"
    scan0 = "TF-IDF scan on the queries the codes radius-0 ball covers"
    scan1 = "TF-IDF scan on the queries the codes radius-1 ball covers"
    # Radius 0: query 0's ball {0, 1} ranks doc 1, doc 0 (precision 1/2 at m = 1); query 1's
    # ball {3, 4} holds nothing relevant, so the scan row averages query 0 alone.
    assert row(scan0, f"fraction of all queries covered at recall {low:g}") == 0.5
    assert row(ball0, f"precision at recall {low:g}") == pytest.approx(0.5)
    assert row(scan0, f"precision at recall {low:g}") == pytest.approx(0.25)
    assert row(scan0, f"fraction of all queries covered at recall {high:g}") == 0.0
    assert row(ball0, f"precision at recall {high:g}") is None  # reached by no query
    assert row(scan0, f"precision at recall {high:g}") is None
    # Radius 1: query 0 ranks docs 1, 0, 2 (1/2 at m = 1, 2/3 at m = 2); query 1 ranks docs
    # 3, 4, 5 (1/3 at m = 1, m = 2 not reached).
    assert row(scan1, f"fraction of all queries covered at recall {low:g}") == 1.0
    assert row(ball1, f"precision at recall {low:g}") == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert row(scan1, f"precision at recall {low:g}") == pytest.approx(0.5)
    assert row(scan1, f"fraction of all queries covered at recall {high:g}") == 0.5
    assert row(ball1, f"precision at recall {high:g}") == pytest.approx(2 / 3)
    assert row(scan1, f"precision at recall {high:g}") == pytest.approx(0.25)
    for model in (ball0, ball1):
        ms = row(model, "time per query (ms)")
        assert ms > 0 and row(model, "speed-up over the TF-IDF scan") == pytest.approx(2.0 / ms)


@pytest.mark.parametrize(
    ("word_counts", "expected"),
    [("raw", [0, 1, 2, 3, 4, 9]), ("log", [0, 1, 2, 2, 3, 4]), ("binary", [0, 1, 1, 1, 1, 1])],
)
def test_damped_counts_stay_integer_counts_and_keep_the_empty_words_empty(word_counts, expected):
    counts = np.array([[0, 1, 2, 3, 4, 9]], np.float32)
    config = semantic_hashing.dataclasses.replace(
        semantic_hashing.Config(), word_counts=word_counts
    )
    np.testing.assert_array_equal(semantic_hashing.damp_counts(counts, config), [expected])


def test_unknown_word_counts_are_rejected_before_the_corpus_loads(monkeypatch, tmp_path):
    def never(*args, **kwargs):
        raise AssertionError("the corpus was read before the settings were checked")

    monkeypatch.setattr(jaxae.data, "load", never)
    argv = ["--quick", "--no-progress", "--set", "word_counts=tf", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=r"expected one of \('raw', 'log', 'binary'\), got 'tf'"):
        semantic_hashing.main([*argv, "--results-dir", str(tmp_path / "results")])
    config = semantic_hashing.dataclasses.replace(semantic_hashing.Config(), word_counts="tf")
    with pytest.raises(ValueError, match="got 'tf'"):  # the function itself, called directly
        semantic_hashing.damp_counts(np.ones((1, 3), np.float32), config)
