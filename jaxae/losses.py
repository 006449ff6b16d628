"""Per-example reconstruction losses: pure functions ``(prediction, target) -> [batch]``.

Each loss sums over the feature axes and keeps the batch axis, as optax's ``squared_error``
keeps every element: the caller reduces (``.mean()``, a weighted sum, a log-mean-exp). Losses
compose as plain functions::

    def loss(params, x):
        logits = ae.decode(params, ae.encode(params, x), logits=True)
        return (sigmoid_cross_entropy(logits, x) + 0.1 * squared_error(jax.nn.sigmoid(logits), x))

All inputs are ``[batch, ...features]``; the result is ``[batch]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike
from jaxae.validation import check_array, check_same_shape, nan_outside_range

__all__ = ["squared_error", "sigmoid_cross_entropy", "softmax_cross_entropy"]


def _feature_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _check_pair(prediction, target, pred_name: str, target_name: str = "targets") -> None:
    check_array(prediction, pred_name, rank=range(2, 6), floating=True)
    check_array(target, target_name, rank=range(2, 6))
    check_same_shape(prediction, target, pred_name, target_name)


def squared_error(predictions: ArrayLike, targets: ArrayLike) -> Array:
    """Squared error summed over features: one value per example, not per element as in optax.

    ``optax.squared_error`` of the same arguments is elementwise; this is its sum over every
    axis but the batch.

    The metric of Hinton & Salakhutdinov (2006): summed over the 784 pixels, averaged over
    images by the caller.

    Args:
      predictions: ``[batch, ...]`` reconstructions.
      targets: ``[batch, ...]`` inputs, the same shape.

    Returns:
      ``[batch]`` sum of squared differences.
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    _check_pair(predictions, targets, "predictions")
    return jnp.sum(jnp.square(predictions - targets), axis=_feature_axes(predictions))


def sigmoid_cross_entropy(logits: ArrayLike, targets: ArrayLike) -> Array:
    """Bernoulli cross-entropy from logits, summed per example (optax's is per element).

    Unlike ``optax.sigmoid_binary_cross_entropy``, which is per element: this is its sum over
    every axis but the batch.

    ``-[t log σ(z) + (1 - t) log(1 - σ(z))]`` with targets ``t`` in [0, 1] (grey levels are
    allowed, as in Hinton & Salakhutdinov 2006). Stable for ``|z|`` in the hundreds.

    Args:
      logits: ``[batch, ...]`` pre-sigmoid decoder outputs.
      targets: ``[batch, ...]`` in [0, 1].

    Returns:
      ``[batch]`` cross-entropy in nats; under ``jit``, NaN for an example whose targets leave
      [0, 1] (outside ``jit`` that is a ``ValueError``).
    """
    logits, targets = jnp.asarray(logits), jnp.asarray(targets)
    _check_pair(logits, targets, "logits")
    check_array(targets, "targets", value_range=(0.0, 1.0))
    # log σ(z) = -softplus(-z), log(1 - σ(z)) = -softplus(z): no overflow for large |z|.
    per_element = targets * jax.nn.softplus(-logits) + (1.0 - targets) * jax.nn.softplus(logits)
    # Under jit the range check above cannot run: an out-of-range example's loss is NaN.
    return nan_outside_range(jnp.sum(per_element, axis=_feature_axes(logits)), targets, 0.0, 1.0)


def softmax_cross_entropy(logits: ArrayLike, counts: ArrayLike) -> Array:
    """Multinomial cross-entropy of count vectors under ``softmax(logits)``, one value per example.

    ``-Σ_i c_i log softmax(z)_i``: the reconstruction loss of a bag-of-words (count) autoencoder
    (Salakhutdinov & Hinton 2009, semantic hashing), equal to the negative multinomial
    log-likelihood up to the count-only multinomial coefficient.

    Args:
      logits: ``[batch, vocab]`` unnormalised log-probabilities.
      counts: ``[batch, vocab]`` non-negative counts (or normalised frequencies).

    Returns:
      ``[batch]`` cross-entropy in nats.
    """
    logits, counts = jnp.asarray(logits), jnp.asarray(counts)
    _check_pair(logits, counts, "logits", "counts")
    check_array(counts, "counts", value_range=(0.0, float("inf")))
    loss = -jnp.sum(counts * jax.nn.log_softmax(logits, axis=-1), axis=_feature_axes(logits))
    return nan_outside_range(loss, counts, 0.0, float("inf"))
