import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxae
from jaxae import rbm
from jaxae.recipes import PretrainedLayer, RBMConfig


def _random_stack(sizes=(12, 8, 5, 3), top_hidden="gaussian", seed=0):
    keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
    stack = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        hidden = top_hidden if i == len(sizes) - 2 else "bernoulli"
        spec = rbm.RBMSpec(n_in, n_out, hidden=hidden)
        k1, k2, k3 = jax.random.split(keys[i], 3)
        params = rbm.RBMParams(
            jax.random.normal(k1, (n_in, n_out)),
            jax.random.normal(k2, (n_in,)),
            jax.random.normal(k3, (n_out,)),
        )
        stack.append(PretrainedLayer(RBMConfig(), params, [], spec))
    return stack


def test_unroll_uses_transposed_weights_and_both_biases():
    stack = _random_stack()
    model, params = jaxae.unroll(stack)
    assert model.sizes == (12, 8, 5, 3) and model.code_activation == "linear"
    for layer, enc, dec in zip(stack, params["encoder"], params["decoder"][::-1], strict=True):
        np.testing.assert_array_equal(enc["w"], layer.params.w)
        np.testing.assert_array_equal(enc["b"], layer.params.b_hidden)
        np.testing.assert_array_equal(dec["w"], layer.params.w.T)
        np.testing.assert_array_equal(dec["b"], layer.params.b_visible)


def test_unrolled_encoder_is_the_stack_of_rbm_conditional_means():
    stack = _random_stack()
    model, params = jaxae.unroll(stack)
    x = jax.random.uniform(jax.random.key(3), (4, 12))
    h = x
    for layer in stack:
        h = rbm.hidden_mean(layer.params, h, spec=layer.spec)
    np.testing.assert_allclose(jax.jit(model.encode)(params, x), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jaxae.encode_layers(stack, x, chunk_size=3), h, rtol=1e-5, atol=1e-6)
    v = h
    for layer in stack[::-1]:
        v = jax.nn.sigmoid(v @ layer.params.w.T + layer.params.b_visible[None, :])
    np.testing.assert_allclose(model.decode(params, h), v, rtol=1e-5, atol=1e-6)


def test_tied_unroll_shares_weights_and_computes_the_same_function():
    stack = _random_stack(top_hidden="bernoulli")
    tied_model, tied = jaxae.unroll(stack, tied=True)
    model, untied = jaxae.unroll(stack)
    assert tied_model.tied and tied_model.code_activation == "sigmoid"
    assert all(set(layer) == {"b"} for layer in tied["decoder"])
    x = jax.random.uniform(jax.random.key(1), (3, 12))
    np.testing.assert_allclose(tied_model.reconstruct(tied, x), model.reconstruct(untied, x))


def test_unroll_rejects_mismatched_layers():
    stack = _random_stack()
    bad = [stack[0], _random_stack((7, 4))[0]]
    with pytest.raises(ValueError, match="mismatched layer sizes — layer 0 has 8 hidden units but"):
        jaxae.unroll(bad)
    wrong = PretrainedLayer(RBMConfig(), stack[1].params, [], rbm.RBMSpec(12, 8))
    with pytest.raises(ValueError, match=r"stack\[0\]: weights of shape \(8, 5\) do not match"):
        jaxae.unroll([wrong])
    with pytest.raises(ValueError, match="expected at least one RBM layer"):
        jaxae.unroll([])


def test_unroll_softmax_bottom_folds_the_length_scaled_bias_into_the_weights():
    stack = _random_stack((10, 6, 4), top_hidden="bernoulli", seed=2)
    spec0 = rbm.RBMSpec(10, 6, visible="softmax")
    stack[0] = PretrainedLayer(RBMConfig(), stack[0].params, [], spec0)
    model, params = jaxae.unroll(stack)
    assert model.output_activation == "softmax" and model.code_activation == "sigmoid"
    # Documents of different lengths, one of them empty: E[h | v] uses D * b_hidden.
    counts = jax.random.poisson(jax.random.key(4), 1.5, (5, 10)).astype(jnp.float32)
    counts = counts.at[0].set(0.0).at[1].multiply(7.0)
    h = counts
    for layer in stack:
        h = rbm.hidden_mean(layer.params, h, spec=layer.spec)
    np.testing.assert_allclose(jax.jit(model.encode)(params, counts), h, rtol=1e-5, atol=1e-6)
    # The decoder ends in the transposed bottom weights; its output is a word distribution.
    np.testing.assert_array_equal(params["decoder"][-1]["w"], stack[0].params.w.T)
    logits = model.reconstruct(params, counts, logits=True)
    probabilities = model.reconstruct(params, counts)
    np.testing.assert_allclose(probabilities, jax.nn.softmax(logits, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    loss = jaxae.softmax_cross_entropy(logits, counts)
    assert loss.shape == (5,) and float(loss[0]) == 0.0  # an empty document costs nothing
    with pytest.raises(ValueError, match="tied: a softmax bottom layer"):
        jaxae.unroll(stack, tied=True)
    stack[1] = (rbm.RBMSpec(6, 4, visible="softmax"), stack[1].params)  # a pair works too
    with pytest.raises(ValueError, match=r"stack\[1\]: only the bottom layer may have 'softmax'"):
        jaxae.unroll(stack)
