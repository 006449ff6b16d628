"""Type aliases shared across jaxae (one place, as optax keeps them)."""

from typing import Any

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array
Params = Any  # a PyTree of arrays
Metrics = dict[str, jax.Array]

__all__ = ["Array", "ArrayLike", "PRNGKey", "Params", "Metrics"]
