"""jaxae.training.batch_indices: the epoch's shuffled mini-batches."""

import jax
import numpy as np
import pytest

from jaxae import training

# --------------------------------------------------------------------------- batch_indices

batch_indices = jax.jit(
    training.batch_indices, static_argnames=("num_examples", "batch_size", "remainder")
)


def test_batch_indices_drop_is_a_truncated_permutation(key):
    idx = batch_indices(key, 100, 30)
    assert idx.shape == (3, 30) and idx.dtype == np.int32
    flat = np.asarray(idx).ravel()
    assert len(np.unique(flat)) == 90 and flat.min() >= 0 and flat.max() < 100
    np.testing.assert_array_equal(flat, np.asarray(jax.random.permutation(key, 100))[:90])


def test_batch_indices_is_deterministic_per_key(key):
    np.testing.assert_array_equal(batch_indices(key, 100, 10), batch_indices(key, 100, 10))
    other = batch_indices(jax.random.key(1), 100, 10)
    assert not np.array_equal(batch_indices(key, 100, 10), other)


def test_batch_indices_drops_different_examples_each_epoch(key):
    dropped = set()
    for epoch_key in jax.random.split(key, 5):
        kept = set(np.asarray(batch_indices(epoch_key, 100, 30)).ravel().tolist())
        dropped |= set(range(100)) - kept
    assert len(dropped) > 10


def test_batch_indices_keep_returns_the_rest(key):
    full, rest = batch_indices(key, 100, 30, remainder="keep")
    assert full.shape == (3, 30) and rest.shape == (10,) and rest.dtype == np.int32
    both = np.concatenate([np.asarray(full).ravel(), np.asarray(rest)])
    np.testing.assert_array_equal(np.sort(both), np.arange(100))
    full, rest = batch_indices(key, 5, 8, remainder="keep")
    assert full.shape == (0, 8)
    np.testing.assert_array_equal(np.sort(rest), np.arange(5))


def test_batch_indices_error_mode(key):
    idx = batch_indices(key, 90, 30, remainder="error")
    np.testing.assert_array_equal(np.sort(np.asarray(idx).ravel()), np.arange(90))
    with pytest.raises(ValueError, match=r"batch_size: 30 does not divide num_examples 100"):
        training.batch_indices(key, 100, 30, remainder="error")


@pytest.mark.parametrize(
    ("num_examples", "batch_size", "remainder", "match"),
    [
        (10, 11, "drop", "batch_size: 11 is larger than num_examples 10"),
        (10, 0, "drop", "batch_size: expected a positive integer, got 0"),
        (10, -2, "keep", "batch_size: expected a positive integer"),
        (10, 2.5, "drop", "batch_size: expected a positive integer, got 2.5"),
        (10, True, "drop", "batch_size: expected a positive integer"),
        (0, 1, "drop", "num_examples: expected a positive integer, got 0"),
        (10, 2, "pad", "remainder: expected 'drop', 'keep' or 'error', got 'pad'"),
    ],
)
def test_batch_indices_bad_arguments(key, num_examples, batch_size, remainder, match):
    with pytest.raises(ValueError, match=match):
        training.batch_indices(key, num_examples, batch_size, remainder=remainder)
