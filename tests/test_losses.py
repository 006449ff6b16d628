import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import losses


def _rng():
    return np.random.default_rng(0)


def test_squared_error_matches_numpy():
    rng = _rng()
    pred, target = rng.normal(size=(5, 7)).astype(np.float32), rng.random((5, 7), np.float32)
    got = jax.jit(losses.squared_error)(pred, target)
    np.testing.assert_allclose(got, ((pred - target) ** 2).sum(axis=1), rtol=1e-6)


def test_squared_error_sums_all_feature_axes():
    rng = _rng()
    pred, target = rng.random((3, 4, 4, 1), np.float32), rng.random((3, 4, 4, 1), np.float32)
    got = jax.jit(losses.squared_error)(pred, target)
    np.testing.assert_allclose(got, ((pred - target) ** 2).reshape(3, -1).sum(1), rtol=1e-6)


def test_sigmoid_cross_entropy_matches_numpy_reference():
    rng = _rng()
    logits = rng.normal(scale=3, size=(4, 9)).astype(np.float32)
    target = rng.random((4, 9), np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    want = -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum(axis=1)
    got = jax.jit(losses.sigmoid_cross_entropy)(logits, target)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sigmoid_cross_entropy_is_stable_at_extreme_logits():
    logits = jnp.array([[100.0, -100.0, 100.0, -100.0]])
    target = jnp.array([[1.0, 0.0, 0.0, 1.0]])
    got = jax.jit(losses.sigmoid_cross_entropy)(logits, target)
    np.testing.assert_allclose(got, [200.0], rtol=1e-6)  # two exact hits, two misses of 100 nats
    grads = jax.grad(lambda z: losses.sigmoid_cross_entropy(z, target).sum())(logits)
    assert np.all(np.isfinite(grads))
    np.testing.assert_allclose(grads, [[0.0, 0.0, 1.0, -1.0]], atol=1e-6)


def test_softmax_cross_entropy_matches_numpy_reference():
    rng = _rng()
    logits = rng.normal(size=(3, 6)).astype(np.float32)
    counts = rng.integers(0, 5, size=(3, 6)).astype(np.float32)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    got = jax.jit(losses.softmax_cross_entropy)(logits, counts)
    np.testing.assert_allclose(got, -(counts * log_p).sum(axis=1), rtol=1e-5)


def test_losses_compose_as_plain_functions():
    rng = _rng()
    logits, target = rng.normal(size=(4, 5)).astype(np.float32), rng.random((4, 5), np.float32)

    def combined(z, t):
        return losses.sigmoid_cross_entropy(z, t) + 0.5 * losses.squared_error(jax.nn.sigmoid(z), t)

    got = jax.jit(combined)(logits, target)
    want = losses.sigmoid_cross_entropy(logits, target) + 0.5 * losses.squared_error(
        jax.nn.sigmoid(logits), target
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)
    per_example = jax.vmap(lambda z, t: combined(z[None], t[None])[0])(logits, target)
    np.testing.assert_allclose(per_example, got, rtol=1e-6)


@pytest.mark.parametrize(
    "fn", [losses.squared_error, losses.sigmoid_cross_entropy, losses.softmax_cross_entropy]
)
def test_shape_mismatch_is_named(fn):
    with pytest.raises(ValueError, match=r"expected the same shape, got \(2, 3\) and \(2, 4\)"):
        fn(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


def test_rank_one_input_is_rejected():
    with pytest.raises(ValueError, match=r"predictions: expected rank 2 to 5, got shape"):
        losses.squared_error(jnp.zeros(3), jnp.zeros(3))


def test_integer_predictions_are_rejected():
    with pytest.raises(TypeError, match="predictions: expected a floating dtype, got int32"):
        losses.squared_error(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 3)))


def test_cross_entropy_targets_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match=r"targets: expected values in \[0.0, 1.0\], got values"):
        losses.sigmoid_cross_entropy(jnp.zeros((2, 3)), jnp.full((2, 3), 2.0))


def test_nan_targets_are_rejected():
    target = jnp.zeros((2, 3)).at[0, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="targets: expected finite values, found 1 NaN/inf"):
        losses.squared_error(jnp.zeros((2, 3)), target)


def test_negative_counts_are_rejected():
    with pytest.raises(ValueError, match="counts: expected values in"):
        losses.softmax_cross_entropy(jnp.zeros((2, 3)), -jnp.ones((2, 3)))


def test_empty_batch_is_rejected():
    with pytest.raises(ValueError, match="expected a non-empty array"):
        losses.squared_error(jnp.zeros((0, 3)), jnp.zeros((0, 3)))
