"""Tests for jaxae.rbm: each quantity against brute-force enumeration, quadrature or closed form."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp as np_logsumexp

from jaxae import rbm
from jaxae.rbm import RBMParams, RBMSpec

jax.config.update("jax_numpy_rank_promotion", "raise")


def jitted(fn, **static):
    """``fn`` with its static keywords bound, through ``jax.jit`` (as optax's tests call)."""
    return jax.jit(functools.partial(fn, **static))


def binary_states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_params(seed: int, spec: RBMSpec, scale: float = 1.0, bias_scale: float = 0.5):
    rng = np.random.default_rng(seed)
    return RBMParams(
        jnp.asarray(scale * rng.standard_normal((spec.n_visible, spec.n_hidden)), jnp.float32),
        jnp.asarray(bias_scale * rng.standard_normal(spec.n_visible), jnp.float32),
        jnp.asarray(bias_scale * rng.standard_normal(spec.n_hidden), jnp.float32),
    )


def np_params(params):
    return [np.asarray(x, np.float64) for x in params[:3]]


def np_energy(params, v, h, visible="bernoulli", hidden="bernoulli"):
    """E(v, h) for [..., n] arrays, written out from the module table (NumPy, float64)."""
    w, bv, bh = np_params(params)
    e_v = 0.5 * np.sum((v - bv) ** 2, -1) if visible == "gaussian" else -(v @ bv)
    c = bh * np.sum(v, -1, keepdims=True) if visible == "softmax" else bh
    e_h = 0.5 * np.sum((h - c) ** 2, -1) if hidden == "gaussian" else -np.sum(c * h, -1)
    return e_v + e_h - np.einsum("...i,ij,...j->...", v, w, h)


def np_joint_bb(params, n_v, n_h):
    """Exact Boltzmann distribution P[v_index, h_index] of a Bernoulli-Bernoulli RBM."""
    vs, hs = binary_states(n_v), binary_states(n_h)
    neg_e = -np_energy(params, vs[:, None, :], hs[None, :, :])
    return vs, hs, np.exp(neg_e - np_logsumexp(neg_e))


def grid(low, high, n, dims):
    """Midpoint grid over [low, high]^dims: points [n**dims, dims] and the cell volume."""
    step = (high - low) / n
    axis = low + step * (np.arange(n) + 0.5)
    points = np.stack(np.meshgrid(*([axis] * dims), indexing="ij"), -1).reshape(-1, dims)
    return points, step**dims


# ------------------------------------------------------------------------------------------------
# Spec, init, energy.


def test_spec_is_hashable_and_normalised():
    spec = RBMSpec(np.int64(4), 3, visible="gaussian")
    assert spec == RBMSpec(4, 3, visible="gaussian")
    assert hash(spec) == hash(RBMSpec(4, 3, visible="gaussian"))
    assert type(spec.n_visible) is int


def test_init_rbm_shapes_scale_and_base_rates():
    spec = RBMSpec(64, 200)
    data = np.zeros((10, 64), np.float32)
    data[:5, 0] = 1.0  # p = 0.5 -> bias 0
    data[:, 1] = 1.0  # p = 1 -> clipped to 1 - 1e-3
    data[:2, 2] = 1.0  # p = 0.2
    params = rbm.init_rbm(jax.random.key(0), spec, scale=0.1, visible_data=data)
    assert params.w.shape == (64, 200) and params.b_hidden.shape == (200,)
    np.testing.assert_allclose(np.std(params.w), 0.1, rtol=0.05)
    np.testing.assert_array_equal(params.b_hidden, 0.0)
    np.testing.assert_allclose(params.b_visible[:3], [0.0, np.log(999.0), np.log(0.25)], rtol=1e-4)
    np.testing.assert_allclose(params.b_visible[3], -np.log(999.0), rtol=1e-4)
    gauss = rbm.init_rbm(
        jax.random.key(0), RBMSpec(2, 3, visible="gaussian"), visible_data=np.array([[1.0, 2.0]])
    )
    np.testing.assert_allclose(gauss.b_visible, [1.0, 2.0])
    soft = rbm.init_rbm(
        jax.random.key(0), RBMSpec(3, 2, visible="softmax"), visible_data=np.array([[3, 1, 0]])
    )
    np.testing.assert_allclose(soft.b_visible, np.log([0.75, 0.25, 1e-6]), rtol=1e-5)


@pytest.mark.parametrize(
    "visible,hidden",
    [
        ("bernoulli", "bernoulli"),
        ("gaussian", "bernoulli"),
        ("bernoulli", "gaussian"),
        ("softmax", "bernoulli"),
    ],
)
def test_energy_matches_numpy(visible, hidden):
    spec = RBMSpec(5, 3, visible=visible, hidden=hidden)
    params = random_params(0, spec)
    rng = np.random.default_rng(1)
    if visible == "gaussian":
        v = rng.standard_normal((4, 5))
    elif visible == "softmax":
        v = rng.integers(0, 4, (4, 5)).astype(float)
    else:
        v = rng.integers(0, 2, (4, 5)).astype(float)
    h = rng.standard_normal((4, 3)) if hidden == "gaussian" else rng.integers(0, 2, (4, 3))
    got = jitted(rbm.energy, spec=spec)(params, v, h.astype(float))
    assert got.shape == (4,)
    np.testing.assert_allclose(got, np_energy(params, v, h, visible, hidden), rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Conditionals and sampling.


def test_conditionals_match_enumeration_of_the_joint():
    spec = RBMSpec(4, 3)
    params = random_params(2, spec)
    vs, hs, joint = np_joint_bb(params, 4, 3)
    p_h_given_v = joint / joint.sum(1, keepdims=True)  # [v, h]
    p_v_given_h = joint / joint.sum(0, keepdims=True)
    np.testing.assert_allclose(
        jitted(rbm.hidden_mean, spec=spec)(params, vs), p_h_given_v @ hs, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        jitted(rbm.visible_mean, spec=spec)(params, hs), p_v_given_h.T @ vs, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "gaussian"), ("gaussian", "bernoulli")])
