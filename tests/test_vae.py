import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import MLPVAE, ConvVAE, variational
from jaxae.models.vae import TwoStochasticLayerVAE


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
    mean, log_var = jax.jit(SMALL.posterior)(small_params, x)
    logits = jax.jit(functools.partial(SMALL.decode, logits=True))(small_params, z)
    ref = _numpy_mlp_vae(small_params, x, z)
    for got, want in zip((mean, log_var, logits), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # The contract's defaults: encode is the posterior mean, decode the Bernoulli mean.
    np.testing.assert_allclose(jax.jit(SMALL.encode)(small_params, x), ref[0], rtol=1e-5)
    probabilities = 1 / (1 + np.exp(-ref[2]))
    np.testing.assert_allclose(jax.jit(SMALL.decode)(small_params, z), probabilities, rtol=1e-5)


CONV = ConvVAE(latent_size=4, image_shape=(8, 8, 1), features=(8,), hidden=32)


@pytest.fixture(scope="module")
def conv_params():
    return CONV.init(jax.random.key(0))  # Flax init compiles slowly on CPU: once per file


def test_conv_vae_encode_decode_shapes_under_jit(key, conv_params):
    model, params = CONV, conv_params
    x = jax.random.uniform(key, (3, 8, 8, 1))
    mean, log_var = jax.jit(model.posterior)(params, x)
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


def test_data_mean_starts_the_decoder_at_the_mean_image(key):
    x = _digits()
    mean = np.asarray(x.mean(axis=0))
    zero, biased = SMALL.init(key), SMALL.init(key, data_mean=mean)
    # Only the output bias differs: the logits of the mean, clipped away from 0 and 1.
    np.testing.assert_allclose(
        jax.nn.sigmoid(biased["decoder"][-1]["b"]), np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-4
    )
    biased["decoder"][-1]["b"] = zero["decoder"][-1]["b"]
    jax.tree.map(np.testing.assert_array_equal, biased, zero)
    # So the untrained model's expected Bernoulli log-likelihood of the data is far higher.
    start = SMALL.init(key, data_mean=mean)
    loss = jax.jit(variational.variational_loss(SMALL))
    key_x = jax.random.key(1)
    assert loss(start, x, key_x)[0] < loss(zero, x, key_x)[0] - 5.0
    two = TwoStochasticLayerVAE(
        input_size=64, hidden_1=(16,), first_latent_size=8, hidden_2=(8,), latent_size=4
    )
    logits = two.init(key, data_mean=mean)["p_x"]["logits"]["b"]
    np.testing.assert_allclose(jax.nn.sigmoid(logits), np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-4)
    with pytest.raises(ValueError, match="data_mean: expected last dimension 64"):
        SMALL.init(key, data_mean=np.full(63, 0.5, np.float32))
    with pytest.raises(ValueError, match="data_mean: expected values in"):
        SMALL.init(key, data_mean=np.full(64, 2.0, np.float32))
    with pytest.raises(ValueError, match="data_mean: expected finite values"):
        two.init(key, data_mean=np.full(64, np.nan, np.float32))


def test_conv_vae_data_mean_starts_each_channel_at_its_mean_intensity(key, conv_params):
    x = _digits().reshape(-1, 8, 8, 1)
    mean = np.asarray(x.mean(axis=0))
    biased = CONV.init(jax.random.key(0), data_mean=mean)
    bias = biased["decoder"]["params"]["Conv_0"]["bias"]
    np.testing.assert_allclose(jax.nn.sigmoid(bias), [mean.mean()], rtol=1e-4)
    # Nothing else differs from the default initialisation with the same key.
    biased["decoder"]["params"]["Conv_0"]["bias"] = conv_params["decoder"]["params"]["Conv_0"][
        "bias"
    ]
    jax.tree.map(np.testing.assert_array_equal, biased, conv_params)
    # The untrained decoder then predicts the digits' brightness, not 0.5 everywhere.
    loss = jax.jit(variational.variational_loss(CONV))
    start = CONV.init(jax.random.key(0), data_mean=mean)
    assert loss(start, x, key)[0] < loss(conv_params, x, key)[0] - 5.0
    with pytest.raises(ValueError, match=r"data_mean: expected shape \(8, 8, 1\)"):
        CONV.init(key, data_mean=mean.reshape(8, 8))
    with pytest.raises(ValueError, match=r"data_mean: expected shape \(8, 8, 1\)"):
        CONV.init(key, data_mean=np.full((4, 4, 1), 0.5, np.float32))
    with pytest.raises(ValueError, match="data_mean: expected values in"):
        CONV.init(key, data_mean=np.full((8, 8, 1), 255.0, np.float32))


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
    with pytest.raises(ValueError, match="sizes: expected at least 2 positive ints"):
        MLPVAE((784,))
    with pytest.raises(ValueError, match="activation: expected one of"):
        MLPVAE(activation="swish")
    with pytest.raises(ValueError, match=r"image_shape: H and W must be divisible by .* = 4"):
        ConvVAE(image_shape=(30, 30, 1))
    with pytest.raises(ValueError, match=r"features: expected .* got \(0, 4\)"):
        ConvVAE(features=(0, 4))
    with pytest.raises(ValueError, match=r"image_shape: expected .* got \(8.0, 8, 1\)"):
        ConvVAE(image_shape=(8.0, 8, 1), features=(4,))
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


TWO = TwoStochasticLayerVAE(
    input_size=3, hidden_1=(4,), first_latent_size=1, hidden_2=(3,), latent_size=1
)


@pytest.fixture(scope="module")
def two_params():
    params = TWO.init(jax.random.key(3))
    # Proposals wider than the generative model's conditionals keep the importance weights
    # bounded, so the k-sample estimate converges fast enough to test against quadrature.
    for name in ("q_h1", "q_h2"):
        params[name]["log_variance"]["b"] = params[name]["log_variance"]["b"] + 1.0
    return params


def _two_layer_exact_log_likelihood(params, x, half_width=9.0, points=801):
    """``log p(x) = log ∫∫ p(x|h1) p(h1|h2) p(h2) dh1 dh2`` by a Riemann sum on a 2-D grid."""
    grid = np.linspace(-half_width, half_width, points, dtype=np.float32)
    step = float(grid[1] - grid[0])
    h = jnp.asarray(grid[:, None])
    prior_mean, prior_log_var = jax.jit(TWO.prior_top)(params, h)  # p(h1|h2), rows: h2
    logits = jax.jit(functools.partial(TWO.decode, logits=True))(params, h)  # p(x|h1), rows: h1
    log_px = np.asarray(
        jax.vmap(
            lambda xi: variational.bernoulli_log_likelihood(logits, jnp.tile(xi, (points, 1)))
        )(x),
        np.float64,
    )  # [n, h1]
    m, lv = np.asarray(prior_mean, np.float64), np.asarray(prior_log_var, np.float64)
    h1, h2 = grid.astype(np.float64)[None, :], grid.astype(np.float64)[:, None]
    log_p_h1 = -0.5 * ((h1 - m) ** 2 * np.exp(-lv) + lv + np.log(2 * np.pi))  # [h2, h1]
    log_p_h2 = -0.5 * (h2**2 + np.log(2 * np.pi))  # [h2, 1]
    joint = log_px[:, None, :] + (log_p_h1 + log_p_h2)[None]  # [n, h2, h1]
    top = joint.max(axis=(1, 2), keepdims=True)
    return np.log(np.exp(joint - top).sum(axis=(1, 2)) * step * step) + top[:, 0, 0]


def test_two_stochastic_layers_bounds_against_quadrature(key, two_params):
    x = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    exact = _two_layer_exact_log_likelihood(two_params, x)
    log_w = jax.jit(functools.partial(variational.importance_log_weights, TWO, num_samples=7))(
        two_params, x, key
    )
    assert log_w.shape == (7, 3)
    elbo = jax.jit(functools.partial(variational.elbo, TWO, num_samples=7))(two_params, x, key)
    iwae = jax.jit(functools.partial(variational.iwae_bound, TWO, num_samples=7))(
        two_params, x, key
    )
    # Same samples: the mean of log w is below the log of the mean weight (Jensen).
    np.testing.assert_allclose(elbo, log_w.mean(axis=0), rtol=1e-6)
    assert np.all(elbo < iwae), (elbo, iwae)
    many_elbo = jax.jit(functools.partial(variational.elbo, TWO, num_samples=20_000))(
        two_params, x, key
    )
    assert np.all(many_elbo < exact - 0.01), (many_elbo, exact)
    estimate = variational.importance_sampled_log_likelihood(
        TWO, two_params, x, key, num_samples=100_000, samples_per_chunk=20_000
    )
    np.testing.assert_allclose(estimate, exact, atol=0.03)  # Monte Carlo error ~0.01


def test_two_stochastic_layers_train_with_finite_gradients(key):
    model = TwoStochasticLayerVAE(
        input_size=64, hidden_1=(32,), first_latent_size=8, hidden_2=(16,), latent_size=4
    )
    params = model.init(key)
    x = _digits()
    loss_fn = variational.variational_loss(model, objective="iwae", num_samples=5)
    (loss, metrics), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        params, jnp.asarray(x[:32]), key
    )
    assert np.isfinite(loss) and set(metrics) == {"bound"}
    leaves = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert all(float(jnp.abs(g).max()) > 0 for g in leaves)  # every layer gets a gradient
    result = jaxae.fit(
        params,
        x,
        loss_fn=loss_fn,
        has_aux=True,
        optimizer=optax.adam(3e-3),
        key=jax.random.key(1),
        epochs=4,
        batch_size=64,
        progress=False,
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0] - 3.0, losses


