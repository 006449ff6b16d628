"""The one training loop every jaxae model uses.

A model is trained by giving :func:`fit` either a loss ``loss_fn(params, batch, key) -> scalar``
(differentiated here) or a gradient estimator ``grad_fn(params, batch, key) -> (grads,
metrics)`` — contrastive divergence has no loss to differentiate — and any Optax transformation.
Pretraining an RBM and fine-tuning the unrolled autoencoder are two calls of this loop.

Per epoch the data stays on device, the batch indices are drawn from the epoch's key, and one
jit-compiled ``lax.scan`` runs every step; the host sees the metrics once per epoch (progress bar,
NaN check, evaluation hook, checkpoint). Keys are derived as ``fold_in(key, epoch)``, so a run
resumed from the checkpoint of epoch ``k`` continues exactly as an uninterrupted run would.

With ``mesh=`` or ``devices=`` the same loop runs data-parallel: the step becomes a per-device
step (:mod:`jaxae.parallel`) and each epoch's scan runs inside one jitted ``shard_map``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxae.data import batch_indices
from jaxae.typing import Array, Metrics, Params, PRNGKey
from jaxae.validation import check_positive_int

__all__ = [
    "TrainState",
    "FitResult",
    "NonFiniteError",
    "gradients_of_loss",
    "init_train_state",
    "make_train_step",
    "fit",
    "per_example_mean",
]

GradFn = Callable[..., Any]


class TrainState(NamedTuple):
    """Everything that changes during training (a PyTree).

    Attributes:
      params: the model's parameters.
      opt_state: the Optax state.
      step: number of updates applied, int32 scalar.
      aux: extra state of a stateful gradient estimator (e.g. persistent Gibbs chains), or None.
    """

    params: Params
    opt_state: optax.OptState
    step: Array
    aux: Any = None


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns: the final state and one history row per epoch."""

    state: TrainState
    history: list[dict[str, float]]

    @property
    def params(self) -> Params:
        return self.state.params


class NonFiniteError(FloatingPointError):
    """Training produced a NaN/inf; ``state`` holds the last state whose update was finite."""

    def __init__(self, message: str, *, state: TrainState, epoch: int, history: list):
        super().__init__(message)
        self.state = state
        self.epoch = epoch
        self.history = history


def gradients_of_loss(loss_fn: Callable, *, has_aux: bool = False) -> GradFn:
    """Wraps ``loss_fn(params, batch, key)`` as ``grad_fn(...) -> (grads, metrics)``.

    Args:
      loss_fn: returns a scalar loss, or ``(loss, metrics_dict)`` when ``has_aux``.
      has_aux: whether ``loss_fn`` returns metrics beside the loss.
    """

    def grad_fn(params, batch, key):
        if has_aux:
            (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, key)
            metrics = dict(metrics)
        else:
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
            metrics = {}
        metrics["loss"] = loss
        return grads, metrics

    return grad_fn


