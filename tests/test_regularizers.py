import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxae
from jaxae.regularizers import (
    contractive_penalty,
    k_sparse,
    k_sparse_schedule,
    kl_sparsity_penalty,
    l1_activity,
    sigmoid_contractive_penalty,
    weight_decay,
)


def _sigmoid_layer(key, n_in=12, n_hidden=7, batch=5):
    kw, kb, kx = jax.random.split(key, 3)
    w = jax.random.normal(kw, (n_in, n_hidden)) * 0.5
    b = jax.random.normal(kb, (n_hidden,)) * 0.1
    x = jax.random.uniform(kx, (batch, n_in))
    return w, b, x


def test_contractive_penalty_equals_closed_form_for_a_sigmoid_layer(key):
    w, b, x = _sigmoid_layer(key)

    def encode(params, x):
        return jax.nn.sigmoid(x @ params["w"] + params["b"][None, :])

    params = {"w": w, "b": b}
    jac = jax.jit(functools.partial(contractive_penalty, encode))(params, x)
    closed = jax.jit(sigmoid_contractive_penalty)(encode(params, x), w)
    assert jac.shape == (5,)
    np.testing.assert_allclose(jac, closed, rtol=1e-5)

    # ... and so are their gradients with respect to the parameters (the CAE's training signal).
    g_jac = jax.jit(jax.grad(lambda p: contractive_penalty(encode, p, x).sum()))(params)
    g_closed = jax.jit(jax.grad(lambda p: sigmoid_contractive_penalty(encode(p, x), p["w"]).sum()))(
        params
    )
    for name in ("w", "b"):
        np.testing.assert_allclose(g_jac[name], g_closed[name], rtol=1e-4, atol=1e-6)


def test_contractive_penalty_of_mlp_encoder_equals_closed_form(key):
    model = jaxae.MLPAutoencoder((10, 6), code_activation="sigmoid", tied=True)
    params = model.init(key)
    x = jax.random.uniform(jax.random.key(3), (4, 10))
    jac = jax.jit(lambda p, x: contractive_penalty(model.encode, p, x))(params, x)
    closed = sigmoid_contractive_penalty(model.encode(params, x), params["encoder"][0]["w"])
    np.testing.assert_allclose(jac, closed, rtol=1e-5)


def test_contractive_penalty_matches_finite_differences_for_two_layer_tanh_encoder(key):
    del key
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(6, 5)) * 0.6, "w2": rng.normal(size=(5, 4)) * 0.6}
    x = rng.normal(size=(3, 6))

    def encode(p, x):
        return jnp.tanh(jnp.tanh(x @ p["w1"]) @ p["w2"])

    with jax.enable_x64(True):
        got = np.asarray(jax.jit(functools.partial(contractive_penalty, encode))(params, x))
        # Central differences, one input coordinate at a time, in NumPy float64.
        eps = 1e-6
        expected = np.zeros(len(x))
        for i in range(x.shape[1]):
            step = np.zeros_like(x)
            step[:, i] = eps
            column = (
                np.asarray(encode(params, x + step)) - np.asarray(encode(params, x - step))
            ) / (2 * eps)
            expected += np.sum(column**2, axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _kl_reference(h, rho):
    rho_hat = h.mean(axis=0)
    total = 0.0
    for r in rho_hat:
        total += rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))
    return total


def test_kl_sparsity_penalty_equals_numpy_reference(key):
    h = np.asarray(jax.random.uniform(key, (8, 6), minval=0.01, maxval=0.99), np.float64)
    got = jax.jit(functools.partial(kl_sparsity_penalty, target=0.03))(h.astype(np.float32))
    assert got.shape == (8,)
    np.testing.assert_allclose(got, np.full(8, _kl_reference(h, 0.03)), rtol=1e-5)


def test_kl_sparsity_penalty_is_zero_at_target_and_positive_elsewhere():
    h = jnp.full((4, 5), 0.05)
    np.testing.assert_allclose(kl_sparsity_penalty(h, target=0.05), 0.0, atol=1e-6)
    assert np.all(np.asarray(kl_sparsity_penalty(h, target=0.2)) > 0)
    # ρ̂ is the batch mean: examples above and below the target can cancel.
    h = jnp.array([[0.0, 0.1], [0.2, 0.1]])
    np.testing.assert_allclose(kl_sparsity_penalty(h, target=0.1), 0.0, atol=1e-6)


