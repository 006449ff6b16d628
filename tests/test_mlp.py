import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import MLPAutoencoder, untie


def _numpy_forward(params, x, activation, tied):
    act = {
        "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
        "tanh": np.tanh,
        "relu": lambda a: np.maximum(a, 0),
        "linear": lambda a: a,
    }[activation]
    enc = [(np.asarray(p["w"]), np.asarray(p["b"])) for p in params["encoder"]]
    h = x
    for i, (w, b) in enumerate(enc):
        h = h @ w + b
        h = h if i == len(enc) - 1 else act(h)  # linear code layer
    if tied:
        dec = [
            (w.T, np.asarray(p["b"]))
            for (w, _), p in zip(enc[::-1], params["decoder"], strict=True)
        ]
    else:
        dec = [(np.asarray(p["w"]), np.asarray(p["b"])) for p in params["decoder"]]
    for i, (w, b) in enumerate(dec):
        h = h @ w + b
        if i < len(dec) - 1:
            h = act(h)
    return h


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("tied", [False, True])
def test_forward_matches_numpy(activation, tied):
    model = MLPAutoencoder((6, 5, 3), activation=activation, tied=tied, output_activation="linear")
    params = model.init(jax.random.key(1))
    x = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    got = jax.jit(model.reconstruct)(params, x)
    np.testing.assert_allclose(
        got, _numpy_forward(params, x, activation, tied), rtol=1e-5, atol=1e-6
    )
    assert model.encode(params, x).shape == (4, 3)


def test_sigmoid_output_and_logits_agree():
    model = MLPAutoencoder((6, 4, 2))
    params = model.init(jax.random.key(0))
    x = jnp.ones((3, 6))
    np.testing.assert_allclose(
        model.reconstruct(params, x),
        jax.nn.sigmoid(model.reconstruct(params, x, logits=True)),
        rtol=1e-6,
    )


def test_tied_decoder_shares_encoder_weights_in_gradients():
    model = MLPAutoencoder((5, 3), tied=True, output_activation="linear")
    params = model.init(jax.random.key(0))
    assert set(params["decoder"][0]) == {"b"}
    grads = jax.grad(lambda p: jnp.sum(model.reconstruct(p, jnp.ones((2, 5))) ** 2))(params)
    assert grads["encoder"][0]["w"].shape == (5, 3)
    assert set(grads["decoder"][0]) == {"b"}


def test_untie_preserves_the_function():
    model = MLPAutoencoder((8, 6, 3), activation="tanh", tied=True)
    params = model.init(jax.random.key(0))
    untied_model, untied = untie(model, params)
    assert not untied_model.tied
    x = jnp.linspace(0, 1, 16).reshape(2, 8)
    np.testing.assert_allclose(untied_model.reconstruct(untied, x), model.reconstruct(params, x))


def test_bad_configuration_and_inputs():
    with pytest.raises(ValueError, match="activation: expected one of"):
        MLPAutoencoder((4, 2), activation="swish")
    with pytest.raises(ValueError, match="sizes: expected at least 2 positive ints"):
        MLPAutoencoder((4,))
    model = MLPAutoencoder((4, 2))
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"x: expected last dimension 4, got shape \(3, 5\)"):
        model.encode(params, jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"x: expected rank 2, got shape \(4,\)"):
        model.encode(params, jnp.zeros(4))
    with pytest.raises(TypeError, match="x: expected a floating dtype"):
        model.encode(params, jnp.zeros((3, 4), jnp.int32))
    with pytest.raises(ValueError, match="x: expected finite values"):
        model.encode(params, jnp.full((3, 4), jnp.nan))
    with pytest.raises(ValueError, match="params: expected 2 encoder and decoder layers"):
        MLPAutoencoder((4, 3, 2)).encode(params, jnp.zeros((1, 4)))


def test_encode_logits_is_the_code_pre_activation(key):
    model = MLPAutoencoder((6, 4, 3), activation="tanh", code_activation="sigmoid")
    params = model.init(key)
    x = jax.random.uniform(jax.random.key(1), (5, 6))
    logits = jax.jit(lambda p, b: model.encode(p, b, logits=True))(params, x)
    np.testing.assert_allclose(jax.nn.sigmoid(logits), model.encode(params, x), rtol=1e-6)
