"""Data-parallel training: the per-device step written once, run under ``jax.shard_map`` or
``jax.pmap``.

The per-device step is the one-device step (:func:`jaxae.make_train_step`) around a gradient
that knows it runs on one shard of the batch, with collectives over a named mesh axis
(:func:`data_parallel_gradients`):

* the global batch is split over the mesh's data axis; parameters and optimizer state are
  replicated; a stateful estimator's ``aux`` (PCD fantasy chains) is split like the batch; the
  model's mutable collections (``model_state``, e.g. BatchNorm's ``batch_stats``) are replicated,
  and after each step every device's new ``model_state`` is averaged (``lax.pmean``; integer
  leaves take the maximum), so the replicas stay equal;
* the parameters are marked device-varying (``lax.pcast``) before differentiation, so each device
  computes the gradient of its own shard's mean loss, and ``lax.pmean`` averages gradients and
  metrics over the axis: with equal shards this is exactly the gradient of the global batch mean
  of a loss that is a mean of per-example terms, and every device applies the same Optax update
  to its replica. A loss with batch statistics (BatchNorm in train mode) is not such a mean: each
  device normalises by its own shard's statistics (unsynchronised BatchNorm, as in the Flax
  examples), so its gradient and the averaged running variance (which leaves out the variance
  between shards) differ from a one-device run on the same global batch;
* randomness, two choices:

  - per-device streams (default): device ``d`` of a ``D``-device axis draws from
    ``fold_in(step_key, d)`` (``d = lax.axis_index``); a 1-device mesh uses ``step_key`` itself,
    so ``fit(..., devices=1)`` reproduces the single-device ``fit``. Reproducible for a given
    device count; a different count draws different (equally valid) noise.
  - per-example keys (``example_keys=True``): example ``i`` of the dataset draws from
    ``fold_in(step_key, i)`` whichever device holds it, and the loss or gradient estimator is
    evaluated one example at a time (``vmap`` over batches of one, then the mean). Noise,
    dropout and Gibbs sampling are then the same on 1 or 8 devices, and the results agree to float
    rounding — what makes an exact 1-vs-8-device comparison of a stochastic estimator (CD-k)
    meaningful. The cost: a ``grad_fn`` is ``vmap``-ed per example (per-example gradients are
    formed, then averaged); a ``loss_fn`` is ``vmap``-ed inside the loss (cheap). Losses must be
    means of per-example terms (no batch statistics).

The step is a pure function of ``(state, local_batch, key)`` with collectives over
``axis_name``: :func:`shard_map_step` runs it under ``jax.shard_map`` on a 1-D mesh,
:func:`pmap_step` under ``jax.pmap``; both give the same numbers. :func:`jaxae.fit` runs a whole
epoch inside one jitted ``shard_map`` (:func:`sharded_epoch_fn`, wrapped for ``fit`` by
:func:`data_parallel_runner`)::

    from jaxae import parallel
    result = jaxae.fit(params, x, loss_fn=..., optimizer=..., key=key, epochs=10,
                       batch_size=256, mesh=parallel.data_mesh())      # all devices
    result = jaxae.fit(..., devices=8)                                  # the first 8

On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before JAX starts) gives 8
devices to try this on.

Data layout in ``fit``: the dataset is split over the devices once (rows padded to a multiple of
the device count; the padding is never drawn). Each epoch the shuffled global batches are gathered
on the devices into ``[steps, batch]`` with the batch axis sharded (one device-side exchange per
epoch, no host transfer), then the epoch's ``lax.scan`` runs inside one ``shard_map``. The
shuffle is the single-device one, so a data-parallel run sees the same global batches as
``fit`` without a mesh.

Checkpoints (``fit(..., checkpoint_dir=...)``) hold global arrays, not per-device copies: a run
saved on 8 devices resumes on 1, 4 or 8 (Orbax reshards on restore to the new mesh; PCD chains
must still split evenly over the new device count).

Multi-host (a TPU pod slice, or several GPU hosts): run the same program on every host.

1. Start the runtime first thing: ``parallel.initialize_distributed(auto=True)`` on a TPU pod
   slice, SLURM or Open MPI (JAX detects the cluster), or with explicit
   ``coordinator_address="host0:1234", num_processes=P, process_id=p``. It is a no-op for one
   process, so the same script runs on a laptop.
2. ``mesh = parallel.data_mesh()`` spans the devices of every host (``jax.devices()``).
3. Each host loads only its own rows: ``rows = parallel.process_slice(n)`` (equal shares by
   ``jax.process_index()`` of ``jax.process_count()``, rounded down to a multiple of the local
   device count), e.g. ``x_local = load(...)[rows]``.
4. ``x = parallel.global_data(x_local, mesh)`` assembles the global array with
   ``jax.make_array_from_process_local_data``; host ``p``'s rows are rows
   ``p * share ... (p + 1) * share`` of the global array.
5. ``jaxae.fit(params, x, ..., mesh=mesh)``: every host passes the same ``params`` and ``key``
   (same seed); the shuffle indices are computed identically on every host. Metrics and history
   come back on every host; let process 0 (``jax.process_index() == 0``) log and write files.
   ``checkpoint_dir`` must be a path every host can reach (a bucket or shared disk).

References:
  JAX documentation, "Introduction to parallel programming" and "Manual parallelism with
  shard_map" (https://docs.jax.dev/en/latest/notebooks/shard_map.html); "Migrating to the new
  jax.pmap" (https://docs.jax.dev/en/latest/migrate_pmap.html).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxae.training.epoch import EpochRunner, cached_build
from jaxae.training.state import TrainState
from jaxae.training.step import (
    GradFn,
    gradients_of_loss,
    guarded_scan,
    make_train_step,
    scan_steps,
)
from jaxae.typing import Array, PRNGKey
from jaxae.validation import check_positive_int

__all__ = [
    "DATA_AXIS",
    "data_mesh",
    "resolve_mesh",
    "check_divisible",
    "per_example_keys",
    "per_example_loss",
    "per_example_gradients",
    "data_parallel_gradients",
    "data_parallel_step",
    "shard_map_step",
    "pmap_step",
    "sharded_epoch_fn",
    "data_parallel_runner",
    "shard_data",
    "place_state",
    "replicate",
    "initialize_distributed",
    "process_slice",
    "global_data",
]

DATA_AXIS = "data"


# ------------------------------------------------------------------------------------------------
# Meshes and checks.


def data_mesh(
    devices: int | Sequence[jax.Device] | None = None, *, axis_name: str = DATA_AXIS
) -> Mesh:
    """A 1-D mesh over ``devices`` whose one axis, ``axis_name``, is the data axis.

    Args:
      devices: ``None`` for every device of every process (``jax.devices()``), an int ``n`` for
        the first ``n`` of them, or a sequence of devices.
      axis_name: the axis name the collectives use.

    Returns:
      A ``jax.sharding.Mesh`` with ``Auto`` axis type (shardings are propagated by the compiler
      outside the ``shard_map``).
    """
    if not isinstance(axis_name, str) or not axis_name:
        raise TypeError(f"axis_name: expected a non-empty str, got {axis_name!r}")
    available = jax.devices()
    if devices is None:
        chosen = list(available)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        check_positive_int(devices, "devices")
        if devices > len(available):
            hint = (
                "; on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count="
                f"{devices} before JAX starts"
                if available[0].platform == "cpu"
                else ""
            )
            raise ValueError(
                f"devices: asked for {devices} devices, but only {len(available)} "
                f"{available[0].platform} device(s) are available{hint}"
            )
        chosen = list(available[:devices])
    else:
        chosen = list(devices)
        if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
            raise TypeError(
                f"devices: expected None, a positive int or a non-empty sequence of jax.Device, "
                f"got {devices!r}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"devices: expected distinct devices, got {chosen}")
    return jax.make_mesh(
        (len(chosen),), (axis_name,), axis_types=(jax.sharding.AxisType.Auto,), devices=chosen
    )


def _data_axis(mesh: Mesh) -> str:
    """The name of a 1-D mesh's only axis."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh, got {type(mesh).__name__}")
    if len(mesh.axis_names) != 1:
        raise ValueError(
            f"mesh: expected a 1-D data mesh (parallel.data_mesh()), got axes {dict(mesh.shape)}"
        )
    return mesh.axis_names[0]