def test_l1_activity(key):
    h = jax.random.normal(key, (3, 4, 2))
    np.testing.assert_allclose(
        jax.jit(l1_activity)(h), np.abs(np.asarray(h)).sum(axis=(1, 2)), rtol=1e-6
    )


def test_weight_decay_counts_weights_not_biases():
    params = {"encoder": [{"w": jnp.full((2, 3), 2.0), "b": jnp.full(3, 100.0)}], "s": 5.0}
    assert float(jax.jit(weight_decay)(params)) == pytest.approx(0.5 * 6 * 4.0)
    grads = jax.grad(weight_decay)(params)
    np.testing.assert_array_equal(grads["encoder"][0]["w"], params["encoder"][0]["w"])
    np.testing.assert_array_equal(grads["encoder"][0]["b"], 0.0)
    rbm_params = jaxae.rbm.RBMParams(jnp.ones((3, 2)), jnp.ones(3), jnp.ones(2))
    assert float(weight_decay(rbm_params)) == pytest.approx(3.0)


def test_weight_mask_marks_what_weight_decay_penalizes():
    params = {"encoder": [{"w": jnp.full((2, 3), 2.0), "b": jnp.full(3, 100.0)}], "s": 5.0}
    mask = jaxae.regularizers.weight_mask
    assert mask(params) == {"encoder": [{"w": True, "b": False}], "s": False}
    rbm_params = jaxae.rbm.RBMParams(jnp.ones((3, 2)), jnp.ones(3), jnp.ones(2))
    assert mask(rbm_params) == jaxae.rbm.RBMParams(True, False, False)


def test_k_sparse_keeps_exactly_k_largest(key):
    h = jax.random.normal(key, (6, 20))
    out = np.asarray(jax.jit(functools.partial(k_sparse, k=5))(h))
    h = np.asarray(h)
    assert np.all(np.count_nonzero(out, axis=1) == 5)
    for row, kept in zip(h, out, strict=True):
        top = np.argsort(-row)[:5]
        np.testing.assert_array_equal(np.flatnonzero(kept), np.sort(top))
        np.testing.assert_array_equal(kept[top], row[top])  # kept values are unchanged
    # Ties: still exactly k per example.
    assert np.all(np.count_nonzero(np.asarray(k_sparse(jnp.ones((3, 8)), k=3)), axis=1) == 3)


def test_k_sparse_gradients_flow_only_through_kept_units(key):
    h = jax.random.normal(key, (4, 10))
    weights = jax.random.normal(jax.random.key(5), (4, 10))
    grad = jax.jit(jax.grad(lambda h: jnp.sum(weights * k_sparse(h, k=3))))(h)
    kept = np.asarray(k_sparse(h, k=3)) != 0
    np.testing.assert_array_equal(np.asarray(grad)[~kept], 0.0)
    np.testing.assert_allclose(np.asarray(grad)[kept], np.asarray(weights)[kept])


def test_k_sparse_alpha_rule_and_traced_k(key):
    h = jax.random.normal(key, (3, 30))
    assert np.all(np.count_nonzero(np.asarray(k_sparse(h, k=4, alpha=3.0)), axis=1) == 12)
    assert np.all(np.count_nonzero(np.asarray(k_sparse(h, k=20, alpha=3.0)), axis=1) == 30)
    traced = jax.jit(lambda h, k: k_sparse(h, k=k))
    for k in (2, 7):
        assert np.all(np.count_nonzero(np.asarray(traced(h, jnp.int32(k))), axis=1) == k)


def test_k_sparse_traced_k_with_a_bound_matches_a_full_ranking(key):
    # max_k only narrows which units are ranked: the result is that of a stable full ranking,
    # ties included (the lower index wins).
    h = jax.random.normal(key, (5, 40))
    for values in (h, jnp.round(2 * h)):  # the second has many ties
        rows = np.asarray(values)
        rank = np.argsort(np.argsort(-rows, axis=1, kind="stable"), axis=1, kind="stable")
        bounded = jax.jit(lambda h, k: k_sparse(h, k=k, max_k=12))
        for k in (3, 12):
            expected = rows * (rank < k)
            np.testing.assert_array_equal(np.asarray(bounded(values, jnp.int32(k))), expected)
            np.testing.assert_array_equal(np.asarray(k_sparse(values, k=k)), expected)


