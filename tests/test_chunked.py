import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae.chunked import chunked_map, chunked_mean


def _square_rows(x):
    return jnp.sum(x**2, axis=1)


@pytest.mark.parametrize("n", [1, 7, 10, 23])
def test_chunked_map_matches_one_call(n):
    x = jax.random.normal(jax.random.key(0), (n, 3))
    got = chunked_map(_square_rows, x, chunk_size=5)
    np.testing.assert_allclose(got, _square_rows(x), rtol=1e-6)
    assert got.shape == (n,)


def test_chunked_map_pytree_in_and_out():
    data = {"x": jnp.arange(12.0).reshape(6, 2), "y": jnp.arange(6)}
    out = chunked_map(lambda b: (b["x"] * 2, b["y"] + 1), data, chunk_size=4)
    np.testing.assert_array_equal(out[0], data["x"] * 2)
    np.testing.assert_array_equal(out[1], data["y"] + 1)


def _scaled_rows(scale, x):
    return scale * jnp.sum(x, axis=1)


def test_chunked_map_passes_args_traced_and_compiles_once():
    x = jnp.arange(12.0).reshape(6, 2)
    traces = []

    def fn(scale, batch):
        traces.append(None)
        return _scaled_rows(scale, batch)

    for scale in (1.0, 2.0, 3.0):
        got = chunked_map(fn, x, args=(jnp.float32(scale),), chunk_size=3)
        np.testing.assert_allclose(got, scale * x.sum(axis=1))
    assert len(traces) == 1  # one lax.map trace: new args do not recompile


def test_chunked_mean_and_errors():
    x = jnp.arange(10.0).reshape(5, 2)
    assert chunked_mean(_square_rows, x, chunk_size=2) == pytest.approx(
        float(_square_rows(x).mean())
    )
    with pytest.raises(ValueError, match="one value per example"):
        chunked_mean(lambda b: b, x, chunk_size=2)
    with pytest.raises(ValueError, match="shared leading dimension"):
        chunked_map(lambda b: b, {"a": jnp.zeros(3), "b": jnp.zeros(4)})
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_map(_square_rows, x, chunk_size=0)


def test_chunked_mean_of_no_rows_is_refused_not_nan():
    with pytest.raises(ValueError, match="data: expected at least one row to average over, got 0"):
        chunked_mean(lambda batch: batch.sum(axis=1), np.zeros((0, 3), np.float32))