def test_samples_have_the_conditional_mean_and_unit_noise(visible, hidden):
    spec = RBMSpec(3, 2, visible=visible, hidden=hidden)
    params = random_params(3, spec, scale=0.5)
    n = 20000
    v = np.tile([[1.0, 0.0, 1.0]], (n, 1))
    h = np.tile([[0.0, 1.0]], (n, 1))
    hs = jitted(rbm.sample_hidden, spec=spec)(params, v, jax.random.key(0))
    vs = jitted(rbm.sample_visible, spec=spec)(params, h, jax.random.key(1))
    for samples, mean, unit in (
        (hs, rbm.hidden_mean(params, v[:1], spec=spec)[0], hidden),
        (vs, rbm.visible_mean(params, h[:1], spec=spec)[0], visible),
    ):
        np.testing.assert_allclose(samples.mean(0), mean, atol=0.03)
        if unit == "gaussian":
            np.testing.assert_allclose(samples.std(0), 1.0, atol=0.03)
        else:
            assert set(np.unique(samples)) <= {0.0, 1.0}


# ------------------------------------------------------------------------------------------------
# Free energy, partition function, likelihood.


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_bernoulli_hidden_matches_enumeration(visible):
    spec = RBMSpec(5, 4, visible=visible)
    params = random_params(4, spec)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((6, 5)) if visible == "gaussian" else rng.uniform(size=(6, 5))
    hs = binary_states(4)
    expected = -np_logsumexp(-np_energy(params, v[:, None], hs[None], visible), axis=1)
    got = jitted(rbm.free_energy, spec=spec)(params, v)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_free_energy_gaussian_hidden_matches_quadrature():
    spec = RBMSpec(3, 2, hidden="gaussian")
    params = random_params(5, spec, scale=0.7)
    v = binary_states(3)
    hs, volume = grid(-12.0, 12.0, 600, 2)
    neg_e = -np_energy(params, v[:, None], hs[None], hidden="gaussian")
    expected = -(np_logsumexp(neg_e, axis=1) + np.log(volume))
    np.testing.assert_allclose(jitted(rbm.free_energy, spec=spec)(params, v), expected, rtol=1e-5)


def test_exact_log_partition_matches_brute_force_and_both_sides_agree():
    spec = RBMSpec(5, 4)
    params = random_params(6, spec)
    vs, hs = binary_states(5), binary_states(4)
    expected = np_logsumexp(-np_energy(params, vs[:, None], hs[None]))
    for side in (None, "visible", "hidden"):
        got = jitted(rbm.exact_log_partition, spec=spec, side=side)(params)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_exact_log_partition_enumerates_2_to_the_20_in_chunks():
    spec = RBMSpec(20, 3)
    params = random_params(7, spec, scale=0.3)
    by_visible = rbm.exact_log_partition(params, spec=spec, side="visible")  # 8 chunks of 2**17
    by_hidden = rbm.exact_log_partition(params, spec=spec, side="hidden")
    np.testing.assert_allclose(by_visible, by_hidden, rtol=1e-5)


def test_exact_log_partition_gaussian_visible_matches_quadrature():
    spec = RBMSpec(2, 3, visible="gaussian")
    params = random_params(8, spec, scale=0.7)
    vs, volume = grid(-12.0, 12.0, 600, 2)
    neg_e = -np_energy(params, vs[:, None], binary_states(3)[None], visible="gaussian")
    expected = np_logsumexp(neg_e) + np.log(volume)
    np.testing.assert_allclose(rbm.exact_log_partition(params, spec=spec), expected, rtol=1e-5)