def test_two_stochastic_layer_defaults_are_the_papers_architecture():
    # Burda et al. Sec. 5.1: 784-200-200-100(s)-100-100-50(s), mirrored in the generative model
    # (their experiments.py: hidden_units_q [[200, 200], [100, 100]], latent_units [100, 50]).
    shapes = jax.eval_shape(TwoStochasticLayerVAE().init, jax.random.key(0))
    widths = {
        part: [layer["w"].shape for layer in shapes[part]["hidden"]]
        + [shapes[part][head]["w"].shape]
        for part, head in (("q_h1", "mean"), ("q_h2", "mean"), ("p_h1", "mean"), ("p_x", "logits"))
    }
    assert widths == {
        "q_h1": [(784, 200), (200, 200), (200, 100)],
        "q_h2": [(100, 100), (100, 100), (100, 50)],
        "p_h1": [(50, 100), (100, 100), (100, 100)],
        "p_x": [(100, 200), (200, 200), (200, 784)],
    }


def test_two_stochastic_layers_reject_bad_inputs(key, two_params):
    with pytest.raises(ValueError, match=r"hidden_1: expected at least 1 positive ints \(a non"):
        TwoStochasticLayerVAE(hidden_1=())
    with pytest.raises(ValueError, match="latent_size"):
        TwoStochasticLayerVAE(latent_size=0)
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="num_samples"):
        variational.iwae_bound(TWO, two_params, x, key, num_samples=0)
    with pytest.raises(ValueError, match="x: expected last dimension 3"):
        variational.iwae_bound(TWO, two_params, jnp.zeros((2, 5)), key, num_samples=2)
    with pytest.raises(ValueError, match="x: expected finite values"):
        variational.importance_sampled_log_likelihood(
            TWO, two_params, x.at[0, 0].set(jnp.nan), key, num_samples=2
        )
    with pytest.raises(ValueError, match="beta"):
        variational.elbo(TWO, two_params, x, key, beta=0.5)


def test_bounds_refuse_a_latent_that_is_not_one_vector_an_example(key):
    @dataclasses.dataclass(frozen=True)
    class SpatialLatent:  # z: [batch, 2, 2], which the log densities would sum wrongly
        def posterior(self, params, x):
            h = x.reshape(x.shape[0], 2, 2) * params
            return h, 0.1 * h

        def decode(self, params, z, logits=True):
            return z.reshape(z.shape[0], 4)

    x = jnp.array([[1.0, 0, 1, 0], [0, 1, 1, 1]])
    for bound in (
        lambda: variational.elbo(SpatialLatent(), jnp.float32(0.5), x, key),
        lambda: variational.iwae_bound(SpatialLatent(), jnp.float32(0.5), x, key, num_samples=2),
    ):
        with pytest.raises(ValueError, match=r"means \[batch=2, latent\], got shape \(2, 2, 2\)"):
            bound()
