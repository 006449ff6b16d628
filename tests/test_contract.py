"""Every jaxae model satisfies the model contract (jaxae.models.contract.Autoencoder)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxae
from jaxae import rbm
from jaxae.models.contract import Autoencoder
from jaxae.recipes import PretrainedLayer, RBMConfig


def _unrolled():
    keys = jax.random.split(jax.random.key(7), 2)
    stack = []
    for key, spec in zip(
        keys, (rbm.RBMSpec(6, 5), rbm.RBMSpec(5, 3, hidden="gaussian")), strict=True
    ):
        params = rbm.init_rbm(key, spec, scale=0.5)
        stack.append(PretrainedLayer(RBMConfig(), params, [], spec))
    return jaxae.unroll(stack)[0], (6,)


MODELS = {
    "mlp": lambda: (jaxae.MLPAutoencoder((6, 4, 3), code_activation="sigmoid"), (6,)),
    "mlp tied": lambda: (jaxae.MLPAutoencoder((6, 3), tied=True), (6,)),
    "unrolled deep": _unrolled,
    "mlp vae": lambda: (jaxae.MLPVAE((6, 5, 3)), (6,)),
    "conv vae": lambda: (
        jaxae.ConvVAE(latent_size=3, image_shape=(4, 4, 1), features=(4,), hidden=8),
        (4, 4, 1),
    ),
    "two-layer vae": lambda: (
        jaxae.TwoStochasticLayerVAE(6, (5,), 4, (3,), 2),
        (6,),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_satisfies_the_contract(name):
    model, shape = MODELS[name]()
    assert isinstance(model, Autoencoder)
    hash(model)  # a static argument of jit
    params = model.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (3, *shape))
    code = jax.jit(model.encode)(params, x)
    assert code.ndim == 2 and code.shape[0] == 3
    mean = jax.jit(model.decode)(params, code)
    assert mean.shape == x.shape
    logits = jax.jit(functools.partial(model.reconstruct, logits=True))(params, x)
    recon = jax.jit(model.reconstruct)(params, x)
    assert logits.shape == recon.shape == x.shape
    np.testing.assert_allclose(jax.nn.sigmoid(logits), recon, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(recon, mean, rtol=1e-5, atol=1e-6)
    assert float(jnp.min(recon)) >= 0.0 and float(jnp.max(recon)) <= 1.0  # Bernoulli means
    code_logits = jax.jit(functools.partial(model.encode, logits=True))(params, x)
    assert code_logits.shape == code.shape


def test_a_vae_encodes_to_its_posterior_mean():
    model = jaxae.MLPVAE((6, 5, 3))
    params = model.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (3, 6))
    mean, _ = model.posterior(params, x)
    np.testing.assert_array_equal(model.encode(params, x), mean)
    np.testing.assert_array_equal(model.encode(params, x, logits=True), mean)  # linear head


def test_something_without_the_methods_is_not_an_autoencoder():
    assert not isinstance(rbm.RBMSpec(3, 2), Autoencoder)
    assert not isinstance(
        jaxae.StackedClassifier((4, 3, 2), ("sigmoid",), (None,), (1.0,)), Autoencoder
    )