def test_exact_log_partition_gaussian_hidden_matches_quadrature():
    spec = RBMSpec(3, 2, hidden="gaussian")
    params = random_params(9, spec, scale=0.7)
    hs, volume = grid(-12.0, 12.0, 600, 2)
    neg_e = -np_energy(params, binary_states(3)[:, None], hs[None], hidden="gaussian")
    expected = np_logsumexp(neg_e) + np.log(volume)
    np.testing.assert_allclose(rbm.exact_log_partition(params, spec=spec), expected, rtol=1e-5)


def test_log_likelihood_normalises_and_is_minus_free_energy_minus_log_z():
    spec = RBMSpec(4, 3)
    params = random_params(10, spec)
    vs, _, joint = np_joint_bb(params, 4, 3)
    log_z = rbm.exact_log_partition(params, spec=spec)
    got = jitted(rbm.log_likelihood, spec=spec)(params, vs, log_z)
    np.testing.assert_allclose(np.exp(got), joint.sum(1), rtol=1e-5)
    per_example = jnp.full((16,), log_z)
    np.testing.assert_allclose(rbm.log_likelihood(params, vs, per_example, spec=spec), got)


@pytest.mark.parametrize(
    "spec,scale,total_counts",
    [
        (RBMSpec(10, 8), 1.0, None),
        (RBMSpec(6, 5, visible="gaussian"), 0.4, None),
        (RBMSpec(8, 3, hidden="gaussian"), 0.4, None),
        (RBMSpec(6, 4, visible="softmax"), 0.5, 5),
    ],
    ids=["bernoulli", "gaussian-visible", "gaussian-hidden", "softmax"],
)
def test_ais_is_within_a_tenth_of_a_nat_of_exact(spec, scale, total_counts):
    params = random_params(11, spec, scale=scale)
    exact = rbm.exact_log_partition(params, spec=spec, total_counts=total_counts)
    estimate, stats = rbm.ais_log_partition(
        params, jax.random.key(0), spec=spec, total_counts=total_counts
    )
    assert abs(float(estimate) - float(exact)) < 0.1
    assert stats["log_weights"].shape == (100,)
    assert float(stats["log_weights_std"]) < 1.0
    # The estimate and its ±3σ bracket, recomputed from the weights (NumPy, float64).
    log_w = np.asarray(stats["log_weights"], np.float64)
    log_mean_w = np_logsumexp(log_w) - np.log(len(log_w))
    sigma = np.std(np.exp(log_w - log_mean_w)) / np.sqrt(len(log_w))
    np.testing.assert_allclose(estimate, float(stats["log_z_base"]) + log_mean_w, rtol=1e-5)
    np.testing.assert_allclose(stats["log_z_upper"], estimate + np.log1p(3 * sigma), rtol=1e-5)
    np.testing.assert_allclose(stats["log_z_lower"], estimate + np.log1p(-3 * sigma), rtol=1e-5)


def test_ais_from_a_data_base_rate_with_an_explicit_schedule():
    spec = RBMSpec(10, 8)
    params = random_params(12, spec)
    exact = rbm.exact_log_partition(params, spec=spec)
    betas = np.linspace(0.0, 1.0, 3000)
    estimate, _ = jitted(rbm.ais_log_partition, spec=spec, num_chains=200)(
        params, jax.random.key(1), betas=betas, base_visible_bias=jnp.full((10,), -1.0)
    )
    assert abs(float(estimate) - float(exact)) < 0.1
    # A one-step "schedule" is plain importance sampling from the base model: visibly worse.
    crude, _ = rbm.ais_log_partition(params, jax.random.key(1), spec=spec, betas=[0.0, 1.0])
    assert abs(float(crude) - float(exact)) > 0.1


# ------------------------------------------------------------------------------------------------
# Replicated softmax.


def test_softmax_hidden_input_scales_with_document_length():
    linear = RBMSpec(5, 3, visible="softmax", hidden="gaussian")  # E[h | v] is the input itself
    params = random_params(13, linear)
    counts = np.array([[1.0, 0.0, 2.0, 0.0, 1.0], [0.0, 3.0, 0.0, 0.0, 0.0]])
    w, _, bh = np_params(params)
    expected = counts @ w + counts.sum(1, keepdims=True) * bh  # v W + D b_hidden
    hidden_input = jitted(rbm.hidden_mean, spec=linear)
    np.testing.assert_allclose(hidden_input(params, counts), expected, rtol=1e-5)
    np.testing.assert_allclose(hidden_input(params, 2 * counts), 2 * expected, rtol=1e-5)
    logistic = RBMSpec(5, 3, visible="softmax")
    np.testing.assert_allclose(
        jitted(rbm.hidden_mean, spec=logistic)(params, 2 * counts),
        1 / (1 + np.exp(-2 * expected)),
        rtol=1e-5,
    )


