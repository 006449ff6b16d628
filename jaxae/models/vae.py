"""Variational autoencoders: Gaussian encoders and Bernoulli decoders as pure functions.

Two models with one interface, the one :mod:`jaxae.variational` consumes::

    params = model.init(key)
    mean, log_variance = model.encode(params, x)     # q(z|x) = N(mean, diag(exp(log_variance)))
    logits = model.decode(params, z)                 # p(x|z) = Bernoulli(sigmoid(logits))

* :class:`MLPVAE`: fully connected, parameters a plain dict PyTree (as
  :class:`jaxae.MLPAutoencoder`). Its defaults are the one-stochastic-layer MNIST architecture
  of Burda et al. (2015, Sec. 5): 784-200-200-50 with tanh deterministic units, two Gaussian
  heads (mean, log-variance) on the encoder, and a mirrored 50-200-200-784 Bernoulli decoder.
  (Kingma & Welling 2014 used one hidden layer of 500 tanh units; ``sizes=(784, 500, 20)``
  gives their MNIST model.)
* :class:`ConvVAE`: a convolutional encoder and a transposed-convolution decoder, written as
  Flax Linen modules (the library's one Flax API, ``init``/``apply``) behind the same
  ``encode``/``decode`` functions of a parameter PyTree ``{"encoder": ..., "decoder": ...}``.

Both configs are frozen dataclasses, hence hashable: pass a model as a static argument of
``jit`` (:func:`jaxae.importance_sampled_log_likelihood` does).

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014 (App. C).
  Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 (Sec. 5).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.models.mlp import ACTIVATIONS
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int

__all__ = ["ConvVAE", "MLPVAE"]


def _dense(key: PRNGKey, n_in: int, n_out: int) -> dict[str, Array]:
    # Glorot & Bengio's uniform heuristic, the initialisation Burda et al. (2015) state.
    w = jax.nn.initializers.glorot_uniform()(key, (n_in, n_out), jnp.float32)
    return {"w": w, "b": jnp.zeros(n_out, jnp.float32)}


def _affine(layer: dict[str, Array], x: Array) -> Array:
    return x @ layer["w"] + layer["b"][None, :]


@dataclasses.dataclass(frozen=True)
class MLPVAE:
    """A fully connected VAE ``sizes[0] -> ... -> sizes[-2] -> (mean, log_variance)[sizes[-1]]``.

    Attributes:
      sizes: input size, deterministic hidden widths, latent size; default the one-stochastic-
        layer MNIST model of Burda et al. (2015): ``(784, 200, 200, 50)``.
      activation: hidden nonlinearity ("tanh" in Burda et al. and Kingma & Welling).

    Parameters: ``{"encoder": [{"w", "b"}, ...], "mean": {"w", "b"}, "log_variance": {"w", "b"},
    "decoder": [{"w", "b"}, ...]}``; the decoder mirrors the hidden widths and ends in logits.
    """

    sizes: tuple[int, ...] = (784, 200, 200, 50)
    activation: str = "tanh"

    def __post_init__(self):
        sizes = tuple(self.sizes)
        object.__setattr__(self, "sizes", sizes)
        if len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
        ):
            raise ValueError(f"sizes: expected at least two positive ints, got {sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )

    @property
    def latent_size(self) -> int:
        return self.sizes[-1]

    def init(self, key: PRNGKey) -> Params:
        """Glorot-uniform weights and zero biases."""
        return jax.jit(self._init)(key)  # one compilation instead of one per layer shape

    def _init(self, key: PRNGKey) -> Params:
        hidden = self.sizes[:-1]
        enc_pairs = list(zip(hidden[:-1], hidden[1:], strict=True))
        dec_sizes = (self.latent_size, *reversed(hidden))
        dec_pairs = list(zip(dec_sizes[:-1], dec_sizes[1:], strict=True))
        keys = iter(jax.random.split(key, len(enc_pairs) + len(dec_pairs) + 2))
        return {
            "encoder": [_dense(next(keys), a, b) for a, b in enc_pairs],
            "mean": _dense(next(keys), hidden[-1], self.latent_size),
            "log_variance": _dense(next(keys), hidden[-1], self.latent_size),
            "decoder": [_dense(next(keys), a, b) for a, b in dec_pairs],
        }

    def encode(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """The Gaussian posterior of a batch.

        Args:
          params: from :meth:`init`.
          x: ``[batch, sizes[0]]``.

        Returns:
          ``(mean, log_variance)``, each ``[batch, latent_size]``.
        """
        x = jnp.asarray(x)
        check_array(x, "x", rank=2, last_dim=self.sizes[0], floating=True)
        act = ACTIVATIONS[self.activation]
        for layer in params["encoder"]:
            x = act(_affine(layer, x))
        return _affine(params["mean"], x), _affine(params["log_variance"], x)

    def decode(self, params: Params, z: ArrayLike) -> Array:
        """Bernoulli logits of ``p(x|z)``.

        Args:
          params: from :meth:`init`.
          z: ``[batch, latent_size]``.

        Returns:
          ``[batch, sizes[0]]`` logits (``jax.nn.sigmoid`` gives pixel probabilities).
        """
        z = jnp.asarray(z)
        check_array(z, "z", rank=2, last_dim=self.latent_size, floating=True)
        act = ACTIVATIONS[self.activation]
        layers = params["decoder"]
        for layer in layers[:-1]:
            z = act(_affine(layer, z))
        return _affine(layers[-1], z)


class _ConvEncoder(nn.Module):
    """Two stride-2 convolutions, a dense layer, Gaussian heads."""

    features: tuple[int, ...]
    hidden: int
    latent_size: int

    @nn.compact
    def __call__(self, x):
        for f in self.features:
            x = nn.relu(nn.Conv(f, (3, 3), strides=(2, 2), padding="SAME")(x))
        x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.latent_size, name="mean")(x), nn.Dense(
            self.latent_size, name="log_variance"
        )(x)


class _ConvDecoder(nn.Module):
    """A dense layer to a small feature map, stride-2 transposed convolutions up to logits."""

    features: tuple[int, ...]
    hidden: int
    image_shape: tuple[int, int, int]

    @nn.compact
    def __call__(self, z):
        height, width, channels = self.image_shape
        scale = 2 ** len(self.features)
        h0, w0 = height // scale, width // scale
        x = nn.relu(nn.Dense(self.hidden)(z))
        x = nn.relu(nn.Dense(h0 * w0 * self.features[-1])(x))
        x = x.reshape(z.shape[0], h0, w0, self.features[-1])
        for f in reversed(self.features):
            x = nn.relu(nn.ConvTranspose(f, (3, 3), strides=(2, 2), padding="SAME")(x))
        return nn.Conv(channels, (3, 3), padding="SAME")(x)


@dataclasses.dataclass(frozen=True)
class ConvVAE:
    """A convolutional VAE for ``[batch, H, W, C]`` images (Flax Linen modules inside).

    Encoder: ``len(features)`` 3×3 stride-2 ReLU convolutions, a dense layer of ``hidden`` units,
    Gaussian heads of ``latent_size``; decoder: the mirror image with transposed convolutions,
    ending in one logit per pixel. ``H`` and ``W`` must be divisible by ``2 ** len(features)``.

    Attributes:
      latent_size: dimension of z.
      image_shape: ``(H, W, C)``, default MNIST's ``(28, 28, 1)``.
      features: channels of the convolutions, input side first.
      hidden: width of the dense layer.
    """

    latent_size: int = 50
    image_shape: tuple[int, int, int] = (28, 28, 1)
    features: tuple[int, ...] = (32, 64)
    hidden: int = 256

    def __post_init__(self):
        check_positive_int(self.latent_size, "latent_size")
        check_positive_int(self.hidden, "hidden")
        object.__setattr__(self, "image_shape", tuple(self.image_shape))
        object.__setattr__(self, "features", tuple(self.features))
        if len(self.image_shape) != 3 or any(d < 1 for d in self.image_shape):
            raise ValueError(f"image_shape: expected (H, W, C), got {self.image_shape}")
        if not self.features:
            raise ValueError("features: expected at least one convolution")
        scale = 2 ** len(self.features)
        if self.image_shape[0] % scale or self.image_shape[1] % scale:
            raise ValueError(
                f"image_shape: H and W must be divisible by 2**len(features) = {scale}, got "
                f"{self.image_shape}"
            )

    @property
    def _encoder(self) -> _ConvEncoder:
        return _ConvEncoder(self.features, self.hidden, self.latent_size)

    @property
    def _decoder(self) -> _ConvDecoder:
        return _ConvDecoder(self.features, self.hidden, self.image_shape)

    def init(self, key: PRNGKey) -> Params:
        """Flax's default initialisation of both modules: ``{"encoder": ..., "decoder": ...}``."""
        return jax.jit(self._init)(key)  # one compilation instead of hundreds of eager ops

    def _init(self, key: PRNGKey) -> Params:
        enc_key, dec_key = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, self.latent_size), jnp.float32)
        return {
            "encoder": self._encoder.init(enc_key, x),
            "decoder": self._decoder.init(dec_key, z),
        }

    def encode(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """``[batch, H, W, C]`` images -> ``(mean, log_variance)``, each ``[batch, latent]``."""
        x = jnp.asarray(x)
        check_array(x, "x", rank=4, floating=True)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"x: expected shape [batch, {', '.join(map(str, self.image_shape))}], got "
                f"{tuple(x.shape)}"
            )
        return self._encoder.apply(params["encoder"], x)

    def decode(self, params: Params, z: ArrayLike) -> Array:
        """``[batch, latent_size]`` codes -> ``[batch, H, W, C]`` Bernoulli logits."""
        z = jnp.asarray(z)
        check_array(z, "z", rank=2, last_dim=self.latent_size, floating=True)
        return self._decoder.apply(params["decoder"], z)
