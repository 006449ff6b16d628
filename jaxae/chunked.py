"""One way to apply a function to a whole dataset in memory-sized chunks.

Every "encode the training set", "propagate data up an RBM stack" or "score the test set" in
jaxae goes through :func:`chunked_map`: the full chunks run in one jitted ``lax.map`` (one
compilation for any dataset size), the ``n % chunk_size`` rows left over in one more call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxae.typing import Array
from jaxae.validation import check_positive_int

__all__ = ["chunked_map", "chunked_mean"]


def _num_rows(data: Any) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data: expected at least one array, got an empty PyTree")
    sizes = {int(jnp.shape(x)[0]) if jnp.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        shapes = [tuple(jnp.shape(x)) for x in leaves]
        raise ValueError(f"data: expected arrays with one shared leading dimension, got {shapes}")
    return sizes.pop()


@functools.partial(jax.jit, static_argnames="fn")
def _map_chunks(fn: Callable, chunks: Any) -> Any:
    return jax.lax.map(fn, chunks)


def chunked_map(fn: Callable[[Any], Any], data: Any, *, chunk_size: int = 1000) -> Any:
    """``fn`` applied to ``data`` ``chunk_size`` rows at a time, results concatenated on device.

    Args:
      fn: ``batch -> outputs``, each output with the batch as its leading axis; a hashable
        callable (a function, or a ``functools.partial`` kept by the caller) is compiled once
        per shape. Must be row-wise: row ``i`` of the output depends on row ``i`` of the input.
      data: an array ``[n, ...]`` or a PyTree of arrays sharing the leading axis ``n``.
      chunk_size: rows per chunk.

    Returns:
      ``fn``'s outputs for all ``n`` rows, as ``jax.Array`` with leading axis ``n``.
    """
    check_positive_int(chunk_size, "chunk_size")
    data = jax.tree.map(jnp.asarray, data)
    n = _num_rows(data)
    full = n // chunk_size * chunk_size
    parts = []
    if full:
        chunks = jax.tree.map(lambda a: a[:full].reshape(-1, chunk_size, *a.shape[1:]), data)
        out = _map_chunks(fn, chunks)
        parts.append(jax.tree.map(lambda a: a.reshape(full, *a.shape[2:]), out))
    if full < n or n == 0:
        parts.append(jax.jit(fn)(jax.tree.map(lambda a: a[full:], data)))
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def chunked_mean(fn: Callable[[Any], Array], data: Any, *, chunk_size: int = 1000) -> float:
    """Mean over all ``n`` rows of a per-example function ``batch -> [batch]``, as a float."""
    values = chunked_map(fn, data, chunk_size=chunk_size)
    if values.ndim != 1:
        raise ValueError(
            f"fn: expected one value per example, shape [{_num_rows(data)}], "
            f"got shape {tuple(values.shape)}"
        )
    return float(jnp.mean(values))
