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
