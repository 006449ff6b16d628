"""Multilayer (and single-layer) autoencoders as pure functions of a parameter PyTree.

Parameters are plain nested dicts, not a Flax module, because tied decoders and the deep
autoencoder unrolled from an RBM stack (Hinton & Salakhutdinov 2006) need the weight matrices
themselves: ``params = {"encoder": [{"w": [n_in, n_out], "b": [n_out]}, ...],
"decoder": [{"w", "b"}, ...]}``. A tied decoder stores only biases and reuses the transposed
encoder weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, positive_ints

__all__ = ["ACTIVATIONS", "MLPAutoencoder", "untie"]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda x: x,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    # Over the last axis: a word distribution, the output of a bag-of-words autoencoder.
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
}


def _check_activation(name: str, field: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"{field}: expected one of {sorted(ACTIVATIONS)}, got {name!r}")


@dataclasses.dataclass(frozen=True)
class MLPAutoencoder:
    """A fully connected autoencoder ``sizes[0] -> ... -> sizes[-1] -> ... -> sizes[0]``.

    Attributes:
      sizes: encoder layer widths, input first and code last, e.g. ``(784, 1000, 500, 250, 30)``;
        the decoder mirrors them.
      activation: hidden-layer nonlinearity ("linear", "sigmoid", "tanh" or "relu").
      code_activation: nonlinearity of the code layer (Hinton & Salakhutdinov use "linear").
      output_activation: nonlinearity of the reconstruction ("sigmoid" for pixels in [0, 1]).
      tied: decoder weights are the transposed encoder weights (biases stay separate).
    """

    sizes: tuple[int, ...]
    activation: str = "sigmoid"
    code_activation: str = "linear"
    output_activation: str = "sigmoid"
    tied: bool = False

    def __post_init__(self):
        object.__setattr__(self, "sizes", positive_ints(self.sizes, "sizes", min_len=2))
        _check_activation(self.activation, "activation")
        _check_activation(self.code_activation, "code_activation")
        _check_activation(self.output_activation, "output_activation")

    @property
    def code_size(self) -> int:
        return self.sizes[-1]

    def init(self, key: PRNGKey) -> Params:
        """Glorot-normal weights and zero biases for every layer."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        keys = jax.random.split(key, 2 * len(pairs))
        init = jax.nn.initializers.glorot_normal()
        encoder = [
            {"w": init(k, (n_in, n_out), jnp.float32), "b": jnp.zeros(n_out)}
            for k, (n_in, n_out) in zip(keys[: len(pairs)], pairs, strict=True)
        ]
        decoder = []
        for k, (n_out, n_in) in zip(keys[len(pairs) :], reversed(pairs), strict=True):
            layer = {"b": jnp.zeros(n_out)}
            if not self.tied:
                layer["w"] = init(k, (n_in, n_out), jnp.float32)
            decoder.append(layer)
        return {"encoder": encoder, "decoder": decoder}

    def _check_params(self, params: Params) -> None:
        n_layers = len(self.sizes) - 1
        if len(params["encoder"]) != n_layers or len(params["decoder"]) != n_layers:
            raise ValueError(
                f"params: expected {n_layers} encoder and decoder layers for sizes {self.sizes}, "
                f"got {len(params['encoder'])} and {len(params['decoder'])}"
            )
        has_w = ["w" in layer for layer in params["decoder"]]
        if self.tied and any(has_w):
            raise ValueError("params: a tied autoencoder's decoder layers hold biases only")
        if not self.tied and not all(has_w):
            raise ValueError("params: an untied autoencoder's decoder layers need weights 'w'")
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        expected = [(f"encoder[{i}]", n_in, n_out) for i, (n_in, n_out) in enumerate(pairs)]
        expected += [
            (f"decoder[{j}]", n_in, n_out) for j, (n_out, n_in) in enumerate(reversed(pairs))
        ]
        for name, n_in, n_out in expected:
            part, index = name.split("[")
            layer = params[part][int(index[:-1])]
            want = {"w": (n_in, n_out)} if part == "encoder" or not self.tied else {}
            want["b"] = (n_out,)
            for field, shape in want.items():
                found = tuple(getattr(layer.get(field), "shape", ()))
                if found != shape:
                    raise ValueError(
                        f"params['{part}'][{index[:-1]}]['{field}']: expected shape {shape} for "
                        f"sizes {self.sizes}, found {found}; were these params made for another "
                        "model?"
                    )

    def decoder_weights(self, params: Params) -> list[Array]:
        """Decoder weight matrices, code side first: ``[n_code_side, n_output_side]`` each."""
        if self.tied:
            return [layer["w"].T for layer in reversed(params["encoder"])]
        return [layer["w"] for layer in params["decoder"]]

    def encode(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """Codes of a batch.

        Args:
          params: from :meth:`init` (or :func:`jaxae.unroll`).
          x: ``[batch, sizes[0]]``.
          logits: return the code layer's pre-activation instead of ``code_activation`` of it
            (e.g. to add noise before a sigmoid code, as semantic hashing does).

        Returns:
          ``[batch, sizes[-1]]``.
        """
        x = jnp.asarray(x)
        check_array(x, "x", rank=2, last_dim=self.sizes[0], floating=True)
        self._check_params(params)
        hidden, code = ACTIVATIONS[self.activation], ACTIVATIONS[self.code_activation]
        n_layers = len(params["encoder"])
        for i, layer in enumerate(params["encoder"]):
            x = x @ layer["w"] + layer["b"][None, :]
            if i < n_layers - 1:
                x = hidden(x)
        return x if logits else code(x)

    def decode(self, params: Params, z: ArrayLike, *, logits: bool = False) -> Array:
        """Reconstructions from codes.

        Args:
          params: as for :meth:`encode`.
          z: ``[batch, sizes[-1]]``.
          logits: return the output layer's pre-activation (for
            :func:`jaxae.losses.sigmoid_cross_entropy`) instead of its activation.

        Returns:
          ``[batch, sizes[0]]``.
        """
        z = jnp.asarray(z)
        check_array(z, "z", rank=2, last_dim=self.sizes[-1], floating=True)
        self._check_params(params)
        hidden = ACTIVATIONS[self.activation]
        weights = self.decoder_weights(params)
        n_layers = len(weights)
        for i, (w, layer) in enumerate(zip(weights, params["decoder"], strict=True)):
            z = z @ w + layer["b"][None, :]
            if i < n_layers - 1:
                z = hidden(z)
        return z if logits else ACTIVATIONS[self.output_activation](z)

    def reconstruct(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``decode(encode(x))``: ``[batch, sizes[0]] -> [batch, sizes[0]]``."""
        return self.decode(params, self.encode(params, x), logits=logits)


def untie(model: MLPAutoencoder, params: Params) -> tuple[MLPAutoencoder, Params]:
    """An untied copy of a tied autoencoder: decoder weights become independent parameters."""
    if not model.tied:
        return model, params
    decoder = [
        {"w": w, "b": layer["b"]}
        for w, layer in zip(model.decoder_weights(params), params["decoder"], strict=True)
    ]
    return dataclasses.replace(model, tied=False), {
        "encoder": params["encoder"],
        "decoder": decoder,
    }
