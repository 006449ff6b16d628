import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

from jaxae import variational as V
from jaxae.losses import sigmoid_cross_entropy


def _jit(fn, **static):
    """``fn`` with its keywords bound, through ``jax.jit`` (the model argument is static)."""
    return jax.jit(functools.partial(fn, **static), static_argnums=0)


# --- Tiny models whose exact log-likelihood is known ------------------------------------------


@dataclasses.dataclass(frozen=True)
class BernoulliToy:
    """z ~ N(0, 1) (1-D), x_i | z ~ Bernoulli(sigmoid(w_i z + b_i)); a linear Gaussian encoder."""

    def posterior(self, params, x):
        mean = x @ params["enc_mean"] + params["c_mean"][None, :]
        return mean, x @ params["enc_logvar"] + params["c_lv"][None, :]

    def decode(self, params, z, *, logits=False):
        out = z @ params["w"] + params["b"][None, :]
        return out if logits else jax.nn.sigmoid(out)


def _bernoulli_toy_params(encoder_scale=0.0):
    w = jnp.array([[2.0, -1.5, 1.0, 3.0]])
    return {
        "w": w,
        "b": jnp.array([0.5, -0.5, 0.0, 1.0]),
        "enc_mean": encoder_scale * w.T,
        "enc_logvar": jnp.zeros((4, 1)),
        "c_mean": jnp.zeros((1,)),
        "c_lv": jnp.zeros((1,)),
    }


def _bernoulli_toy_exact_log_likelihood(params, x):
    """log ∫ N(z; 0, 1) Π_i Bern(x_i | σ(w_i z + b_i)) dz by the trapezoid rule in float64."""
    z = np.linspace(-12.0, 12.0, 48_001)
    w, b = np.asarray(params["w"], np.float64)[0], np.asarray(params["b"], np.float64)
    logits = z[:, None] * w[None, :] + b[None, :]
    out = []
    for row in np.asarray(x, np.float64):
        log_px_z = np.sum(row * logits - np.logaddexp(0.0, logits), axis=1)
        integrand = np.exp(log_px_z + stats.norm.logpdf(z))
        out.append(np.log(np.trapezoid(integrand, z)))
    return np.array(out)


@dataclasses.dataclass(frozen=True)
class LinearGaussian:
    """z ~ N(0, I_2), x | z ~ N(W z + b, s² I_3): p(x) = N(b, W Wᵀ + s² I) in closed form.

    The encoder is the exact posterior (diagonal because W has orthogonal columns) plus an
    optional shift of its mean, so the importance weights are constant when the shift is zero.
    """

    w: tuple = ((1.0, 0.0), (0.0, 2.0), (0.0, 0.0))
    b: tuple = (0.5, -1.0, 0.2)
    noise_std: float = 0.5
    shift: float = 0.0

    def _wb(self):
        return jnp.array(self.w), jnp.array(self.b)

    def posterior(self, params, x):
        w, b = self._wb()
        precision = 1.0 + jnp.sum(w * w, axis=0) / self.noise_std**2  # diagonal: WᵀW diagonal
        mean = ((x - b[None, :]) @ w) / self.noise_std**2 / precision[None, :]
        log_variance = jnp.broadcast_to(-jnp.log(precision), mean.shape)
        return mean + self.shift * params["scale"], log_variance

    def decode(self, params, z, *, logits=False):
        del logits  # a Gaussian decoder: its output is (mean, log_variance) either way
        w, b = self._wb()
        mean = z @ w.T + b[None, :]
        return mean, jnp.full_like(mean, 2 * math.log(self.noise_std))

    def exact_log_likelihood(self, x):
        w, b = np.array(self.w), np.array(self.b)
        cov = w @ w.T + self.noise_std**2 * np.eye(3)
        return stats.multivariate_normal(b, cov).logpdf(np.asarray(x, np.float64))


def gaussian_decoder_ll(out, x):
    return V.gaussian_log_likelihood(*out, x)


LG_PARAMS = {"scale": jnp.ones(())}
LG_X = jnp.array([[0.3, 1.0, -0.4], [-1.0, -2.5, 0.9], [2.0, 0.0, 0.1]])


