"""What a greedy pretraining recipe returns: one :class:`PretrainedLayer` per layer, and the
one whole-dataset pass up a stack of them, :func:`encode_layers`.

A layer is an RBM (``spec`` set, ``params`` an :class:`jaxae.rbm.RBMParams`) or a one-hidden-layer
autoencoder (``spec`` None, ``params`` its ``{"encoder", "decoder"}``); either way its
``encoder`` is ``{"w": [n_in, n_out], "b": [n_out]}``, what a stack keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxae import rbm, regularizers
from jaxae.chunked import chunked_map
from jaxae.models.mlp import ACTIVATIONS
from jaxae.typing import Array, ArrayLike
from jaxae.validation import check_array

__all__ = ["PretrainedLayer", "apply_encoder", "encode_layers"]


class PretrainedLayer(NamedTuple):
    """One pretrained layer.

    Attributes:
      config: how it was trained (:class:`jaxae.recipes.RBMConfig` or
        :class:`jaxae.recipes.AutoencoderConfig`); an autoencoder's also says how it encodes
        (activation, k, α).
      params: everything that was trained: the RBM's :class:`jaxae.rbm.RBMParams` or the
        autoencoder's ``{"encoder", "decoder"}``.
      history: the training loop's per-epoch rows.
      spec: an RBM layer's sizes and unit types (None for an autoencoder layer).
    """

    config: Any
    params: Any
    history: list
    spec: rbm.RBMSpec | None = None

    @property
    def encoder(self) -> dict[str, Array]:
        """``{"w": [n_in, n_out], "b": [n_out]}``: the weights a stack keeps. An RBM's are
        :func:`jaxae.rbm.hidden_affine`'s: ``W / σ²`` with learned visible variances, and for a
        replicated-softmax layer ``W + 1 b^T`` with a zero bias (the document length's scaling
        of the bias folded in)."""
        if self.spec is not None:
            w, b = rbm.hidden_affine(self.params, spec=self.spec)
            return {"w": w, "b": b}
        return dict(self.params["encoder"][0])

    @property
    def activation(self) -> str:
        """The encoder's nonlinearity (for a k-sparse layer, the one before its top k: "linear"
        or "relu")."""
        if self.spec is not None:
            return {"bernoulli": "sigmoid", "nrelu": "relu"}.get(self.spec.hidden, "linear")
        return self.config.activation

    @property
    def k(self) -> int | None:
        """The k of a k-sparse autoencoder layer, else None."""
        return None if self.spec is not None else self.config.k

    @property
    def k_alpha(self) -> float:
        """The α of the α·k rule (1.0 unless a k-sparse layer says otherwise)."""
        return 1.0 if self.spec is not None else self.config.k_alpha


def apply_encoder(
    w: Array, b: Array, x: Array, *, activation: str, k: int | None, alpha: float
) -> Array:
    """One encoder layer ``activation(x w + b)``; a k-sparse layer keeps its ``α·k`` largest."""
    h = ACTIVATIONS[activation](x @ w + b[None, :])
    if k is not None:  # k-sparse: the α·k largest units kept
        return regularizers.k_sparse(h, k=min(k, w.shape[1]), alpha=alpha)
    return h


@dataclasses.dataclass(frozen=True)
class _RBMEncoder:
    """``E[h | v]`` of an RBM; hashable, so one compilation per spec and shape."""

    spec: rbm.RBMSpec

    def __call__(self, params: rbm.RBMParams, x: Array) -> Array:
        return rbm.hidden_mean(params, x, spec=self.spec)


@dataclasses.dataclass(frozen=True)
class _AutoencoderEncoder:
    """One autoencoder layer's codes; hashable, so one compilation per config and shape."""

    activation: str
    k: int | None
    alpha: float

    def __call__(self, encoder: dict[str, Array], x: Array) -> Array:
        return apply_encoder(
            encoder["w"], encoder["b"], x, activation=self.activation, k=self.k, alpha=self.alpha
        )


def encode_layers(
    layers: Sequence[PretrainedLayer], x: ArrayLike, *, chunk_size: int = 1000
) -> Array:
    """The codes of a whole dataset passed up pretrained layers, bottom first.

    RBM layers give ``E[h | v]`` (hidden probabilities, means for Gaussian units); autoencoder
    layers their encoder's activations (for a k-sparse layer the α·k largest kept). This is the
    training data of the next layer in greedy pretraining. Runs through
    :func:`jaxae.chunked.chunked_map`, ``chunk_size`` rows at a time.

    Args:
      layers: pretrained layers, bottom first (a single layer: ``[layer]``).
      x: ``[n, n_in]`` with ``n_in`` the bottom layer's input width.
      chunk_size: rows per device call.

    Returns:
      ``[n, n_out]`` top-layer codes, a ``jax.Array``.
    """
    if len(layers) == 0:
        raise ValueError("layers: expected at least one pretrained layer, got none")
    x = jnp.asarray(x, jnp.float32)
    check_array(x, "x", rank=2, last_dim=int(layers[0].encoder["w"].shape[0]))
    for layer in layers:
        if layer.spec is not None:
            x = chunked_map(_RBMEncoder(layer.spec), x, args=(layer.params,), chunk_size=chunk_size)
        else:
            fn = _AutoencoderEncoder(layer.activation, layer.k, layer.k_alpha)
            x = chunked_map(fn, x, args=(layer.encoder,), chunk_size=chunk_size)
    return x