def init_train_state(
    params: Params, optimizer: optax.GradientTransformation, aux: Any = None
) -> TrainState:
    """A fresh :class:`TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), aux)


def _all_finite(tree) -> Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(
    grad_fn: GradFn, optimizer: optax.GradientTransformation, *, stateful: bool = False
) -> Callable[[TrainState, Any, PRNGKey], tuple[TrainState, Metrics]]:
    """One update ``(state, batch, key) -> (state, metrics)``, pure and ready for ``jax.jit``.

    Args:
      grad_fn: ``(params, batch, key) -> (grads, metrics)``, or, when ``stateful``,
        ``(params, aux, batch, key) -> (grads, aux, metrics)``.
      optimizer: any Optax transformation; ``grads`` are those of a quantity to minimise.
      stateful: whether ``grad_fn`` threads ``state.aux``.

    Returns:
      The step. ``metrics["finite"]`` says whether the gradients and metrics were all finite.
    """

    def step(state: TrainState, batch, key: PRNGKey):
        if stateful:
            grads, aux, metrics = grad_fn(state.params, state.aux, batch, key)
        else:
            (grads, metrics), aux = grad_fn(state.params, batch, key), state.aux
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics)
        metrics["finite"] = _all_finite((grads, metrics))
        return TrainState(params, opt_state, state.step + 1, aux), metrics

    return step


def _guarded_scan(step: Callable, state: TrainState, xs, batch_and_key: Callable):
    """``lax.scan`` of ``step`` over ``xs`` (leading axis: steps) that stops at the first bad step.

    ``batch_and_key(x) -> (batch, key)`` turns one step's slice of ``xs`` into the step's inputs.
    A step whose update is non-finite is discarded, and so is every later step of the scan, so the
    returned state is the last good one. Returns ``(state, metrics [n], first_bad)``, ``first_bad``
    the step count at the first non-finite update, or -1. The single-device epoch and the
    per-device epoch of :mod:`jaxae.parallel` both run this scan.
    """

    def body(carry, x):
        state, bad_step = carry
        batch, step_key = batch_and_key(x)
        new_state, metrics = step(state, batch, step_key)
        ok = metrics["finite"] & (bad_step < 0)
        state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
        bad_step = jnp.where((bad_step < 0) & ~metrics["finite"], state.step, bad_step)
        return (state, bad_step), metrics

    (state, bad_step), metrics = jax.lax.scan(body, (state, jnp.array(-1, jnp.int32)), xs)
    return state, metrics, bad_step


def _epoch_fn(step: Callable):
    """Jitted ``(state, data, indices [n, batch], key) -> (state, metrics [n], first_bad)``."""

    @jax.jit
    def run_epoch(state, data, indices, key):
        keys = jax.random.split(key, indices.shape[0])

        def batch_and_key(x):
            idx, step_key = x
            return jax.tree.map(lambda a: a[idx], data), step_key

        return _guarded_scan(step, state, (indices, keys), batch_and_key)

    return run_epoch


def _num_examples(data) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data: expected at least one array, got an empty PyTree")
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        shapes = [tuple(np.shape(x)) for x in leaves]
        raise ValueError(f"data: expected arrays with one shared leading dimension, got {shapes}")
    (n,) = sizes
    if n == 0:
        raise ValueError("data: expected at least one example, got 0")
    return n


def _check_finite_data(data) -> None:
    for path, x in jax.tree_util.tree_leaves_with_path(data):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            # A multi-host global array: reduce on the devices, fetch one bool.
            finite = not jnp.issubdtype(x.dtype, jnp.inexact) or bool(_all_finite_jit(x))
        else:
            x = np.asarray(x)
            finite = not np.issubdtype(x.dtype, np.inexact) or bool(np.all(np.isfinite(x)))
        if not finite:
            name = "data" + jax.tree_util.keystr(path)
            raise ValueError(f"{name}: expected finite values, found NaN/inf entries")


@jax.jit
def _all_finite_jit(x) -> Array:
    return jnp.all(jnp.isfinite(x))


class _Checkpointer:
    """Orbax save/restore of ``(state, history)`` after each epoch; Orbax writes atomically."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def save(self, epoch: int, state: TrainState, history: list) -> None:
        ocp = self._ocp
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_state_to_arrays(state)),
            history=ocp.args.JsonSave(history),
        )
        self._manager.save(epoch, args=args)
        self._manager.wait_until_finished()

    def restore(self, epoch: int, template: TrainState) -> tuple[TrainState, list]:
        ocp = self._ocp
        target = _state_to_arrays(template)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore()
        )
        restored = self._manager.restore(epoch, args=args)
        # Orbax may hand back plain tuples for NamedTuple nodes: rebuild the template's tree.
        leaves = jax.tree.leaves(restored.state)
        state = jax.tree.unflatten(jax.tree.structure(target), leaves)
        return _state_from_arrays(state, template), list(restored.history)

    def close(self) -> None:
        self._manager.close()


def _state_to_arrays(state: TrainState):
    """Typed PRNG keys in the state cannot be serialised: store their key data."""
    return jax.tree.map(
        lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
        state,
    )


def _state_from_arrays(arrays, template: TrainState) -> TrainState:
    return jax.tree.map(
        lambda x, t: (
            jax.random.wrap_key_data(x, impl=jax.random.key_impl(t))
            if jnp.issubdtype(t.dtype, jax.dtypes.prng_key)
            else x
        ),
        arrays,
        template,
    )


