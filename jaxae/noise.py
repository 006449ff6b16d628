"""Corruption processes for denoising autoencoders: pure functions ``(key, x) -> x̃``.

Each takes an explicit PRNG key and a batch of any shape and returns a corrupted copy of the same
shape and dtype; the noise is drawn independently per element. Hyperparameters are keyword-only
Python numbers, checked before anything is traced::

    x_tilde = masking_noise(key, x, rate=0.25)            # Vincent et al. (2010), ν = 25 %
    logits = model.decode(params, model.encode(params, x_tilde), logits=True)
    loss = jaxae.sigmoid_cross_entropy(logits, x)         # reconstruct the clean input

References:
  Vincent, Larochelle, Lajoie, Bengio & Manzagol (2010), Stacked Denoising Autoencoders:
  Learning Useful Representations in a Deep Network with a Local Denoising Criterion, JMLR 11,
  section 4.2 (the three corruption processes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike, PRNGKey
from jaxae.validation import check_array, check_probability, check_real

__all__ = ["masking_noise", "gaussian_noise", "salt_and_pepper_noise"]


def _check_input(x: Array) -> None:
    # Any batch shape; NaN/inf rejected when x is concrete (skipped under jit).
    check_array(x, "x", floating=True)


def masking_noise(key: PRNGKey, x: ArrayLike, *, rate: float) -> Array:
    """Sets each element to 0 with probability ``rate`` (and keeps it otherwise).

    Args:
      key: PRNG key.
      x: ``[...]`` floating inputs of any shape.
      rate: the corruption level ν in [0, 1]: the expected fraction of elements zeroed.

    Returns:
      ``x`` with a random fraction ``rate`` of its elements set to 0, same shape and dtype.

    References:
      Vincent et al. (2010), JMLR, section 4.2, "masking noise (MN)".
    """
    x = jnp.asarray(x)
    check_real(rate, "rate")
    check_probability(rate, "rate")
    _check_input(x)
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


def gaussian_noise(key: PRNGKey, x: ArrayLike, *, stddev: float) -> Array:
    """Adds isotropic Gaussian noise ``N(0, stddev²)`` to every element.

    Args:
      key: PRNG key.
      x: ``[...]`` floating inputs of any shape.
      stddev: the noise standard deviation σ ≥ 0.

    Returns:
      ``x + σ ε`` with ``ε ~ N(0, I)``, same shape and dtype (not clipped).

    References:
      Vincent et al. (2010), JMLR, section 4.2, "additive isotropic Gaussian noise (GS)";
      Rifai et al. (2011), ICML, Table 1 (DAE-g).
    """
    x = jnp.asarray(x)
    check_real(stddev, "stddev")
    if stddev < 0:
        raise ValueError(f"stddev: expected a value >= 0, got {stddev}")
    _check_input(x)
    return x + jnp.asarray(stddev, x.dtype) * jax.random.normal(key, x.shape, x.dtype)


def salt_and_pepper_noise(
    key: PRNGKey, x: ArrayLike, *, rate: float, low: float = 0.0, high: float = 1.0
) -> Array:
    """Sets each element, with probability ``rate``, to ``low`` or ``high`` (a fair coin).

    Args:
      key: PRNG key.
      x: ``[...]`` floating inputs of any shape.
      rate: the fraction ν in [0, 1] of elements corrupted; about ``rate / 2`` become ``low`` and
        ``rate / 2`` become ``high``.
      low: the "pepper" value (the input's minimum, 0 for pixels in [0, 1]).
      high: the "salt" value (the input's maximum, 1 for pixels), ``high >= low``.

    Returns:
      The corrupted copy, same shape and dtype.

    References:
      Vincent et al. (2010), JMLR, section 4.2, "salt-and-pepper noise (SP)".
    """
    x = jnp.asarray(x)
    check_real(rate, "rate")
    check_probability(rate, "rate")
    check_real(low, "low")
    check_real(high, "high")
    if high < low:
        raise ValueError(f"low and high: expected low <= high, got low={low}, high={high}")
    _check_input(x)
    corrupt_key, coin_key = jax.random.split(key)
    corrupt = jax.random.bernoulli(corrupt_key, rate, x.shape)
    salt = jax.random.bernoulli(coin_key, 0.5, x.shape)
    noise = jnp.where(salt, jnp.asarray(high, x.dtype), jnp.asarray(low, x.dtype))
    return jnp.where(corrupt, noise, x)
