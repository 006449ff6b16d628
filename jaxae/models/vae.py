"""Variational autoencoders: Gaussian encoders and Bernoulli decoders as pure functions.

Each satisfies the model contract (:class:`jaxae.models.contract.Autoencoder`) and adds the
posterior that :mod:`jaxae.variational` consumes::

    params = model.init(key)
    mean, log_variance = model.posterior(params, x)  # q(z|x) = N(mean, diag(exp(log_variance)))
    logits = model.decode(params, z, logits=True)    # p(x|z) = Bernoulli(sigmoid(logits))
    probabilities = model.decode(params, z)          # E[x|z] = sigmoid(logits)
    code = model.encode(params, x)                   # the posterior mean, E[z|x]

* :class:`MLPVAE`: fully connected, parameters a plain dict PyTree (as
  :class:`jaxae.MLPAutoencoder`). Its defaults are the one-stochastic-layer MNIST architecture
  of Burda et al. (2015, Sec. 5): 784-200-200-50 with tanh deterministic units, two Gaussian
  heads (mean, log-variance) on the encoder, and a mirrored 50-200-200-784 Bernoulli decoder.
  (Kingma & Welling 2014 used one hidden layer of 500 tanh units; ``sizes=(784, 500, 20)``
  gives their MNIST model.)
* :class:`ConvVAE`: a convolutional encoder and a transposed-convolution decoder, written as
  Flax Linen modules (the library's one Flax API, ``init``/``apply``) behind the same
  ``encode``/``decode`` functions of a parameter PyTree ``{"encoder": ..., "decoder": ...}``.
* :class:`TwoStochasticLayerVAE`: Burda et al.'s two-stochastic-layer model
  (784-200-200-100s-100-100-50s), with its own ``log_importance_weights`` for the bounds.

All three configs are frozen dataclasses, hence hashable: pass a model as a static argument of
``jit`` (:func:`jaxae.importance_sampled_log_likelihood` does).

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014 (App. C).
  Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 (Sec. 5).
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.models.mlp import ACTIVATIONS
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int, check_tree_shapes, positive_ints
from jaxae.variational import diagonal_gaussian_log_density, standard_normal_log_density

__all__ = ["ConvVAE", "MLPVAE", "TwoStochasticLayerVAE"]


@functools.lru_cache(maxsize=64)
def _param_shapes(model) -> Params:
    """The shapes ``model.init`` makes (traced once per model configuration)."""
    return jax.eval_shape(model._init, jax.random.key(0))


def _check_params(model, params: Params) -> None:
    """Trace-time check that ``params`` were made by ``model.init`` (structure and shapes)."""
    check_tree_shapes(params, _param_shapes(model), "params", repr(model))


def _dense(key: PRNGKey, n_in: int, n_out: int) -> dict[str, Array]:
    # Glorot & Bengio's uniform heuristic, the initialisation Burda et al. (2015) state.
    w = jax.nn.initializers.glorot_uniform()(key, (n_in, n_out), jnp.float32)
    return {"w": w, "b": jnp.zeros(n_out, jnp.float32)}


def _mean_logits(data_mean: ArrayLike, size: int) -> Array:
    """The logits of a per-pixel data mean, clipped to [1e-3, 1 - 1e-3]: the output bias with
    which an untrained Bernoulli decoder predicts the mean image (Burda et al.'s code)."""
    check_array(data_mean, "data_mean", rank=1, last_dim=size, value_range=(0.0, 1.0))
    return _logits(data_mean)


def _logits(p: ArrayLike) -> Array:
    return jax.scipy.special.logit(jnp.clip(jnp.asarray(p, jnp.float32), 1e-3, 1.0 - 1e-3))


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
        object.__setattr__(self, "sizes", positive_ints(self.sizes, "sizes", min_len=2))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )

    @property
    def latent_size(self) -> int:
        return self.sizes[-1]

    def init(self, key: PRNGKey, data_mean: ArrayLike | None = None) -> Params:
        """Glorot-uniform weights and zero biases.

        ``data_mean``: ``(sizes[0],)``, the training images' per-pixel mean in [0, 1]; when
        given, the decoder's output bias starts at its logits, so the untrained model predicts
        the mean image (as Burda et al.'s code initialises it) instead of 0.5 everywhere.
        """
        params = jax.jit(self._init)(key)  # one compilation instead of one per layer shape
        if data_mean is not None:
            params["decoder"][-1]["b"] = _mean_logits(data_mean, self.sizes[0])
        return params

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

    def posterior(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """The Gaussian posterior ``q(z|x)`` of a batch.

        Args:
          params: from :meth:`init`.
          x: ``[batch, sizes[0]]``.

        Returns:
          ``(mean, log_variance)``, each ``[batch, latent_size]``.
        """
        x = jnp.asarray(x)
        check_array(x, "x", rank=2, last_dim=self.sizes[0], floating=True)
        _check_params(self, params)
        act = ACTIVATIONS[self.activation]
        for layer in params["encoder"]:
            x = act(_affine(layer, x))
        return _affine(params["mean"], x), _affine(params["log_variance"], x)

    def encode(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """The posterior mean ``E[z|x]``: ``[batch, sizes[0]] -> [batch, latent_size]``.

        The mean head is linear, so ``logits`` changes nothing (it is there for the contract).
        """
        del logits
        return self.posterior(params, x)[0]

    def decode(self, params: Params, z: ArrayLike, *, logits: bool = False) -> Array:
        """The Bernoulli mean of ``p(x|z)`` (pixel probabilities), or its logits.

        Args:
          params: from :meth:`init`.
          z: ``[batch, latent_size]``.
          logits: return the logits (for :func:`jaxae.bernoulli_log_likelihood`).

        Returns:
          ``[batch, sizes[0]]`` probabilities, or logits with ``logits=True``.
        """
        z = jnp.asarray(z)
        check_array(z, "z", rank=2, last_dim=self.latent_size, floating=True)
        _check_params(self, params)
        act = ACTIVATIONS[self.activation]
        layers = params["decoder"]
        for layer in layers[:-1]:
            z = act(_affine(layer, z))
        out = _affine(layers[-1], z)
        return out if logits else jax.nn.sigmoid(out)

    def reconstruct(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``decode(encode(x))``: the decoder's output at the posterior mean."""
        return self.decode(params, self.encode(params, x), logits=logits)


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
        image_shape = positive_ints(self.image_shape, "image_shape", what="positive ints (H, W, C)")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape: expected (H, W, C), got {image_shape}")
        object.__setattr__(self, "image_shape", image_shape)
        features = positive_ints(self.features, "features", what="channel counts (one a conv)")
        object.__setattr__(self, "features", features)
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

    def init(self, key: PRNGKey, data_mean: ArrayLike | None = None) -> Params:
        """Flax's default initialisation of both modules: ``{"encoder": ..., "decoder": ...}``.

        ``data_mean``: ``(H, W, C)``, the training images' per-pixel mean in [0, 1]. A
        convolution's bias is per channel, so when given, the last convolution's bias starts at
        the logits of each channel's mean intensity: the untrained decoder predicts the data's
        average brightness instead of 0.5 (the per-pixel version of :meth:`MLPVAE.init`).
        """
        params = jax.jit(self._init)(key)  # one compilation instead of hundreds of eager ops
        if data_mean is not None:
            check_array(data_mean, "data_mean", value_range=(0.0, 1.0))
            if tuple(data_mean.shape) != self.image_shape:
                raise ValueError(
                    f"data_mean: expected shape {self.image_shape} (one image, the per-pixel "
                    f"mean), got {tuple(data_mean.shape)}"
                )
            channel_mean = jnp.mean(jnp.asarray(data_mean, jnp.float32), axis=(0, 1))
            # The decoder's one plain convolution, its last layer (the others are transposed).
            params["decoder"]["params"]["Conv_0"]["bias"] = _logits(channel_mean)
        return params

    def _init(self, key: PRNGKey) -> Params:
        enc_key, dec_key = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, self.latent_size), jnp.float32)
        return {
            "encoder": self._encoder.init(enc_key, x),
            "decoder": self._decoder.init(dec_key, z),
        }

    def posterior(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """``q(z|x)``: ``[batch, H, W, C]`` -> ``(mean, log_variance)``, each ``[batch, z]``."""
        x = jnp.asarray(x)
        check_array(x, "x", rank=4, floating=True)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"x: expected shape [batch, {', '.join(map(str, self.image_shape))}], got "
                f"{tuple(x.shape)}"
            )
        _check_params(self, params)
        return self._encoder.apply(params["encoder"], x)

    def encode(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """The posterior mean ``E[z|x]`` (linear: ``logits`` changes nothing)."""
        del logits
        return self.posterior(params, x)[0]

    def decode(self, params: Params, z: ArrayLike, *, logits: bool = False) -> Array:
        """``[batch, latent_size]`` -> ``[batch, H, W, C]`` Bernoulli means (logits if asked)."""
        z = jnp.asarray(z)
        check_array(z, "z", rank=2, last_dim=self.latent_size, floating=True)
        _check_params(self, params)
        out = self._decoder.apply(params["decoder"], z)
        return out if logits else jax.nn.sigmoid(out)

    def reconstruct(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``decode(encode(x))``: the decoder's output at the posterior mean."""
        return self.decode(params, self.encode(params, x), logits=logits)


def _mlp(layers: list[dict[str, Array]], x: Array, act) -> Array:
    for layer in layers:
        x = act(_affine(layer, x))
    return x


@dataclasses.dataclass(frozen=True)
class TwoStochasticLayerVAE:
    """A VAE with two Gaussian stochastic layers ``x -> h1 -> h2`` (Burda et al. 2015, Sec. 5).

    Recognition model ``q(h1|x) q(h2|h1)``; generative model ``p(h2) p(h1|h2) p(x|h1)`` with
    ``p(h2) = N(0, I)``, Gaussian ``p(h1|h2)`` and Bernoulli ``p(x|h1)``. The defaults are the
    paper's MNIST model, 784-200-200-100(s)-100-100-50(s) (Sec. 5.1, and ``experiments.py`` of
    the authors' code, github.com/yburda/iwae): two deterministic tanh layers of 200 units
    between ``x`` and ``h1`` (100 units), two of 100 between ``h1`` and ``h2`` (50 units),
    mirrored in the generative model.

    It has no single ``(mean, log_variance)`` posterior, so instead of the one-layer interface
    it provides :meth:`log_importance_weights`, which :func:`jaxae.iwae_bound`,
    :func:`jaxae.elbo` (the sampled estimator) and
    :func:`jaxae.importance_sampled_log_likelihood` call when a model has it. For the model
    contract, ``encode`` is the mean of ``q(h1|x)`` and ``decode`` the Bernoulli mean of
    ``p(x|h1)``; :meth:`posterior` and :meth:`posterior_top` are the Gaussians ``q(h1|x)`` and
    ``q(h2|h1)``, :meth:`prior_top` the generative ``p(h1|h2)``.

    Attributes:
      input_size: pixels of an input (784).
      hidden_1: deterministic layer sizes between ``x`` and ``h1`` (and, mirrored, back).
      first_latent_size: units of the first stochastic layer ``h1``.
      hidden_2: deterministic layer sizes between ``h1`` and ``h2`` (and back).
      latent_size: units of the top stochastic layer ``h2``.
      activation: hidden nonlinearity (tanh in the paper).

    References:
      Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016, Sec. 5 and
      Table 1 (two stochastic layers).
    """

    input_size: int = 784
    hidden_1: tuple[int, ...] = (200, 200)
    first_latent_size: int = 100
    hidden_2: tuple[int, ...] = (100, 100)
    latent_size: int = 50
    activation: str = "tanh"

    def __post_init__(self):
        for name in ("input_size", "first_latent_size", "latent_size"):
            check_positive_int(getattr(self, name), name)
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("hidden_1", "hidden_2"):
            widths = positive_ints(
                getattr(self, name), name, what="positive ints (a non-empty tuple)"
            )
            object.__setattr__(self, name, widths)
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )

    def init(self, key: PRNGKey, data_mean: ArrayLike | None = None) -> Params:
        """Glorot-uniform weights and zero biases; ``data_mean`` as :meth:`MLPVAE.init`."""
        params = jax.jit(self._init)(key)
        if data_mean is not None:
            params["p_x"]["logits"]["b"] = _mean_logits(data_mean, self.input_size)
        return params

    def _init(self, key: PRNGKey) -> Params:
        keys = iter(jax.random.split(key, 4))

        def stack(key, n_in, widths, n_out, gaussian):
            sizes = (n_in, *widths)
            layer_keys = iter(jax.random.split(key, len(widths) + 2))
            pairs = zip(sizes[:-1], sizes[1:], strict=True)
            hidden = [_dense(next(layer_keys), a, b) for a, b in pairs]
            if not gaussian:
                return {"hidden": hidden, "logits": _dense(next(layer_keys), sizes[-1], n_out)}
            return {
                "hidden": hidden,
                "mean": _dense(next(layer_keys), sizes[-1], n_out),
                "log_variance": _dense(next(layer_keys), sizes[-1], n_out),
            }

        d, h1, h2 = self.input_size, self.first_latent_size, self.latent_size
        return {
            "q_h1": stack(next(keys), d, self.hidden_1, h1, True),
            "q_h2": stack(next(keys), h1, self.hidden_2, h2, True),
            "p_h1": stack(next(keys), h2, tuple(reversed(self.hidden_2)), h1, True),
            "p_x": stack(next(keys), h1, tuple(reversed(self.hidden_1)), d, False),
        }

    def _gaussian(self, net: Params, x: Array) -> tuple[Array, Array]:
        h = _mlp(net["hidden"], x, ACTIVATIONS[self.activation])
        return _affine(net["mean"], h), _affine(net["log_variance"], h)

    def posterior(self, params: Params, x: ArrayLike) -> tuple[Array, Array]:
        """``q(h1|x)``: ``[batch, input_size]`` -> (mean, log_variance) ``[batch, h1]``."""
        x = jnp.asarray(x)
        check_array(x, "x", rank=2, last_dim=self.input_size, floating=True)
        _check_params(self, params)
        return self._gaussian(params["q_h1"], x)

    def encode(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """The mean of ``q(h1|x)``, ``[batch, h1]`` (linear: ``logits`` changes nothing)."""
        del logits
        return self.posterior(params, x)[0]

    def posterior_top(self, params: Params, h1: ArrayLike) -> tuple[Array, Array]:
        """``q(h2|h1)``: ``[batch, h1]`` -> (mean, log_variance) ``[batch, h2]``."""
        h1 = jnp.asarray(h1)
        check_array(h1, "h1", rank=2, last_dim=self.first_latent_size, floating=True)
        _check_params(self, params)
        return self._gaussian(params["q_h2"], h1)

    def prior_top(self, params: Params, h2: ArrayLike) -> tuple[Array, Array]:
        """``p(h1|h2)``: ``[batch, h2]`` -> (mean, log_variance) ``[batch, h1]``."""
        h2 = jnp.asarray(h2)
        check_array(h2, "h2", rank=2, last_dim=self.latent_size, floating=True)
        _check_params(self, params)
        return self._gaussian(params["p_h1"], h2)

    def decode(self, params: Params, h1: ArrayLike, *, logits: bool = False) -> Array:
        """``p(x|h1)``: ``[batch, h1]`` -> Bernoulli means (logits if asked) ``[batch, input]``."""
        h1 = jnp.asarray(h1)
        check_array(h1, "h1", rank=2, last_dim=self.first_latent_size, floating=True)
        _check_params(self, params)
        net = params["p_x"]
        out = _affine(net["logits"], _mlp(net["hidden"], h1, ACTIVATIONS[self.activation]))
        return out if logits else jax.nn.sigmoid(out)

    def reconstruct(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``decode(encode(x))``: ``p(x|h1)`` at the mean of ``q(h1|x)``."""
        return self.decode(params, self.encode(params, x), logits=logits)

    def log_importance_weights(
        self, params: Params, x: Array, key: PRNGKey, *, num_samples: int, log_likelihood
    ) -> Array:
        """``log p(x|h1) + log p(h1|h2) + log p(h2) - log q(h1|x) - log q(h2|h1)``.

        ``h1 ~ q(h1|x)`` and ``h2 ~ q(h2|h1)`` are reparameterised, ``num_samples`` per example.

        Args:
          params: from :meth:`init`.
          x: ``[batch, input_size]``.
          key: PRNG key.
          num_samples: k ≥ 1.
          log_likelihood: ``(logits, x) -> [batch]``, e.g. ``jaxae.bernoulli_log_likelihood``.

        Returns:
          ``[num_samples, batch]`` log importance weights.
        """
        check_positive_int(num_samples, "num_samples")
        x = jnp.asarray(x)
        batch = x.shape[0]
        mean1, log_var1 = self.posterior(params, x)
        key1, key2 = jax.random.split(key)
        eps1 = jax.random.normal(key1, (num_samples, *mean1.shape), mean1.dtype)
        h1 = mean1[None] + jnp.exp(0.5 * log_var1)[None] * eps1
        # Fold the samples into the batch: one matmul per layer for all k × batch rows.
        h1_flat = h1.reshape(num_samples * batch, self.first_latent_size)
        mean2, log_var2 = self.posterior_top(params, h1_flat)
        eps2 = jax.random.normal(key2, mean2.shape, mean2.dtype)
        h2 = mean2 + jnp.exp(0.5 * log_var2) * eps2
        prior_mean1, prior_log_var1 = self.prior_top(params, h2)
        logits = self.decode(params, h1_flat, logits=True).reshape(
            num_samples, batch, self.input_size
        )
        log_px = jax.vmap(lambda out: log_likelihood(out, x))(logits)
        log_p = (
            diagonal_gaussian_log_density(h1_flat, prior_mean1, prior_log_var1)
            + standard_normal_log_density(h2)
        ).reshape(num_samples, batch)
        log_q = (
            diagonal_gaussian_log_density(
                h1_flat,
                jnp.broadcast_to(mean1[None], h1.shape).reshape(h1_flat.shape),
                jnp.broadcast_to(log_var1[None], h1.shape).reshape(h1_flat.shape),
            )
            + diagonal_gaussian_log_density(h2, mean2, log_var2)
        ).reshape(num_samples, batch)
        return log_px + log_p - log_q