def _auto_axes(mesh: Mesh) -> Mesh:
    """The same devices and axis names with ``Auto`` axis types.

    ``jax.make_mesh`` makes ``Explicit`` axes by default, under which the epoch's gather
    ``data[indices]`` would need an explicit output sharding; the epoch only needs the compiler to
    propagate shardings outside its ``shard_map``.
    """
    auto = jax.sharding.AxisType.Auto
    if all(t == auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(auto,) * len(mesh.axis_names))


def resolve_mesh(
    mesh: Mesh | None, devices: int | Sequence[jax.Device] | None
) -> tuple[Mesh, str, int]:
    """``(mesh, axis_name, num_devices)`` from ``fit``'s ``mesh`` or ``devices`` argument."""
    if mesh is not None and devices is not None:
        raise ValueError("mesh and devices: pass at most one of them")
    if mesh is None:
        mesh = data_mesh(devices if devices is not None else 1)
    axis_name = _data_axis(mesh)
    return _auto_axes(mesh), axis_name, int(mesh.shape[axis_name])


def check_divisible(batch_size: int, num_devices: int, *, name: str = "batch_size") -> None:
    """Raises ``ValueError`` naming both numbers unless ``num_devices`` divides ``batch_size``."""
    if batch_size % num_devices:
        lower = batch_size // num_devices * num_devices
        upper = lower + num_devices
        nearest = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"{name}: a global batch of {batch_size} examples cannot be split evenly over "
            f"{num_devices} devices ({batch_size} % {num_devices} = {batch_size % num_devices}); "
            f"use a multiple of {num_devices}, e.g. {nearest}"
        )


