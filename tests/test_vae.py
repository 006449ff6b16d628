import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import MLPVAE, ConvVAE, variational


def _numpy_mlp_vae(params, x, z):
    h = np.asarray(x, np.float64)
    for layer in params["encoder"]:
        h = np.tanh(h @ np.asarray(layer["w"]) + np.asarray(layer["b"]))
    mean = h @ np.asarray(params["mean"]["w"]) + np.asarray(params["mean"]["b"])
    log_var = h @ np.asarray(params["log_variance"]["w"]) + np.asarray(params["log_variance"]["b"])
    g = np.asarray(z, np.float64)
    layers = params["decoder"]
    for i, layer in enumerate(layers):
        g = g @ np.asarray(layer["w"]) + np.asarray(layer["b"])
        if i < len(layers) - 1:
            g = np.tanh(g)
    return mean, log_var, g


SMALL = MLPVAE((64, 48, 32, 8))


@pytest.fixture(scope="module")
def small_params():
    return SMALL.init(jax.random.key(0))  # compiled once per file


def test_mlp_vae_default_is_burda_one_stochastic_layer(key):
    model = MLPVAE()
    assert model.sizes == (784, 200, 200, 50) and model.activation == "tanh"
    shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(model.init, key))
    assert [layer["w"] for layer in shapes["encoder"]] == [(784, 200), (200, 200)]
    assert shapes["mean"]["w"] == shapes["log_variance"]["w"] == (200, 50)
    assert [layer["w"] for layer in shapes["decoder"]] == [(50, 200), (200, 200), (200, 784)]


def test_mlp_vae_matches_numpy(small_params):
    x = np.random.default_rng(0).random((4, 64)).astype(np.float32)
    z = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    mean, log_var = jax.jit(SMALL.encode)(small_params, x)
    logits = jax.jit(SMALL.decode)(small_params, z)
    ref = _numpy_mlp_vae(small_params, x, z)
    for got, want in zip((mean, log_var, logits), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


CONV = ConvVAE(latent_size=4, image_shape=(8, 8, 1), features=(8,), hidden=32)


@pytest.fixture(scope="module")
def conv_params():
    return CONV.init(jax.random.key(0))  # Flax init compiles slowly on CPU: once per file


def test_conv_vae_encode_decode_shapes_under_jit(key, conv_params):
    model, params = CONV, conv_params
    x = jax.random.uniform(key, (3, 8, 8, 1))
    mean, log_var = jax.jit(model.encode)(params, x)
    assert mean.shape == log_var.shape == (3, 4)
    assert jax.jit(model.decode)(params, mean).shape == (3, 8, 8, 1)
    assert set(params) == {"encoder", "decoder"}  # Flax variables of two Linen modules


def _digits():
    return jaxae.data.load("digits", "train").flat  # [1437, 64] in [0, 1]


def test_training_on_digits_reduces_the_loss(small_params):
    x = _digits()
    result = jaxae.fit(
        small_params,
        x,
        loss_fn=variational.variational_loss(SMALL),
        has_aux=True,
        optimizer=optax.adam(3e-3),
        key=jax.random.key(1),
        epochs=5,
        batch_size=64,
        progress=False,
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0] - 5.0, losses
    assert all(np.isfinite(losses))
    assert result.history[-1]["kl"] > 0.5  # the posterior carries information about x


def test_conv_vae_trains_on_digits(conv_params):
    x = _digits().reshape(-1, 8, 8, 1)
    model = CONV
    result = jaxae.fit(
        conv_params,
        x,
        loss_fn=variational.variational_loss(model),
        has_aux=True,
        optimizer=optax.adam(3e-3),
        key=jax.random.key(1),
        epochs=2,
        batch_size=64,
        progress=False,
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0] - 2.0, losses


def test_dynamic_binarisation_uses_the_step_key(key, small_params):
    model, params = SMALL, small_params
    x = jnp.full((8, 64), 0.5)
    loss_fn = jax.jit(variational.variational_loss(model))
    a, _ = loss_fn(params, x, key)
    b, _ = loss_fn(params, x, key)
    c, _ = loss_fn(params, x, jax.random.fold_in(key, 1))
    assert a == b and a != c
    deterministic = variational.variational_loss(model, dynamic_binarization=False)
    assert jnp.isfinite(deterministic(params, x, key)[0])


def test_models_reject_bad_inputs(small_params):
    with pytest.raises(ValueError, match="sizes: expected at least two positive ints"):
        MLPVAE((784,))
    with pytest.raises(ValueError, match="activation: expected one of"):
        MLPVAE(activation="swish")
    with pytest.raises(ValueError, match=r"image_shape: H and W must be divisible by .* = 4"):
        ConvVAE(image_shape=(30, 30, 1))
    model, params = SMALL, small_params
    with pytest.raises(ValueError, match="x: expected last dimension 64"):
        model.encode(params, jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match="x: expected finite values"):
        model.encode(params, jnp.full((3, 64), jnp.nan))
    with pytest.raises(ValueError, match="z: expected last dimension 8"):
        model.decode(params, jnp.zeros((3, 3)))
    conv = ConvVAE(latent_size=2, features=(4,), hidden=8)
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 28, 28, 1\]"):
        conv.encode({}, jnp.zeros((2, 28, 28, 3)))
