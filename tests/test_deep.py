import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import rbm, recipes
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
    # The layer's own encoder (what stack_encoders builds a classifier from) folds it too.
    np.testing.assert_allclose(stack[0].encoder["w"], params["encoder"][0]["w"], rtol=1e-6)
    classifier, classifier_params = recipes.stack_encoders(stack, n_classes=3)
    np.testing.assert_allclose(
        classifier.features(classifier_params, counts), h, rtol=1e-5, atol=1e-6
    )
    # Fine-tuning by default fits the counts' multinomial cross-entropy, not a squared error.
    result = recipes.finetune_autoencoder(
        model, params, counts, key=jax.random.key(5), epochs=1, batch_size=5, progress=False,
        optimizer=optax.sgd(0.0),
    )  # fmt: skip
    np.testing.assert_allclose(result.history[-1]["loss"], float(loss.mean()), rtol=1e-5)
    with pytest.raises(ValueError, match="kind='squared_error' does not fit .*'softmax'"):
        recipes.ReconstructionLoss(model, "squared_error")
    with pytest.raises(ValueError, match="tied: a softmax bottom layer"):
        jaxae.unroll(stack, tied=True)
    stack[1] = (rbm.RBMSpec(6, 4, visible="softmax"), stack[1].params)  # a pair works too
    with pytest.raises(ValueError, match=r"stack\[1\]: only the bottom layer may have 'softmax'"):
        jaxae.unroll(stack)


def _real_valued_stack(sizes=(12, 8, 5, 3), seed=5):
    """Gaussian (learned variance) / nrelu bottom, unit-variance Gaussian / nrelu middle, linear
    code on top: the stack pretrain_rbm_stack(visible="gaussian_learned_var", hidden="nrelu")
    makes."""
    keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
    stack = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        visible = "gaussian_learned_var" if i == 0 else "gaussian"
        hidden = "gaussian" if i == len(sizes) - 2 else "nrelu"
        spec = rbm.RBMSpec(n_in, n_out, visible=visible, hidden=hidden)
        k1, k2, k3, k4 = jax.random.split(keys[i], 4)
        log_var = 0.5 * jax.random.normal(k4, (n_in,)) if i == 0 else None
        params = rbm.RBMParams(
            jax.random.normal(k1, (n_in, n_out)),
            jax.random.normal(k2, (n_in,)),
            jax.random.normal(k3, (n_out,)),
            log_var,
        )
        stack.append(PretrainedLayer(RBMConfig(), params, [], spec))
    return stack


def test_unroll_real_valued_stack_is_a_relu_encoder_with_a_linear_decoder_output():
    stack = _real_valued_stack()
    model, params = jaxae.unroll(stack)
    assert (model.activation, model.code_activation, model.output_activation) == (
        "relu",
        "linear",
        "linear",
    )
    x = jax.random.normal(jax.random.key(3), (4, 12))
    h = x
    for layer in stack:  # E[h | v] layer by layer: max(0, (v / σ²) W + c), then linear on top
        h = rbm.hidden_mean(layer.params, h, spec=layer.spec)
    np.testing.assert_allclose(jax.jit(model.encode)(params, x), h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jaxae.encode_layers(stack, x), h, rtol=1e-5, atol=1e-5)
    # The bottom encoder weights are W / σ² (rows scaled), the decoder's its plain transpose.
    sigma2 = np.exp(np.asarray(stack[0].params.log_var))
    w0 = stack[0].params.w / sigma2[:, None]
    np.testing.assert_allclose(params["encoder"][0]["w"], w0, rtol=1e-5)
    np.testing.assert_array_equal(params["decoder"][-1]["w"], stack[0].params.w.T)
    # Decoder: the mean W h + b of each layer's visible units, rectified between layers (the
    # features it reconstructs are ReLU outputs), linear at the output (standardised pixels).
    v = h
    for j, layer in enumerate(stack[::-1]):
        v = v @ layer.params.w.T + layer.params.b_visible[None, :]
        if j < len(stack) - 1:
            v = jax.nn.relu(v)
    np.testing.assert_allclose(model.decode(params, h), v, rtol=1e-5, atol=1e-5)