def fit(
    params: Params,
    data: Any,
    *,
    optimizer: optax.GradientTransformation,
    key: PRNGKey,
    epochs: int,
    batch_size: int,
    loss_fn: Callable | None = None,
    has_aux: bool = False,
    grad_fn: GradFn | None = None,
    aux: Any = None,
    remainder: str = "drop",
    eval_fn: Callable[[Params], dict[str, Any]] | None = None,
    eval_every: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    max_checkpoints: int = 2,
    progress: bool = True,
    desc: str = "train",
    mesh: jax.sharding.Mesh | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    example_keys: bool = False,
) -> FitResult:
    """Trains ``params`` on ``data`` for ``epochs`` epochs of shuffled mini-batches.

    Args:
      params: initial parameters (any PyTree).
      data: an array or PyTree of arrays sharing the leading (example) axis, e.g. ``x`` or
        ``{"x": x, "y": y}``; moved to the default device once. Each batch has the same structure.
      optimizer: an Optax transformation (``optax.chain``, schedules, ``multi_transform``…).
      key: PRNG key; epoch ``e`` uses ``fold_in(key, e)`` for its shuffle and its step keys.
      epochs: number of passes over the data.
      batch_size: examples per step.
      loss_fn: ``(params, batch, key) -> loss`` (or ``(loss, metrics)`` with ``has_aux``).
      has_aux: see ``loss_fn``.
      grad_fn: instead of ``loss_fn``, ``(params, batch, key) -> (grads, metrics)``; with ``aux``
        given, ``(params, aux, batch, key) -> (grads, aux, metrics)``.
      aux: initial state threaded through a stateful ``grad_fn`` (e.g. PCD chains).
      remainder: what to do with the ``n % batch_size`` examples left over each epoch: "drop"
        (a different random subset is dropped each epoch), "keep" (one extra, smaller step; one
        extra compilation) or "error".
      eval_fn: ``params -> {name: value}``, called every ``eval_every`` epochs and after the last;
        its values join that epoch's history row.
      eval_every: see ``eval_fn``.
      checkpoint_dir: if given, the state is saved there after every epoch, and a run that finds
        a checkpoint there resumes from it (same key, same data: same result as uninterrupted).
        The checkpoint holds global arrays: a data-parallel run can resume on another number of
        devices, or without a mesh.
      max_checkpoints: how many epoch checkpoints to keep.
      progress: show a tqdm bar with the running loss.
      desc: the bar's label.
      mesh: a 1-D device mesh (``jaxae.parallel.data_mesh()``): train data-parallel over its
        devices — each global batch split over them, parameters and optimizer state replicated,
        gradients and metrics averaged (``lax.pmean``), each device with its own noise stream
        ``fold_in(step_key, device_index)``; a stateful ``aux`` (PCD chains) is split over them
        too. The epoch runs in one jitted ``shard_map``; see :mod:`jaxae.parallel`.
        ``batch_size`` is the global batch and must be divisible by the number of devices.
      devices: instead of ``mesh``: the number of devices (the first ``n`` of ``jax.devices()``)
        or a list of devices.
      example_keys: draw each example's noise from ``fold_in(step_key, index of the example in
        data)`` and apply ``loss_fn`` / ``grad_fn`` one example at a time: results no longer
        depend on the device count (up to float rounding). Runs the data-parallel path (on one
        device if neither ``mesh`` nor ``devices`` is given); not with a stateful ``aux``.

    Returns:
      :class:`FitResult` with the final state and one history row per epoch (mean metrics over the
      epoch's steps, wall time, evaluation results).

    Raises:
      NonFiniteError: a step produced NaN/inf; it carries the last finite state.
      ValueError: bad arguments, e.g. a ``batch_size`` the device count does not divide.
    """
    if (loss_fn is None) == (grad_fn is None):
        raise ValueError("fit: pass exactly one of loss_fn and grad_fn")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(eval_every, "eval_every")
    num_examples = _num_examples(data)
    _check_finite_data(data)
    # Validate the batch policy now, not in the middle of epoch 0.
    batch_indices(jax.random.key(0), num_examples, batch_size, remainder=remainder)

    stateful = grad_fn is not None and aux is not None
    if mesh is not None or devices is not None or example_keys:
        # The data-parallel path: the same loop, with a per-device step in a shard_map'd epoch.
        from jaxae import parallel  # parallel builds on this module

        mesh, axis_name, num_devices = parallel.resolve_mesh(mesh, devices)
        parallel.check_divisible(batch_size, num_devices)
        if remainder == "keep" and num_examples % batch_size:
            parallel.check_divisible(
                num_examples % batch_size, num_devices, name="remainder='keep': the last batch"
            )
        step = parallel.data_parallel_step(
            optimizer,
            loss_fn=loss_fn,
            has_aux=has_aux,
            grad_fn=grad_fn,
            stateful=stateful,
            axis_name=axis_name,
            example_keys=example_keys,
        )
        run_epoch = run_rest = parallel.sharded_epoch_fn(
            step, mesh, stateful=stateful, example_keys=example_keys
        )
        data = parallel.shard_data(data, mesh)
        state = parallel.place_state(
            init_train_state(params, optimizer, aux), mesh, stateful=stateful
        )
    else:
        if grad_fn is None:
            grad_fn = gradients_of_loss(loss_fn, has_aux=has_aux)
        step = make_train_step(grad_fn, optimizer, stateful=stateful)
        run_epoch = _epoch_fn(step)
        run_rest = _epoch_fn(step) if remainder == "keep" else None
        data = jax.device_put(data)
        state = init_train_state(params, optimizer, aux)
    history: list[dict[str, float]] = []

    checkpointer = _Checkpointer(checkpoint_dir, max_checkpoints) if checkpoint_dir else None
    first_epoch = 0
    if checkpointer is not None and checkpointer.latest_epoch() is not None:
        done = checkpointer.latest_epoch()
        state, history = checkpointer.restore(done, state)
        first_epoch = done + 1

    bar = tqdm(
        range(first_epoch, epochs),
        desc=desc,
        disable=not progress,
        initial=first_epoch,
        total=epochs,
        leave=False,
    )
    try:
        for epoch in bar:
            start = time.perf_counter()
            shuffle_key, steps_key = jax.random.split(jax.random.fold_in(key, epoch))
            indices = batch_indices(shuffle_key, num_examples, batch_size, remainder=remainder)
            rest = None
            if remainder == "keep":
                indices, rest = indices
            state, metrics, bad_step = run_epoch(state, data, indices, steps_key)
            if rest is not None and rest.shape[0] > 0 and int(bad_step) < 0:
                state, rest_metrics, bad_step = run_rest(
                    state, data, rest[None], jax.random.fold_in(steps_key, 1)
                )
                metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, rest_metrics)
            row = {"epoch": epoch}
            row.update(_epoch_means(metrics))
            if int(bad_step) >= 0:
                history.append(row)
                raise NonFiniteError(
                    f"non-finite loss or gradient at step {int(bad_step) + 1} (epoch {epoch}); "
                    "training stopped and the returned state is the last finite one — lower the "
                    "learning rate, check the data for NaN/inf, or clip gradients",
                    state=state,
                    epoch=epoch,
                    history=history,
                )
            if eval_fn is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
                row.update({k: float(v) for k, v in eval_fn(state.params).items()})
            row["time_s"] = time.perf_counter() - start
            history.append(row)
            if "loss" in row:
                bar.set_postfix(loss=f"{row['loss']:.4g}")
            if checkpointer is not None:
                checkpointer.save(epoch, state, history)
    finally:
        bar.close()
        if checkpointer is not None:
            checkpointer.close()
    return FitResult(state=state, history=history)