# ------------------------------------------------------------------------------------------------
# Randomness.


def per_example_keys(key: PRNGKey, indices: Array) -> Array:
    """One key per example: ``fold_in(key, i)`` for each global example index ``i``.

    Args:
      key: the step's key (a scalar PRNG key).
      indices: ``[batch]`` int indices of the examples in the dataset.

    Returns:
      ``[batch]`` keys; example ``i`` gets the same key on whichever device it lands.
    """
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)


def _one_example_at_a_time(fn: Callable, params, batch, keys):
    """``vmap`` of ``fn(params, example_as_batch_of_one, key_i)`` over the batch, then the mean."""

    def one(example, key):
        return fn(params, jax.tree.map(lambda a: a[None], example), key)

    return jax.tree.map(lambda a: jnp.mean(a, axis=0), jax.vmap(one)(batch, keys))


def per_example_loss(loss_fn: Callable) -> Callable:
    """``loss_fn`` evaluated one example at a time, each with its own key, then averaged.

    Args:
      loss_fn: ``(params, batch, key) -> loss`` or ``-> (loss, metrics)``, a mean over the
        batch's examples; metrics are averaged over the examples too.

    Returns:
      ``(params, batch, keys [batch]) -> loss`` (or ``(loss, metrics)``): the mean of
      ``loss_fn(params, batch[i:i+1], keys[i])``, equal to ``loss_fn(params, batch, key)`` in
      distribution. Differentiating it does not form per-example gradients.
    """

    def loss(params, batch, keys):
        return _one_example_at_a_time(loss_fn, params, batch, keys)

    return loss


def per_example_gradients(grad_fn: GradFn) -> GradFn:
    """A gradient estimator evaluated one example at a time, each with its own key, averaged.

    Args:
      grad_fn: ``(params, batch, key) -> (grads, metrics)`` whose grads and metrics are batch
        means (e.g. ``functools.partial(rbm.cd_gradients, spec=spec, k=1)``).

    Returns:
      ``(params, batch, keys [batch]) -> (grads, metrics)``: the means over examples of
      ``grad_fn(params, batch[i:i+1], keys[i])``. Memory: one gradient per example.
    """

    def per_example(params, batch, keys):
        return _one_example_at_a_time(grad_fn, params, batch, keys)

    return per_example


