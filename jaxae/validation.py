"""Input checks that name the argument, what was expected and what came (the chex habit).

Shape, rank and dtype checks are free at trace time; value checks (NaN, range) need concrete
arrays and are skipped silently for tracers, so call them before data enters ``jit``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """Whether ``x`` holds values (not a tracer under ``jit``/``vmap``/``grad``): value checks
    run only then."""
    return not isinstance(x, jax.core.Tracer)


def check_array(
    x,
    name: str,
    *,
    rank: int | Sequence[int] | None = None,
    last_dim: int | None = None,
    floating: bool = False,
    finite: bool = True,
    value_range: tuple[float, float] | None = None,
    nonempty: bool = True,
) -> None:
    """Raises ``TypeError``/``ValueError`` naming ``name`` if ``x`` is not as expected.

    Args:
      x: the array to check (NumPy, JAX or a tracer; value checks skip tracers).
      name: the argument's name, used in the message.
      rank: required number of dimensions (or a set of allowed ranks).
      last_dim: required size of the last axis.
      floating: require a floating dtype.
      finite: reject NaN and inf (concrete arrays only).
      value_range: inclusive ``(low, high)`` bounds on the values (concrete arrays only).
      nonempty: reject arrays with zero elements.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    if rank is not None:
        ranks = (rank,) if isinstance(rank, int) else tuple(rank)
        if x.ndim not in ranks:
            if isinstance(rank, range) and rank.step == 1:
                want = f"{rank.start} to {rank.stop - 1}"
            else:
                want = " or ".join(str(r) for r in ranks)
            raise ValueError(
                f"{name}: expected rank {want}, got shape {tuple(x.shape)}"
                + _rank_hint(x, name, ranks, last_dim)
            )
    if last_dim is not None and (x.ndim == 0 or x.shape[-1] != last_dim):
        raise ValueError(f"{name}: expected last dimension {last_dim}, got shape {tuple(x.shape)}")
    if floating and not jnp.issubdtype(x.dtype, jnp.floating):
        hint = ""
        if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
            hint = f"; convert it, e.g. {name}.astype(np.float32) (and divide 8-bit images by 255)"
        raise TypeError(f"{name}: expected a floating dtype, got {x.dtype}{hint}")
    if nonempty and x.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)}")
    if not is_concrete(x):
        return
    if finite and jnp.issubdtype(x.dtype, jnp.inexact):
        values = np.asarray(x)
        if not np.all(np.isfinite(values)):
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            raise ValueError(f"{name}: expected finite values, found {bad} NaN/inf entries")
    if value_range is not None and x.size:
        low, high = value_range
        values = np.asarray(x)
        lo, hi = float(values.min()), float(values.max())
        if lo < low or hi > high:
            raise ValueError(
                f"{name}: expected values in [{low}, {high}], got values in [{lo:g}, {hi:g}]"
                + eight_bit_hint(lo, hi, high)
            )


def eight_bit_hint(lo: float, hi: float, high: float) -> str:
    """``"; 8-bit images? ..."`` when values in [0, 255] were given where [0, 1] is expected."""
    if high == 1.0 and lo >= 0.0 and 1.0 < hi <= 255.0:
        return "; 8-bit images in [0, 255]? divide them by 255"
    return ""


def _rank_hint(x, name: str, ranks: tuple[int, ...], last_dim: int | None) -> str:
    """What the usual mistakes behind a wrong rank look like, as a hint for the message."""
    shape = tuple(x.shape)
    if x.ndim == 1 and 2 in ranks and np.issubdtype(x.dtype, np.signedinteger):
        return f"; integer labels? {name} is the data (the inputs), not the labels"
    if x.ndim == 3 and 4 in ranks and last_dim is None:  # [batch, H, W, C] expected
        return f"; no channel axis? add it: {name}[..., None] (a single image: {name}[None])"
    if x.ndim + 1 in ranks and x.ndim >= 1 and (last_dim is None or shape[-1] == last_dim):
        return f"; a single example? add the batch axis: {name}[None]"
    if x.ndim > max(ranks) and last_dim is not None and int(np.prod(shape[1:])) == last_dim:
        return f"; flatten each example: {name}.reshape(len({name}), -1)"
    return ""


def check_same_shape(a, b, name_a: str, name_b: str) -> None:
    """Raises ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} and {name_b}: expected the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def check_probability(value: float, name: str, *, open_interval: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` lies in [0, 1] (or (0, 1) if ``open_interval``)."""
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name}: expected a value in {interval}, got {value}")


