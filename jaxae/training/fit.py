"""The one training loop every jaxae model uses.

A model is trained by giving :func:`fit` either a loss ``loss_fn(params, batch, key) -> scalar``
(differentiated here) or a gradient estimator ``grad_fn(params, batch, key) -> (grads,
metrics)`` — contrastive divergence has no loss to differentiate — and any Optax transformation.
Pretraining an RBM and fine-tuning the unrolled autoencoder are two calls of this loop. A model
with mutable collections (a Flax module's ``batch_stats``) passes ``model_state=``.

Per epoch the data stays on device, the batch indices are drawn from the epoch's key, and one
jit-compiled ``lax.scan`` runs every step (or, for convolutions on CPU, one jitted step a
dispatch: ``loop=``); the host sees the metrics once per epoch (progress bar,
NaN check, evaluation hook, checkpoint, callbacks). Keys are derived as ``fold_in(key, epoch)``,
so a run resumed from the checkpoint of epoch ``k`` continues exactly as an uninterrupted run.

One device or many, the loop is the same: an :class:`~jaxae.training.epoch.EpochRunner` places
the data and state and runs the epoch (:mod:`jaxae.training.epoch`, or
:mod:`jaxae.training.parallel` with ``mesh=`` / ``devices=``). Runners are cached, so the same
``loss_fn`` / ``grad_fn`` and optimizer objects with the same shapes compile once across calls.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxae.training import parallel
from jaxae.training.batching import batch_indices
from jaxae.training.callbacks import Callback, callbacks_of
from jaxae.training.checkpoint import Checkpointer
from jaxae.training.epoch import epoch_runner, resolve_loop, run_epoch
from jaxae.training.state import TrainState, all_finite, init_train_state
from jaxae.training.step import GradFn
from jaxae.typing import Metrics, Params, PRNGKey
from jaxae.validation import check_optimizer, check_positive_int, check_prng_key

__all__ = ["FitResult", "InvalidDataError", "NonFiniteError", "fit"]


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns: the final state, one history row per epoch, and why it stopped.

    Attributes:
      state: the final :class:`~jaxae.training.state.TrainState`.
      history: one dict per epoch (mean metrics, ``eval_fn`` results, ``time_s``).
      stopped_early: the reason a callback stopped training, or None if all epochs ran.
      resumed_epochs: how many epochs were restored from ``checkpoint_dir`` rather than run by
        this call (0: a fresh start); their history rows are those of the run that saved them.
    """

    state: TrainState
    history: list[dict[str, float]]
    stopped_early: str | None = None
    resumed_epochs: int = 0

    @property
    def resumed_time_s(self) -> float:
        """Seconds the restored epochs took in the earlier run(s): with the time of this call,
        the whole training time of a run made in pieces."""
        return float(sum(row.get("time_s", 0.0) for row in self.history[: self.resumed_epochs]))

    @property
    def params(self) -> Params:
        return self.state.params

    @property
    def model_state(self) -> Any:
        return self.state.model_state


class NonFiniteError(FloatingPointError):
    """Training produced a NaN/inf; ``state`` holds the last state whose update was finite."""

    def __init__(self, message: str, *, state: TrainState, epoch: int, history: list):
        super().__init__(message)
        self.state = state
        self.epoch = epoch
        self.history = history


class InvalidDataError(NonFiniteError, ValueError):
    """A step went non-finite because its batch fails a value check of the loss or estimator
    (e.g. ``sigmoid_cross_entropy`` targets outside [0, 1]); the message names the check."""


def _diagnose(fns: dict, state: TrainState, batch, key, with_state: bool, stateful: bool):
    """Reruns the failing step's loss or gradient eagerly on its (concrete) batch: the value
    checks that ``jit`` skipped then run; returns the error one of them raises, or None."""
    params = state.params
    extra = (state.model_state,) if with_state else (state.aux,) if stateful else ()
    try:
        if fns["grad_fn"] is not None:
            fns["grad_fn"](params, *extra, batch, key)
        else:
            fns["loss_fn"](params, *extra, batch, key)
    except (ValueError, TypeError) as error:
        return error
    return None