def test_softmax_samples_sum_to_the_document_length():
    spec = RBMSpec(7, 3, visible="softmax")
    params = random_params(14, spec)
    h = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    lengths = np.array([5.0, 0.0, 120.0])
    samples = jitted(rbm.sample_visible, spec=spec)(
        params, h, jax.random.key(0), total_counts=lengths
    )
    np.testing.assert_array_equal(samples.sum(1), lengths)
    np.testing.assert_array_equal(samples, np.round(samples))
    assert samples.min() >= 0
    mean = jitted(rbm.visible_mean, spec=spec)(params, h, total_counts=lengths)
    np.testing.assert_allclose(mean.sum(1), lengths, rtol=1e-5)
    chain = jitted(rbm.gibbs_chain, spec=spec, k=3)(params, samples, jax.random.key(1))
    np.testing.assert_array_equal(chain.v.sum(1), lengths)
    # Many draws average to D·softmax(W h + b_v).
    many = rbm.sample_visible(
        params, np.tile(h[2], (400, 1)), jax.random.key(2), spec=spec, total_counts=120
    )
    np.testing.assert_allclose(many.mean(0), mean[2], rtol=0.05, atol=0.3)


def np_softmax_energy(params, words, h):
    """E(V, h) of Salakhutdinov & Hinton (2009) from an ordered word sequence (NumPy)."""
    w, bv, bh = np_params(params)
    return -np.sum(bv[words]) - np.sum(w[words] @ h) - len(words) * (bh @ h)


def test_softmax_free_energy_and_log_partition_match_brute_force():
    spec = RBMSpec(4, 3, visible="softmax")
    params = random_params(15, spec)
    hs = binary_states(3)
    documents = [[0, 2, 2], [1], [3, 3, 0, 1]]
    counts = np.zeros((3, 4))
    for row, words in enumerate(documents):
        np.add.at(counts[row], words, 1.0)
    expected = [-np_logsumexp([-np_softmax_energy(params, d, h) for h in hs]) for d in documents]
    np.testing.assert_allclose(
        jitted(rbm.free_energy, spec=spec)(params, counts), expected, rtol=1e-5
    )
    # Z over every ordered sequence of D = 3 words and every hidden state.
    sequences = itertools.product(range(4), repeat=3)
    log_z = np_logsumexp([-np_softmax_energy(params, list(s), h) for s in sequences for h in hs])
    got = jitted(rbm.exact_log_partition, spec=spec, total_counts=3)(params)
    np.testing.assert_allclose(got, log_z, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Gibbs chains.


def test_gibbs_chain_vmapped_over_chains_equals_a_loop():
    spec = RBMSpec(6, 4)
    params = random_params(16, spec)
    v0 = (np.random.default_rng(0).uniform(size=(5, 6)) > 0.5).astype(np.float32)
    keys = jax.random.split(jax.random.key(0), 5)
    chain = jitted(rbm.gibbs_chain, spec=spec, k=7)
    batched = jax.vmap(chain, in_axes=(None, 0, 0))(params, v0, keys)
    for i in range(5):
        single = chain(params, v0[i], keys[i])
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], batched), single)
    assert batched.v.shape == (5, 6) and batched.h.shape == (5, 4)
    # Different keys give different chains.
    assert not np.array_equal(batched.v[0], chain(params, v0[0], keys[1]).v)