def _epoch_means(metrics: Metrics) -> dict[str, float]:
    """Mean over the epoch's steps of every scalar metric, pulled to the host once."""
    host = jax.device_get(metrics)
    return {
        name: float(np.mean(values))
        for name, values in host.items()
        if name != "finite" and np.ndim(values) == 1
    }


def per_example_mean(
    fn: Callable[[Params, Any], Array], params: Params, data: Any, *, batch_size: int = 1000
) -> float:
    """Mean of a per-example function over a whole dataset, in memory-sized chunks.

    Args:
      fn: ``(params, batch) -> [batch]``, e.g. a reconstruction loss of the model's output.
      params: passed to ``fn``.
      data: an array or PyTree of arrays with a shared leading axis of ``n`` examples.
      batch_size: chunk size; the ``n % batch_size`` last examples are included.

    Returns:
      The mean over all ``n`` examples, as a Python float.
    """
    check_positive_int(batch_size, "batch_size")
    n = _num_examples(data)
    full = n // batch_size * batch_size
    total = 0.0
    if full:
        chunks = jax.tree.map(lambda a: a[:full].reshape(-1, batch_size, *a.shape[1:]), data)
        total += float(_sum_over_chunks(fn, params, chunks))
    if full < n:
        rest = jax.tree.map(lambda a: a[full:], data)
        total += float(jnp.sum(jax.jit(fn)(params, rest)))
    return total / n


@functools.partial(jax.jit, static_argnames="fn")
def _sum_over_chunks(fn, params, chunks):
    return jnp.sum(jax.lax.map(lambda chunk: jnp.sum(fn(params, chunk)), chunks))
