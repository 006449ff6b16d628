"""LSTM sequence autoencoders: shapes, targets, decoder conditioning, training through fit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae.models.lstm import LSTMSequenceModel, future_targets, reconstruction_targets

D = 6


def _x(key, batch=3, frames=5):
    return jax.random.uniform(key, (batch, frames, D))


@pytest.mark.parametrize(
    "kind, keys",
    [
        ("autoencoder", {"reconstruction"}),
        ("future", {"future"}),
        ("composite", {"reconstruction", "future"}),
    ],
)
def test_shapes_of_each_kind(key, kind, keys):
    model = LSTMSequenceModel(input_dim=D, features=(5, 4), num_input=3, num_future=2, kind=kind)
    params = model.init(key)
    x = _x(key, frames=model.num_frames)
    out = jax.jit(model.apply)(params, x)
    assert set(out) == keys
    if "reconstruction" in out:
        assert out["reconstruction"].shape == (3, 3, D)
    if "future" in out:
        assert out["future"].shape == (3, 2, D)
    per_sequence = jax.jit(model.loss)(params, x)
    assert per_sequence.shape == (3,)
    assert set(jax.tree.leaves(jax.tree.map(lambda a: a.ndim, params)))  # non-empty tree


def test_targets_reverse_the_input_and_take_the_future():
    x = jnp.arange(2 * 5 * 1, dtype=jnp.float32).reshape(2, 5, 1)
    np.testing.assert_array_equal(reconstruction_targets(x, 3)[0, :, 0], [2.0, 1.0, 0.0])
    np.testing.assert_array_equal(future_targets(x, 3)[0, :, 0], [3.0, 4.0])


def test_loss_is_cross_entropy_against_the_reversed_input(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=4, kind="autoencoder")
    params = model.init(key)
    x = _x(key, frames=4)
    logits = model.apply(params, x)["reconstruction"]
    # independent reference: a NumPy loop over frames, target frame t is input frame T-1-t
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    xn = np.asarray(x, np.float64)
    want = np.zeros(3)
    for t in range(4):
        tgt = xn[:, 3 - t]
        want -= (tgt * np.log(p[:, t]) + (1 - tgt) * np.log(1 - p[:, t])).sum(-1)
    np.testing.assert_allclose(model.losses(params, x)["reconstruction"], want, rtol=1e-5)
    # reconstruct() gives the frames back in input order
    np.testing.assert_allclose(model.reconstruct(params, x)[:, 0], p[:, 3], rtol=1e-5)


def test_unconditional_decoder_ignores_the_targets(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3, kind="future")
    params = model.init(key)
    x = _x(key)
    y = x.at[:, 2:].set(0.0)  # change only the future frames
    chex.assert_trees_all_close(
        model.apply(params, x, train=True), model.apply(params, y, train=True)
    )


def test_conditional_decoders_read_the_previous_frame(key):
    model = LSTMSequenceModel(
        input_dim=D,
        features=(4,),
        num_input=2,
        num_future=3,
        kind="composite",
        conditional_reconstruction=True,
        conditional_future=True,
    )
    params = model.init(key)
    x = _x(key)
    y = x.at[:, 3].set(0.0)  # the second future frame: read by future step 2 while training
    a, b = model.apply(params, x, train=True), model.apply(params, y, train=True)
    np.testing.assert_allclose(a["future"][:, :2], b["future"][:, :2], rtol=1e-6)
    assert not np.allclose(a["future"][:, 2], b["future"][:, 2])
    # at test time it reads its own predictions, so the true future frames do not matter
    chex.assert_trees_all_close(model.apply(params, x)["future"], model.apply(params, y)["future"])
    # the conditional reconstruction decoder reads input frame 0 at its last step only
    z = x.at[:, 0].set(0.0)
    c = model.apply(params, z)["reconstruction"]
    r = model.apply(params, x)["reconstruction"]
    assert not np.allclose(c[:, 1], r[:, 1])
    # an unconditional model with the same shapes gives different outputs (it reads zeros)
    plain = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3)
    assert not np.allclose(plain.apply(plain.init(key), x)["future"], a["future"])


def test_bad_input_shape_is_named(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3)
    params = model.init(key)
    with pytest.raises(ValueError, match=r"x: expected \[batch, 5, 6\]"):
        model.apply(params, jnp.zeros((2, 4, D)))
    with pytest.raises(ValueError, match="kind"):
        LSTMSequenceModel(input_dim=D, kind="forecast")


def test_tiny_composite_learns_through_fit(key):
    # a dot moving one step right per frame on a 6-pixel line: the future is predictable
    starts = np.arange(40) % 2
    frames = np.zeros((40, 4, D), np.float32)
    for i, s in enumerate(starts):
        for t in range(4):
            frames[i, t, s + t] = 1.0
    model = LSTMSequenceModel(input_dim=D, features=(16,), num_input=2, num_future=2)
    params = model.init(key)
    before = float(model.loss(params, frames, train=False).mean())
    result = jaxae.fit(
        params,
        frames,
        loss_fn=model.loss_fn,
        optimizer=optax.adam(3e-2),
        key=key,
        epochs=30,
        batch_size=20,
        progress=False,
    )
    after = float(model.loss(result.params, frames, train=False).mean())
    assert after < 0.5 * before
