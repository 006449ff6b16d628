"""Orbax checkpoints of ``(state, history)``, one per epoch; Orbax writes atomically.

The state is saved as global arrays (not per-device copies), so a data-parallel run resumes on
another device count or on one device. It holds everything a resumed run needs to continue as
the uninterrupted run would: parameters, optimizer state, step, ``aux`` (PCD chains) and
``model_state`` (e.g. BatchNorm statistics).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from jaxae.training.state import TrainState

__all__ = ["Checkpointer"]


class Checkpointer:
    """Saves and restores ``(state, history)`` under ``directory``, keeping ``max_to_keep``."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def latest_epoch(self) -> int | None:
        """The last saved epoch, or None."""
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
        """The state of ``epoch``, placed as ``template`` is (its shardings), and the history."""
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