# --- Densities and divergences ---------------------------------------------------------------


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    log_variance = rng.normal(scale=0.5, size=(3, 4)).astype(np.float32)
    kl = jax.jit(V.gaussian_kl_to_standard_normal)(mean, log_variance)
    var = np.exp(log_variance)
    expected = 0.5 * np.sum(mean**2 + var - 1 - log_variance, axis=1)
    np.testing.assert_allclose(kl, expected, rtol=1e-5)
    # Monte Carlo: E_q[log q(z) - log p(z)] with 200k reparameterised samples.
    z = V.reparameterize(jax.random.key(1), mean, log_variance, num_samples=200_000)
    log_q = V.diagonal_gaussian_log_density(
        z, jnp.broadcast_to(mean, z.shape), jnp.broadcast_to(log_variance, z.shape)
    )
    samples = np.asarray(log_q - V.standard_normal_log_density(z))
    stderr = samples.std(axis=0) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - kl) < 4 * stderr + 1e-4)
    assert float(V.gaussian_kl_to_standard_normal(jnp.zeros((2, 3)), jnp.zeros((2, 3)))[0]) == 0.0


def test_log_densities_match_scipy():
    rng = np.random.default_rng(1)
    z, mean = rng.normal(size=(2, 5, 3)).astype(np.float32)
    log_variance = rng.normal(scale=0.3, size=(5, 3)).astype(np.float32)
    got = jax.jit(V.diagonal_gaussian_log_density)(z, mean, log_variance)
    expected = stats.norm(mean, np.exp(0.5 * log_variance)).logpdf(z).sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(
        jax.jit(V.standard_normal_log_density)(z), stats.norm.logpdf(z).sum(axis=1), rtol=1e-5
    )
    got = jax.jit(V.gaussian_log_likelihood)(mean, log_variance, z)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_log_likelihood_is_minus_cross_entropy_and_stable():
    logits = jnp.array([[-300.0, -2.0, 0.0, 3.0, 300.0]])
    x = jnp.array([[0.0, 1.0, 0.3, 1.0, 1.0]])
    got = jax.jit(V.bernoulli_log_likelihood)(logits, x)
    np.testing.assert_allclose(got, -sigmoid_cross_entropy(logits, x), rtol=1e-6)
    assert np.isfinite(float(got[0]))


# --- Sampling and gradients ------------------------------------------------------------------


def test_reparameterize_moments_and_shapes(key):
    mean = jnp.array([[1.0, -2.0]])
    log_variance = jnp.log(jnp.array([[0.25, 4.0]]))
    z = jax.jit(functools.partial(V.reparameterize, num_samples=100_000))(key, mean, log_variance)
    assert z.shape == (100_000, 1, 2)
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.02)
    np.testing.assert_allclose(z.var(axis=0), jnp.exp(log_variance), rtol=0.02)
    assert V.reparameterize(key, mean, log_variance).shape == (1, 2)


def test_gradients_flow_through_the_reparameterisation(key):
    mean = jnp.array([[0.3, -0.2, 1.0]])
    log_variance = jnp.array([[0.1, -0.5, 0.2]])

    def f(m, lv):
        z = V.reparameterize(key, m, lv, num_samples=4)
        return jnp.sum(jnp.sin(z) * z)

    check_grads(
        jax.jit(f), (mean, log_variance), order=1, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2
    )
    # The ELBO's gradient with respect to every parameter of a model, against finite differences.
    model, params = BernoulliToy(), _bernoulli_toy_params(0.3)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])

    def loss(w, enc_mean, c_lv):
        p = dict(params, w=w, enc_mean=enc_mean, c_lv=c_lv)
        return V.elbo(model, p, x, key, num_samples=3).sum()

    args = (params["w"], params["enc_mean"], params["c_lv"])
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)
    assert all(float(jnp.abs(g).sum()) > 0 for g in grads)
    # Central differences along a random direction (one jitted evaluation per side).
    keys = jax.random.split(jax.random.key(7), 3)
    direction = [jax.random.normal(k, a.shape) for k, a in zip(keys, args, strict=True)]
    eps = 1e-2
    plus = [a + eps * d for a, d in zip(args, direction, strict=True)]
    minus = [a - eps * d for a, d in zip(args, direction, strict=True)]
    loss_jit = jax.jit(loss)
    numeric = (loss_jit(*plus) - loss_jit(*minus)) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(grads, direction, strict=True))
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=1e-2)


# --- Bounds ---------------------------------------------------------------------------------


def test_iwae_with_one_sample_equals_the_sampled_elbo(key):
    model, params = BernoulliToy(), _bernoulli_toy_params(0.5)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    iwae = _jit(V.iwae_bound, num_samples=1)(model, params, x, key)
    elbo = _jit(V.elbo, analytic_kl=False)(model, params, x, key)
    np.testing.assert_allclose(iwae, elbo, rtol=1e-6)
    # The analytic-KL ELBO estimates the same expectation with less variance.
    keys = jax.random.split(key, 4000)
    sampled = jax.jit(jax.vmap(lambda k: V.elbo(model, params, x, k, analytic_kl=False)))(keys)
    analytic = jax.jit(jax.vmap(lambda k: V.elbo(model, params, x, k)))(keys)
    np.testing.assert_allclose(sampled.mean(0), analytic.mean(0), atol=0.05)
    assert np.all(analytic.std(0) < sampled.std(0))