def test_unroll_real_valued_stack_refuses_what_it_cannot_unroll():
    stack = _real_valued_stack()
    with pytest.raises(ValueError, match="tied: a learned-variance layer's encoder weights"):
        jaxae.unroll(stack, tied=True)
    # Rectified features under a Bernoulli visible layer.
    spec = rbm.RBMSpec(8, 5, visible="bernoulli", hidden="nrelu")
    bad = [stack[0], (spec, stack[1].params), stack[2]]
    with pytest.raises(ValueError, match=r"stack\[1\]: 'bernoulli' visible units cannot model"):
        jaxae.unroll(bad)
    # Binary features under a Gaussian visible layer.
    binary = _random_stack()
    spec = rbm.RBMSpec(8, 5, visible="gaussian", hidden="bernoulli")
    with pytest.raises(ValueError, match=r"stack\[1\]: 'gaussian' visible units cannot model"):
        jaxae.unroll([binary[0], (spec, binary[1].params), binary[2]])
    # One hidden activation below the top.
    spec = rbm.RBMSpec(8, 5, visible="gaussian", hidden="bernoulli")
    with pytest.raises(ValueError, match=r"stack\[1\]: 'bernoulli' hidden units below the top"):
        jaxae.unroll([stack[0], (spec, stack[1].params), stack[2]])
    # A learned-variance layer above the bottom of a binary stack.
    spec = rbm.RBMSpec(8, 5, visible="gaussian_learned_var")
    params = stack[1].params._replace(log_var=jnp.zeros(8))
    with pytest.raises(ValueError, match="only the bottom layer may have 'gaussian_learned_var'"):
        jaxae.unroll([binary[0], (spec, params), binary[2]])
    # Linear (Gaussian) hidden units are only for the top.
    spec = rbm.RBMSpec(12, 8, visible="gaussian_learned_var", hidden="gaussian")
    with pytest.raises(ValueError, match=r"stack\[0\]: only the top layer may have 'gaussian'"):
        jaxae.unroll([(spec, stack[0].params), stack[1], stack[2]])
    # A nrelu code layer is a ReLU code.
    top = rbm.RBMSpec(5, 3, visible="gaussian", hidden="nrelu")
    model, _ = jaxae.unroll([stack[0], stack[1], (top, stack[2].params)])
    assert model.code_activation == "relu"


def test_pretrain_real_valued_stack_on_standardised_digits_unrolls_to_its_conditional_means():
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)[:600]
    z = np.asarray(rbm.standardize(x, rbm.fit_standardization(x)))
    stack = jaxae.recipes.pretrain_rbm_stack(
        z,
        (64, 32, 16, 8),
        key=jax.random.key(0),
        configs=RBMConfig(epochs=3, batch_size=50),
        visible="gaussian_learned_var",
        hidden="nrelu",
        progress=False,
    )
    assert [(s.spec.visible, s.spec.hidden) for s in stack] == [
        ("gaussian_learned_var", "nrelu"),
        ("gaussian", "nrelu"),
        ("gaussian", "gaussian"),
    ]
    np.testing.assert_array_equal(stack[0].params.log_var.shape, (64,))
    assert np.isfinite(np.asarray(stack[0].params.log_var)).all()
    # The variances moved, but ten times slower than a weight at the same gradient would.
    assert 0 < np.abs(np.asarray(stack[0].params.log_var)).max() < 1.0
    model, params = jaxae.unroll(stack)
    np.testing.assert_allclose(
        model.encode(params, z[:20]), jaxae.encode_layers(stack, z[:20]), rtol=1e-4, atol=1e-4
    )
    error = float(jaxae.squared_error(model.reconstruct(params, z), z).mean())
    assert np.isfinite(error) and error < 64.0  # better than the mean image (64 = Σ var)
