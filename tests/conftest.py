"""Test-wide settings: silent broadcasting is an error, not a wrong number (as equinox does)."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    return jax.random.key(0)
