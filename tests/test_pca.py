import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxae


def _data(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.1, d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales @ rotation.T + 1.5).astype(np.float32)


def test_fit_pca_matches_numpy_eigendecomposition():
    x = _data()
    pca = jax.jit(jaxae.fit_pca, static_argnums=1)(x, 4)
    xc = x.astype(np.float64) - x.mean(0)
    evals, evecs = np.linalg.eigh(xc.T @ xc / len(x))
    np.testing.assert_allclose(pca.variances, evals[::-1][:4], rtol=1e-4)
    cos = np.abs(np.sum(np.asarray(pca.components) * evecs[:, ::-1][:, :4].T, axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


def test_pca_reconstruction_error_is_sum_of_discarded_variances():
    x = _data()
    pca = jaxae.fit_pca(x, 5)
    full = jaxae.fit_pca(x, 12)
    recon = jaxae.pca_decode(pca, jaxae.pca_encode(pca, x))
    err = float(jaxae.squared_error(recon, x).mean())
    np.testing.assert_allclose(err, float(full.variances[5:].sum()), rtol=1e-3)


def test_principal_angle_cosines_of_rotated_basis_are_one_and_orthogonal_are_zero():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 3)))
    mixed = basis @ rng.normal(size=(3, 3))
    np.testing.assert_allclose(jaxae.principal_angle_cosines(basis, mixed), 1.0, atol=1e-5)
    q, _ = np.linalg.qr(rng.normal(size=(10, 6)))
    cos = jax.jit(jaxae.principal_angle_cosines)(q[:, :3], q[:, 3:])
    np.testing.assert_allclose(cos, 0.0, atol=1e-5)


def test_principal_angle_of_known_angle():
    theta = 0.3
    a = np.array([[1.0], [0.0]], np.float32)
    b = np.array([[np.cos(theta)], [np.sin(theta)]], np.float32)
    np.testing.assert_allclose(jaxae.principal_angle_cosines(a, b), [np.cos(theta)], rtol=1e-6)


def test_components_recovered_from_any_basis_of_the_principal_subspace():
    x = _data()
    pca = jaxae.fit_pca(x, 4)
    rng = np.random.default_rng(2)
    mixing = rng.normal(size=(4, 4)).astype(np.float32)
    decoder_w = mixing @ np.asarray(pca.components)  # [k, features]: a skewed basis
    recovered = jaxae.principal_components_from_decoder(decoder_w, x)
    np.testing.assert_allclose(recovered.variances, pca.variances, rtol=1e-4)
    cos = np.abs(np.sum(np.asarray(recovered.components) * np.asarray(pca.components), axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"n_components: expected at most min\(n, features\) = 3"):
        jaxae.fit_pca(jnp.zeros((3, 5)), 4)
    with pytest.raises(ValueError, match="x: expected finite values"):
        jaxae.fit_pca(jnp.full((3, 5), jnp.nan), 2)
    with pytest.raises(ValueError, match="a and b: expected the same number of rows"):
        jaxae.principal_angle_cosines(jnp.ones((3, 1)), jnp.ones((4, 1)))
    with pytest.raises(ValueError, match="x: expected last dimension 5"):
        jaxae.principal_components_from_decoder(jnp.ones((2, 5)), jnp.ones((10, 6)))