def check_positive_int(value: int, name: str) -> None:
    """Raises ``ValueError`` unless ``value`` is an integer ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def positive_ints(values, name: str, *, min_len: int = 1, what: str = "positive ints") -> tuple:
    """``values`` as a tuple of Python ints (NumPy integers converted, as ``np.prod(shape)``
    gives), or ``ValueError`` naming ``name``: a non-sequence, fewer than ``min_len`` values, or
    a value that is not an integer ≥ 1 (bools and floats refused)."""
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(
            f"{name}: expected a tuple of at least {min_len} {what}, got {values!r}"
        ) from None
    if len(values) < min_len or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values
    ):
        raise ValueError(f"{name}: expected at least {min_len} {what}, got {values}")
    return tuple(int(v) for v in values)


def check_real(value, name: str, *, finite: bool = True) -> None:
    """Raises ``ValueError`` unless ``value`` is a Python/NumPy real number (not bool, not NaN,
    and with ``finite`` not ±inf)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or np.isnan(value)
    ):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    if finite and np.isinf(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")


def nan_outside_range(value, x, low: float, high: float, *, integer: bool = False):
    """``value`` ([batch]) with NaN for every example whose ``x`` ([batch, ...]) leaves the range.

    The traced counterpart of a ``value_range`` check: under ``jit`` a value check cannot raise,
    so a loss of out-of-range targets becomes NaN instead of a wrong finite number (and
    :func:`jaxae.fit` stops with a ``NonFiniteError``). ``integer`` also requires whole numbers.
    """
    ok = (x >= low) & (x <= high)
    if integer:
        ok = ok & (x == jnp.round(x))
    ok = jnp.all(ok, axis=tuple(range(1, x.ndim)))
    return jnp.where(ok, value, jnp.nan)


def check_prng_key(key, name: str = "key") -> None:
    """Raises ``TypeError`` unless ``key`` is a PRNG key.

    A typed key (``jax.random.key(seed)``) or a legacy ``uint32[2]`` key
    (``jax.random.PRNGKey(seed)``, still accepted by every ``jax.random`` function).
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and key.shape == ():
        return
    if dtype == np.uint32 and tuple(key.shape) == (2,):
        return
    got = (
        f"{type(key).__name__} {key!r}" if dtype is None else f"{dtype} array of shape {key.shape}"
    )
    raise TypeError(f"{name}: expected a PRNG key, e.g. jax.random.key(0), got {got}")


def check_optimizer(optimizer, name: str = "optimizer") -> None:
    """Raises ``TypeError`` unless ``optimizer`` is an Optax transformation (init, update)."""
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return
    if isinstance(optimizer, str):
        got = f"the string {optimizer!r}; pass optax.{optimizer}(learning_rate)"
    elif callable(optimizer) and "<locals>" in getattr(optimizer, "__qualname__", ""):
        # A closure made by a factory, e.g. an optax schedule: not an optimizer to call.
        fname = optimizer.__qualname__.split(".<locals>")[0]
        got = (
            f"a function made by {fname} (a learning-rate schedule?); pass it to an optimizer, "
            f"e.g. optax.adam(learning_rate={fname}(...))"
        )
    elif callable(optimizer):
        fname = getattr(optimizer, "__name__", repr(optimizer))
        got = f"the function {fname} uncalled; call it, e.g. optax.{fname}(1e-3)"
    else:
        got = type(optimizer).__name__
    raise TypeError(f"{name}: expected an optax.GradientTransformation, got {got}")


def check_counts(x, name: str, what: str = "counts") -> None:
    """Raises ``ValueError`` unless concrete ``x`` holds non-negative whole numbers."""
    if not is_concrete(x):
        return
    values = np.asarray(x)
    if values.size and values.min() < 0:
        raise ValueError(
            f"{name}: expected non-negative integer {what}, got a minimum of {values.min():g}"
        )
    fractional = values != np.round(values)
    if np.any(fractional):
        raise ValueError(
            f"{name}: expected non-negative integer {what}, got {values[fractional].flat[0]:g}"
        )


def _outline(tree) -> str:
    """A short description of a PyTree's top level: its keys, or its type and length."""
    if isinstance(tree, dict):
        return "keys " + ", ".join(repr(k) for k in sorted(tree, key=str)) if tree else "{}"
    if isinstance(tree, (list, tuple)):
        return f"a {type(tree).__name__} of {len(tree)}"
    return type(tree).__name__


def _first_difference(expected, tree, path: str = "") -> tuple[str, str, str]:
    """The first place where ``tree``'s structure leaves ``expected``'s: (path, want, got)."""
    same_dict = isinstance(expected, dict) and isinstance(tree, dict) and set(expected) == set(tree)
    same_list = (
        isinstance(expected, (list, tuple))
        and isinstance(tree, (list, tuple))
        and len(expected) == len(tree)
    )
    if same_dict or same_list:
        keys = sorted(expected, key=str) if same_dict else range(len(expected))
        for k in keys:
            a, b = expected[k], tree[k]
            if jax.tree.structure(a) != jax.tree.structure(b):
                return _first_difference(a, b, f"{path}[{k!r}]")
    return path, _outline(expected), _outline(tree)


def check_tree_shapes(tree, expected, name: str, what: str) -> None:
    """Raises ``ValueError`` unless ``tree`` has ``expected``'s structure and leaf shapes.

    ``expected`` is a PyTree of shaped objects (e.g. ``jax.eval_shape`` of an ``init``); ``what``
    names the model they are made for. Free at trace time (shapes only).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(expected)
    try:
        leaves = treedef.flatten_up_to(tree)
    except (ValueError, TypeError, KeyError):
        path, want, got = _first_difference(expected, tree)
        raise ValueError(
            f"{name}{path}: expected {want} for the parameters of {what}, got {got}; were these "
            "params made for another model?"
        ) from None
    for (path, e), t in zip(flat, leaves, strict=True):
        found = tuple(getattr(t, "shape", ()))
        if found != tuple(e.shape):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)}: expected shape {tuple(e.shape)} for {what}, "
                f"found {found}; were these params made for another model?"
            )
