"""One epoch on one device: a jitted ``lax.scan`` of the step over device-resident batches.

An :class:`EpochRunner` is what :func:`jaxae.fit` drives, on one device (:func:`epoch_runner`)
or data-parallel (:func:`jaxae.training.parallel.data_parallel_runner`): how to place the data
and the state, and the epoch itself, ``(state, data, indices [steps, batch], key) -> (state, metrics
[steps], first_bad)``. :func:`run_epoch` runs it and, only when a step was not finite, runs the
guarded epoch again from the same state (see :mod:`jaxae.training.step`).

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

__all__ = ["EpochRunner", "epoch_fn", "epoch_runner", "run_epoch", "cached_build"]

Epoch = Callable[[TrainState, Any, Array, Array], tuple[TrainState, Metrics, Array]]


class EpochRunner(NamedTuple):
    """How :func:`jaxae.fit` runs epochs on some devices.

    Attributes:
      run: the epoch, every update applied: ``(state, data, indices [steps, batch], key) ->
        (state, metrics [steps], first_bad)``; step ``s`` uses ``split(key, steps)[s]``.
      run_guarded: the same epoch keeping the last finite state (run only after ``run``
        reported a bad step).
      place_data: puts the dataset on the devices, once.
      place_state: puts a :class:`TrainState` on the devices (after init or a restore).
    """

    run: Epoch
    run_guarded: Epoch
    place_data: Callable[[Any], Any]
    place_state: Callable[[TrainState], TrainState]


def epoch_fn(step: Callable, *, guarded: bool = False) -> Epoch:
    """The jitted one-device epoch ``(state, data, indices [n, batch], key) -> (state, metrics
    [n], first_bad)`` of ``step`` (:func:`~jaxae.training.step.scan_steps`, or
    :func:`~jaxae.training.step.guarded_scan` when ``guarded``)."""
    scan = guarded_scan if guarded else scan_steps

    @jax.jit
    def run(state, data, indices, key):
        keys = jax.random.split(key, indices.shape[0])

        def batch_and_key(x):
            idx, step_key = x
            return jax.tree.map(lambda a: a[idx], data), step_key

        return scan(step, state, (indices, keys), batch_and_key)

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
        place_data=jax.device_put,
        place_state=jax.device_put,
    )


def run_epoch(
    runner: EpochRunner, state: TrainState, data: Any, indices: Array, key: Array
) -> tuple[TrainState, Metrics, int]:
    """One epoch; on a non-finite step, the guarded epoch from the same ``state``.

    Returns:
      ``(state, metrics [steps], first_bad)`` with ``first_bad`` a Python int: -1, or the step
      count at the first non-finite update, in which case ``state`` is the last finite one.
    """
    new_state, metrics, first_bad = runner.run(state, data, indices, key)
    first_bad = int(first_bad)
    if first_bad >= 0:
        new_state, metrics, first_bad = runner.run_guarded(state, data, indices, key)
        first_bad = int(first_bad)
    return new_state, metrics, first_bad
