"""One way to apply a function to a whole dataset in memory-sized chunks.

Every "encode the training set", "propagate data up an RBM stack" or "score the test set" in
jaxae goes through :func:`chunked_map`: the full chunks run in one jitted ``lax.map``, the
``n % chunk_size`` rows left over in one more call. Each call compiles once per dataset shape
(its number of full chunks and its remainder), so the training set, the test set and every
repeat on either (each epoch's evaluation) cost one compilation each.
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
def _map_chunks(fn: Callable, args: tuple, chunks: Any) -> Any:
    return jax.lax.map(lambda chunk: fn(*args, chunk), chunks)


@functools.partial(jax.jit, static_argnames="fn")
def _apply(fn: Callable, args: tuple, batch: Any) -> Any:
    return fn(*args, batch)


def chunked_map(
    fn: Callable[..., Any], data: Any, *, args: tuple = (), chunk_size: int = 1000
) -> Any:
    """``fn(*args, batch)`` over ``data`` ``chunk_size`` rows at a time, concatenated on device.

    Args:
      fn: ``(*args, batch) -> outputs``, each output with the batch as its leading axis, e.g.
        ``model.encode`` with ``args=(params,)``. Compiled once per ``fn``, shapes and dtypes
        (``args`` are traced, never baked in), so pass a module-level function or a bound method,
        not a fresh lambda per call. Must be row-wise: output row ``i`` depends on input row ``i``.
      data: an array ``[n, ...]`` or a PyTree of arrays sharing the leading axis ``n``.
      args: PyTrees passed whole to every call before the batch (parameters, say).
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
        out = _map_chunks(fn, tuple(args), chunks)
        parts.append(jax.tree.map(lambda a: a.reshape(full, *a.shape[2:]), out))
    if full < n or n == 0:
        parts.append(_apply(fn, tuple(args), jax.tree.map(lambda a: a[full:], data)))
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def chunked_mean(
    fn: Callable[..., Array], data: Any, *, args: tuple = (), chunk_size: int = 1000
) -> float:
    """Mean over all ``n`` rows of a per-example ``fn(*args, batch) -> [batch]``, as a float
    (``n = 0`` is refused: the mean of nothing is no score)."""
    if _num_rows(data) == 0:
        raise ValueError("data: expected at least one row to average over, got 0")
    values = chunked_map(fn, data, args=args, chunk_size=chunk_size)
    if values.ndim != 1:
        raise ValueError(
            f"fn: expected one value per example, shape [{_num_rows(data)}], "
            f"got shape {tuple(values.shape)}"
        )
    return float(jnp.mean(values))
