"""Untrained future-frame baselines and the clipped cross-entropy that scores them.

Each baseline maps the input frames ``[B, T_in, D]`` to probabilities for ``T_out`` frames;
:func:`clipped_cross_entropy` clips them to ``[eps, 1 - eps]`` so the Bernoulli cross-entropy is
finite, with ``eps`` chosen on validation sequences by :func:`choose_eps`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from jaxae.typing import Array, ArrayLike
from jaxae.validation import check_array, check_probability, check_same_shape, nan_outside_range

__all__ = [
    "choose_eps",
    "clipped_cross_entropy",
    "constant_probability",
    "copy_last_frame",
    "mean_of_inputs",
]


def copy_last_frame(inputs: ArrayLike, num_out: int) -> Array:
    """Every output frame is the last input frame: ``[B, num_out, D]``."""
    inputs = jnp.asarray(inputs)
    return jnp.repeat(inputs[:, -1:], num_out, axis=1)


def mean_of_inputs(inputs: ArrayLike, num_out: int) -> Array:
    """Every output frame is the mean of the input frames: ``[B, num_out, D]``."""
    inputs = jnp.asarray(inputs)
    return jnp.repeat(inputs.mean(axis=1, keepdims=True), num_out, axis=1)


def constant_probability(inputs: ArrayLike, num_out: int, *, p: float) -> Array:
    """Every pixel of every output frame is ``p``: float ``[B, num_out, D]``."""
    inputs = jnp.asarray(inputs)
    check_array(inputs, "inputs", rank=3, finite=False)
    check_probability(p, "p")
    dtype = jnp.result_type(inputs.dtype, jnp.float32)  # uint8 frames would round p to 0
    return jnp.full((inputs.shape[0], num_out, inputs.shape[2]), p, dtype)


def clipped_cross_entropy(probs: ArrayLike, targets: ArrayLike, *, eps: float) -> Array:
    """Bernoulli cross-entropy per sequence of probabilities clipped to [eps, 1 - eps]: ``[B]``.

    Summed over frames and features (not an elementwise loss as optax's are).

    Args:
      probs: ``[B, T, D]`` predicted pixel probabilities in [0, 1].
      targets: ``[B, T, D]`` target frames with pixels in [0, 1] (under ``jit``, a sequence
        with a value outside it scores NaN).
      eps: the clip, in (0, 0.5).
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps: expected a value in (0, 0.5), got {eps}")
    probs, t = jnp.asarray(probs), jnp.asarray(targets)
    check_array(probs, "probs", rank=3, floating=True, value_range=(0.0, 1.0))
    check_array(t, "targets", rank=3, value_range=(0.0, 1.0))
    check_same_shape(probs, t, "probs", "targets")
    p = jnp.clip(probs, eps, 1.0 - eps)
    loss = -jnp.sum(t * jnp.log(p) + (1.0 - t) * jnp.log1p(-p), axis=(1, 2))
    loss = nan_outside_range(loss, t, 0.0, 1.0)
    return nan_outside_range(loss, probs, 0.0, 1.0)


def choose_eps(
    predict: Callable[[Array], Array],
    inputs: ArrayLike,
    targets: ArrayLike,
    *,
    grid: Sequence[float] = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2),
) -> float:
    """The ``eps`` in ``grid`` with the lowest mean clipped cross-entropy on validation data."""
    probs = predict(jnp.asarray(inputs))
    scores = [float(clipped_cross_entropy(probs, targets, eps=e).mean()) for e in grid]
    return float(grid[int(np.argmin(scores))])