def _resolve_loop(loop, fns, state, data, key, batch_size, mesh, with_state, stateful) -> str:
    """``loop`` made concrete (:func:`~jaxae.training.epoch.resolve_loop`): the loss or
    estimator is traced on one batch's shapes only for "auto" on CPU."""
    platform = (mesh.devices.flat[0] if mesh is not None else jax.devices()[0]).platform
    fn = fns["grad_fn"] if fns["grad_fn"] is not None else fns["loss_fn"]
    extra = (state.model_state,) if with_state else (state.aux,) if stateful else ()
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch_size, *a.shape[1:]), a.dtype), data)
    return resolve_loop(
        loop, platform=platform, step_fn=fn, example_args=(state.params, *extra, batch, key)
    )


def _num_examples(data) -> int:
    if isinstance(data, Iterator):
        raise TypeError(
            f"data: expected an array (or a PyTree of arrays sharing the leading axis), got "
            f"{type(data).__name__}; fit needs the whole dataset as arrays, e.g. "
            "np.asarray(list(data), np.float32)"
        )
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise ValueError("data: expected at least one array, got an empty PyTree")
    for path, x in leaves:
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            name = "data" + jax.tree_util.keystr(path)
            what = type(x).__name__
            if isinstance(data, (list, tuple)) and not hasattr(x, "__len__"):
                what = f"a Python {type(data).__name__} of {what}"
            raise TypeError(
                f"{name}: expected an array (or a PyTree of arrays sharing the leading axis), "
                f"got {what}; fit needs the whole dataset as arrays, e.g. "
                "np.asarray(data, np.float32)"
            )
    sizes = {
        "data" + jax.tree_util.keystr(path): int(x.shape[0]) if x.ndim else None
        for path, x in leaves
    }
    if len(set(sizes.values())) != 1 or None in sizes.values():
        shown = ", ".join(f"{k}: {v}" for k, v in list(sizes.items())[:8])
        raise ValueError(
            "data: expected arrays with one shared leading dimension (the examples), got leading "
            f"sizes {shown}" + (" ..." if len(sizes) > 8 else "")
        )
    (n,) = set(sizes.values())
    if n == 0:
        raise ValueError("data: expected at least one example, got 0")
    return n


