"""Shuffled mini-batch indices for one epoch (moved here from :mod:`jaxae.data`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxae.typing import PRNGKey
from jaxae.validation import check_positive_int

__all__ = ["batch_indices"]


def batch_indices(
    key: PRNGKey,
    num_examples: int,
    batch_size: int,
    *,
    remainder: str = "drop",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Shuffled mini-batch indices for one epoch, a deterministic function of ``key``.

    Every index in ``range(num_examples)`` appears at most once. Use a fresh key per epoch
    (``jax.random.split``): with ``"drop"`` each epoch then drops different examples.

    Args:
      key: a PRNG key.
      num_examples: the dataset size (static under ``jit``).
      batch_size: examples per batch (static under ``jit``).
      remainder: what to do with the ``num_examples % batch_size`` leftover examples:
        ``"drop"`` them, ``"keep"`` them as a separate short batch, or raise (``"error"``).

    Returns:
      int32 ``[num_batches, batch_size]`` with ``num_batches = num_examples // batch_size``;
      for ``"keep"``, the tuple ``(full [num_batches, batch_size], rest [num_examples %
      batch_size])``.
    """
    check_positive_int(num_examples, "num_examples")
    check_positive_int(batch_size, "batch_size")
    if remainder not in ("drop", "keep", "error"):
        raise ValueError(f"remainder: expected 'drop', 'keep' or 'error', got {remainder!r}")
    num_batches, rest = divmod(num_examples, batch_size)
    if remainder == "error" and rest:
        raise ValueError(
            f"batch_size: {batch_size} does not divide num_examples {num_examples} (remainder "
            f"{rest}); use remainder='drop' or 'keep'"
        )
    if remainder == "drop" and num_batches == 0:
        raise ValueError(
            f"batch_size: {batch_size} is larger than num_examples {num_examples}, so every "
            f"example would be dropped"
        )
    perm = jax.random.permutation(key, num_examples).astype(jnp.int32)
    full = perm[: num_batches * batch_size].reshape(num_batches, batch_size)
    if remainder == "keep":
        return full, perm[num_batches * batch_size :]
    return full
