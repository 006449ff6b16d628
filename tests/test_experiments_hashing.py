"""The semantic-hashing experiment's quick mode, end to end on real 20-newsgroups."""

import json

import numpy as np
import pytest

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
    metrics = semantic_hashing.main(
        ["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)]
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
    assert (out / "precision_recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "semantic_hashing.json")
    assert {row["mode"] for row in rows} == {"quick"}
    assert json.loads((out / "metrics.json").read_text())["mode"] == "quick"


def test_validation_split_holds_out_training_documents_and_never_reads_test(monkeypatch):
    import logging
    import types

    import jaxae

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
