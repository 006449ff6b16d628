import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import rbm
from jaxae.models.deep import RBMLayer, rbm_optimizer


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
        stack.append(RBMLayer(spec, params, []))
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
    np.testing.assert_allclose(jaxae.propagate(stack, x, chunk=3), h, rtol=1e-5, atol=1e-6)
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
    wrong = RBMLayer(rbm.RBMSpec(12, 8), stack[1].params, [])
    with pytest.raises(ValueError, match=r"stack\[0\]: weights of shape \(8, 5\) do not match"):
        jaxae.unroll([wrong])
    with pytest.raises(ValueError, match="expected at least one RBM layer"):
        jaxae.unroll([])


def test_rbm_optimizer_decays_weights_only_and_switches_momentum():
    params = rbm.RBMParams(jnp.ones((2, 2)), jnp.ones(2), jnp.ones(2))
    zero = jax.tree.map(jnp.zeros_like, params)
    opt = rbm_optimizer(
        0.1, weight_decay=0.5, momentum_start=0.5, momentum_final=0.9, momentum_switch_step=2
    )
    state = opt.init(params)
    updates, state = opt.update(zero, state, params)
    np.testing.assert_allclose(updates.w, -0.1 * 0.5)  # lr * weight_decay * w
    np.testing.assert_array_equal(updates.b_visible, 0.0)
    np.testing.assert_array_equal(updates.b_hidden, 0.0)
    momenta = [float(state[1].hyperparams["momentum"])]
    for _ in range(3):
        _, state = opt.update(zero, state, params)
        momenta.append(float(state[1].hyperparams["momentum"]))
    # The first two updates (steps 0 and 1) use the starting momentum, later ones the final one.
    np.testing.assert_allclose(momenta, [0.5, 0.5, 0.9, 0.9], rtol=1e-5)


def test_greedy_pretraining_on_digits_learns_every_layer():
    x = jaxae.data.load("digits", "train").flat
    config = jaxae.PretrainConfig(epochs=10, batch_size=50)
    stack = jaxae.greedy_pretrain(
        x, (64, 32, 8), key=jax.random.key(0), config=config, progress=False
    )
    assert [layer.spec for layer in stack] == [
        rbm.RBMSpec(64, 32),
        rbm.RBMSpec(32, 8, hidden="gaussian"),
    ]
    bottom, top = ([row["reconstruction_error"] for row in layer.history] for layer in stack)
    assert len(bottom) == len(top) == 10
    assert bottom[-1] < 0.8 * bottom[0]
    assert top[-1] < top[0]  # the linear layer learns slowly at the paper's rate of 0.001
    recon_error = float(rbm.reconstruction_error(stack[0].params, x, spec=stack[0].spec).mean())
    mean_error = float(jaxae.squared_error(np.broadcast_to(x.mean(0), x.shape), x).mean())
    assert recon_error < 0.5 * mean_error  # the bottom RBM models the digits, not their mean
    hidden = jaxae.propagate(stack[:1], x)
    assert hidden.shape == (len(x), 32) and 0 <= hidden.min() and hidden.max() <= 1


def test_persistent_pretraining_runs_through_the_same_loop():
    x = jaxae.data.load("digits", "train").flat
    config = jaxae.PretrainConfig(epochs=2, batch_size=50, persistent=True)
    (layer,) = jaxae.greedy_pretrain(
        x, (64, 16), key=jax.random.key(0), config=config, top_hidden="bernoulli", progress=False
    )
    assert np.all(np.isfinite(layer.params.w)) and len(layer.history) == 2


@pytest.mark.parametrize(
    "x, match",
    [
        (np.full((10, 4), 2.0, np.float32), r"x: expected values in \[0.0, 1.0\]"),
        (np.full((10, 4), np.nan, np.float32), "x: expected finite values"),
        (np.zeros((10, 5), np.float32), "x: expected last dimension 4"),
    ],
)
def test_greedy_pretrain_rejects_bad_data(x, match):
    with pytest.raises(ValueError, match=match):
        jaxae.greedy_pretrain(x, (4, 2), key=jax.random.key(0), progress=False)