def test_k_sparse_schedule_anneals_linearly():
    schedule = jax.jit(k_sparse_schedule(k=25, initial_k=100, transition_steps=10))
    ks = [int(schedule(s)) for s in (0, 5, 10, 20)]
    assert ks == [100, 62, 25, 25] or ks == [100, 63, 25, 25]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda h: kl_sparsity_penalty(h, target=0.0), "target: expected a value in \\(0, 1\\)"),
        (lambda h: kl_sparsity_penalty(h, target=1.0), "target: expected a value in \\(0, 1\\)"),
        (lambda h: kl_sparsity_penalty(h, target=-0.5), "target: expected a value in"),
        (lambda h: kl_sparsity_penalty(h + 1, target=0.1), "h: expected values in \\[0.0, 1.0\\]"),
        (lambda h: kl_sparsity_penalty(h.at[0, 0].set(jnp.nan), target=0.1), "h: expected fin"),
        (lambda h: k_sparse(h, k=9), "k: expected at most the layer's 8 units, got 9"),
        (lambda h: k_sparse(h, k=0), "k: expected a positive integer"),
        # A float array k (an un-rounded schedule) would keep int(k) units eagerly but
        # round(k) under jit: refused both ways.
        (lambda h: k_sparse(h, k=jnp.float32(2.7)), "k: expected an integer scalar, got float32"),
        (
            lambda h: jax.jit(lambda h, k: k_sparse(h, k=k))(h, jnp.float32(2.7)),
            "k: expected an integer scalar",
        ),
        (lambda h: k_sparse(h, k=2, alpha=0.5), "alpha: expected a value >= 1"),
        (lambda h: k_sparse(h, k=2, max_k=0), "max_k: expected a positive integer"),
        (lambda h: l1_activity(h.at[1, 1].set(jnp.inf)), "h: expected finite"),
        (lambda h: k_sparse_schedule(k=30, initial_k=10, transition_steps=5), "initial_k"),
        (lambda h: sigmoid_contractive_penalty(h, jnp.ones((3, 5))), "w: expected last dim"),
    ],
)
def test_bad_inputs_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call(jnp.full((4, 8), 0.5))


def test_kl_sparsity_gives_a_dead_unit_a_gradient_and_a_traced_bad_batch_nan():
    pre = jnp.array([[-15.0, 0.0], [-16.0, 1.0], [-15.5, -1.0]])  # unit 0 never on
    grads = jax.grad(lambda a: kl_sparsity_penalty(jax.nn.sigmoid(a), target=0.05).mean())(pre)
    assert np.all(np.asarray(grads[:, 0]) < 0)  # pushed up towards the target, not left dead
    tanh_codes = jnp.array([[-0.5, 0.2], [-0.3, 0.9]])
    penalty = jax.jit(lambda h: kl_sparsity_penalty(h, target=0.05))(tanh_codes)
    assert np.all(np.isnan(np.asarray(penalty)))


def test_a_traced_k_keeps_alpha_k_units_and_is_nan_above_max_k():
    h = jnp.asarray(np.random.default_rng(3).standard_normal((5, 30)), jnp.float32)
    kept = jax.jit(lambda h, k: k_sparse(h, k=k, alpha=3.0))
    np.testing.assert_array_equal(np.count_nonzero(np.asarray(kept(h, jnp.int32(4))), 1), 12)
    np.testing.assert_array_equal(np.count_nonzero(np.asarray(kept(h, jnp.int32(20))), 1), 30)
    bounded = jax.jit(lambda h, k: k_sparse(h, k=k, max_k=4))
    assert np.all(np.isfinite(np.asarray(bounded(h, jnp.int32(4)))))
    assert np.all(np.isnan(np.asarray(bounded(h, jnp.int32(5)))))  # not clamped to max_k


def test_kl_sparsity_averages_over_every_axis_but_the_units():
    h = jax.nn.sigmoid(jnp.asarray(np.random.default_rng(4).standard_normal((4, 3, 5))))
    np.testing.assert_allclose(
        kl_sparsity_penalty(h, target=0.1),
        np.full(4, _kl_reference(np.asarray(h).reshape(-1, 5), 0.1)),
        rtol=1e-5,
    )
