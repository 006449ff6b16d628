"""One update ``(state, batch, key) -> (state, metrics)`` and the scans that run many of them.

A step's metrics carry ``finite``: whether the updated parameters (and ``aux``, ``model_state``)
and the metrics are free of NaN/inf. Two scans run a sequence of steps:

* :func:`scan_steps` applies every update and reports the first step that was not finite; it adds
  nothing to the step but that one flag, so the epoch runs as fast as a bare ``lax.scan``;
* :func:`guarded_scan` keeps the last finite state: a non-finite update is discarded, and so is
  every later one (a ``jnp.where`` over the whole state per step).

The epoch (:mod:`jaxae.training.epoch`) runs the first, and only when it reports a bad step runs
the second from the same starting state (the steps are deterministic functions of their inputs),
so a non-finite update never reaches the state that training returns, at no cost per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxae.training.state import TrainState, all_finite
from jaxae.typing import Array, Metrics, PRNGKey

__all__ = ["GradFn", "gradients_of_loss", "make_train_step", "scan_steps", "guarded_scan"]

GradFn = Callable[..., Any]
Step = Callable[[TrainState, Any, PRNGKey], tuple[TrainState, Metrics]]


def gradients_of_loss(
    loss_fn: Callable, *, has_aux: bool = False, model_state: bool = False
) -> GradFn:
    """Wraps a loss as a gradient function ``grad_fn(...) -> (grads, metrics)``.

    Args:
      loss_fn: ``(params, batch, key) -> loss`` (a scalar), or ``(loss, metrics)`` when
        ``has_aux``. With ``model_state``: ``(params, model_state, batch, key) -> (loss,
        new_model_state)``, or ``(loss, (new_model_state, metrics))`` when ``has_aux``.
      has_aux: whether ``loss_fn`` returns metrics beside the loss.
      model_state: whether ``loss_fn`` threads the model's mutable collections.

    Returns:
      ``(params, batch, key) -> (grads, metrics)``, or with ``model_state``
      ``(params, model_state, batch, key) -> (grads, new_model_state, metrics)``;
      ``metrics["loss"]`` is the loss.
    """
    if model_state:

        def grad_with_state(params, state, batch, key):
            def loss(p):
                value, out = _checked_loss_output(
                    loss_fn(p, state, batch, key), has_aux=has_aux, model_state=True
                )
                new_state, metrics = out if has_aux else (out, {})
                return value, (new_state, metrics)

            (value, (new_state, metrics)), grads = jax.value_and_grad(loss, has_aux=True)(params)
            metrics = dict(metrics)
            metrics["loss"] = value
            return grads, new_state, metrics

        return grad_with_state

    def checked(params, batch, key):
        return _checked_loss_output(loss_fn(params, batch, key), has_aux=has_aux)

    def grad_fn(params, batch, key):
        if has_aux:
            (loss, metrics), grads = jax.value_and_grad(checked, has_aux=True)(params, batch, key)
            metrics = dict(metrics)
        else:
            loss, grads = jax.value_and_grad(checked)(params, batch, key)
            metrics = {}
        metrics["loss"] = loss
        return grads, metrics

    return grad_fn


def _shape(x) -> str:
    return str(tuple(x.shape)) if hasattr(x, "shape") else type(x).__name__


def _check_metrics(metrics, name: str) -> None:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{name}: expected metrics as a dict, got {type(metrics).__name__}")


def _check_scalar_loss(loss, has_aux: bool, model_state: bool) -> None:
    if isinstance(loss, (tuple, list)):
        hint = "" if has_aux else "; a (loss, metrics) pair needs has_aux=True"
        raise TypeError(f"loss_fn: expected a scalar loss, got a {type(loss).__name__}{hint}")
    if not hasattr(loss, "shape") or tuple(loss.shape) != ():
        raise ValueError(
            f"loss_fn: expected a scalar loss, got shape {_shape(loss)}; reduce the per-example "
            "losses over the batch, e.g. .mean()"
        )
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise TypeError(f"loss_fn: expected a floating-point loss, got dtype {loss.dtype}")


def _checked_loss_output(out, *, has_aux: bool, model_state: bool = False):
    """``loss_fn``'s output, checked at trace time: a scalar loss, and the pair fit expects."""
    if has_aux or model_state:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            want = (
                "(loss, (new_model_state, metrics))"
                if has_aux and model_state
                else ("(loss, new_model_state)" if model_state else "(loss, metrics)")
            )
            got = f"shape {_shape(out)}" if hasattr(out, "shape") else type(out).__name__
            raise TypeError(f"loss_fn: expected {want} (has_aux={has_aux}), got {got}")
        _check_scalar_loss(out[0], has_aux, model_state)
        if has_aux and not model_state:
            _check_metrics(out[1], "loss_fn")
        if has_aux and model_state:
            if not isinstance(out[1], (tuple, list)) or len(out[1]) != 2:
                raise TypeError(
                    "loss_fn: expected (loss, (new_model_state, metrics)) (has_aux=True with "
                    f"model_state), got (loss, {type(out[1]).__name__})"
                )
            _check_metrics(out[1][1], "loss_fn")
        return tuple(out)
    _check_scalar_loss(out, has_aux, model_state)
    return out