# ------------------------------------------------------------------------------------------------
# The per-device step.


def _varying_axes(x) -> frozenset:
    """The mesh axes ``x`` varies over inside ``shard_map`` (where JAX keeps them: the type's
    ``manual_axis_type.varying`` now, ``vma`` in earlier releases)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", ()))


def _device_varying(tree, axis_name: str):
    """Marks replicated values as per-device, so that ``grad`` gives each device's own gradient.

    Inside ``shard_map`` a replicated input is device-invariant, and the gradient with respect to
    it would be summed over the axis automatically (the transpose of the implicit broadcast);
    casting it to varying first keeps the gradient local, and the ``pmean`` below averages it.
    """

    def cast(x):
        if axis_name in _varying_axes(x):
            return x
        return lax.pcast(x, axis_name, to="varying")

    return jax.tree.map(cast, tree)


def _pmean(tree, axis_name: str):
    def mean(x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.float32)  # integer/bool metrics are averaged as floats
        return lax.pmean(x, axis_name)

    return jax.tree.map(mean, tree)


def _pmean_state(tree, axis_name: str):
    """The devices' model states made equal: floats averaged, other leaves their maximum."""

    def mean(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.inexact):
            return lax.pmean(x, axis_name)
        return lax.pmax(x, axis_name)

    return jax.tree.map(mean, tree)


def data_parallel_gradients(
    grad_fn: GradFn,
    *,
    axis_name: str = DATA_AXIS,
    stateful: bool = False,
    model_state: bool = False,
    example_keys: bool = False,
) -> GradFn:
    """The per-device gradient: this shard's estimate, averaged over ``axis_name`` by ``pmean``.

    Call it inside ``jax.shard_map`` / ``jax.pmap`` with ``axis_name`` bound.

    Args:
      grad_fn: ``(params, batch, key) -> (grads, metrics)`` or, when ``stateful``,
        ``(params, aux, batch, key) -> (grads, aux, metrics)``, both batch means.
      axis_name: the data axis.
      stateful: whether ``grad_fn`` threads per-device state (e.g. this device's PCD chains,
        which are not averaged).
      model_state: whether ``grad_fn`` is ``(params, model_state, batch, key) -> (grads,
        model_state, metrics)``; the new model states are averaged over the axis.
      example_keys: ``key`` is ``[local_batch]`` per-example keys (see :func:`per_example_keys`),
        passed on unchanged; otherwise ``key`` is the step's key and device ``d`` uses
        ``fold_in(key, d)`` (unchanged on a 1-device axis).

    Returns:
      A gradient function of the same signature whose ``grads`` and ``metrics`` are the same on
      every device: the means over the global batch.
    """

    def local_key(key):
        if example_keys or lax.axis_size(axis_name) == 1:
            return key
        return jax.random.fold_in(key, lax.axis_index(axis_name))

    if model_state:

        def grads_with_state(params, state, batch, key):
            params = _device_varying(params, axis_name)
            grads, state, metrics = grad_fn(params, state, batch, local_key(key))
            grads, metrics = lax.pmean(grads, axis_name), _pmean(metrics, axis_name)
            return grads, _pmean_state(state, axis_name), metrics

        return grads_with_state

    if stateful:

        def stateful_grads(params, aux, batch, key):
            params = _device_varying(params, axis_name)
            grads, aux, metrics = grad_fn(params, aux, batch, local_key(key))
            # The carry goes in per-device; a new aux that no longer depends on the old one
            # (chains redrawn from the key, a constant reset) must come out per-device too.
            aux = _device_varying(aux, axis_name)
            return lax.pmean(grads, axis_name), aux, _pmean(metrics, axis_name)

        return stateful_grads

    def grads_fn(params, batch, key):
        params = _device_varying(params, axis_name)
        grads, metrics = grad_fn(params, batch, local_key(key))
        return lax.pmean(grads, axis_name), _pmean(metrics, axis_name)

    return grads_fn