def test_long_gibbs_chains_sample_the_exact_joint():
    spec = RBMSpec(3, 2)
    params = random_params(17, spec, scale=1.5)
    _, _, joint = np_joint_bb(params, 3, 2)
    n_chains = 20000
    final = jitted(rbm.gibbs_chain, spec=spec, k=30)(
        params, np.zeros((n_chains, 3), np.float32), jax.random.key(0)
    )
    # Joint state index: v bits (most significant first) then h bits, as in binary_states.
    bits = np.concatenate([final.v, final.h], axis=1).astype(int)
    index = bits @ (2 ** np.arange(4, -1, -1))
    observed = np.bincount(index, minlength=32)
    expected = n_chains * joint.reshape(-1)
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert chi2 < 70.0  # 31 degrees of freedom: p ≈ 1e-4
    # The means are the conditional means of the final states.
    np.testing.assert_allclose(final.h_mean, rbm.hidden_mean(params, final.v, spec=spec), rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# CD and PCD gradients.


def exact_nll_gradient(params, v, spec):
    def nll(p):
        log_z = rbm.exact_log_partition(p, spec=spec)
        return -jnp.mean(rbm.log_likelihood(p, v, log_z, spec=spec))

    return jax.grad(nll)(params)


def assert_mc_close(per_key_grads, exact, n_sigma=4.5):
    mean = jax.tree.map(lambda g: np.mean(g, 0), per_key_grads)
    stderr = jax.tree.map(lambda g: np.std(g, 0) / np.sqrt(g.shape[0]), per_key_grads)
    for m, s, e in zip(
        jax.tree.leaves(mean), jax.tree.leaves(stderr), jax.tree.leaves(exact), strict=True
    ):
        np.testing.assert_array_less(np.abs(m - e), n_sigma * s + 2e-3)


@pytest.mark.parametrize(
    "visible,hidden",
    [("bernoulli", "bernoulli"), ("gaussian", "bernoulli"), ("bernoulli", "gaussian")],
)
def test_long_chain_cd_gradient_matches_the_exact_gradient(visible, hidden):
    spec = RBMSpec(4, 3, visible=visible, hidden=hidden)
    params = random_params(18, spec, scale=0.8 if hidden == "bernoulli" else 0.3)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((8, 4)) if visible == "gaussian" else rng.integers(0, 2, (8, 4))
    v = v.astype(np.float32)
    exact = exact_nll_gradient(params, v, spec)
    cd = jitted(rbm.cd_gradients, spec=spec, k=25, use_means=False)
    keys = jax.random.split(jax.random.key(0), 3000)
    grads, metrics = jax.vmap(cd, in_axes=(None, None, 0))(params, v, keys)
    assert_mc_close(grads, exact)
    np.testing.assert_allclose(
        metrics["free_energy"][0], np.mean(rbm.free_energy(params, v, spec=spec)), rtol=1e-5
    )
    if spec == RBMSpec(4, 3):
        # CD-1 with mean reconstructions is biased on this model: the check above can fail.
        cd1 = jitted(rbm.cd_gradients, spec=spec, k=1)
        biased, _ = jax.vmap(cd1, in_axes=(None, None, 0))(params, v, keys)
        with pytest.raises(AssertionError):
            assert_mc_close(biased, exact)


def test_pcd_gradient_from_equilibrated_chains_matches_the_exact_gradient():
    spec = RBMSpec(4, 3)
    params = random_params(19, spec, scale=0.8)
    v = np.random.default_rng(1).integers(0, 2, (8, 4)).astype(np.float32)
    exact = exact_nll_gradient(params, v, spec)
    chains0 = np.zeros((16, 4), np.float32)
    pcd = jitted(rbm.pcd_gradients, spec=spec, k=25)
    keys = jax.random.split(jax.random.key(1), 3000)
    grads, chains, _ = jax.vmap(pcd, in_axes=(None, None, None, 0))(params, chains0, v, keys)
    assert chains.shape == (3000, 16, 4)
    assert_mc_close(grads, exact)
    # The returned chains have advanced from all-zeros to the model's marginal p(v_i = 1).
    vs, _, joint = np_joint_bb(params, 4, 3)
    np.testing.assert_allclose(chains.mean((0, 1)), joint.sum(1) @ vs, atol=0.02)
    # The persistent chains are carried on: a second call continues from the returned states.
    grads2, chains2, _ = pcd(params, chains[0], v, jax.random.key(2))
    assert chains2.shape == (16, 4) and set(np.unique(chains2)) <= {0.0, 1.0}


def test_cd_gradient_sign_and_reconstruction_error_on_a_zero_weight_rbm():
    spec = RBMSpec(5, 3)
    params = RBMParams(jnp.zeros((5, 3)), jnp.full((5,), 0.3), jnp.zeros((3,)))
    v = np.ones((4, 5), np.float32)
    grads, metrics = jitted(rbm.cd_gradients, spec=spec)(params, v, jax.random.key(0))
    # With W = 0 the reconstruction is sigmoid(b_v) whatever h is: d/d b_v = -(1 - sigmoid(0.3)).
    p = 1.0 / (1.0 + np.exp(-0.3))
    np.testing.assert_allclose(grads.b_visible, np.full(5, -(1.0 - p)), rtol=1e-5)
    assert np.all(grads.b_visible < 0)  # descent raises the bias towards the all-ones data
    np.testing.assert_allclose(grads.w, np.full((5, 3), -0.5 * (1.0 - p)), rtol=1e-5)
    np.testing.assert_allclose(grads.b_hidden, 0.0, atol=1e-7)
    np.testing.assert_allclose(metrics["reconstruction_error"], 5 * (1.0 - p) ** 2, rtol=1e-5)
    np.testing.assert_allclose(
        rbm.reconstruction_error(params, v, spec=spec), np.full(4, 5 * (1.0 - p) ** 2), rtol=1e-5
    )
    # One optax.sgd step moves b_visible up.
    updates, _ = optax.sgd(0.1).update(grads, optax.sgd(0.1).init(params))
    assert np.all(optax.apply_updates(params, updates).b_visible > 0.3)


def test_reconstruction_error_is_the_deterministic_up_down_pass():
    spec = RBMSpec(4, 3)
    params = random_params(21, spec)
    v = binary_states(4)
    w, bv, bh = np_params(params)
    h = 1 / (1 + np.exp(-(v @ w + bh)))
    v_rec = 1 / (1 + np.exp(-(h @ w.T + bv)))
    np.testing.assert_allclose(
        jitted(rbm.reconstruction_error, spec=spec)(params, v),
        np.sum((v - v_rec) ** 2, 1),
        rtol=1e-5,
    )


# ------------------------------------------------------------------------------------------------
# Training sanity: CD-1 with Optax on binarised digits.


def test_cd1_training_on_digits_improves_reconstruction_and_likelihood():
    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0 > 0.5).astype(np.float32)  # [1797, 64]
    spec = RBMSpec(64, 16)
    params = rbm.init_rbm(jax.random.key(0), spec, scale=0.01, visible_data=x)
    optimizer = optax.sgd(0.1, momentum=0.5)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, opt_state, batch, key):
        grads, metrics = rbm.cd_gradients(params, batch, key, spec=spec, k=1)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    def mean_log_likelihood(params):
        log_z = rbm.exact_log_partition(params, spec=spec)  # 2**16 hidden states
        return float(jnp.mean(rbm.log_likelihood(params, x, log_z, spec=spec)))

    ll_before = mean_log_likelihood(params)
    error_before = float(jnp.mean(rbm.reconstruction_error(params, x, spec=spec)))
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(0)
    key = jax.random.key(1)
    for _ in range(300):
        key, step_key = jax.random.split(key)
        batch = x[rng.choice(len(x), 100, replace=False)]
        params, opt_state, metrics = step(params, opt_state, batch, step_key)
    ll_after = mean_log_likelihood(params)
    error_after = float(jnp.mean(rbm.reconstruction_error(params, x, spec=spec)))
    assert error_after < 0.7 * error_before
    assert ll_after > ll_before + 2.0  # observed: -24.4 -> -20.0 nats
    assert np.isfinite(float(metrics["reconstruction_error"]))