def test_elbo_below_iwae_below_exact_log_likelihood_by_quadrature(key):
    model, params = BernoulliToy(), _bernoulli_toy_params(encoder_scale=0.4)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    exact = _bernoulli_toy_exact_log_likelihood(params, x)
    keys = jax.random.split(key, 2000)

    def mean_bound(k):
        iwae = jax.jit(lambda key: V.iwae_bound(model, params, x, key, num_samples=k))
        return np.asarray(jax.lax.map(iwae, keys)).mean(axis=0)

    elbo = np.asarray(_jit(V.elbo, num_samples=50_000)(model, params, x, key))
    iwae5, iwae50 = mean_bound(5), mean_bound(50)
    assert np.all(elbo < iwae5 - 0.02), (elbo, iwae5)
    assert np.all(iwae5 < iwae50 - 0.005), (iwae5, iwae50)
    assert np.all(iwae50 < exact + 1e-3), (iwae50, exact)
    estimate = V.importance_sampled_log_likelihood(model, params, x, key, num_samples=5000)
    np.testing.assert_allclose(estimate, exact, atol=0.06)  # k = 5000: Monte Carlo error ~0.02


def test_bounds_are_exact_when_q_is_the_true_posterior(key):
    model = LinearGaussian()
    exact = model.exact_log_likelihood(LG_X)
    log_w = _jit(V.importance_log_weights, num_samples=64, log_likelihood=gaussian_decoder_ll)(
        model, LG_PARAMS, LG_X, key
    )
    np.testing.assert_allclose(log_w, np.broadcast_to(exact, log_w.shape), atol=1e-4)
    iwae = _jit(V.iwae_bound, num_samples=3, log_likelihood=gaussian_decoder_ll)
    np.testing.assert_allclose(iwae(model, LG_PARAMS, LG_X, key), exact, atol=1e-4)
    elbo = _jit(V.elbo, analytic_kl=False, log_likelihood=gaussian_decoder_ll)
    np.testing.assert_allclose(elbo(model, LG_PARAMS, LG_X, key), exact, atol=1e-4)
    # Chunks over samples (with a remainder) and over examples (with padding) change nothing.
    estimate = V.importance_sampled_log_likelihood(
        model,
        LG_PARAMS,
        LG_X,
        key,
        num_samples=7,
        samples_per_chunk=3,
        batch_size=2,
        log_likelihood=gaussian_decoder_ll,
    )
    np.testing.assert_allclose(estimate, exact, atol=1e-4)


def test_importance_weight_is_unbiased_for_the_likelihood(key):
    model = LinearGaussian(shift=0.7)  # a wrong posterior mean: weights vary
    exact = model.exact_log_likelihood(LG_X)
    weights = _jit(
        V.importance_log_weights, num_samples=400_000, log_likelihood=gaussian_decoder_ll
    )
    log_w = weights(model, LG_PARAMS, LG_X, key)
    w = np.exp(np.asarray(log_w, np.float64) - exact[None, :])  # w / p(x): mean 1 if unbiased
    stderr = w.std(axis=0) / np.sqrt(w.shape[0])
    assert np.all(np.abs(w.mean(axis=0) - 1.0) < 4 * stderr), (w.mean(axis=0), stderr)
    assert np.all(w.std(axis=0) > 0.1)  # the test is not trivial
    # ... while the log of one weight (the ELBO) is biased low by Jensen's inequality.
    assert np.all(np.asarray(log_w).mean(axis=0) < exact - 0.05)


def test_active_units_counts_units_whose_mean_varies():
    rng = np.random.default_rng(0)
    means = np.zeros((500, 5), np.float32)
    means[:, :3] = rng.normal(size=(500, 3))
    means[:, 3] = 0.05 * rng.normal(size=500)  # variance 2.5e-3 < 1e-2: inactive
    means[:, 4] = 7.0
    assert int(jax.jit(V.active_units)(means)) == 3
    assert int(V.active_units(means, threshold=1e-3)) == 4


def test_sample_binary_draws_fresh_bernoulli_pixels(key):
    x = jnp.full((200, 50), 0.3)
    a, b = V.sample_binary(key, x), V.sample_binary(jax.random.fold_in(key, 1), x)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(float(a.mean()) - 0.3) < 0.02
    assert not np.array_equal(a, b)


