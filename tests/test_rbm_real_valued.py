"""Tests for jaxae.rbm's real-valued units: noisy rectified (nrelu) hidden units and Gaussian
visible units with learned variances, each against summation, quadrature or closed forms."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp as np_logsumexp
from scipy.stats import norm

from jaxae import rbm
from jaxae.rbm import RBMParams, RBMSpec

jax.config.update("jax_numpy_rank_promotion", "raise")


def jitted(fn, **static):
    return jax.jit(functools.partial(fn, **static))


def binary_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_params(seed, spec, scale=1.0, bias_scale=0.5, log_var_scale=0.5):
    rng = np.random.default_rng(seed)
    log_var = None
    if spec.visible == "gaussian_learned_var":
        log_var = jnp.asarray(log_var_scale * rng.standard_normal(spec.n_visible), jnp.float32)
    return RBMParams(
        jnp.asarray(scale * rng.standard_normal((spec.n_visible, spec.n_hidden)), jnp.float32),
        jnp.asarray(bias_scale * rng.standard_normal(spec.n_visible), jnp.float32),
        jnp.asarray(bias_scale * rng.standard_normal(spec.n_hidden), jnp.float32),
        log_var,
    )


def np_ssu_log_sum(x, terms=400):
    """Σ_{i=1}^{terms} log(1 + e^{x - i + ½}) in float64: the step-sigmoid unit by brute force."""
    i = np.arange(1, terms + 1)
    return np.sum(np.logaddexp(0.0, np.asarray(x, np.float64)[..., None] - i + 0.5), -1)


def np_log_qpoch(n):
    return np.array([np.sum(np.log1p(-np.exp(-np.arange(1, int(k) + 1)))) for k in n.ravel()])


def np_energy_learned_var(params, v, h):
    """Cho et al. (2011) eq. 2: Σ (v - b)²/2σ² - c·h - (v/σ²)ᵀ W h (NumPy, float64)."""
    w, bv, bh, z = (np.asarray(x, np.float64) for x in params)
    inv_var = np.exp(-z)
    e_v = 0.5 * np.sum((v - bv) ** 2 * inv_var, -1)
    return e_v - h @ bh - np.einsum("...i,ij,...j->...", v * inv_var, w, h)


def grid(low, high, n, dims):
    step = (high - low) / n
    axis = low + step * (np.arange(n) + 0.5)
    points = np.stack(np.meshgrid(*([axis] * dims), indexing="ij"), -1).reshape(-1, dims)
    return points, step**dims


NRELU = RBMSpec(4, 2, hidden="nrelu")
LEARNED = RBMSpec(2, 3, visible="gaussian_learned_var")


# ------------------------------------------------------------------------------------------------
# Noisy rectified linear hidden units.


def test_nrelu_free_energy_is_the_step_sigmoid_sum():
    params = random_params(0, NRELU, scale=3.0, bias_scale=4.0)  # inputs spread over ±10
    v = binary_states(4)
    w, _, bh = (np.asarray(x, np.float64) for x in params[:3])
    bv = np.asarray(params.b_visible, np.float64)
    x = v @ w + bh
    assert x.min() < -3 and x.max() > 3
    expected = -(v @ bv) - np.sum(np_ssu_log_sum(x), -1)
    got = jitted(rbm.free_energy, spec=NRELU)(params, v)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # Its input derivative (the CD statistic) is Σ_i sigmoid(x - i + ½) ≈ softplus(x).
    xs = jnp.linspace(-4.0, 12.0, 9)
    grad = jax.vmap(jax.grad(lambda t: rbm._ssu_log_sum(t)))(xs)
    i = np.arange(1, 400)
    exact = np.sum(1 / (1 + np.exp(-(np.asarray(xs)[:, None] - i + 0.5))), 1)
    np.testing.assert_allclose(grad, exact, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, np.logaddexp(0, np.asarray(xs)), atol=0.05)


def test_nrelu_free_energy_matches_summation_over_counts_of_the_energy():
    # F(v) = -log Σ_{n1, n2 ≥ 0} exp(-E(v, n)): counts of active copies, summed to 40 each.
    params = random_params(1, NRELU, scale=1.0)
    v = binary_states(4)[[0, 5, 15]]
    counts = np.array(list(itertools.product(range(41), repeat=2)), np.float64)
    w, bv, bh = (np.asarray(x, np.float64) for x in params[:3])
    x = v @ w + bh
    # Independent reference: E_h(n) = -c n + n²/2 + log Π_{k≤n}(1 - e^{-k}).
    log_q = np_log_qpoch(counts).reshape(counts.shape)
    neg_e = (v @ bv)[:, None] + (x @ counts.T) - np.sum(0.5 * counts**2 + log_q, -1)[None]
    expected = -np_logsumexp(neg_e, axis=1)
    np.testing.assert_allclose(jitted(rbm.free_energy, spec=NRELU)(params, v), expected, rtol=1e-5)
    # The library's energy agrees with the reference energy on the same count states.
    vv = np.repeat(v[:1], 7, 0)
    e = jitted(rbm.energy, spec=NRELU)(params, vv, counts[:7])
    np.testing.assert_allclose(-e, neg_e[0, :7], rtol=1e-5, atol=1e-5)


def test_nrelu_deterministic_pass_and_sampling_moments():
    spec = RBMSpec(3, 4, hidden="nrelu")
    params = RBMParams(jnp.zeros((3, 4)), jnp.zeros(3), jnp.array([-1.5, 0.0, 0.7, 3.0]))
    v = np.zeros((40000, 3), np.float32)
    np.testing.assert_allclose(
        jitted(rbm.hidden_mean, spec=spec)(params, v[:2]), [[0.0, 0.0, 0.7, 3.0]] * 2
    )
    h = jitted(rbm.sample_hidden, spec=spec)(params, v, jax.random.key(0))
    x = np.array([-1.5, 0.0, 0.7, 3.0])
    s = np.sqrt(1 / (1 + np.exp(-x)))  # sigmoid(x) is the variance
    # max(0, X), X ~ N(x, s²): mean x Φ(x/s) + s φ(x/s), P(0) = Φ(-x/s).
    np.testing.assert_allclose(h.mean(0), x * norm.cdf(x / s) + s * norm.pdf(x / s), atol=0.01)
    np.testing.assert_allclose((h == 0).mean(0), norm.cdf(-x / s), atol=0.01)
    assert float(h.min()) == 0.0
    # The up-down pass uses max(0, x): with W = 0 the reconstruction is sigmoid(b_v) = ½.
    np.testing.assert_allclose(
        rbm.reconstruction_error(params, v[:1] + 1.0, spec=spec), [3 * 0.25], rtol=1e-6
    )


def test_nrelu_cd_positive_phase_is_the_step_sigmoid_mean_and_long_cd_is_close():
    params = random_params(2, NRELU, scale=0.5)
    v = np.random.default_rng(0).integers(0, 2, (8, 4)).astype(np.float32)
    w, _, bh = (np.asarray(x, np.float64) for x in params[:3])
    i = np.arange(1, 200)
    mean_h = np.sum(1 / (1 + np.exp(-((v @ w + bh)[..., None] - i + 0.5))), -1)
    grads = jax.grad(lambda p: jnp.mean(rbm.free_energy(p, v, spec=NRELU)))(params)
    np.testing.assert_allclose(grads.w, -v.T @ mean_h / 8, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads.b_hidden, -mean_h.mean(0), rtol=1e-5, atol=1e-6)

    def nll(p):
        log_z = rbm.exact_log_partition(p, spec=NRELU)  # enumerates the 16 visible states
        return -jnp.mean(rbm.log_likelihood(p, v, log_z, spec=NRELU))

    exact = jax.grad(nll)(params)
    cd = jitted(rbm.cd_gradients, spec=NRELU, k=20, use_means=False)
    keys = jax.random.split(jax.random.key(0), 2000)
    est, _ = jax.vmap(cd, in_axes=(None, None, 0))(params, v, keys)
    # NReLU sampling approximates the step-sigmoid conditional, so the agreement is approximate
    # (observed: within 0.1 per entry, gradients of norm ~1, the same direction).
    got = np.concatenate([np.mean(g, 0).ravel() for g in jax.tree.leaves(est)])
    want = np.concatenate([np.ravel(e) for e in jax.tree.leaves(exact)])
    np.testing.assert_allclose(got, want, atol=0.15)
    assert got @ want / (np.linalg.norm(got) * np.linalg.norm(want)) > 0.95
    pcd = jitted(rbm.pcd_gradients, spec=NRELU, k=2)
    g, chains, _ = pcd(params, v, v, jax.random.key(1))
    assert chains.shape == (8, 4) and np.isfinite(np.asarray(g.w)).all()


@pytest.mark.parametrize("scale", [0.3, 0.8])
def test_nrelu_ais_matches_enumeration(scale):
    spec = RBMSpec(8, 3, hidden="nrelu")
    params = random_params(3, spec, scale=scale)
    exact = float(rbm.exact_log_partition(params, spec=spec))
    estimate, stats = rbm.ais_log_partition(params, jax.random.key(0), spec=spec, num_betas=2000)
    # AIS samples the step-sigmoid units exactly (a count of independent copies), so the exact
    # log Z is inside its ±3σ bracket; with Nair & Hinton's Gaussian approximation it was 0.44
    # nats low at scale 0.8, outside the bracket, and more steps did not help.
    assert float(stats["log_z_lower"]) <= exact <= float(stats["log_z_upper"])
    assert abs(float(estimate) - exact) < 0.05


# ------------------------------------------------------------------------------------------------
# Gaussian visible units with learned variances (Cho et al. 2011).


def test_learned_var_energy_and_free_energy_match_numpy_and_enumeration():
    params = random_params(4, LEARNED)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((5, 2))
    hs = binary_states(3)
    h = hs[rng.integers(0, 8, 5)]
    got = jitted(rbm.energy, spec=LEARNED)(params, v, h)
    np.testing.assert_allclose(got, np_energy_learned_var(params, v, h), rtol=1e-5)
    expected = -np_logsumexp(-np_energy_learned_var(params, v[:, None], hs[None]), axis=1)
    np.testing.assert_allclose(
        jitted(rbm.free_energy, spec=LEARNED)(params, v), expected, rtol=1e-5
    )
    # p(h_j = 1 | v) by enumeration of the 8 hidden states.
    neg_e = -np_energy_learned_var(params, v[:, None], hs[None])
    p = np.exp(neg_e - np_logsumexp(neg_e, axis=1, keepdims=True))
    np.testing.assert_allclose(
        jitted(rbm.hidden_mean, spec=LEARNED)(params, v), p @ hs, rtol=1e-5, atol=1e-6
    )


def test_learned_var_visible_conditional_matches_quadrature_and_samples():
    params = random_params(5, LEARNED, log_var_scale=1.0)
    hs = binary_states(3)[[0, 3, 7]]
    vs, volume = grid(-15.0, 15.0, 700, 2)
    neg_e = -np_energy_learned_var(params, vs[None], hs[:, None])  # [h, v]
    p = np.exp(neg_e - np_logsumexp(neg_e, axis=1, keepdims=True))
    mean = p @ vs
    var = p @ vs**2 - mean**2
    np.testing.assert_allclose(
        jitted(rbm.visible_mean, spec=LEARNED)(params, hs), mean, rtol=1e-4, atol=1e-4
    )
    sigma = np.asarray(rbm.visible_std(params, spec=LEARNED))
    np.testing.assert_allclose(np.exp(np.asarray(params.log_var)) / 1.0, sigma**2, rtol=1e-6)
    np.testing.assert_allclose(var, np.broadcast_to(sigma**2, var.shape), rtol=1e-3)
    samples = jitted(rbm.sample_visible, spec=LEARNED)(
        params, np.tile(hs[1], (20000, 1)), jax.random.key(0)
    )
    np.testing.assert_allclose(samples.std(0), sigma, rtol=0.03)
    np.testing.assert_allclose(samples.mean(0), mean[1], atol=0.05 * sigma.max())


def test_learned_var_exact_log_partition_matches_quadrature():
    params = random_params(6, LEARNED, scale=0.7)
    vs, volume = grid(-15.0, 15.0, 700, 2)
    neg_e = -np_energy_learned_var(params, vs[:, None], binary_states(3)[None])
    expected = np_logsumexp(neg_e) + np.log(volume)
    got = jitted(rbm.exact_log_partition, spec=LEARNED)(params)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_learned_var_positive_phase_gradient_is_cho_et_al_closed_form():
    params = random_params(7, LEARNED)
    v = np.random.default_rng(1).standard_normal((6, 2)).astype(np.float32)
    w, bv, bh, z = (np.asarray(x, np.float64) for x in params)
    h = 1 / (1 + np.exp(-((v / np.exp(z)) @ w + bh)))
    # ∂F/∂z_i = -e^{-z_i} (½(v_i - b_i)² - v_i Σ_j w_ij h_j), averaged over the batch.
    expected = -np.exp(-z) * np.mean(0.5 * (v - bv) ** 2 - v * (h @ w.T), 0)
    grads = jax.grad(lambda p: jnp.mean(rbm.free_energy(p, v, spec=LEARNED)))(params)
    np.testing.assert_allclose(grads.log_var, expected, rtol=1e-5, atol=1e-6)


def test_learned_var_long_chain_cd_gradient_matches_the_exact_gradient():
    spec = RBMSpec(3, 3, visible="gaussian_learned_var")
    params = random_params(8, spec, scale=0.6)
    v = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)

    def nll(p):
        log_z = rbm.exact_log_partition(p, spec=spec)
        return -jnp.mean(rbm.log_likelihood(p, v, log_z, spec=spec))

    exact = jax.grad(nll)(params)
    cd = jitted(rbm.cd_gradients, spec=spec, k=25, use_means=False)
    keys = jax.random.split(jax.random.key(0), 3000)
    grads, _ = jax.vmap(cd, in_axes=(None, None, 0))(params, v, keys)
    assert grads.log_var.shape == (3000, 3)
    for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(exact), strict=True):
        stderr = np.std(g, 0) / np.sqrt(g.shape[0])
        np.testing.assert_array_less(np.abs(np.mean(g, 0) - e), 4.5 * stderr + 2e-3)


def test_learned_var_ais_and_init_and_affine():
    spec = RBMSpec(5, 4, visible="gaussian_learned_var")
    params = random_params(9, spec, scale=0.3)
    exact = rbm.exact_log_partition(params, spec=spec)
    estimate, _ = rbm.ais_log_partition(params, jax.random.key(0), spec=spec, num_betas=3000)
    assert abs(float(estimate) - float(exact)) < 0.1
    data = np.random.default_rng(0).normal([0, 1, 2, 3, 4], [1, 2, 0.5, 3, 0], (500, 5))
    init = rbm.init_rbm(jax.random.key(0), spec, visible_data=data)
    np.testing.assert_allclose(init.b_visible, data.mean(0), rtol=1e-5, atol=1e-6)
    var = np.maximum(data.var(0), 1e-4)  # the constant feature is floored at min_std = 1e-2
    np.testing.assert_allclose(init.log_var, np.log(var), rtol=1e-4, atol=1e-4)
    assert rbm.init_rbm(jax.random.key(0), spec).log_var.shape == (5,)
    assert rbm.init_rbm(jax.random.key(0), RBMSpec(5, 4)).log_var is None
    w, b = rbm.hidden_affine(params, spec=spec)
    x = data[:3].astype(np.float32)
    np.testing.assert_allclose(
        jax.nn.sigmoid(x @ w + b[None]), rbm.hidden_mean(params, x, spec=spec), rtol=1e-5
    )


# ------------------------------------------------------------------------------------------------
# Standardisation.


def test_standardization_round_trip_and_constant_features():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (200, 4)).astype(np.float32)
    x[:, 0] = 0.0  # an MNIST border pixel
    stats = rbm.fit_standardization(x)
    np.testing.assert_allclose(stats.std[0], 1e-2)
    z = jax.jit(rbm.standardize)(x, stats)
    np.testing.assert_array_equal(z[:, 0], 0.0)
    np.testing.assert_allclose(z[:, 1:].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, 1:].std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(rbm.unstandardize)(z, stats), x, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"x: 1 features have zero variance \(indices \[0\]\)"):
        rbm.fit_standardization(x, min_std=0.0)


# ------------------------------------------------------------------------------------------------
# Input checks.

LEARNED_PARAMS = RBMParams(jnp.zeros((2, 3)), jnp.zeros(2), jnp.zeros(3), jnp.zeros(2))
STATS = rbm.Standardization(jnp.zeros(2), jnp.ones(2))

BAD_INPUTS = {
    "log_var missing": (
        lambda: rbm.free_energy(
            LEARNED_PARAMS._replace(log_var=None), np.ones((1, 2)), spec=LEARNED
        ),
        ValueError,
        r"params.log_var: a 'gaussian_learned_var' visible layer needs per-unit log-variances",
    ),
    "log_var shape": (
        lambda: rbm.free_energy(
            LEARNED_PARAMS._replace(log_var=jnp.zeros(3)), np.ones((1, 2)), spec=LEARNED
        ),
        ValueError,
        r"params.log_var: expected shape \(2,\) for n_visible=2, got \(3,\)",
    ),
    "log_var nan": (
        lambda: rbm.free_energy(
            LEARNED_PARAMS._replace(log_var=jnp.array([0.0, jnp.nan])),
            np.ones((1, 2)),
            spec=LEARNED,
        ),
        ValueError,
        r"params.log_var: expected finite values, found 1 NaN/inf",
    ),
    "log_var unused": (
        lambda: rbm.free_energy(LEARNED_PARAMS, np.ones((1, 2)), spec=RBMSpec(2, 3)),
        ValueError,
        r"params.log_var: only a 'gaussian_learned_var' visible layer has log-variances",
    ),
    "nan data": (
        lambda: rbm.cd_gradients(
            LEARNED_PARAMS, np.array([[0.0, np.nan]]), jax.random.key(0), spec=LEARNED
        ),
        ValueError,
        r"v: expected finite values",
    ),
    "nrelu negative h": (
        lambda: rbm.visible_mean(
            RBMParams(jnp.zeros((4, 2)), jnp.zeros(4), jnp.zeros(2)), -np.ones((1, 2)), spec=NRELU
        ),
        ValueError,
        r"h: expected non-negative values for an nrelu hidden layer, got a minimum of -1",
    ),
    "nrelu energy counts": (
        lambda: rbm.energy(
            RBMParams(jnp.zeros((4, 2)), jnp.zeros(4), jnp.zeros(2)),
            np.ones((1, 4)),
            np.full((1, 2), 0.5),
            spec=NRELU,
        ),
        ValueError,
        r"h: expected non-negative integer counts of active copies .*got 0.5",
    ),
    "std negative": (
        lambda: rbm.standardize(np.ones((3, 2)), STATS._replace(std=jnp.array([1.0, -1.0]))),
        ValueError,
        r"stats.std: expected positive standard deviations, got a minimum of -1",
    ),
    "standardize shape": (
        lambda: rbm.unstandardize(np.ones((3, 5)), STATS),
        ValueError,
        r"z: expected last dimension 2, got shape \(3, 5\)",
    ),
    "fit nan": (
        lambda: rbm.fit_standardization(np.array([[1.0, np.nan], [0.0, 1.0]])),
        ValueError,
        r"x: expected finite values, found 1 NaN/inf",
    ),
    "fit rank": (
        lambda: rbm.fit_standardization(np.ones(5)),
        ValueError,
        r"x: expected rank 2, got shape \(5,\)",
    ),
    "fit min_std": (
        lambda: rbm.fit_standardization(np.ones((3, 2)), min_std=-1.0),
        ValueError,
        r"min_std: expected a finite value ≥ 0, got -1.0",
    ),
    "visible_std bernoulli": (
        lambda: rbm.visible_std(
            RBMParams(jnp.zeros((4, 2)), jnp.zeros(4), jnp.zeros(2)), spec=NRELU
        ),
        ValueError,
        r"visible_std needs a Gaussian visible layer, got 'bernoulli'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_inputs_raise_named_errors(case):
    fn, error, match = BAD_INPUTS[case]
    with pytest.raises(error, match=match):
        fn()


def test_cd1_on_standardised_digits_with_learned_variances_and_rectified_hiddens():
    import optax
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)  # [1797, 64], two constant border pixels
    stats = rbm.fit_standardization(x)
    z = np.asarray(rbm.standardize(x, stats))
    spec = RBMSpec(64, 32, visible="gaussian_learned_var", hidden="nrelu")
    # log_var = 0 (unit variance: the data are standardised). Initialising it from the data
    # instead gives the constant border pixels σ = 1e-2 in standardised units, whose 1/σ² = 1e4
    # input scaling diverges at this rate. The variances learn at a tenth of the rate.
    params = rbm.init_rbm(jax.random.key(0), spec, scale=0.01)
    labels = RBMParams("fast", "fast", "fast", "slow")
    optimizer = optax.multi_transform(
        {"fast": optax.sgd(1e-3, momentum=0.9), "slow": optax.sgd(1e-4, momentum=0.9)}, labels
    )

    @jax.jit
    def step(params, opt_state, batch, key):
        grads, metrics = rbm.cd_gradients(params, batch, key, spec=spec, k=1)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    error_before = float(jnp.mean(rbm.reconstruction_error(params, z, spec=spec)))
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(0)
    key = jax.random.key(1)
    for _ in range(300):
        key, step_key = jax.random.split(key)
        params, opt_state, _ = step(params, opt_state, z[rng.choice(len(z), 100)], step_key)
    error_after = float(jnp.mean(rbm.reconstruction_error(params, z, spec=spec)))
    assert np.isfinite(np.asarray(params.log_var)).all()
    assert error_after < 0.6 * error_before  # observed: 60.8 -> ~25


def test_hinton_rbm_optimizer_real_valued_rates_and_slower_log_variances():
    from jaxae.recipes import hinton_rbm_optimizer, rbm_optimizer
    from jaxae.recipes.rbm_stack import LOG_VAR_RATE_FACTOR, REAL_VALUED_LEARNING_RATE

    spec = RBMSpec(3, 2, visible="gaussian_learned_var", hidden="nrelu")
    params = rbm.init_rbm(jax.random.key(0), spec, scale=0.5)
    grads = jax.tree.map(jnp.ones_like, params)
    rate = REAL_VALUED_LEARNING_RATE
    updates, _ = jax.jit(hinton_rbm_optimizer(spec, 10).update)(
        grads, hinton_rbm_optimizer(spec, 10).init(params), params
    )
    # First SGD step: -rate * (g + 2e-4 w) on w, -rate * g on the biases, a tenth on log_var.
    np.testing.assert_allclose(updates.w, -rate * (1 + 2e-4 * params.w), rtol=1e-5)
    np.testing.assert_allclose(updates.b_hidden, -rate * np.ones(2), rtol=1e-5)
    np.testing.assert_allclose(updates.log_var, -rate * LOG_VAR_RATE_FACTOR * np.ones(3), rtol=1e-5)
    # A binary layer keeps the paper's 0.1; the linear top layer 0.001.
    binary = RBMSpec(3, 2)
    p = rbm.init_rbm(jax.random.key(1), binary)
    g = jax.tree.map(jnp.ones_like, p)
    opt = hinton_rbm_optimizer(binary, 10)
    np.testing.assert_allclose(opt.update(g, opt.init(p), p)[0].b_visible, -0.1 * np.ones(3))
    top = RBMSpec(3, 2, visible="gaussian", hidden="gaussian")
    opt = hinton_rbm_optimizer(top, 10)
    np.testing.assert_allclose(opt.update(g, opt.init(p), p)[0].b_visible, -1e-3 * np.ones(3))
    # Both separate rates at once; a rate of 0 is refused by name.
    opt = rbm_optimizer(0.1, hidden_bias_learning_rate=0.2, log_var_learning_rate=0.01)
    u = opt.update(grads, opt.init(params), params)[0]
    np.testing.assert_allclose(u.b_hidden, -0.2 * np.ones(2), rtol=1e-6)
    np.testing.assert_allclose(u.log_var, -0.01 * np.ones(3), rtol=1e-6)
    np.testing.assert_allclose(u.b_visible, -0.1 * np.ones(3), rtol=1e-6)
    with pytest.raises(ValueError, match="log_var_learning_rate: expected > 0 or None, got 0"):
        rbm_optimizer(0.1, log_var_learning_rate=0)