def _check_params(params, differentiated: bool) -> None:
    """``params`` is a PyTree of arrays (not a model, not an uncalled ``init``); float if
    ``loss_fn`` is differentiated with respect to it."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, x in leaves:
        name = "params" + jax.tree_util.keystr(path)
        if isinstance(x, (float, int)) and not isinstance(x, bool):
            x = np.asarray(x)  # a Python number: its dtype decides
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            if callable(x) and hasattr(x, "__self__"):
                got = f"the method {x.__name__} uncalled; call it, e.g. model.{x.__name__}(key)"
            elif hasattr(x, "init"):
                got = f"a {type(x).__name__} (a model?); pass its parameters, model.init(key)"
            else:
                got = type(x).__name__
            raise TypeError(f"{name}: expected a PyTree of arrays, got {got}")
        if differentiated and not jnp.issubdtype(x.dtype, jnp.inexact):
            raise TypeError(
                f"{name}: expected a floating dtype (loss_fn is differentiated with respect to "
                f"params), got {x.dtype}"
            )


def _check_arity(fn, name: str, arguments: tuple[str, ...], hint: str = "") -> None:
    """``fn`` can be called with ``len(arguments)`` positional arguments (when its signature can
    be read)."""
    import inspect

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
    required = [p for p in positional if p.default is p.empty]
    n = len(arguments)
    if len(required) > n or (len(positional) < n and not varargs):
        got = ", ".join(p.name for p in positional) + (", *args" if varargs else "")
        hint = hint if len(required) == n + 1 else ""
        raise TypeError(
            f"{name}: expected a function of ({', '.join(arguments)}), got one of ({got}){hint}"
        )


def _check_callbacks(callbacks) -> None:
    items = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
    for c in items:
        if isinstance(c, type):
            raise TypeError(
                f"callbacks: got the class {c.__name__}, not an instance; pass {c.__name__}(...)"
            )


_all_finite_jit = jax.jit(all_finite)


def _check_finite_data(data) -> None:
    for path, x in jax.tree_util.tree_leaves_with_path(data):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            # A multi-host global array: reduce on the devices, fetch one bool.
            finite = not jnp.issubdtype(x.dtype, jnp.inexact) or bool(_all_finite_jit(x))
        else:
            x = np.asarray(x)
            finite = not jnp.issubdtype(x.dtype, jnp.inexact) or bool(np.all(np.isfinite(x)))
        if not finite:
            name = "data" + jax.tree_util.keystr(path)
            raise ValueError(f"{name}: expected finite values, found NaN/inf entries")


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
    model_state: Any = None,
    callbacks: Sequence[Callback | Callable] = (),
    remainder: str = "drop",
    eval_fn: Callable[[Params], dict[str, Any]] | None = None,
    eval_every: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    max_checkpoints: int = 2,
    checkpoint_every: int = 1,
    progress: bool = True,
    desc: str = "train",
    mesh: jax.sharding.Mesh | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    example_keys: bool = False,
    loop: str = "auto",
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
      model_state: the model's mutable collections (e.g. a Flax module's ``{"batch_stats":
        ...}``, see :class:`jaxae.LinenAutoencoder`). When given, ``loss_fn(params,
        model_state, batch, key) -> (loss, new_model_state)`` (with ``has_aux``: ``(loss,
        (new_model_state, metrics))``), or ``grad_fn(params, model_state, batch, key) ->
        (grads, new_model_state, metrics)``; ``eval_fn(params, model_state)``. Checkpointed;
        averaged over the devices after each data-parallel step. Not with ``aux``.
      callbacks: :class:`jaxae.training.Callback` objects (``EarlyStopping``,
        ``WallTimeLimit``, ``CSVLogger``, ``TensorBoardLogger``) or functions ``(epoch, row,
        state) -> str | None``, called on the host after each epoch; a returned string stops
        training after that epoch and becomes ``FitResult.stopped_early``. A resumed run that
        ``EarlyStopping`` had stopped stays stopped (``on_train_begin`` returns the reason).
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
      checkpoint_every: save every ``checkpoint_every`` epochs (and after the last epoch, and
        after one where a callback stops training) instead of after each: for short epochs,
        where a save would cost a noticeable share of the epoch. A run cut short resumes from
        the last saved epoch.
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
        device if neither ``mesh`` nor ``devices`` is given); not with a stateful ``aux`` or
        ``model_state``.
      loop: how an epoch is dispatched: "scan" (one ``lax.scan``, one dispatch an epoch),
        "steps" (one jitted step a dispatch; same steps, same keys, same result) or "auto":
        "steps" on CPU devices when the step computes a convolution, which XLA's CPU backend
        runs far slower inside a loop (jax-ml/jax#12868), "scan" otherwise. Either way the host
        waits once an epoch.

    Compile once: the compiled epoch is cached by the ``loss_fn`` / ``grad_fn`` and
    ``optimizer`` objects and the flags, so a sweep of short ``fit`` calls that passes the same
    objects (not a fresh ``lambda``, ``partial`` or ``optax.adam(...)`` per call) compiles once.

    Checked inputs: before training, in plain Python: the integer options, ``optimizer`` (an
    Optax transformation, not a string, an uncalled ``optax.adam`` or a schedule), ``key`` (a
    typed key, or a legacy ``uint32[2]`` one), ``params`` (a PyTree of arrays, floating for
    ``loss_fn``), the positional arguments ``loss_fn`` / ``grad_fn`` take, ``callbacks``
    (instances, not classes), the data (arrays with one leading axis, finite; float64 data is
    trained in float32, JAX's default precision, unless ``jax_enable_x64``), ``checkpoint_dir`` (a
    writable directory: not a file, not below one) and the checkpoint found there (intact, of
    this model and optimizer, at most ``epochs`` epochs). While the step is traced, before XLA:
    ``loss_fn`` returns a scalar (a pair with ``has_aux``), ``grad_fn`` returns ``(grads,
    metrics)`` with grads shaped as ``params``. Value checks (ranges, counts) cannot raise under
    ``jit``: the losses and estimators that need a range return NaN for out-of-range inputs, the
    step is flagged non-finite, and ``fit`` reruns that step's loss or estimator eagerly on its
    batch, where the check raises: :class:`InvalidDataError` names it (every batch is covered,
    at no cost per step). ``eval_fn`` must return ``{name: scalar}``.

    Returns:
      :class:`FitResult` with the final state, one history row per epoch (mean metrics over the
      epoch's steps, wall time, evaluation results) and ``stopped_early``.

    Raises:
      InvalidDataError: a batch fails a value check of the loss or estimator (a ``ValueError``
        and a ``NonFiniteError``); it carries the last finite state.
      NonFiniteError: a step produced NaN/inf; it carries the last finite state.
      ValueError: bad arguments, e.g. a ``batch_size`` the device count does not divide.
    """
    if (loss_fn is None) == (grad_fn is None):
        raise ValueError("fit: pass exactly one of loss_fn and grad_fn")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(eval_every, "eval_every")
    check_positive_int(max_checkpoints, "max_checkpoints")
    check_positive_int(checkpoint_every, "checkpoint_every")
    check_optimizer(optimizer)
    check_prng_key(key)
    for name, fn in (("loss_fn", loss_fn), ("grad_fn", grad_fn), ("eval_fn", eval_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name}: expected a function, got {type(fn).__name__}")
    if aux is not None and grad_fn is None and model_state is None:  # both: refused below
        raise ValueError(
            "aux: the state of a grad_fn estimator (e.g. persistent chains); a loss_fn never "
            "sees it — a loss with mutable state (BatchNorm statistics) takes model_state="
        )
    if has_aux and grad_fn is not None:
        raise ValueError("has_aux: only for a loss_fn; a grad_fn returns its metrics itself")
    middle = ("model_state",) if model_state is not None else ()
    if grad_fn is not None and aux is not None:
        middle = ("aux",)
    hint = ""
    if not middle:
        hint = "; a function of (params, model_state, batch, key) needs model_state="
    name, fn = ("loss_fn", loss_fn) if loss_fn is not None else ("grad_fn", grad_fn)
    _check_arity(fn, name, ("params", *middle, "batch", "key"), hint)
    _check_callbacks(callbacks)
    _check_params(params, differentiated=loss_fn is not None)
    num_examples = _num_examples(data)
    _check_finite_data(data)
    if remainder == "keep" and batch_size > num_examples:
        raise ValueError(
            f"batch_size: {batch_size} is larger than num_examples {num_examples}; use "
            f"batch_size <= {num_examples}"
        )
    # Validate the batch policy now, not in the middle of epoch 0.
    batch_indices(jax.random.key(0), num_examples, batch_size, remainder=remainder)

    if aux is not None and model_state is not None:
        raise ValueError("aux and model_state: pass at most one of them")
    stateful = grad_fn is not None and aux is not None
    with_state = model_state is not None
    hooks = callbacks_of(callbacks)
    fns = dict(loss_fn=loss_fn, has_aux=has_aux, grad_fn=grad_fn)
    flags = dict(stateful=stateful, model_state=with_state)
    if mesh is not None or devices is not None or example_keys:
        # The data-parallel path: the same loop, with a per-device step in a shard_map'd epoch.
        mesh, _, num_devices = parallel.resolve_mesh(mesh, devices)
        parallel.check_divisible(batch_size, num_devices)
        if remainder == "keep" and num_examples % batch_size:
            parallel.check_divisible(
                num_examples % batch_size, num_devices, name="remainder='keep': the last batch"
            )
        runner = parallel.data_parallel_runner(
            mesh=mesh, optimizer=optimizer, example_keys=example_keys, **fns, **flags
        )
    else:
        runner = epoch_runner(optimizer=optimizer, **fns, **flags)
    data = runner.place_data(data)
    state = runner.place_state(init_train_state(params, optimizer, aux, model_state))
    loop = _resolve_loop(loop, fns, state, data, key, batch_size, mesh, with_state, stateful)
    history: list[dict[str, float]] = []

    checkpointer = None
    bar = None
    stopped_early = None
    began = []
    try:
        if checkpoint_dir is not None:
            checkpointer = Checkpointer(checkpoint_dir, max_checkpoints)
        first_epoch = 0
        restored = checkpointer.restore_latest(state) if checkpointer is not None else None
        if restored is not None:
            done, state, history = restored
            if done + 1 > epochs:
                raise ValueError(
                    f"epochs: {epochs} asked, but the checkpoint in {checkpointer.directory!r} "
                    f"already holds {done + 1} epochs; pass epochs >= {done + 1}, or another "
                    "checkpoint_dir"
                )
            first_epoch = done + 1

        reasons = []
        for hook in hooks:
            said = hook.on_train_begin(
                first_epoch=first_epoch, epochs=epochs, history=list(history)
            )
            began.append(hook)
            reasons.append(_stop_reason(hook, said, "on_train_begin"))
        reasons = [r for r in reasons if r]
        if reasons:  # a resumed run that a callback had already stopped: nothing to train
            stopped_early = "; ".join(reasons)
        bar = tqdm(
            range(first_epoch, first_epoch if reasons else epochs),
            desc=desc,
            disable=not progress,
            initial=first_epoch,
            total=epochs,
            leave=False,
        )
        for epoch in bar:
            start = time.perf_counter()
            # The remainder="keep" batch gets its own branch: a key derived from the steps'
            # keys would repeat bits a step's loss draws.
            shuffle_key, steps_key, rest_key = jax.random.split(jax.random.fold_in(key, epoch), 3)
            indices = batch_indices(shuffle_key, num_examples, batch_size, remainder=remainder)
            rest = None
            if remainder == "keep":
                indices, rest = indices
            start_state = state
            state, metrics, bad_step = run_epoch(runner, state, data, indices, steps_key, loop=loop)
            if rest is not None and rest.shape[0] > 0 and bad_step < 0:
                state, rest_metrics, bad_step = run_epoch(
                    runner, state, data, rest[None], rest_key, loop=loop
                )
                metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, rest_metrics)
            row = {"epoch": epoch}
            row.update(_checked_names(_epoch_means(metrics), row, "the step's metrics"))
            if bad_step >= 0:
                history.append(row)
                index = bad_step - int(start_state.step)
                if index < indices.shape[0]:
                    step_batch = indices[index]
                    step_key = jax.random.split(steps_key, indices.shape[0])[index]
                else:  # the remainder="keep" batch
                    step_batch = rest
                    step_key = jax.random.split(rest_key, 1)[0]
                rows = np.asarray(step_batch)
                batch = jax.tree.map(lambda a, rows=rows: a[rows], data)
                cause = _diagnose(fns, state, batch, step_key, with_state, stateful)
                if cause is not None:
                    name = "grad_fn" if grad_fn is not None else "loss_fn"
                    raise InvalidDataError(
                        f"data: the batch of step {bad_step + 1} (epoch {epoch}) fails a value "
                        f"check of {name} (under jit it made the step non-finite): {cause}",
                        state=state,
                        epoch=epoch,
                        history=history,
                    ) from cause
                raise NonFiniteError(
                    f"non-finite loss, gradient or parameters at step {bad_step + 1} (epoch "
                    f"{epoch}); training stopped and the returned state is the last finite one — "
                    "lower the learning rate, check the data for NaN/inf, or clip gradients",
                    state=state,
                    epoch=epoch,
                    history=history,
                )
            if eval_fn is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
                results = (
                    eval_fn(state.params, state.model_state)
                    if with_state
                    else eval_fn(state.params)
                )
                row.update(_checked_names(_eval_row(results), row, "eval_fn"))
            row["time_s"] = time.perf_counter() - start
            history.append(row)
            if "loss" in row:
                bar.set_postfix(loss=f"{row['loss']:.4g}")
            saved = (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs
            if checkpointer is not None and saved:
                checkpointer.save(epoch, state, history)
            reasons = [
                _stop_reason(hook, hook.on_epoch_end(epoch, dict(row), state), "on_epoch_end")
                for hook in hooks
            ]
            reasons = [r for r in reasons if r]
            if reasons:
                if checkpointer is not None and not saved:  # a stopped run resumes from here
                    checkpointer.save(epoch, state, history)
                stopped_early = "; ".join(reasons)
                break
    finally:
        # Close everything on every path: an Orbax manager left open blocks interpreter exit.
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.close()
        for hook in began:
            hook.on_train_end(history=list(history), stopped_early=stopped_early)
    return FitResult(
        state=state, history=history, stopped_early=stopped_early, resumed_epochs=first_epoch
    )


def _checked_names(values: dict[str, float], row: dict, source: str) -> dict[str, float]:
    """``values``, unless a name would overwrite one the history row already has (the training
    ``loss`` by an eval ``loss``, the ``epoch``) or ``time_s``, which the loop writes."""
    clash = sorted(set(values) & (set(row) | {"epoch", "time_s"}))
    if clash:
        raise ValueError(
            f"{source}: the names {clash} are taken in the history row ({sorted(row)} and "
            "'time_s'); rename them, e.g. 'val_loss'"
        )
    return values


def _stop_reason(hook, said, method: str) -> str | None:
    """A callback's answer as a stop reason: a string, ``True`` (named after the callback), or
    nothing (``None``/``False``)."""
    if said is None:
        return None
    if isinstance(said, (bool, np.bool_)):  # row["loss"] < 1e-3, in Python or NumPy
        if not said:
            return None
        name = getattr(getattr(hook, "_fn", None), "__name__", None) or type(hook).__name__
        return f"the callback {name} asked to stop"
    if isinstance(said, str):
        return said
    raise TypeError(
        f"callbacks: {method} returned {type(said).__name__} {said!r}; expected a reason to "
        "stop (a str, or True) or None"
    )


def _eval_row(results) -> dict[str, float]:
    """``eval_fn``'s results as floats; names what is wrong when they are not."""
    if not isinstance(results, dict):
        raise TypeError(
            f"eval_fn: expected a dict {{name: scalar}}, got {type(results).__name__}"
            + (f" of shape {tuple(results.shape)}" if hasattr(results, "shape") else "")
        )
    row = {}
    for name, value in results.items():
        if np.ndim(value) != 0:
            raise ValueError(
                f"eval_fn: {name!r}: expected a scalar, got shape {tuple(np.shape(value))}"
            )
        row[name] = float(value)
    return row


def _epoch_means(metrics: Metrics) -> dict[str, float]:
    """Mean over the epoch's steps of every scalar metric, pulled to the host once."""
    host = jax.device_get(metrics)
    return {
        name: float(np.mean(values))
        for name, values in host.items()
        if name != "finite" and np.ndim(values) == 1
    }
