import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae.noise import gaussian_noise, masking_noise, salt_and_pepper_noise

SHAPE = (200, 50, 20)  # 200,000 elements: rates are measured to about ±0.003 (3 sigma)


def _x():
    # Values in (0.1, 0.9): never equal to 0 or 1, so corrupted elements are recognisable.
    return jax.random.uniform(jax.random.key(7), SHAPE, minval=0.1, maxval=0.9)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_masking_noise_zeroes_the_requested_fraction(key, rate):
    x = _x()
    y = jax.jit(functools.partial(masking_noise, rate=rate))(key, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    zeroed = np.asarray(y == 0)
    assert abs(zeroed.mean() - rate) < 0.004
    np.testing.assert_array_equal(np.asarray(y)[~zeroed], np.asarray(x)[~zeroed])


def test_masking_noise_keys_are_explicit(key):
    x = _x()[:4]
    a = masking_noise(key, x, rate=0.5)
    np.testing.assert_array_equal(a, masking_noise(key, x, rate=0.5))
    assert not np.array_equal(a, masking_noise(jax.random.key(1), x, rate=0.5))


@pytest.mark.parametrize("stddev", [0.0, 0.1, 0.5])
def test_gaussian_noise_has_the_requested_stddev(key, stddev):
    x = _x()
    y = jax.jit(functools.partial(gaussian_noise, stddev=stddev))(key, x)
    noise = np.asarray(y - x)
    assert abs(noise.mean()) < 0.005 + 0.01 * stddev
    assert abs(noise.std() - stddev) < 0.01 * stddev + 1e-6


@pytest.mark.parametrize("rate", [0.1, 0.4])
def test_salt_and_pepper_noise_rates(key, rate):
    x = _x()
    y = np.asarray(jax.jit(functools.partial(salt_and_pepper_noise, rate=rate))(key, x))
    assert abs((y == 0).mean() - rate / 2) < 0.004
    assert abs((y == 1).mean() - rate / 2) < 0.004
    kept = (y != 0) & (y != 1)
    np.testing.assert_array_equal(y[kept], np.asarray(x)[kept])


def test_salt_and_pepper_custom_values(key):
    y = salt_and_pepper_noise(key, _x()[:10], rate=1.0, low=-1.0, high=2.0)
    assert set(np.unique(np.asarray(y))) == {-1.0, 2.0}


def test_any_batch_shape(key):
    for shape in [(5,), (2, 3, 28, 28, 1)]:
        x = jnp.ones(shape)
        assert masking_noise(key, x, rate=0.3).shape == shape
        assert gaussian_noise(key, x, stddev=0.3).shape == shape
        assert salt_and_pepper_noise(key, x, rate=0.3).shape == shape


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k, x: masking_noise(k, x, rate=1.5), "rate: expected a value in \\[0, 1\\]"),
        (lambda k, x: masking_noise(k, x, rate=-0.1), "rate: expected a value in \\[0, 1\\]"),
        (lambda k, x: masking_noise(k, x, rate=float("nan")), "rate: expected a real number"),
        (lambda k, x: salt_and_pepper_noise(k, x, rate=2.0), "rate: expected a value in"),
        (lambda k, x: salt_and_pepper_noise(k, x, rate=0.1, low=1.0, high=0.0), "low <= high"),
        (lambda k, x: gaussian_noise(k, x, stddev=-1.0), "stddev: expected a value >= 0"),
        (lambda k, x: gaussian_noise(k, x, stddev=float("inf")), "stddev: expected a finite"),
        (
            lambda k, x: salt_and_pepper_noise(k, x, rate=0.5, high=float("inf")),
            "high: expected a finite number, got inf",
        ),
        (lambda k, x: masking_noise(k, x.at[0, 0].set(jnp.nan), rate=0.1), "x: expected finite"),
        (lambda k, x: gaussian_noise(k, x.at[0, 0].set(jnp.nan), stddev=0.1), "x: expected fin"),
        (lambda k, x: masking_noise(k, x.astype(jnp.int32), rate=0.1), "x: expected a floating"),
    ],
)
def test_bad_inputs_name_the_argument(key, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(key, jnp.ones((3, 4)))
