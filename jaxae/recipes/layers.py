"""What a greedy pretraining recipe returns: one :class:`PretrainedLayer` per layer, and the
one whole-dataset pass up a stack of them, :func:`encode_layers`.

A layer is an RBM (``spec`` set, ``params`` an :class:`jaxae.rbm.RBMParams`) or a one-hidden-layer
autoencoder (``spec`` None, ``params`` its ``{"encoder", "decoder"}``); either way its
``encoder`` is ``{"w": [n_in, n_out], "b": [n_out]}``, what a stack keeps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxae import rbm, regularizers
from jaxae.atomic import atomic_write_text
from jaxae.chunked import chunked_map
from jaxae.models.mlp import ACTIVATIONS
from jaxae.typing import Array, ArrayLike
from jaxae.validation import check_array

__all__ = ["PretrainedLayer", "apply_encoder", "check_layer_fingerprint", "encode_layers"]


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


def _key_list(key: Any) -> list:
    """A typed or a legacy uint32 PRNG key's bits, as a JSON list."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).tolist()


def _data_summary(x: np.ndarray) -> str:
    """Rows, and per-feature means and standard deviations to 4 significant digits, hashed: the
    same data on another device (last-bit differences in a lower layer's codes) summarises
    alike, other data (another subset, 1 - x, another layer below) does not."""
    x64 = np.asarray(x, np.float64)
    stats = np.concatenate([x64.mean(axis=0), x64.std(axis=0)]) if len(x64) else np.zeros(0)
    rounded = np.array([float(f"{v:.4g}") for v in stats]).tobytes()
    return f"{x.shape[0]} rows, {hashlib.blake2b(rounded, digest_size=12).hexdigest()}"


# Facts of a layer's training that its checkpoints depend on; epochs may grow (a longer run
# resumes a shorter one) and the optimizer object has no stable description, so neither is one.
_NOT_FINGERPRINTED = ("epochs", "optimizer")


def check_layer_fingerprint(
    directory: str | os.PathLike, config: Any, x: np.ndarray, n_hidden: int, key: Any, **facts
) -> None:
    """Refuses to resume a layer's checkpoints trained with other settings, data or key.

    ``fit`` restores whatever ``directory`` holds if the parameter shapes match, so a rerun of a
    stack with another activation, corruption, CD-k, unit type or input would otherwise get the
    old layer back, labelled with the new config. The first run writes ``layer.json`` there (the
    config's fields but ``epochs`` and ``optimizer``, the sizes, the key, a summary of ``x``);
    a later run compares. A folder of checkpoints written before this check adopts the facts.

    Raises:
      ValueError: naming each fact that differs, then and now.
    """
    fields = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _NOT_FINGERPRINTED
    }
    now = {
        "config": type(config).__name__,
        **{k: v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
           for k, v in fields.items()},
        "sizes": [int(x.shape[1]), int(n_hidden)],
        "key": _key_list(key),
        "data": _data_summary(x),
        **{k: _key_list(v) if hasattr(v, "dtype") else repr(v) for k, v in facts.items()},
    }  # fmt: skip
    path = pathlib.Path(directory) / "layer.json"
    if path.is_file():
        then = json.loads(path.read_text())
        differ = sorted(k for k in then.keys() | now.keys() if then.get(k) != now.get(k))
        if differ:
            changes = "; ".join(f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in differ)
            if "data" in differ:
                changes += " (the data summary: other data, or a layer below trained differently)"
            raise ValueError(
                f"checkpoint_dir {os.fspath(directory)!r}: its checkpoints were trained with "
                f"other settings ({changes}); pass another checkpoint_dir, or delete this one "
                "to train the layer again"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(now, indent=1, sort_keys=True) + "\n")