def data_parallel_step(
    optimizer: optax.GradientTransformation,
    *,
    loss_fn: Callable | None = None,
    has_aux: bool = False,
    grad_fn: GradFn | None = None,
    stateful: bool = False,
    model_state: bool = False,
    axis_name: str = DATA_AXIS,
    example_keys: bool = False,
) -> Callable:
    """The per-device training step ``(state, local_batch, key) -> (state, metrics)``.

    :func:`jaxae.make_train_step` around :func:`data_parallel_gradients`: every device computes
    its shard's gradient, ``pmean`` averages, and each replica applies the same Optax update.

    Args:
      optimizer: any Optax transformation.
      loss_fn: ``(params, batch, key) -> loss`` (or ``(loss, metrics)`` with ``has_aux``).
      has_aux: see ``loss_fn``.
      grad_fn: instead of ``loss_fn``, a gradient estimator, see :func:`data_parallel_gradients`.
      stateful: whether ``grad_fn`` threads ``state.aux`` (split over devices like the batch).
      model_state: whether ``loss_fn`` / ``grad_fn`` threads ``state.model_state`` (see
        :func:`jaxae.gradients_of_loss`); replicated, averaged over the devices each step.
      axis_name: the data axis the collectives run over.
      example_keys: ``key`` is ``[local_batch]`` per-example keys and ``loss_fn`` / ``grad_fn``
        is applied one example at a time (:func:`per_example_loss`,
        :func:`per_example_gradients`); not with ``stateful`` or ``model_state``.

    Returns:
      The step; run it with :func:`shard_map_step` or :func:`pmap_step`. Its
      ``metrics["finite"]`` is the same on every device (true only if true on all).
    """
    if (loss_fn is None) == (grad_fn is None):
        raise ValueError("data_parallel_step: pass exactly one of loss_fn and grad_fn")
    if example_keys and stateful:
        raise ValueError(
            "example_keys: per-example keys need a stateless loss_fn/grad_fn; a stateful "
            "grad_fn (aux, e.g. PCD chains) draws per-device streams"
        )
    if example_keys and model_state:
        raise ValueError(
            "example_keys: per-example keys evaluate the loss one example at a time, which "
            "batch statistics (model_state) cannot be; drop example_keys"
        )
    if loss_fn is not None:
        if example_keys:
            loss_fn = per_example_loss(loss_fn)
        grad_fn = gradients_of_loss(loss_fn, has_aux=has_aux, model_state=model_state)
    elif example_keys:
        grad_fn = per_example_gradients(grad_fn)
    grads = data_parallel_gradients(
        grad_fn,
        axis_name=axis_name,
        stateful=stateful,
        model_state=model_state,
        example_keys=example_keys,
    )
    step = make_train_step(grads, optimizer, stateful=stateful, model_state=model_state)

    def per_device_step(state, batch, key):
        state, metrics = step(state, batch, key)
        # aux (this device's chains) may be finite here and not there: all devices must agree.
        bad = jnp.logical_not(metrics["finite"]).astype(jnp.int32)
        metrics["finite"] = lax.psum(bad, axis_name) == 0
        return state, metrics

    return per_device_step


def _state_specs(axis_name: str, stateful: bool) -> TrainState:
    """Replicated params/opt_state/step/model_state; ``aux`` split over the data axis when
    stateful."""
    return TrainState(P(), P(), P(), P(axis_name) if stateful else P(), P())


def shard_map_step(
    step: Callable, mesh: Mesh, *, stateful: bool = False, example_keys: bool = False
) -> Callable:
    """The per-device ``step`` as one jitted ``jax.shard_map`` over a 1-D data mesh.

    Args:
      step: from :func:`data_parallel_step` (its ``axis_name`` must be the mesh's axis).
      mesh: a 1-D mesh (:func:`data_mesh`).
      stateful: ``state.aux`` is split over the devices (leading axis), not replicated.
      example_keys: ``key`` is ``[global_batch]`` per-example keys, split like the batch.

    Returns:
      ``(state, batch, key) -> (state, metrics)`` on global arrays: ``batch`` leaves
      ``[global_batch, ...]`` split over the devices, ``state`` and ``metrics`` replicated.
    """
    axis_name = _data_axis(mesh)
    specs = _state_specs(axis_name, stateful)
    key_spec = P(axis_name) if example_keys else P()
    return jax.jit(
        jax.shard_map(
            step,
            mesh=mesh,
            in_specs=(specs, P(axis_name), key_spec),
            out_specs=(specs, P()),
        )
    )


