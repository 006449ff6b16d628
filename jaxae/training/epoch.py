"""One epoch on one device: a jitted ``lax.scan`` of the step over device-resident batches.

An :class:`EpochRunner` is what :func:`jaxae.fit` drives, on one device (:func:`epoch_runner`)
or data-parallel (:func:`jaxae.training.parallel.data_parallel_runner`): how to place the data
and the state, and the epoch itself, ``(state, data, indices [steps, batch], keys [steps]) ->
(state, metrics [steps], first_bad)``. :func:`run_epoch` runs it and, only when a step was not
finite, runs the guarded epoch again from the same state (see :mod:`jaxae.training.step`).

Two loops, one result: ``loop="scan"`` runs the whole epoch as one ``lax.scan`` (one dispatch an
epoch); ``loop="steps"`` dispatches one jitted step at a time, still without a host round-trip
(the host waits once, at the epoch's end). Both apply the same steps with the same keys. The
second exists because XLA's CPU backend runs a convolution inside a loop body an order of
magnitude slower than outside one (jax-ml/jax#12868; 18x measured here on the CBIR autoencoder's
step); :func:`resolve_loop` picks it for ``loop="auto"`` when the step has a convolution and the
devices are CPUs, and the scan everywhere else.

Compile once: runners are cached by what they are built from (the loss or gradient function,
the optimizer, the flags), so a second ``fit`` with the same function and optimizer *objects*
and the same shapes reuses the compiled epoch. A recipe that makes a fresh ``lambda``,
``functools.partial`` or ``optax.adam(...)`` per call gets a fresh compilation per call: build
them once and pass the same objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae.training.state import TrainState
from jaxae.training.step import (
    GradFn,
    gradients_of_loss,
    guarded_scan,
    make_train_step,
    scan_steps,
)
from jaxae.typing import Array, Metrics

__all__ = [
    "LOOPS",
    "EpochRunner",
    "cached_build",
    "epoch_fn",
    "epoch_runner",
    "resolve_loop",
    "run_epoch",
    "uses_convolution",
]

LOOPS = ("auto", "scan", "steps")

Epoch = Callable[[TrainState, Any, Array, Array], tuple[TrainState, Metrics, Array]]


class EpochRunner(NamedTuple):
    """How :func:`jaxae.fit` runs epochs on some devices.

    Attributes:
      run: the epoch, every update applied: ``(state, data, indices [steps, batch], keys
        [steps]) -> (state, metrics [steps], first_bad)``; step ``s`` uses ``keys[s]``.
      run_guarded: the same epoch keeping the last finite state (run only after ``run``
        reported a bad step).
      run_unrolled: ``run`` compiled without a loop, for a few steps a call (``loop="steps"``
        calls it with one).
      run_unrolled_guarded: ``run_guarded`` likewise.
      place_data: puts the dataset on the devices, once.
      place_state: puts a :class:`TrainState` on the devices (after init or a restore).
    """

    run: Epoch
    run_guarded: Epoch
    run_unrolled: Epoch
    run_unrolled_guarded: Epoch
    place_data: Callable[[Any], Any]
    place_state: Callable[[TrainState], TrainState]


def epoch_fn(step: Callable, *, guarded: bool = False, unroll: bool = False) -> Epoch:
    """The jitted one-device epoch ``(state, data, indices [n, batch], keys [n]) -> (state,
    metrics [n], first_bad)`` of ``step`` (:func:`~jaxae.training.step.scan_steps`, or
    :func:`~jaxae.training.step.guarded_scan` when ``guarded``); ``unroll``: no loop in the
    compiled code (for a few steps a call)."""
    scan = guarded_scan if guarded else scan_steps

    @jax.jit
    def run(state, data, indices, keys):
        def batch_and_key(x):
            idx, step_key = x
            return jax.tree.map(lambda a: a[idx], data), step_key

        return scan(step, state, (indices, keys), batch_and_key, unroll=unroll)

    return run


def cached_build(build: Callable) -> Callable:
    """``build(**kwargs)`` memoised on its (hashable) keyword arguments; unhashable: built anew.

    Keeps the 32 most recent builds, and with them their compiled executables.
    """
    cached = functools.lru_cache(maxsize=32)(build)

    @functools.wraps(build)
    def get(**kwargs):
        try:
            hash(tuple(kwargs.items()))
        except TypeError:
            return build(**kwargs)
        return cached(**kwargs)

    get.cache_clear = cached.cache_clear
    get.cache_info = cached.cache_info
    return get


def training_step(
    *,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable | None,
    has_aux: bool,
    grad_fn: GradFn | None,
    stateful: bool,
    model_state: bool,
) -> Callable:
    """The step of ``fit``'s arguments: ``loss_fn`` differentiated, or ``grad_fn`` as it is."""
    if grad_fn is None:
        grad_fn = gradients_of_loss(loss_fn, has_aux=has_aux, model_state=model_state)
    return make_train_step(grad_fn, optimizer, stateful=stateful, model_state=model_state)


@cached_build
def epoch_runner(
    *,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable | None = None,
    has_aux: bool = False,
    grad_fn: GradFn | None = None,
    stateful: bool = False,
    model_state: bool = False,
) -> EpochRunner:
    """The one-device :class:`EpochRunner` of ``fit``'s arguments (cached: see the module)."""
    step = training_step(
        optimizer=optimizer,
        loss_fn=loss_fn,
        has_aux=has_aux,
        grad_fn=grad_fn,
        stateful=stateful,
        model_state=model_state,
    )
    return EpochRunner(
        run=epoch_fn(step),
        run_guarded=epoch_fn(step, guarded=True),
        run_unrolled=epoch_fn(step, unroll=True),
        run_unrolled_guarded=epoch_fn(step, guarded=True, unroll=True),
        place_data=jax.device_put,
        place_state=jax.device_put,
    )


