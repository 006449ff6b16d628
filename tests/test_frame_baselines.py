"""Untrained frame baselines and the clipped cross-entropy, against NumPy."""

import jax
import numpy as np
import pytest

from jaxae.models import frame_baselines as fb


def test_baselines_and_clipped_cross_entropy(key):
    x = np.asarray(jax.random.uniform(key, (2, 3, 4)))
    np.testing.assert_allclose(fb.copy_last_frame(x, 2), np.stack([x[:, -1]] * 2, 1))
    np.testing.assert_allclose(fb.mean_of_inputs(x, 2), np.stack([x.mean(1)] * 2, 1), rtol=1e-6)
    assert np.all(np.asarray(fb.constant_probability(x, 5, p=0.2)) == np.float32(0.2))
    probs, targets = np.array([[[0.0, 1.0, 0.5]]]), np.array([[[1.0, 1.0, 0.0]]])
    got = jax.jit(lambda p, t: fb.clipped_cross_entropy(p, t, eps=0.1))(probs, targets)
    np.testing.assert_allclose(got, [-(np.log(0.1) + np.log(0.9) + np.log(0.5))], rtol=1e-6)
    with pytest.raises(ValueError, match="eps"):
        fb.clipped_cross_entropy(probs, targets, eps=0.0)


def test_choose_eps_picks_the_validation_minimum():
    targets = np.zeros((4, 1, 3))
    targets[0, 0, 0] = 1.0  # one surprise: too small an eps costs more than it saves
    eps = fb.choose_eps(lambda x: x * 0.0, targets, targets, grid=(1e-8, 0.05, 0.4))
    assert eps == 0.05


def test_bad_frames_are_refused_eagerly_and_score_nan_under_jit():
    probs = np.full((2, 3, 4), 0.5, np.float32)
    binary = (np.arange(24).reshape(2, 3, 4) % 2).astype(np.float32)
    with pytest.raises(ValueError, match=r"targets: expected values in \[0.0, 1.0\]"):
        fb.clipped_cross_entropy(probs, binary * 255, eps=0.01)  # 8-bit frames, not [0, 1]
    with pytest.raises(ValueError, match="probs and targets: expected the same shape"):
        fb.clipped_cross_entropy(probs, binary[..., :1], eps=0.01)  # no silent broadcast
    with pytest.raises(ValueError, match="probs: expected rank 3"):
        fb.clipped_cross_entropy(probs[0], binary[0], eps=0.01)
    bad = binary.copy()
    bad[1, 0, 0] = 255.0
    got = jax.jit(lambda p, t: fb.clipped_cross_entropy(p, t, eps=0.01))(probs, bad)
    assert np.isfinite(got[0]) and np.isnan(got[1])  # only the bad sequence
    # Constant predictions are probabilities even for uint8 frames, and p must be one.
    frames = np.zeros((2, 3, 4), np.uint8)
    np.testing.assert_allclose(fb.constant_probability(frames, 2, p=0.3), 0.3, rtol=1e-6)
    with pytest.raises(ValueError, match=r"p: expected a value in \[0, 1\]"):
        fb.constant_probability(frames, 2, p=1.5)