def test_optax_sgd_with_rbm_gradients_matches_the_recipe_update():
    """One step of the optimizer equals Hinton & Salakhutdinov's hand-written update."""
    key = jax.random.key(0)
    spec = rbm.RBMSpec(6, 4)
    params = rbm.init_rbm(key, spec, scale=0.1)
    v = (jax.random.uniform(jax.random.key(1), (5, 6)) > 0.5).astype(jnp.float32)
    grads, _ = rbm.cd_gradients(params, v, jax.random.key(2), spec=spec)
    opt = rbm_optimizer(
        0.1, weight_decay=2e-4, momentum_start=0.5, momentum_final=0.9, momentum_switch_step=5
    )
    updates, _ = opt.update(grads, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new.w, params.w - 0.1 * (grads.w + 2e-4 * params.w), rtol=1e-6)
    np.testing.assert_allclose(new.b_hidden, params.b_hidden - 0.1 * grads.b_hidden, rtol=1e-6)


def test_unroll_softmax_bottom_folds_the_length_scaled_bias_into_the_weights():
    stack = _random_stack((10, 6, 4), top_hidden="bernoulli", seed=2)
    spec0 = rbm.RBMSpec(10, 6, visible="softmax")
    stack[0] = RBMLayer(spec0, stack[0].params, [])
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
    stack[1] = RBMLayer(rbm.RBMSpec(6, 4, visible="softmax"), stack[1].params, [])
    with pytest.raises(ValueError, match=r"stack\[1\]: only the bottom layer may have 'softmax'"):
        jaxae.unroll(stack)


def test_rbm_optimizer_gives_the_hidden_biases_their_own_rate():
    params = rbm.RBMParams(jnp.ones((2, 3)), jnp.ones(2), jnp.ones(3))
    grads = rbm.RBMParams(jnp.full((2, 3), 2.0), jnp.full(2, 3.0), jnp.full(3, 4.0))
    opt = rbm_optimizer(
        0.1,
        weight_decay=0.5,
        momentum_start=0.5,
        momentum_final=0.9,
        momentum_switch_step=2,
        hidden_bias_learning_rate=1e-3,
    )
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    np.testing.assert_allclose(updates.w, -0.1 * (2.0 + 0.5 * 1.0), rtol=1e-6)
    np.testing.assert_allclose(updates.b_visible, -0.1 * 3.0, rtol=1e-6)
    np.testing.assert_allclose(updates.b_hidden, -1e-3 * 4.0, rtol=1e-6)  # no weight decay
    updates, _ = opt.update(grads, state, params)
    np.testing.assert_allclose(updates.b_hidden, -1e-3 * (4.0 + 0.5 * 4.0), rtol=1e-6)
    with pytest.raises(ValueError, match="hidden_bias_learning_rate: expected > 0 or None"):
        rbm_optimizer(
            0.1,
            weight_decay=0.0,
            momentum_start=0.5,
            momentum_final=0.9,
            momentum_switch_step=2,
            hidden_bias_learning_rate=0.0,
        )


def test_greedy_pretrain_uses_the_softmax_hidden_bias_rate():
    counts = jax.random.poisson(jax.random.key(5), 2.0, (40, 12)).astype(jnp.float32)
    moved = []
    for rate in (None, 1e-9):
        config = jaxae.PretrainConfig(
            epochs=2, batch_size=10, softmax_hidden_bias_learning_rate=rate
        )
        (layer,) = jaxae.greedy_pretrain(
            counts, (12, 5), key=jax.random.key(6), config=config, visible="softmax",
            top_hidden="bernoulli", progress=False,
        )  # fmt: skip
        moved.append(float(jnp.abs(layer.params.b_hidden).max()))  # they start at 0
    assert moved[0] > 1e-3 and moved[1] < 1e-6