def pmap_step(
    step: Callable,
    *,
    axis_name: str = DATA_AXIS,
    devices: Sequence[jax.Device] | None = None,
    stateful: bool = False,
    example_keys: bool = False,
) -> Callable:
    """The same per-device ``step`` under ``jax.pmap``.

    Args:
      step: from :func:`data_parallel_step` with the same ``axis_name``.
      axis_name: the pmapped axis's name.
      devices: the devices to map over (default: the local devices, as many as the batch's
        leading axis).
      stateful: ``state.aux`` has a leading device axis; the rest of the state is replicated.
      example_keys: ``key`` is ``[num_devices, local_batch]`` per-example keys.

    Returns:
      ``(state, batch, key) -> (state, metrics)``: ``batch`` leaves ``[num_devices,
      local_batch, ...]``; ``state`` (but ``aux``) and ``metrics`` are passed and returned
      unstacked, without a device axis.
    """
    state_axes = TrainState(None, None, None, 0 if stateful else None, None)
    return jax.pmap(
        step,
        axis_name,
        in_axes=(state_axes, 0, 0 if example_keys else None),
        out_axes=(state_axes, None),
        devices=devices,
    )


# ------------------------------------------------------------------------------------------------
# Placement and the epoch used by ``jaxae.fit``.


def _put(tree, sharding: NamedSharding):
    """``jax.device_put(tree, sharding)``, also from host-local arrays onto several processes."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, sharding)  # already global: reshard
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        # A host value, the same on every process: each process fills its own devices' shards
        # (device_put would first compare the value across processes, one collective per leaf).
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def replicate(tree, mesh: Mesh):
    """Every leaf copied to every device of ``mesh`` (across processes: pass the same value)."""
    return _put(tree, NamedSharding(mesh, P()))


def shard_data(data, mesh: Mesh):
    """The dataset split over the mesh's data axis by rows, padded to a multiple of its size.

    Global arrays already split this way (e.g. from :func:`global_data`) are kept as they are.
    The padding rows are zeros and are never drawn (batch indices stay below the true size).
    """
    axis_name = _data_axis(mesh)
    size = int(mesh.shape[axis_name])
    sharding = NamedSharding(mesh, P(axis_name))

    def place(x):
        n = int(np.shape(x)[0])
        pad = -n % size
        if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim) and not pad:
            return x
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if pad:
                raise ValueError(
                    f"data: a multi-host global array of {n} rows cannot be split evenly over "
                    f"{size} devices; load {n - n % size} rows (parallel.process_slice)"
                )
            return jax.device_put(x, sharding)
        x = np.asarray(x)
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        return _put(x, sharding)

    return jax.tree.map(place, data)


def place_state(state: TrainState, mesh: Mesh, *, stateful: bool = False) -> TrainState:
    """``state`` replicated on ``mesh``; a stateful ``aux`` split over the data axis by rows."""
    axis_name = _data_axis(mesh)
    size = int(mesh.shape[axis_name])
    if stateful:
        for path, x in jax.tree_util.tree_leaves_with_path(state.aux):
            name = "aux" + jax.tree_util.keystr(path)
            rows = np.shape(x)[0] if np.ndim(x) else None
            if rows is None or rows % size:
                raise ValueError(
                    f"{name}: expected a leading axis (e.g. one row per persistent chain) "
                    f"divisible by the {size} devices to split it over, got shape "
                    f"{tuple(np.shape(x))}"
                )
    shardings = jax.tree.map(
        lambda spec: NamedSharding(mesh, spec),
        _state_specs(axis_name, stateful),
        is_leaf=lambda x: isinstance(x, P),
    )
    placed = [
        _put(getattr(state, field), getattr(shardings, field)) for field in TrainState._fields
    ]
    return TrainState(*placed)


def sharded_epoch_fn(
    step: Callable,
    mesh: Mesh,
    *,
    stateful: bool = False,
    example_keys: bool = False,
    guarded: bool = False,
    unroll: bool = False,
) -> Callable:
    """One epoch inside one jitted ``shard_map``: the data-parallel twin of ``fit``'s epoch.

    Args:
      step: from :func:`data_parallel_step` (its ``axis_name`` must be the mesh's axis).
      mesh: a 1-D mesh.
      stateful: ``state.aux`` is split over the devices.
      example_keys: per-example keys ``fold_in(step_key, index)`` from the batch's indices.
      guarded: run :func:`jaxae.training.step.guarded_scan` (keep the last finite state)
        instead of :func:`jaxae.training.step.scan_steps` (apply every update), as the
        one-device epoch does.
      unroll: compile the steps without a loop (for a few steps a call; see
        :mod:`jaxae.training.epoch`).

    Returns:
      ``(state, data, indices [n, global_batch], keys [n]) -> (state, metrics [n], first_bad)``
      with ``data`` from :func:`shard_data` and ``state`` from :func:`place_state`. Step ``s``
      uses ``keys[s]``, as the single-device epoch does. The batches are gathered on the
      devices (split over the data axis); the host sends only the indices and the key.
    """
    axis_name = _data_axis(mesh)
    mesh = _auto_axes(mesh)
    specs = _state_specs(axis_name, stateful)
    batch_spec = P(None, axis_name)

    def per_device_scan(state, batches, indices, keys):
        def batch_and_key(x):
            batch, idx, key = x
            return batch, (per_example_keys(key, idx) if example_keys else key)

        scan = guarded_scan if guarded else scan_steps
        xs = (batches, indices, keys)
        return scan(step, state, xs, batch_and_key, unroll=unroll)

    sharded = jax.shard_map(
        per_device_scan,
        mesh=mesh,
        in_specs=(specs, batch_spec, batch_spec, P()),
        out_specs=(specs, P(), P()),
    )
    split = NamedSharding(mesh, batch_spec)

    @jax.jit
    def run_epoch(state, data, indices, keys):
        batches = jax.tree.map(lambda a: a[indices], data)
        batches = lax.with_sharding_constraint(batches, split)
        indices = lax.with_sharding_constraint(indices, split)
        return sharded(state, batches, indices, keys)

    def run(state, data, indices, keys):
        indices, keys = replicate((indices, keys), mesh)
        return run_epoch(state, data, indices, keys)

    return run


@cached_build
def data_parallel_runner(
    *,
    mesh: Mesh,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable | None = None,
    has_aux: bool = False,
    grad_fn: GradFn | None = None,
    stateful: bool = False,
    model_state: bool = False,
    example_keys: bool = False,
) -> EpochRunner:
    """The data-parallel :class:`~jaxae.training.epoch.EpochRunner` that :func:`jaxae.fit` runs
    with ``mesh=`` / ``devices=``: the same epoch as on one device, its scan inside one
    ``shard_map``. Cached like :func:`jaxae.training.epoch.epoch_runner`.

    Args:
      mesh: a 1-D mesh (:func:`resolve_mesh`).
      optimizer: as for :func:`data_parallel_step`.
      loss_fn: as for :func:`data_parallel_step`.
      has_aux: as for :func:`data_parallel_step`.
      grad_fn: as for :func:`data_parallel_step`.
      stateful: as for :func:`data_parallel_step`.
      model_state: as for :func:`data_parallel_step`.
      example_keys: as for :func:`data_parallel_step`.
    """
    step = data_parallel_step(
        optimizer,
        loss_fn=loss_fn,
        has_aux=has_aux,
        grad_fn=grad_fn,
        stateful=stateful,
        model_state=model_state,
        axis_name=_data_axis(mesh),
        example_keys=example_keys,
    )
    kwargs = dict(stateful=stateful, example_keys=example_keys)
    return EpochRunner(
        run=sharded_epoch_fn(step, mesh, **kwargs),
        run_guarded=sharded_epoch_fn(step, mesh, guarded=True, **kwargs),
        run_unrolled=sharded_epoch_fn(step, mesh, unroll=True, **kwargs),
        run_unrolled_guarded=sharded_epoch_fn(step, mesh, guarded=True, unroll=True, **kwargs),
        place_data=lambda data: shard_data(data, mesh),
        place_state=lambda state: place_state(state, mesh, stateful=stateful),
    )


# ------------------------------------------------------------------------------------------------
# Multi-host.


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    **kwargs: Any,
) -> bool:
    """Starts multi-process JAX (``jax.distributed.initialize``); a no-op for one process.

    Call it before anything else touches JAX (creating arrays, ``jax.devices()``).

    Args:
      coordinator_address: ``"host:port"`` of process 0, reachable from every process.
      num_processes: how many processes take part; 1 (or nothing given) means no-op.
      process_id: this process's index in ``[0, num_processes)``.
      auto: with no address/count/id given, let JAX detect the cluster (TPU pod slices, SLURM,
        Open MPI, Kubernetes) instead of doing nothing.
      **kwargs: passed on to ``jax.distributed.initialize`` (e.g. ``local_device_ids``,
        ``initialization_timeout``, ``coordinator_bind_address``).

    Returns:
      Whether JAX now runs with more than one process.
    """
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    if num_processes is not None:
        check_positive_int(num_processes, "num_processes")
        if num_processes == 1:
            return False
        if process_id is None or not 0 <= process_id < num_processes:
            raise ValueError(
                f"process_id: expected an int in [0, {num_processes}) for "
                f"num_processes={num_processes}, got {process_id!r}"
            )
        if coordinator_address is None:
            raise ValueError(
                f"coordinator_address: required with num_processes={num_processes}, e.g. "
                "'10.0.0.1:1234' (process 0's host and a free port)"
            )
    if (coordinator_address, num_processes, process_id) == (None, None, None) and not auto:
        return False
    if coordinator_address is not None and ":" not in coordinator_address:
        raise ValueError(f"coordinator_address: expected 'host:port', got {coordinator_address!r}")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)
    return jax.process_count() > 1


def process_slice(num_examples: int, *, multiple_of: int | None = None) -> slice:
    """This process's rows of a dataset of ``num_examples``: an equal share per process.

    Process ``p`` of ``P`` (``jax.process_index()``, ``jax.process_count()``) gets rows
    ``[p * share, (p + 1) * share)`` with ``share = num_examples // P`` rounded down to a
    multiple of ``multiple_of`` (default: ``jax.local_device_count()``, so the rows split evenly
    over the local devices); the last ``num_examples - P * share`` rows are left out. With one
    process this is ``slice(0, share)``.
    """
    check_positive_int(num_examples, "num_examples")
    multiple = jax.local_device_count() if multiple_of is None else multiple_of
    check_positive_int(multiple, "multiple_of")
    count, index = jax.process_count(), jax.process_index()
    share = num_examples // count // multiple * multiple
    if share == 0:
        raise ValueError(
            f"num_examples: {num_examples} rows cannot give each of {count} processes a multiple "
            f"of {multiple} rows"
        )
    return slice(index * share, (index + 1) * share)


def global_data(local_data, mesh: Mesh):
    """A global dataset from each process's own rows (``jax.make_array_from_process_local_data``).

    Args:
      local_data: an array or PyTree of arrays: this process's rows (e.g. ``x[process_slice(n)]``),
        the same number on every process.
      mesh: the data mesh (:func:`data_mesh`), spanning every process's devices.

    Returns:
      The same PyTree of global ``jax.Array``: rows split over the data axis, process ``p``'s rows
      after those of processes ``0 .. p-1``. Pass it to ``jaxae.fit(..., mesh=mesh)``.
    """
    sharding = NamedSharding(mesh, P(_data_axis(mesh)))
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), local_data
    )