# ------------------------------------------------------------------------------------------------
# Input checks.

BB = RBMSpec(4, 3)
SOFTMAX = RBMSpec(4, 3, visible="softmax")
PARAMS = RBMParams(jnp.zeros((4, 3)), jnp.zeros(4), jnp.zeros(3))
V = np.ones((2, 4), np.float32)
KEY = jax.random.key(0)


def nan_data():
    v = V.copy()
    v[0, 1] = np.nan
    return v


BAD_INPUTS = {
    "spec n_visible 0": (
        lambda: RBMSpec(0, 3),
        ValueError,
        r"RBMSpec.n_visible: expected a positive integer, got 0",
    ),
    "spec float size": (
        lambda: RBMSpec(4.0, 3),
        ValueError,
        r"RBMSpec.n_visible: expected a positive integer, got 4.0",
    ),
    "spec visible unit": (
        lambda: RBMSpec(4, 3, visible="relu"),
        ValueError,
        r"RBMSpec.visible: expected one of .*'softmax'.*got 'relu'",
    ),
    "spec hidden unit": (
        lambda: RBMSpec(4, 3, hidden="softmax"),
        ValueError,
        r"RBMSpec.hidden: expected one of .*got 'softmax'",
    ),
    "spec type": (
        lambda: rbm.free_energy(PARAMS, V, spec=(4, 3)),
        TypeError,
        r"spec: expected an RBMSpec, got tuple",
    ),
    "rank": (
        lambda: rbm.free_energy(PARAMS, V[None], spec=BB),
        ValueError,
        r"v: expected rank 1 or 2, got shape \(1, 2, 4\)",
    ),
    "last dim": (
        lambda: rbm.hidden_mean(PARAMS, np.ones((2, 5)), spec=BB),
        ValueError,
        r"v: expected last dimension 4, got shape \(2, 5\)",
    ),
    "nan": (
        lambda: rbm.cd_gradients(PARAMS, nan_data(), KEY, spec=BB),
        ValueError,
        r"v: expected finite values, found 1 NaN/inf entries",
    ),
    "bernoulli range": (
        lambda: rbm.cd_gradients(PARAMS, 2 * V, KEY, spec=BB),
        ValueError,
        r"v: expected values in \[0, 1\] for a bernoulli visible layer, "
        r"got values in \[2, 2\]",
    ),
    "negative counts": (
        lambda: rbm.free_energy(PARAMS, -V, spec=SOFTMAX),
        ValueError,
        r"v: expected non-negative integer word counts for a softmax visible "
        r"layer, got a minimum of -1",
    ),
    "fractional counts": (
        lambda: rbm.free_energy(PARAMS, 0.5 * V, spec=SOFTMAX),
        ValueError,
        r"v: expected non-negative integer word counts .*got 0.5",
    ),
    "pcd chains range": (
        lambda: rbm.pcd_gradients(PARAMS, 3 * V, V, KEY, spec=BB),
        ValueError,
        r"chains: expected values in \[0, 1\] for a bernoulli visible layer",
    ),
    "k 0 cd": (
        lambda: rbm.cd_gradients(PARAMS, V, KEY, spec=BB, k=0),
        ValueError,
        r"k: expected a positive integer, got 0",
    ),
    "k 0 pcd": (
        lambda: rbm.pcd_gradients(PARAMS, V, V, KEY, spec=BB, k=0),
        ValueError,
        r"k: expected a positive integer, got 0",
    ),
    "k float gibbs": (
        lambda: rbm.gibbs_chain(PARAMS, V, KEY, spec=BB, k=2.0),
        ValueError,
        r"k: expected a positive integer, got 2.0",
    ),
    "use_means": (
        lambda: rbm.gibbs_chain(PARAMS, V, KEY, spec=BB, k=1, use_means=1),
        TypeError,
        r"use_means: expected a Python bool",
    ),
    "params w shape": (
        lambda: rbm.free_energy(PARAMS._replace(w=jnp.zeros((3, 4))), V, spec=BB),
        ValueError,
        r"params.w: expected shape \(4, 3\) for n_visible=4, "
        r"n_hidden=3, got \(3, 4\)",
    ),
    "params b_hidden shape": (
        lambda: rbm.free_energy(PARAMS._replace(b_hidden=jnp.zeros(4)), V, spec=BB),
        ValueError,
        r"params.b_hidden: expected shape \(3,\) for n_visible=4, n_hidden=3, got \(4,\)",
    ),
    "params type": (
        lambda: rbm.free_energy((1, 2, 3), V, spec=BB),
        TypeError,
        r"params: expected an RBMParams",
    ),
    "hidden range": (
        lambda: rbm.visible_mean(PARAMS, np.full((2, 3), 1.5), spec=BB),
        ValueError,
        r"h: expected values in \[0, 1\] for a bernoulli hidden layer",
    ),
    "energy batch": (
        lambda: rbm.energy(PARAMS, V, np.ones((3, 3)), spec=BB),
        ValueError,
        r"v and h: expected the same batch shape, got \(2, 4\) and \(3, 3\)",
    ),
    "total_counts missing": (
        lambda: rbm.visible_mean(PARAMS, np.ones((2, 3)), spec=SOFTMAX),
        ValueError,
        r"total_counts: required for a softmax visible layer",
    ),
    "total_counts unused": (
        lambda: rbm.sample_visible(PARAMS, np.ones((2, 3)), KEY, spec=BB, total_counts=3),
        ValueError,
        r"total_counts: only a softmax visible layer takes total_counts",
    ),
    "total_counts shape": (
        lambda: rbm.visible_mean(PARAMS, np.ones((2, 3)), spec=SOFTMAX, total_counts=[1, 2, 3]),
        ValueError,
        r"total_counts: expected shape \(\) or \(2,\), got \(3,\)",
    ),
    "total_counts fraction": (
        lambda: rbm.visible_mean(PARAMS, np.ones((2, 3)), spec=SOFTMAX, total_counts=2.5),
        ValueError,
        r"total_counts: expected non-negative integer document lengths, got 2.5",
    ),
    "exact too big": (
        lambda: rbm.exact_log_partition(
            RBMParams(jnp.zeros((21, 22)), jnp.zeros(21), jnp.zeros(22)), spec=RBMSpec(21, 22)
        ),
        ValueError,
        r"the visible layer has 21 units; enumerating 2\*\*21 states needs at most 20",
    ),
    "exact impossible": (
        lambda: rbm.exact_log_partition(PARAMS, spec=RBMSpec(4, 3, "gaussian", "gaussian")),
        ValueError,
        r"cannot enumerate a gaussian-visible, gaussian-hidden RBM",
    ),
    "exact side": (
        lambda: rbm.exact_log_partition(PARAMS, spec=RBMSpec(4, 3, "gaussian"), side="visible"),
        ValueError,
        r"side: cannot enumerate the visible layer: its units are 'gaussian'",
    ),
    "exact softmax length": (
        lambda: rbm.exact_log_partition(PARAMS, spec=SOFTMAX),
        ValueError,
        r"total_counts: required for a softmax visible layer",
    ),
    "ais betas": (
        lambda: rbm.ais_log_partition(PARAMS, KEY, spec=BB, betas=[0.0, 0.5]),
        ValueError,
        r"betas: expected a non-decreasing schedule from 0 to 1",
    ),
    "ais chains": (
        lambda: rbm.ais_log_partition(PARAMS, KEY, spec=BB, num_chains=0),
        ValueError,
        r"num_chains: expected a positive integer, got 0",
    ),
    "log_z shape": (
        lambda: rbm.log_likelihood(PARAMS, V, np.zeros(3), spec=BB),
        ValueError,
        r"log_z: expected shape \(\) or \(2,\), got \(3,\)",
    ),
    "init scale": (
        lambda: rbm.init_rbm(KEY, BB, scale=-1.0),
        ValueError,
        r"scale: expected a finite value ≥ 0, got -1.0",
    ),
    "init data": (
        lambda: rbm.init_rbm(KEY, BB, visible_data=2 * V),
        ValueError,
        r"visible_data: expected values in \[0, 1\] for a bernoulli visible layer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_inputs_raise_named_errors(case):
    fn, error, match = BAD_INPUTS[case]
    with pytest.raises(error, match=match):
        fn()


def test_shape_checks_run_under_jit_and_value_checks_skip_tracers():
    cd = jitted(rbm.cd_gradients, spec=BB)
    with pytest.raises(ValueError, match=r"v: expected last dimension 4, got shape \(2, 5\)"):
        cd(PARAMS, np.ones((2, 5), np.float32), KEY)
    with pytest.raises(ValueError, match=r"params.w: expected shape \(4, 3\)"):
        cd(PARAMS._replace(w=jnp.zeros((4, 2))), V, KEY)
    # Values are only checked eagerly: under jit the tracer passes (check data before jit).
    grads, _ = cd(PARAMS, 2 * V, KEY)
    assert grads.w.shape == (4, 3)


def _bb_sweep_matrices(params, n_v, n_h):
    """Exact P(h | v) [v, h] and P(v' | h) [h, v'] of a small Bernoulli RBM, by enumeration."""
    w, bv, bh = np_params(params)
    vs, hs = binary_states(n_v), binary_states(n_h)
    p_h = 1 / (1 + np.exp(-(vs @ w + bh)))  # [v, n_h]
    p_h_given_v = np.prod(np.where(hs[None] == 1, p_h[:, None], 1 - p_h[:, None]), -1)
    p_v = 1 / (1 + np.exp(-(hs @ w.T + bv)))  # [h, n_v]
    p_v_given_h = np.prod(np.where(vs[None] == 1, p_v[:, None], 1 - p_v[:, None]), -1)
    return vs, hs, p_h_given_v, p_v_given_h, p_v


def test_gibbs_chain_takes_exactly_k_sweeps():
    """From v = 0 the state after k sweeps has row 0 of T^k (T = P(h|v) P(v'|h)): a chain one
    sweep short would follow T^(k-1), which this far from equilibrium is far off."""
    spec = RBMSpec(3, 2)
    params = random_params(17, spec, scale=2.0)
    _, _, p_h_given_v, p_v_given_h, _ = _bb_sweep_matrices(params, 3, 2)
    sweep = p_h_given_v @ p_v_given_h
    n_chains = 40_000
    for k in (1, 2, 3):
        final = jitted(rbm.gibbs_chain, spec=spec, k=k)(
            params, np.zeros((n_chains, 3), np.float32), jax.random.key(k)
        )
        observed = np.bincount(np.asarray(final.v).astype(int) @ [4, 2, 1], minlength=8)
        expected = n_chains * np.linalg.matrix_power(sweep, k)[0]
        chi2 = np.sum((observed - expected) ** 2 / expected)
        assert chi2 < 30.0, (k, chi2)  # 7 degrees of freedom: p ≈ 1e-4


def test_cd_k_reconstruction_error_is_the_first_sweep_s():
    """With k = 3 the metric is still E_h~p(h|v) ‖v - E[v|h]‖² of the data's own sweep, not the
    chain's last one (k = 1 cannot tell the two apart)."""
    spec = RBMSpec(3, 2)
    params = random_params(5, spec, scale=2.0)
    vs, _, p_h_given_v, _, p_v = _bb_sweep_matrices(params, 3, 2)
    error = np.sum((vs[:, None, :] - p_v[None]) ** 2, -1)  # [v, h]: ‖v - E[v|h]‖²
    exact = np.sum(p_h_given_v * error, -1)  # [v]
    spread = np.sum(p_h_given_v * error**2, -1) - exact**2
    v = np.repeat(vs[[1, 6]], 4000, axis=0).astype(np.float32)  # two patterns, 4000 copies each
    _, metrics = jitted(rbm.cd_gradients, spec=spec, k=3)(params, v, jax.random.key(0))
    want = exact[[1, 6]].mean()
    standard_error = np.sqrt(spread[[1, 6]].mean() / len(v))
    assert abs(float(metrics["reconstruction_error"]) - want) < 4 * standard_error