def _checked_grad_output(out, params, n: int):
    """``grad_fn``'s output, checked at trace time: ``n`` items, the grads shaped as params."""
    if not isinstance(out, (tuple, list)) or len(out) != n:
        want = "(grads, metrics)" if n == 2 else "(grads, new_state, metrics)"
        got = f"a {len(out)}-tuple" if isinstance(out, (tuple, list)) else type(out).__name__
        raise TypeError(f"grad_fn: expected {want}, got {got}; return (grads, {{}}) for no metrics")
    grads, metrics = out[0], out[-1]
    want, found = jax.tree.structure(params), jax.tree.structure(grads)
    if want != found:
        raise ValueError(
            f"grad_fn: expected grads with the structure of params, {want}, got {found}"
        )
    for (path, p), g in zip(
        jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(grads), strict=True
    ):
        if _shape(p) != _shape(g):
            raise ValueError(
                f"grad_fn: grads{jax.tree_util.keystr(path)}: expected the shape of params, "
                f"{_shape(p)}, got {_shape(g)}"
            )
    _check_metrics(metrics, "grad_fn")
    return tuple(out)


def make_train_step(
    grad_fn: GradFn,
    optimizer: optax.GradientTransformation,
    *,
    stateful: bool = False,
    model_state: bool = False,
) -> Step:
    """One update ``(state, batch, key) -> (state, metrics)``, pure and ready for ``jax.jit``.

    Args:
      grad_fn: ``(params, batch, key) -> (grads, metrics)``; when ``stateful``,
        ``(params, aux, batch, key) -> (grads, aux, metrics)``; with ``model_state``,
        ``(params, model_state, batch, key) -> (grads, model_state, metrics)``.
      optimizer: any Optax transformation; ``grads`` are those of a quantity to minimise.
      stateful: whether ``grad_fn`` threads ``state.aux``.
      model_state: whether ``grad_fn`` threads ``state.model_state``.

    Returns:
      The step. ``metrics["finite"]`` says whether the updated ``params``, ``aux`` and
      ``model_state`` and the metrics are all finite (a non-finite gradient shows up in the
      updated parameters unless the optimizer removes it, as ``optax.zero_nans`` does).
    """
    if stateful and model_state:
        raise ValueError("make_train_step: stateful and model_state: pass at most one of them")

    def step(state: TrainState, batch, key: PRNGKey):
        aux, ms = state.aux, state.model_state
        if stateful:
            grads, aux, metrics = _checked_grad_output(
                grad_fn(state.params, aux, batch, key), state.params, 3
            )
        elif model_state:
            grads, ms, metrics = _checked_grad_output(
                grad_fn(state.params, ms, batch, key), state.params, 3
            )
        else:
            grads, metrics = _checked_grad_output(
                grad_fn(state.params, batch, key), state.params, 2
            )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics)
        metrics["finite"] = all_finite((params, aux, ms, metrics))
        return TrainState(params, opt_state, state.step + 1, aux, ms), metrics

    return step


def _scan(body: Callable, carry, xs, unroll: bool):
    """``lax.scan(body, carry, xs)``, or with ``unroll`` the same steps as straight-line code:
    ``lax.scan(..., unroll=True)`` still emits a (one-trip) while loop, which is what XLA's CPU
    convolutions are slow inside."""
    if not unroll:
        return jax.lax.scan(body, carry, xs)
    ys = []
    for i in range(jax.tree.leaves(xs)[0].shape[0]):
        carry, y = body(carry, jax.tree.map(lambda a, i=i: a[i], xs))
        ys.append(y)
    return carry, jax.tree.map(lambda *rows: jnp.stack(rows), *ys)


def scan_steps(
    step: Step, state: TrainState, xs: Any, batch_and_key: Callable, *, unroll: bool = False
) -> tuple[TrainState, Metrics, Array]:
    """``lax.scan`` of ``step`` over ``xs`` (leading axis: steps), every update applied.

    Args:
      step: from :func:`make_train_step`.
      state: the state before the first step.
      xs: a PyTree whose leaves have one row per step.
      batch_and_key: turns one step's slice of ``xs`` into the step's ``(batch, key)``.
      unroll: compile the steps as straight-line code, no loop (for a few steps: see
        :mod:`jaxae.training.epoch`).

    Returns:
      ``(state, metrics [n], first_bad)``: ``first_bad`` is the step count (``state.step``) at
      the first update that was not finite, or -1. When it is not -1 the returned state is not
      to be used: run :func:`guarded_scan` from the same ``state`` instead.
    """

    def body(state, x):
        batch, step_key = batch_and_key(x)
        return step(state, batch, step_key)

    start = state.step
    state, metrics = _scan(body, state, xs, unroll)
    finite = metrics["finite"]
    first_bad = jnp.where(jnp.all(finite), -1, start + jnp.argmin(finite).astype(start.dtype))
    return state, metrics, first_bad


def guarded_scan(
    step: Step, state: TrainState, xs: Any, batch_and_key: Callable, *, unroll: bool = False
) -> tuple[TrainState, Metrics, Array]:
    """:func:`scan_steps` that keeps the last finite state.

    A step whose update is not finite is discarded, and so is every later step of the scan, so
    the returned state is the last finite one. Returns ``(state, metrics [n], first_bad)`` as
    :func:`scan_steps` does.
    """

    def body(carry, x):
        state, bad_step = carry
        batch, step_key = batch_and_key(x)
        new_state, metrics = step(state, batch, step_key)
        ok = metrics["finite"] & (bad_step < 0)
        state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
        bad_step = jnp.where((bad_step < 0) & ~metrics["finite"], state.step, bad_step)
        return (state, bad_step), metrics

    init = (state, jnp.array(-1, jnp.int32))
    (state, bad_step), metrics = _scan(body, init, xs, unroll)
    return state, metrics, bad_step
