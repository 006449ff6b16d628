"""Principal component analysis and the linear-autoencoder link.

A linear autoencoder trained on squared error learns the principal subspace but not the principal
directions themselves (Baldi & Hornik 1989); :func:`principal_components_from_decoder` recovers
the directions and their variances from the trained decoder weights (Plaut 2018).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike
from jaxae.validation import check_array, check_positive_int

__all__ = [
    "PCA",
    "fit_pca",
    "pca_encode",
    "pca_decode",
    "principal_angle_cosines",
    "principal_components_from_decoder",
]


class PCA(NamedTuple):
    """A fitted PCA (a PyTree).

    Attributes:
      mean: ``[features]`` data mean.
      components: ``[k, features]`` orthonormal principal directions, largest variance first.
      variances: ``[k]`` variance of the data along each direction.
    """

    mean: Array
    components: Array
    variances: Array


def fit_pca(x: ArrayLike, n_components: int) -> PCA:
    """Top principal components of ``x [n, features]`` by SVD of the centred data.

    Signs are fixed so that each component's largest-magnitude entry is positive.
    """
    x = jnp.asarray(x)
    check_array(x, "x", rank=2, floating=True)
    check_positive_int(n_components, "n_components")
    n, d = x.shape
    if n_components > min(n, d):
        raise ValueError(
            f"n_components: expected at most min(n, features) = {min(n, d)}, got {n_components}"
        )
    mean = x.mean(axis=0)
    _, singular_values, vt = jnp.linalg.svd(x - mean[None, :], full_matrices=False)
    components = _fix_signs(vt[:n_components])
    variances = singular_values[:n_components] ** 2 / n
    return PCA(mean, components, variances)


def _fix_signs(rows: Array) -> Array:
    pivot = jnp.take_along_axis(rows, jnp.argmax(jnp.abs(rows), axis=1)[:, None], axis=1)
    return rows * jnp.sign(pivot)  # pivot is [k, 1]


def pca_encode(pca: PCA, x: ArrayLike) -> Array:
    """``[n, features] -> [n, k]`` coordinates along the principal directions."""
    return (jnp.asarray(x) - pca.mean[None, :]) @ pca.components.T


def pca_decode(pca: PCA, z: ArrayLike) -> Array:
    """``[n, k] -> [n, features]`` reconstruction from principal coordinates."""
    return jnp.asarray(z) @ pca.components + pca.mean[None, :]


def principal_angle_cosines(a: ArrayLike, b: ArrayLike) -> Array:
    """Cosines of the principal angles between the column spaces of ``a`` and ``b``.

    Args:
      a: ``[features, k]``.
      b: ``[features, m]``.

    Returns:
      ``[min(k, m)]`` cosines in [0, 1], largest first (1 = a shared direction).

    References:
      Björck & Golub, Numerical methods for computing angles between linear subspaces, 1973.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    check_array(a, "a", rank=2, floating=True)
    check_array(b, "b", rank=2, floating=True)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b: expected the same number of rows, got {a.shape} and {b.shape}")
    qa, _ = jnp.linalg.qr(a)
    qb, _ = jnp.linalg.qr(b)
    return jnp.clip(jnp.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def principal_components_from_decoder(decoder_weights: ArrayLike, x: ArrayLike) -> PCA:
    """Principal directions and variances recovered from a linear autoencoder's decoder.

    The decoder's columns span the principal subspace but are an arbitrary (non-orthogonal) basis
    of it. The SVD of the weights gives an orthonormal basis ``U``; the data's covariance within
    that k-dimensional subspace, diagonalised, rotates ``U`` onto the principal directions and
    gives their variances. Only a ``k x k`` eigenproblem touches the data.

    Args:
      decoder_weights: ``[k, features]`` weights of a linear decoder ``z @ w + b``.
      x: ``[n, features]`` the training data.

    Returns:
      A :class:`PCA` with ``k`` components.

    References:
      Plaut, From principal subspaces to principal components with linear autoencoders, 2018.
    """
    w = jnp.asarray(decoder_weights)
    x = jnp.asarray(x)
    check_array(w, "decoder_weights", rank=2, floating=True)
    check_array(x, "x", rank=2, last_dim=w.shape[1], floating=True)
    basis, _, _ = jnp.linalg.svd(w.T, full_matrices=False)  # [features, k], orthonormal
    mean = x.mean(axis=0)
    coords = (x - mean[None, :]) @ basis
    cov = coords.T @ coords / x.shape[0]
    variances, rotation = jnp.linalg.eigh(cov)  # ascending
    order = jnp.argsort(-variances)
    components = _fix_signs((basis @ rotation[:, order]).T)
    return PCA(mean, components, variances[order])
