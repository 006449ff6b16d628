"""Variational inference for autoencoders: reparameterised sampling, the ELBO, the IWAE bound.

Every term is a pure function, so a researcher composes the objective they want. A *model* here
is anything with two pure methods over a parameter PyTree (the VAEs of :mod:`jaxae.models.vae`,
or your own frozen dataclass)::

    model.posterior(params, x) -> (mean, log_variance)  # q(z|x) = N(mean, diag(exp(log_var)))
    model.decode(params, z, logits=True) -> output      # e.g. Bernoulli logits of p(x|z)

The prior is ``p(z) = N(0, I)``. ``elbo`` and ``iwae_bound`` return one value per example (in
nats); the caller reduces. Inside ``jit`` pass the model as a static argument (frozen dataclasses
are hashable). For the decoder likelihood pass ``log_likelihood(decoder_output, x) -> [batch]``:
:func:`bernoulli_log_likelihood` (the default) or, for a Gaussian decoder returning
``(mean, log_variance)``, ``lambda out, x: gaussian_log_likelihood(*out, x)``.

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014 (eq. 3, 7, 10, App. B).
  Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 (arXiv 2015;
  eq. 8 the bound, Sec. 5.2 and App. A the log-likelihood estimate, Sec. 5.2 active units).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.chunked import chunked_map
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import (
    check_array,
    check_positive_int,
    check_same_shape,
    is_concrete,
    nan_outside_range,
)

__all__ = [
    "active_units",
    "bernoulli_log_likelihood",
    "sample_binary",
    "diagonal_gaussian_log_density",
    "elbo",
    "gaussian_kl_to_standard_normal",
    "gaussian_log_likelihood",
    "importance_log_weights",
    "importance_sampled_log_likelihood",
    "iwae_bound",
    "mean_bound",
    "posterior_means",
    "reparameterize",
    "standard_normal_log_density",
    "variational_loss",
]

LogLikelihood = Callable[[Any, Array], Array]
_LOG_2PI = math.log(2.0 * math.pi)


def _feature_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _check_gaussian(mean: Array, log_variance: Array) -> None:
    check_array(mean, "mean", rank=range(1, 6), floating=True)
    check_array(log_variance, "log_variance", rank=range(1, 6), floating=True)
    check_same_shape(mean, log_variance, "mean", "log_variance")


def reparameterize(
    key: PRNGKey, mean: ArrayLike, log_variance: ArrayLike, *, num_samples: int | None = None
) -> Array:
    """Samples ``z = mean + exp(log_variance / 2) * eps``, ``eps ~ N(0, I)``: differentiable.

    Args:
      key: PRNG key for ``eps``.
      mean: ``[batch, latent]`` posterior means.
      log_variance: ``[batch, latent]`` posterior log-variances.
      num_samples: if given, draw that many samples per example.

    Returns:
      ``[batch, latent]``, or ``[num_samples, batch, latent]`` with ``num_samples``.

    References:
      Kingma & Welling 2014, Sec. 2.4 (the reparameterisation trick).
    """
    mean, log_variance = jnp.asarray(mean), jnp.asarray(log_variance)
    _check_gaussian(mean, log_variance)
    if num_samples is None:
        eps = jax.random.normal(key, mean.shape, mean.dtype)
        return mean + jnp.exp(0.5 * log_variance) * eps
    check_positive_int(num_samples, "num_samples")
    eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    return mean[None] + jnp.exp(0.5 * log_variance)[None] * eps


def diagonal_gaussian_log_density(z: ArrayLike, mean: ArrayLike, log_variance: ArrayLike) -> Array:
    """``log N(z; mean, diag(exp(log_variance)))``, summed over the last axis.

    Args:
      z: ``[..., latent]`` points.
      mean: ``[..., latent]``, the same shape.
      log_variance: ``[..., latent]``, the same shape.

    Returns:
      ``[...]`` log-densities in nats.
    """
    z, mean, log_variance = jnp.asarray(z), jnp.asarray(mean), jnp.asarray(log_variance)
    _check_gaussian(mean, log_variance)
    check_same_shape(z, mean, "z", "mean")
    squared = jnp.square(z - mean) * jnp.exp(-log_variance)
    return -0.5 * jnp.sum(squared + log_variance + _LOG_2PI, axis=-1)


def standard_normal_log_density(z: ArrayLike) -> Array:
    """``log N(z; 0, I)`` summed over the last axis: ``[..., latent] -> [...]``."""
    z = jnp.asarray(z)
    check_array(z, "z", rank=range(1, 6), floating=True)
    return -0.5 * jnp.sum(jnp.square(z) + _LOG_2PI, axis=-1)


def gaussian_kl_to_standard_normal(mean: ArrayLike, log_variance: ArrayLike) -> Array:
    """Analytic ``KL(N(mean, diag(exp(log_variance))) || N(0, I))`` per example.

    Args:
      mean: ``[batch, latent]``.
      log_variance: ``[batch, latent]``.

    Returns:
      ``[batch]`` KL divergences in nats (≥ 0).

    References:
      Kingma & Welling 2014, App. B: ``-KL = 1/2 Σ (1 + log σ² - μ² - σ²)``.
    """
    mean, log_variance = jnp.asarray(mean), jnp.asarray(log_variance)
    _check_gaussian(mean, log_variance)
    per_unit = jnp.square(mean) + jnp.exp(log_variance) - 1.0 - log_variance
    return 0.5 * jnp.sum(per_unit, axis=_feature_axes(mean))


def bernoulli_log_likelihood(logits: ArrayLike, x: ArrayLike) -> Array:
    """``log p(x|z)`` of independent Bernoulli pixels with ``p = sigmoid(logits)``, per example.

    Equal to ``-jaxae.sigmoid_cross_entropy(logits, x)``, written with one softplus instead of two
    because the k = 5000 log-likelihood estimate evaluates it tens of millions of times.

    Args:
      logits: ``[batch, ...]`` decoder outputs before the sigmoid.
      x: ``[batch, ...]`` in [0, 1] (binary for a proper likelihood), the same shape.

    Returns:
      ``[batch]`` log-likelihoods in nats (≤ 0 for binary ``x``); under ``jit``, NaN for an
      example outside [0, 1] (outside ``jit`` that is a ``ValueError``).
    """
    logits, x = jnp.asarray(logits), jnp.asarray(x)
    check_array(logits, "logits", rank=range(2, 6), floating=True)
    check_array(x, "x", rank=range(2, 6), value_range=(0.0, 1.0))
    check_same_shape(logits, x, "logits", "x")
    # x log σ(l) + (1 - x) log(1 - σ(l)) = x l - softplus(l); softplus is stable for large |l|.
    log_p = jnp.sum(x * logits - jax.nn.softplus(logits), axis=_feature_axes(logits))
    # Under jit the range check above cannot run: an out-of-range example gets NaN.
    return nan_outside_range(log_p, x, 0.0, 1.0)


def gaussian_log_likelihood(mean: ArrayLike, log_variance: ArrayLike, x: ArrayLike) -> Array:
    """``log N(x; mean, diag(exp(log_variance)))`` summed over the feature axes, per example.

    Args:
      mean: ``[batch, ...]`` decoder means.
      log_variance: ``[batch, ...]`` decoder log-variances (the same shape).
      x: ``[batch, ...]`` observations, the same shape.

    Returns:
      ``[batch]`` log-densities in nats.
    """
    mean, log_variance, x = jnp.asarray(mean), jnp.asarray(log_variance), jnp.asarray(x)
    _check_gaussian(mean, log_variance)
    check_array(x, "x", rank=range(1, 6), floating=True)
    check_same_shape(mean, x, "mean", "x")
    squared = jnp.square(x - mean) * jnp.exp(-log_variance)
    return -0.5 * jnp.sum(squared + log_variance + _LOG_2PI, axis=_feature_axes(x))


def _encode(model: Any, params: Params, x: Array) -> tuple[Array, Array]:
    mean, log_variance = model.posterior(params, x)
    _check_gaussian(mean, log_variance)
    # The bounds' log densities sum over the last axis, so one flat latent vector an example:
    # any other shape would mix examples or sum the batch (a conv latent: flatten it).
    if mean.ndim != 2 or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"model.posterior: expected means [batch={x.shape[0]}, latent], got shape "
            f"{tuple(mean.shape)}" + ("; flatten a spatial latent" if mean.ndim > 2 else "")
        )
    return mean, log_variance


def importance_log_weights(
    model: Any,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    num_samples: int,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> Array:
    """``log w = log p(x|z) + log p(z) - log q(z|x)`` for ``num_samples`` reparameterised ``z``.

    The decoder is ``vmap``-ed over the samples, so memory grows as ``num_samples × batch``.

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)`` and
        ``decode(params, z, logits=True)``.
      params: the model's parameters.
      x: ``[batch, ...]`` observations.
      key: PRNG key for the samples.
      num_samples: k ≥ 1 samples per example.
      log_likelihood: ``(decoder_output, x) -> [batch]``.

    Returns:
      ``[num_samples, batch]`` log importance weights.
    """
    x = jnp.asarray(x)
    check_positive_int(num_samples, "num_samples")
    if _has_own_weights(model):
        return model.log_importance_weights(
            params, x, key, num_samples=num_samples, log_likelihood=log_likelihood
        )
    mean, log_variance = _encode(model, params, x)
    return _log_weights(model, params, x, mean, log_variance, key, num_samples, log_likelihood)


def _has_own_weights(model: Any) -> bool:
    # Models with more than one stochastic layer (jaxae.TwoStochasticLayerVAE) compute their
    # own log p(x, h) - log q(h|x); the functions here then need nothing else from them.
    return hasattr(model, "log_importance_weights")


def _log_weights(model, params, x, mean, log_variance, key, num_samples, log_likelihood):
    if _has_own_weights(model):
        return model.log_importance_weights(
            params, x, key, num_samples=num_samples, log_likelihood=log_likelihood
        )
    z = reparameterize(key, mean, log_variance, num_samples=num_samples)

    def one_sample(z_s):
        log_px = log_likelihood(model.decode(params, z_s, logits=True), x)
        return (
            log_px
            + standard_normal_log_density(z_s)
            - diagonal_gaussian_log_density(z_s, mean, log_variance)
        )

    return jax.vmap(one_sample)(z)


def elbo(
    model: Any,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    beta: float = 1.0,
    num_samples: int = 1,
    analytic_kl: bool = True,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> Array:
    """The evidence lower bound ``E_q[log p(x|z)] - beta KL(q(z|x) || p(z))``, per example.

    With ``beta = 1`` it lower-bounds ``log p(x)``; ``beta ≠ 1`` gives the β-VAE objective
    (Higgins et al. 2017). The expectation is estimated with ``num_samples`` reparameterised
    samples; the KL term is analytic (Kingma & Welling's lower-variance estimator, eq. 10) unless
    ``analytic_kl=False``, which uses the sampled ``log q(z|x) - log p(z)`` (their eq. 7) —
    then, with ``num_samples=1``, it equals :func:`iwae_bound` with ``num_samples=1`` and the
    same key. A model with its own ``log_importance_weights`` (e.g.
    :class:`jaxae.models.vae.TwoStochasticLayerVAE`) has no closed-form KL: it always gets the
    sampled estimator, whatever ``analytic_kl``, and only ``beta = 1``.

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)`` and
        ``decode(params, z, logits=True)``.
      params: the model's parameters.
      x: ``[batch, ...]`` observations.
      key: PRNG key for the reparameterisation noise.
      beta: weight of the KL term (≥ 0; 1 for a model with ``log_importance_weights``).
      num_samples: samples averaged per example.
      analytic_kl: use the closed-form KL.
      log_likelihood: ``(decoder_output, x) -> [batch]``.

    Returns:
      ``[batch]`` ELBO in nats.

    References:
      Kingma & Welling 2014, eq. 3, 7 and 10; Higgins et al., β-VAE, ICLR 2017, eq. 4.
    """
    x = jnp.asarray(x)
    check_positive_int(num_samples, "num_samples")
    beta = float(beta)
    if not beta >= 0.0 or not math.isfinite(beta):
        raise ValueError(f"beta: expected a finite value ≥ 0, got {beta}")
    if _has_own_weights(model):
        if beta != 1.0:
            raise ValueError(
                f"beta: a model with its own log_importance_weights needs 1.0, got {beta}"
            )
        log_w = model.log_importance_weights(
            params, x, key, num_samples=num_samples, log_likelihood=log_likelihood
        )
        return log_w.mean(axis=0)  # the sampled-KL estimator (eq. 7): no closed form here
    mean, log_variance = _encode(model, params, x)
    z = reparameterize(key, mean, log_variance, num_samples=num_samples)
    log_px = jax.vmap(lambda z_s: log_likelihood(model.decode(params, z_s, logits=True), x))(z)
    if analytic_kl:
        kl = gaussian_kl_to_standard_normal(mean, log_variance)
        return log_px.mean(axis=0) - beta * kl
    log_q = diagonal_gaussian_log_density(
        z, jnp.broadcast_to(mean, z.shape), jnp.broadcast_to(log_variance, z.shape)
    )
    kl_samples = log_q - standard_normal_log_density(z)
    return (log_px - beta * kl_samples).mean(axis=0)


def iwae_bound(
    model: Any,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    num_samples: int,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> Array:
    """The importance-weighted bound ``log (1/k) Σ_i w_i``, ``w_i = p(x, z_i) / q(z_i|x)``.

    Tighter than the ELBO for k > 1 and increasing in k; equal to the single-sample ELBO
    estimator for k = 1. Computed as ``logsumexp(log w) - log k`` so that weights of
    ``exp(-500)`` neither underflow nor overflow.

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)`` and
        ``decode(params, z, logits=True)``.
      params: the model's parameters.
      x: ``[batch, ...]`` observations.
      key: PRNG key for the k samples.
      num_samples: k ≥ 1.
      log_likelihood: ``(decoder_output, x) -> [batch]``.

    Returns:
      ``[batch]`` the bound ``L_k`` in nats.

    References:
      Burda, Grosse & Salakhutdinov 2015, eq. 8 and Theorem 1.
    """
    log_w = importance_log_weights(
        model, params, x, key, num_samples=num_samples, log_likelihood=log_likelihood
    )
    return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)


def importance_sampled_log_likelihood(
    model: Any,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    num_samples: int = 5000,
    samples_per_chunk: int = 500,
    batch_size: int = 100,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> Array:
    """``log p(x)`` estimated by importance sampling from q with k samples, per example.

    This is the IWAE bound with a large k (Burda et al. use k = 5000 for every test number):
    a stochastic lower bound in expectation whose gap shrinks as k grows, and whose exponent is
    an unbiased estimate of ``p(x)``. The work is done in memory-sized pieces: examples in
    batches of ``batch_size`` (a Python loop; the last batch is padded), samples in chunks of
    ``samples_per_chunk`` inside one jitted ``lax.scan`` that keeps a running log-sum-exp. Peak
    memory is about ``samples_per_chunk × batch_size × output size`` floats.

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)`` and
        ``decode(params, z, logits=True)``; it must be hashable (a frozen dataclass), as it is
        a static argument of ``jit``.
      params: the model's parameters.
      x: ``[n, ...]`` a whole evaluation set, finite.
      key: PRNG key; batch ``j`` uses ``fold_in(key, j)``.
      num_samples: k ≥ 1 importance samples per example.
      samples_per_chunk: samples evaluated at once (cut to k if larger).
      batch_size: examples evaluated at once.
      log_likelihood: ``(decoder_output, x) -> [batch]``; hashable (a module-level function).

    Returns:
      ``[n]`` estimates of ``log p(x)`` in nats; the test NLL is ``-estimate.mean()``.

    References:
      Burda, Grosse & Salakhutdinov 2015, Sec. 5.2 (k = 5000) and eq. 8.
    """
    check_positive_int(num_samples, "num_samples")
    check_positive_int(samples_per_chunk, "samples_per_chunk")
    check_positive_int(batch_size, "batch_size")
    check_array(x, "x", rank=range(2, 6))
    x = np.asarray(x, dtype=np.float32) if not isinstance(x, jax.Array) else x
    samples_per_chunk = min(samples_per_chunk, num_samples)
    n = x.shape[0]
    batch_size = min(batch_size, n)
    out = []
    for j, start in enumerate(range(0, n, batch_size)):
        batch = x[start : start + batch_size]
        rows = batch.shape[0]
        if rows < batch_size:  # pad to the compiled shape, drop the padding after
            batch = jnp.concatenate([batch, jnp.repeat(batch[-1:], batch_size - rows, axis=0)])
        estimate = _chunked_log_likelihood(
            model,
            params,
            jnp.asarray(batch),
            jax.random.fold_in(key, j),
            num_samples=num_samples,
            samples_per_chunk=samples_per_chunk,
            log_likelihood=log_likelihood,
        )
        out.append(estimate[:rows])
    return jnp.concatenate(out)


@functools.partial(
    jax.jit, static_argnames=("model", "num_samples", "samples_per_chunk", "log_likelihood")
)
def _chunked_log_likelihood(
    model, params, x, key, *, num_samples, samples_per_chunk, log_likelihood
) -> Array:
    mean, log_variance = _encode(model, params, x)
    num_chunks, rest = divmod(num_samples, samples_per_chunk)
    chunk_keys = jax.random.split(key, num_chunks + 1)

    def chunk_logsumexp(chunk_key, size):
        log_w = _log_weights(model, params, x, mean, log_variance, chunk_key, size, log_likelihood)
        return jax.nn.logsumexp(log_w, axis=0)

    def body(total, chunk_key):
        # Running log-sum-exp over chunks: log(a + b) = logaddexp(log a, log b).
        return jnp.logaddexp(total, chunk_logsumexp(chunk_key, samples_per_chunk)), None

    total = jnp.full(x.shape[:1], -jnp.inf, mean.dtype)
    total, _ = jax.lax.scan(body, total, chunk_keys[:num_chunks])
    if rest:
        total = jnp.logaddexp(total, chunk_logsumexp(chunk_keys[num_chunks], rest))
    return total - math.log(num_samples)


_BOUNDS = ("elbo", "iwae")


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "bound", "log_likelihood"))
def _bound_values(model, params, x, key, *, num_samples, bound, log_likelihood):
    if bound == "elbo":
        return elbo(model, params, x, key, num_samples=num_samples, log_likelihood=log_likelihood)
    return iwae_bound(model, params, x, key, num_samples=num_samples, log_likelihood=log_likelihood)


def mean_bound(
    model: Any,
    params: Params,
    x: ArrayLike,
    key: PRNGKey,
    *,
    bound: str,
    num_samples: int,
    batch_size: int = 500,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> float:
    """Mean over a whole dataset of the ELBO or the IWAE bound (nats), in batches.

    Args:
      model: as for :func:`elbo`; hashable (a static argument of ``jit``).
      params: the model's parameters.
      x: ``[n, ...]`` an evaluation set.
      key: PRNG key; batch ``j`` uses ``fold_in(key, j)``.
      bound: ``"elbo"`` (:func:`elbo` with ``num_samples`` samples) or ``"iwae"``
        (:func:`iwae_bound` with k = ``num_samples``).
      num_samples: samples per example.
      batch_size: examples per jitted call (the last, shorter batch compiles once more).
      log_likelihood: as for :func:`elbo`; hashable (a module-level function).

    Returns:
      The mean over all ``n`` examples, a Python float (the bound on ``log p(x)``, so minus it
      is the number reported as -ELBO or -IWAE).
    """
    if bound not in _BOUNDS:
        raise ValueError(f"bound: expected one of {_BOUNDS}, got {bound!r}")
    check_positive_int(num_samples, "num_samples")
    check_positive_int(batch_size, "batch_size")
    check_array(x, "x", rank=range(2, 6))
    total = 0.0
    for j, start in enumerate(range(0, len(x), batch_size)):
        values = _bound_values(
            model,
            params,
            jnp.asarray(x[start : start + batch_size]),
            jax.random.fold_in(key, j),
            num_samples=num_samples,
            bound=bound,
            log_likelihood=log_likelihood,
        )
        total += float(values.sum())
    return total / len(x)


def posterior_means(model: Any, params: Params, x: ArrayLike, *, chunk_size: int = 1000) -> Array:
    """The encoder means ``E_q[z|x]`` of a whole dataset (for :func:`active_units`, plots).

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)``; hashable.
      params: the model's parameters.
      x: ``[n, ...]`` inputs.
      chunk_size: rows encoded at once (:func:`jaxae.chunked.chunked_map`).

    Returns:
      ``[n, latent]``.
    """
    return chunked_map(model.posterior, x, args=(params,), chunk_size=chunk_size)[0]


def active_units(posterior_means: ArrayLike, *, threshold: float = 1e-2) -> Array:
    """Number of latent units whose posterior mean varies with the input.

    Unit ``u`` is active when ``Cov_x(E_q[z_u | x]) > threshold``; an inactive unit has
    collapsed to the prior (its posterior ignores ``x``).

    Args:
      posterior_means: ``[n, latent]`` encoder means ``E_q[z|x]`` over a dataset (n ≥ 2).
      threshold: activity threshold on the variance (Burda et al. use 1e-2).

    Returns:
      int32 scalar count of active units.

    References:
      Burda, Grosse & Salakhutdinov 2015, Sec. 5.2, ``A_u = Cov_x(E_{u~q(u|x)}[u])``.
    """
    posterior_means = jnp.asarray(posterior_means)
    check_array(posterior_means, "posterior_means", rank=2, floating=True)
    if posterior_means.shape[0] < 2:
        raise ValueError(
            "posterior_means: expected at least 2 examples to measure a variance, got shape "
            f"{tuple(posterior_means.shape)}"
        )
    threshold = float(threshold)
    if not threshold >= 0.0:
        raise ValueError(f"threshold: expected a value ≥ 0, got {threshold}")
    variance = jnp.var(posterior_means, axis=0)
    return jnp.sum(variance > threshold).astype(jnp.int32)


def sample_binary(key: PRNGKey, x: ArrayLike) -> Array:
    """A fresh Bernoulli sample of grey levels in [0, 1]: dynamic binarisation of MNIST.

    Drawn anew every time a batch is used (from the training step's key), as in Burda et al.
    2015 and Salakhutdinov & Murray 2008, instead of thresholding the images once.

    Args:
      key: PRNG key.
      x: ``[batch, ...]`` pixel probabilities in [0, 1].

    Returns:
      ``[batch, ...]`` float array of 0s and 1s, the dtype of ``x``. Under ``jit`` (where values
      cannot be checked) a value of ``x`` outside [0, 1] gives NaN, not a constant 0 or 1, so a
      loss of it is NaN and :func:`jaxae.fit` names the range check.
    """
    x = jnp.asarray(x)
    check_array(x, "x", floating=True, value_range=(0.0, 1.0))
    sample = jax.random.bernoulli(key, x).astype(x.dtype)
    if not is_concrete(x):
        sample = jnp.where((x >= 0) & (x <= 1), sample, jnp.nan)
    return sample


def variational_loss(
    model: Any,
    *,
    num_samples: int = 1,
    objective: str = "elbo",
    beta: float = 1.0,
    dynamic_binarization: bool = True,
    log_likelihood: LogLikelihood = bernoulli_log_likelihood,
) -> Callable[[Params, Array, PRNGKey], tuple[Array, dict[str, Array]]]:
    """A ``loss_fn(params, batch, key) -> (loss, metrics)`` for :func:`jaxae.fit` (``has_aux``).

    The loss is the batch mean of ``-elbo`` (``objective="elbo"``, the VAE) or of
    ``-iwae_bound`` (``objective="iwae"``, the IWAE); each step's key is split into one key for
    the binarisation of the batch and one for the reparameterisation noise.

    Args:
      model: has ``posterior(params, x) -> (mean, log_variance)`` and
        ``decode(params, z, logits=True)``.
      num_samples: k samples per example (averaged by the ELBO, importance-weighted by IWAE).
      objective: "elbo" or "iwae".
      beta: KL weight of the ELBO (must be 1 for "iwae").
      dynamic_binarization: resample binary pixels from the grey levels every step.
      log_likelihood: ``(decoder_output, x) -> [batch]``.

    Returns:
      The loss function; its metrics are batch means: ``bound`` (the ELBO or IWAE bound, nats)
      and ``kl`` (the analytic KL of q to the prior; absent for a model with its own
      ``log_importance_weights``, which has no single Gaussian posterior).
    """
    check_positive_int(num_samples, "num_samples")
    if objective not in ("elbo", "iwae"):
        raise ValueError(f"objective: expected 'elbo' or 'iwae', got {objective!r}")
    if objective == "iwae" and beta != 1.0:
        raise ValueError(f"beta: the IWAE bound has no KL weight, expected 1.0, got {beta}")

    def loss_fn(params, batch, key):
        binarize_key, sample_key = jax.random.split(key)
        x = sample_binary(binarize_key, batch) if dynamic_binarization else batch
        if objective == "iwae":
            bound = iwae_bound(
                model, params, x, sample_key, num_samples=num_samples, log_likelihood=log_likelihood
            )
        else:
            bound = elbo(
                model,
                params,
                x,
                sample_key,
                beta=beta,
                num_samples=num_samples,
                log_likelihood=log_likelihood,
            )
        if _has_own_weights(model):  # no single Gaussian posterior to take the KL of
            return -bound.mean(), {"bound": bound.mean()}
        kl = gaussian_kl_to_standard_normal(*model.posterior(params, x))
        return -bound.mean(), {"bound": bound.mean(), "kl": kl.mean()}

    return loss_fn
