"""What changes during training: :class:`TrainState`, a PyTree the jitted epoch carries."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxae.typing import Array, Params

__all__ = ["TrainState", "init_train_state", "all_finite"]


class TrainState(NamedTuple):
    """Everything that changes during training (a PyTree).

    Attributes:
      params: the model's parameters (what the optimizer updates).
      opt_state: the Optax state.
      step: number of updates applied, int32 scalar.
      aux: extra state of a stateful gradient estimator (e.g. persistent Gibbs chains), or None;
        split over the devices in a data-parallel run.
      model_state: the model's mutable collections that are not trained by the optimizer (a Flax
        Linen module's ``batch_stats``), or None; replicated, and averaged over the devices after
        each data-parallel step.
    """

    params: Params
    opt_state: optax.OptState
    step: Array
    aux: Any = None
    model_state: Any = None


def init_train_state(
    params: Params,
    optimizer: optax.GradientTransformation,
    aux: Any = None,
    model_state: Any = None,
) -> TrainState:
    """A fresh :class:`TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), aux, model_state)


def all_finite(tree: Any) -> Array:
    """Whether every floating-point leaf of ``tree`` is free of NaN and inf: a bool scalar."""
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