def _subjaxprs(params: dict):
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr holds its Jaxpr
            if hasattr(inner, "eqns"):
                yield inner


def _has_primitive(jaxpr, name: str) -> bool:
    return any(
        eqn.primitive.name == name or any(_has_primitive(j, name) for j in _subjaxprs(eqn.params))
        for eqn in jaxpr.eqns
    )


def uses_convolution(fn: Callable, *args: Any) -> bool:
    """Whether ``fn(*args)`` computes a convolution, at any depth (traced abstractly: ``args``
    may be ``jax.ShapeDtypeStruct``; nothing is computed). Cached by ``fn`` and the arguments'
    shapes and dtypes, so a sweep of ``fit`` calls traces it once."""
    leaves, treedef = jax.tree.flatten(args)
    specs = tuple(
        (tuple(np.shape(a)), a.dtype if hasattr(a, "dtype") else jnp.result_type(a)) for a in leaves
    )
    try:
        return _uses_convolution(fn, treedef, specs)
    except TypeError:  # an unhashable fn: trace it each time
        return _uses_convolution.__wrapped__(fn, treedef, specs)


@functools.lru_cache(maxsize=128)
def _uses_convolution(fn: Callable, treedef, leaves: tuple) -> bool:
    structs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in leaves]
    args = jax.tree.unflatten(treedef, structs)
    return _has_primitive(jax.make_jaxpr(fn)(*args).jaxpr, "conv_general_dilated")


def resolve_loop(loop: str, *, platform: str, step_fn: Callable, example_args: tuple) -> str:
    """``fit``'s ``loop`` argument made concrete: "scan" or "steps".

    Args:
      loop: "scan", "steps", or "auto": "steps" when ``platform`` is "cpu" and
        ``step_fn(*example_args)`` has a convolution (see the module), else "scan".
      platform: the training devices' platform ("cpu", "gpu", "tpu").
      step_fn: the loss or gradient function a step calls (traced only for "auto" on CPU).
      example_args: its arguments for one step (arrays or ``jax.ShapeDtypeStruct``).

    Raises:
      ValueError: ``loop`` is none of ``LOOPS`` ("auto", "scan", "steps").
    """
    if loop not in LOOPS:
        raise ValueError(f"loop: expected one of {LOOPS}, got {loop!r}")
    if loop != "auto":
        return loop
    if platform == "cpu" and uses_convolution(step_fn, *example_args):
        return "steps"
    return "scan"


def _first_bad(flags: list) -> int:
    bad = [int(b) for b in np.asarray(jnp.stack(flags)) if b >= 0]
    return bad[0] if bad else -1


def _concatenate(metrics: list) -> Metrics:
    return jax.tree.map(lambda *rows: jnp.concatenate(rows), *metrics)


def _step_by_step(runner: EpochRunner, state, data, indices, keys):
    """``runner.run`` as one dispatch a step; the host waits once, at the end."""
    metrics, flags = [], []
    for s in range(indices.shape[0]):
        state, step_metrics, bad = runner.run_unrolled(
            state, data, indices[s : s + 1], keys[s : s + 1]
        )
        metrics.append(step_metrics)
        flags.append(bad)
    return state, _concatenate(metrics), _first_bad(flags)


def _guarded_step_by_step(runner: EpochRunner, state, data, indices, keys):
    """``runner.run_guarded`` one dispatch a step, stopping at the first non-finite one."""
    metrics, first_bad = [], -1
    for s in range(indices.shape[0]):
        state, step_metrics, bad = runner.run_unrolled_guarded(
            state, data, indices[s : s + 1], keys[s : s + 1]
        )
        metrics.append(step_metrics)
        if int(bad) >= 0:
            first_bad = int(bad)
            break
    return state, _concatenate(metrics), first_bad


def run_epoch(
    runner: EpochRunner,
    state: TrainState,
    data: Any,
    indices: Array,
    key: Array,
    *,
    loop: str = "scan",
) -> tuple[TrainState, Metrics, int]:
    """One epoch; on a non-finite step, the guarded epoch from the same ``state``.

    Args:
      runner: from :func:`epoch_runner` or the data-parallel one.
      state: the state before the epoch.
      data: the placed dataset (``runner.place_data``).
      indices: ``[steps, batch]`` example indices.
      key: the epoch's step key; step ``s`` uses ``split(key, steps)[s]``.
      loop: "scan" (the epoch in one dispatch) or "steps" (one dispatch a step): see the module.

    Returns:
      ``(state, metrics [steps], first_bad)`` with ``first_bad`` a Python int: -1, or the step
      count at the first non-finite update, in which case ``state`` is the last finite one
      (and, with ``loop="steps"``, ``metrics`` ends at that step).
    """
    keys = jax.random.split(key, indices.shape[0])
    if loop == "steps":
        indices = np.asarray(indices)
        new_state, metrics, first_bad = _step_by_step(runner, state, data, indices, keys)
        if first_bad >= 0:
            new_state, metrics, first_bad = _guarded_step_by_step(
                runner, state, data, indices, keys
            )
        return new_state, metrics, first_bad
    new_state, metrics, first_bad = runner.run(state, data, indices, keys)
    first_bad = int(first_bad)
    if first_bad >= 0:
        new_state, metrics, first_bad = runner.run_guarded(state, data, indices, keys)
        first_bad = int(first_bad)
    return new_state, metrics, first_bad