# --- Bad inputs -----------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(key):
    ok = jnp.zeros((2, 3))
    nan = ok.at[0, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="mean: expected finite values"):
        V.gaussian_kl_to_standard_normal(nan, ok)
    with pytest.raises(ValueError, match="mean and log_variance: expected the same shape"):
        V.reparameterize(key, ok, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_samples: expected a positive integer, got 0"):
        V.reparameterize(key, ok, ok, num_samples=0)
    model, params = BernoulliToy(), _bernoulli_toy_params()
    x = jnp.ones((2, 4))
    with pytest.raises(ValueError, match="num_samples: expected a positive integer, got 0"):
        V.iwae_bound(model, params, x, key, num_samples=0)
    with pytest.raises(ValueError, match="num_samples: expected a positive integer"):
        V.importance_sampled_log_likelihood(model, params, x, key, num_samples=-1)
    with pytest.raises(ValueError, match="x: expected finite values"):
        V.importance_sampled_log_likelihood(model, params, x.at[0, 0].set(jnp.nan), key)
    with pytest.raises(ValueError, match=r"x: expected values in \[0.0, 1.0\]"):
        V.bernoulli_log_likelihood(x, 2 * x)
    with pytest.raises(ValueError, match="logits and x: expected the same shape"):
        V.bernoulli_log_likelihood(jnp.ones((2, 5)), x)
    with pytest.raises(ValueError, match="beta: expected a finite value"):
        V.elbo(model, params, x, key, beta=-1.0)
    with pytest.raises(ValueError, match="posterior_means: expected rank 2"):
        V.active_units(jnp.zeros(5))
    with pytest.raises(ValueError, match="objective: expected 'elbo' or 'iwae'"):
        V.variational_loss(model, objective="vae")
    with pytest.raises(ValueError, match=r"x: expected values in \[0.0, 1.0\]"):
        V.sample_binary(key, 3 * x)


def test_mean_bound_is_the_mean_of_per_batch_bounds_with_folded_keys(key):
    model, params = BernoulliToy(), _bernoulli_toy_params(0.5)
    x = jnp.asarray(np.random.default_rng(3).integers(0, 2, (7, 4)), jnp.float32)
    for bound, fn in (("elbo", V.elbo), ("iwae", V.iwae_bound)):
        got = V.mean_bound(model, params, x, key, bound=bound, num_samples=3, batch_size=3)
        parts = [
            fn(model, params, x[s : s + 3], jax.random.fold_in(key, j), num_samples=3)
            for j, s in enumerate(range(0, 7, 3))
        ]
        np.testing.assert_allclose(got, float(jnp.concatenate(parts).mean()), rtol=1e-5)
    one = V.mean_bound(model, params, x, key, bound="iwae", num_samples=1, batch_size=7)
    elbo = V.elbo(model, params, x, jax.random.fold_in(key, 0), analytic_kl=False)
    np.testing.assert_allclose(one, float(elbo.mean()), rtol=1e-5)  # k = 1: the sampled ELBO
    with pytest.raises(ValueError, match="bound: expected one of"):
        V.mean_bound(model, params, x, key, bound="kl", num_samples=1)


def test_posterior_means_are_the_encoder_means_in_chunks():
    model, params = BernoulliToy(), _bernoulli_toy_params(0.5)
    x = jnp.asarray(np.random.default_rng(4).integers(0, 2, (11, 4)), jnp.float32)
    got = V.posterior_means(model, params, x, chunk_size=4)
    assert got.shape == (11, 1)
    np.testing.assert_allclose(got, model.posterior(params, x)[0], rtol=1e-6)


def test_beta_weights_exactly_the_kl_term(key):
    """elbo(β) = elbo(0) - β KL for both estimators, KL from the posterior's closed form (the
    sampled estimator's KL is its own samples': the same key, so the same z)."""
    model, params = BernoulliToy(), _bernoulli_toy_params(encoder_scale=0.4)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    mean, log_variance = model.posterior(params, x)
    kl = 0.5 * np.sum(np.square(mean) + np.exp(log_variance) - 1.0 - log_variance, axis=-1)
    reconstruction = V.elbo(model, params, x, key, beta=0.0)
    for beta in (0.5, 2.0):
        got = V.elbo(model, params, x, key, beta=beta)
        np.testing.assert_allclose(got, reconstruction - beta * kl, rtol=1e-5, atol=1e-6)
    sampled = functools.partial(V.elbo, model, params, x, key, analytic_kl=False, num_samples=64)
    with_kl, without_kl = sampled(beta=1.0), sampled(beta=0.0)
    np.testing.assert_allclose(sampled(beta=2.0), 2 * with_kl - without_kl, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(without_kl - with_kl) > 0)  # a positive KL estimate is subtracted
