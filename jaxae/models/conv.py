"""Convolutional autoencoders as Flax Linen modules, trained through :class:`LinenAutoencoder`.

The modules here are ordinary Linen modules with ``encode(x, train)`` and ``decode(z, train)``
methods; :class:`jaxae.LinenAutoencoder` is the one adapter that puts them behind the model
contract (pure functions of ``(params, model_state)``, ``batch_stats`` and dropout keys threaded
through :func:`jaxae.fit`). There is no second wrapper type: a convolutional autoencoder is::

    ae = jaxae.LinenAutoencoder(ConvAutoencoder(image_shape=(28, 28, 1), features=(16, 32)))
    params, model_state = ae.init(key, x[:2])                 # x: [batch, 28, 28, 1]
    result = jaxae.fit(params, x, loss_fn=ae.loss(jaxae.sigmoid_cross_entropy),
                       model_state=model_state, optimizer=optax.adam(1e-3), key=key, ...)
    codes = ae.encode(result.params, x, model_state=result.model_state)   # eval mode

The denoising variant is a loss, not a module: ``ae.denoising_loss(jaxae.sigmoid_cross_entropy,
jaxae.masking_noise, rate=0.25)`` corrupts each batch afresh and reconstructs the clean one.

Images are channels-last ``[batch, H, W, C]``; ``H`` and ``W`` must be divisible by the product
of the strides (the decoder must be able to grow the bottom feature map back to ``H x W``).

References:
  Masci, Meier, Cireşan & Schmidhuber, "Stacked convolutional auto-encoders for hierarchical
  feature extraction", ICANN 2011.
  Ioffe & Szegedy, "Batch normalization", ICML 2015.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.models.linen import LinenAutoencoder
from jaxae.typing import Array
from jaxae.validation import check_positive_int, positive_ints

__all__ = [
    "CBIRAutoencoder",
    "ConvAutoencoder",
    "ConvDecoder",
    "ConvEncoder",
    "TwoCodeLoss",
    "check_conv_shapes",
]

_DOWNSAMPLE = ("stride", "pool")
_UPSAMPLE = ("transpose", "resize")
_CODES = ("z1", "z2", "mean")


def check_conv_shapes(
    image_shape: Sequence[int], features: Sequence[int], strides: Sequence[int]
) -> tuple[int, int, int]:
    """Checks a convolutional stack's configuration; returns the bottom map ``(h, w, c)``.

    Raises:
      ValueError: ``image_shape`` is not ``(H, W, C)``, ``features`` and ``strides`` differ in
        length or hold a non-positive value, or ``H`` or ``W`` is not divisible by the total
        stride.
    """
    image_shape = positive_ints(
        image_shape, "image_shape", what="positive ints, channels-last (H, W, C)"
    )
    if len(image_shape) != 3:
        raise ValueError(
            f"image_shape: expected channels-last (H, W, C) of positive ints, got {image_shape}"
        )
    features = positive_ints(features, "features", what="positive channel counts (one a layer)")
    per_layer = f"positive ints (one per layer of features {features})"
    strides = positive_ints(strides, "strides", what=per_layer)
    if len(strides) != len(features):
        raise ValueError(f"strides: expected {len(features)} {per_layer}, got {strides}")
    h, w, _ = image_shape
    total = math.prod(strides)
    if h % total or w % total:
        raise ValueError(
            f"image_shape {image_shape}: H={h} and W={w} must both be divisible by the total "
            f"stride {total} (the product of strides {strides}); pad or crop the images to "
            f"a multiple of {total}, e.g. {-(-h // total) * total} x {-(-w // total) * total}"
        )
    return h // total, w // total, features[-1]


def _check_images(x: Array, image_shape: tuple[int, int, int]) -> None:
    """Trace-time check that ``x`` is ``[batch, H, W, C]`` as configured, naming what came."""
    h, w, c = image_shape
    want = f"[batch, {h}, {w}, {c}] (channels last)"
    if not hasattr(x, "shape") or x.ndim != 4:
        shape = tuple(getattr(x, "shape", ()))
        hint = ""
        if len(shape) == 2 and shape[1] == h * w * c:
            hint = f"; reshape flat images with x.reshape(-1, {h}, {w}, {c})"
        elif shape == image_shape:
            hint = "; a single image? add the batch axis: x[None]"
        elif len(shape) == 3 and c == 1 and shape[1:] == (h, w):
            hint = "; no channel axis? add it: x[..., None]"
        raise ValueError(f"x: expected images {want}, got shape {shape}{hint}")
    if tuple(x.shape[1:]) == image_shape:
        return
    if tuple(x.shape[1:]) == (c, h, w):
        raise ValueError(
            f"x: got shape {tuple(x.shape)}, which looks channels-first [batch, C, H, W]; "
            f"expected {want}: use x.transpose(0, 2, 3, 1)"
        )
    raise ValueError(f"x: expected images {want}, got shape {tuple(x.shape)}")


class ConvEncoder(nn.Module):
    """Convolutions (3x3, ReLU, optional BatchNorm and Dropout) down to a dense code layer.

    ``[batch, H, W, C] -> [batch, code_size]``. Layer ``i`` has ``features[i]`` channels and
    downsamples by ``strides[i]``: a strided convolution (``downsample="stride"``) or a stride-1
    convolution followed by ``strides[i] x strides[i]`` max pooling (``"pool"``). The bottom map
    ``[H / S, W / S, features[-1]]`` (``S`` the product of the strides) is flattened into one
    dense layer with ``code_activation`` (None: linear).

    Attributes:
      image_shape: ``(H, W, C)``, checked against every input.
      features: channels of each convolution, input side first.
      strides: downsampling factor of each convolution (1: none).
      code_size: width of the code.
      downsample: ``"stride"`` or ``"pool"``.
      batch_norm: BatchNorm after every convolution (before the ReLU).
      dropout: dropout rate after every convolution's ReLU (0: none).
      code_activation: ``"relu"``, ``"sigmoid"``, ``"tanh"`` or None (linear).
      kernel_size: side of the square kernels.
      momentum: BatchNorm's running-average momentum.
    """

    image_shape: tuple[int, int, int]
    features: tuple[int, ...] = (32, 64)
    strides: tuple[int, ...] = (2, 2)
    code_size: int = 16
    downsample: str = "stride"
    batch_norm: bool = True
    dropout: float = 0.0
    code_activation: str | None = None
    kernel_size: int = 3
    momentum: float = 0.9

    def __post_init__(self):
        _check_config(self)
        if self.downsample not in _DOWNSAMPLE:
            raise ValueError(
                f"downsample: expected one of {', '.join(_DOWNSAMPLE)}, got {self.downsample!r}"
            )
        if self.code_activation not in (None, *_ACTIVATIONS):
            raise ValueError(
                f"code_activation: expected None or one of {', '.join(_ACTIVATIONS)}, got "
                f"{self.code_activation!r}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x)
        _check_images(x, self.image_shape)
        k = (self.kernel_size, self.kernel_size)
        for f, s in zip(self.features, self.strides, strict=True):
            conv_stride = s if self.downsample == "stride" else 1
            x = nn.Conv(f, k, strides=(conv_stride, conv_stride), padding="SAME")(x)
            x = _normalise_activate_drop(self, x, train)
            if self.downsample == "pool" and s > 1:
                x = nn.max_pool(x, (s, s), strides=(s, s), padding="VALID")
        code = nn.Dense(self.code_size)(x.reshape(x.shape[0], -1))
        if self.code_activation is None:
            return code
        return _ACTIVATIONS[self.code_activation](code)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a dense layer to the bottom map, then upsampling
    convolutions back to ``[batch, H, W, C]`` logits (the last layer is linear).

    Layer ``i`` (from the bottom) upsamples by ``strides[-1 - i]`` to ``features[-2 - i]``
    channels (the last to ``C``), by a transposed convolution (``upsample="transpose"``) or
    nearest-neighbour resizing followed by a convolution (``"resize"``, no checkerboard
    artefacts). The dense layer and every layer but the last have ReLU (and BatchNorm, Dropout
    when asked).

    Attributes: as :class:`ConvEncoder`, with ``upsample`` in place of ``downsample``.
    """

    image_shape: tuple[int, int, int]
    features: tuple[int, ...] = (32, 64)
    strides: tuple[int, ...] = (2, 2)
    upsample: str = "transpose"
    batch_norm: bool = True
    dropout: float = 0.0
    kernel_size: int = 3
    momentum: float = 0.9

    def __post_init__(self):
        _check_config(self)
        if self.upsample not in _UPSAMPLE:
            raise ValueError(
                f"upsample: expected one of {', '.join(_UPSAMPLE)}, got {self.upsample!r}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, z, train: bool = False):
        z = jnp.asarray(z)
        if z.ndim != 2:
            raise ValueError(f"z: expected codes [batch, code_size], got shape {tuple(z.shape)}")
        h, w, c = check_conv_shapes(self.image_shape, self.features, self.strides)
        x = nn.Dense(h * w * c)(z).reshape(z.shape[0], h, w, c)
        x = _normalise_activate_drop(self, x, train)
        k = (self.kernel_size, self.kernel_size)
        outputs = (*self.features[:-1][::-1], self.image_shape[2])
        for i, (f, s) in enumerate(zip(outputs, self.strides[::-1], strict=True)):
            if self.upsample == "transpose":
                x = nn.ConvTranspose(f, k, strides=(s, s), padding="SAME")(x)
            else:
                b, hh, ww, cc = x.shape
                x = jax.image.resize(x, (b, hh * s, ww * s, cc), method="nearest")
                x = nn.Conv(f, k, padding="SAME")(x)
            if i < len(outputs) - 1:
                x = _normalise_activate_drop(self, x, train)
        return x  # logits


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder: :class:`ConvEncoder` and :class:`ConvDecoder` as one Linen
    module with ``encode(x, train)`` / ``decode(z, train)``; wrap it in
    :class:`jaxae.LinenAutoencoder` (``decode`` returns logits, the adapter's sigmoid gives pixel
    probabilities).

    Attributes:
      image_shape: ``(H, W, C)``, ``H`` and ``W`` divisible by the product of ``strides``.
      features: channels of the encoder's convolutions, input side first (any widths).
      strides: each convolution's downsampling factor.
      code_size: width of the dense code layer.
      downsample: ``"stride"`` (strided convolutions) or ``"pool"`` (max pooling).
      upsample: ``"transpose"`` (transposed convolutions) or ``"resize"`` (upsample + conv).
      batch_norm: BatchNorm after every convolution but the output layer.
      dropout: dropout rate after those layers' ReLU.
      code_activation: None (linear), ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    features: tuple[int, ...] = (32, 64)
    strides: tuple[int, ...] = (2, 2)
    code_size: int = 16
    downsample: str = "stride"
    upsample: str = "transpose"
    batch_norm: bool = True
    dropout: float = 0.0
    code_activation: str | None = None

    def __post_init__(self):
        _check_config(self)
        super().__post_init__()

    def setup(self):
        self.encoder = ConvEncoder(
            self.image_shape, self.features, self.strides, self.code_size, self.downsample,
            self.batch_norm, self.dropout, self.code_activation,
        )  # fmt: skip
        self.decoder = ConvDecoder(
            self.image_shape, self.features, self.strides, self.upsample, self.batch_norm,
            self.dropout,
        )  # fmt: skip

    def encode(self, x, train: bool = False):
        return self.encoder(x, train)

    def decode(self, z, train: bool = False):
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[-1] != self.code_size:
            raise ValueError(
                f"z: expected codes [batch, {self.code_size}], got shape {tuple(z.shape)}"
            )
        return self.decoder(z, train)


class CBIRAutoencoder(nn.Module):
    """The textbook's content-based image retrieval autoencoder: two convolutional encoders E1
    and E2 with codes z1 and z2, one shared decoder.

    Each encoder: four 3x3 convolutions (``features``, default 32-64-128-256 channels, strides
    2-2-2-1), each followed by BatchNorm and ReLU; on a 32x32 image (MNIST padded by 2 pixels a
    side) the last convolution's output is 4x4x256, mapped to the 16-d code by one dense layer:
    with ReLU in E1 (``z1``), linear in E2 (``z2``). The decoder mirrors the encoder with
    transposed convolutions.

    How z1 and z2 are trained and combined (our choice; the text names the two encoders and
    their heads but gives no objective that joins them): both encoders are trained jointly,
    end to end, and **share one decoder**, so both codes live in one 16-d code space that the
    decoder reads. The loss (:class:`TwoCodeLoss`) is the mean of the reconstruction losses of
    ``D(z1)``, ``D(z2)`` and ``D((z1 + z2) / 2)``; the retrieval code (``encode``) is ``code``:
    by default the mean ``(z1 + z2) / 2``, a 16-d code like PCA-16's. Why: a shared decoder
    makes the two codes comparable (a separate decoder each would leave them in unrelated
    coordinates, and their average meaningless); the ReLU code can lose units to zero (dead
    units tie every image at 0 in that coordinate), which the linear code cannot, while the
    ReLU code's sparsity suits nearest-neighbour search; averaging two independently initialised
    encoders is a two-member ensemble of the same size as one code, and training the mean's
    reconstruction keeps the decoder faithful at the code actually used. ``code="z1"`` or
    ``"z2"`` selects one encoder's code instead; :meth:`codes` returns both (e.g. to rank by
    their 32-d concatenation).

    Attributes:
      image_shape: ``(H, W, C)``; default ``(32, 32, 1)``, MNIST padded to 32 x 32.
      features: the four (or any number of) convolutions' channels.
      strides: their downsampling factors.
      code_size: width of z1 and z2.
      code: what ``encode`` returns: ``"mean"``, ``"z1"`` or ``"z2"``.
      batch_norm: BatchNorm throughout (after every convolution but the output layer).
      dropout: dropout rate after those layers' ReLU.
      upsample: the decoder's ``"transpose"`` or ``"resize"``.
    """

    image_shape: tuple[int, int, int] = (32, 32, 1)
    features: tuple[int, ...] = (32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 1)
    code_size: int = 16
    code: str = "mean"
    batch_norm: bool = True
    dropout: float = 0.0
    upsample: str = "transpose"

    def __post_init__(self):
        _check_config(self)
        if self.code not in _CODES:
            raise ValueError(f"code: expected one of {', '.join(_CODES)}, got {self.code!r}")
        super().__post_init__()

    def setup(self):
        def encoder(activation):
            return ConvEncoder(
                self.image_shape, self.features, self.strides, self.code_size, "stride",
                self.batch_norm, self.dropout, activation,
            )  # fmt: skip

        self.encoder1 = encoder("relu")
        self.encoder2 = encoder(None)
        self.decoder = ConvDecoder(
            self.image_shape, self.features, self.strides, self.upsample, self.batch_norm,
            self.dropout,
        )  # fmt: skip

    def codes(self, x, train: bool = False):
        """``(z1, z2)``, each ``[batch, code_size]``."""
        return self.encoder1(x, train), self.encoder2(x, train)

    def encode(self, x, train: bool = False):
        z1, z2 = self.codes(x, train)
        return {"z1": z1, "z2": z2, "mean": 0.5 * (z1 + z2)}[self.code]

    def decode(self, z, train: bool = False):
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[-1] != self.code_size:
            raise ValueError(
                f"z: expected codes [batch, {self.code_size}], got shape {tuple(z.shape)}"
            )
        return self.decoder(z, train)

    def reconstructions(self, x, train: bool = False):
        """Logits of ``D(z1)``, ``D(z2)``, ``D((z1 + z2) / 2)``: ``[3, batch, H, W, C]``.

        The three codes go through the decoder as one batch, so BatchNorm's train-mode
        statistics are those of all three.
        """
        z1, z2 = self.codes(x, train)
        z = jnp.concatenate([z1, z2, 0.5 * (z1 + z2)])
        return self.decoder(z, train).reshape(3, *x.shape)


@dataclasses.dataclass(frozen=True)
class TwoCodeLoss:
    """``fit``'s loss for :class:`CBIRAutoencoder`: the mean over the reconstructions from z1,
    z2 and their mean of the batch-mean ``per_example_loss(logits, x)``.

    ``corruption`` (a :mod:`jaxae.noise` process, with ``corruption_kwargs``) makes it the
    denoising variant: the encoders see a corrupted copy, the targets are the clean images.
    """

    model: LinenAutoencoder
    per_example_loss: Callable[[Array, Array], Array]
    corruption: Callable[..., Array] | None = None
    corruption_kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self, params, model_state, batch, key):
        noise_key, model_key = jax.random.split(key)
        inputs = batch
        if self.corruption is not None:
            inputs = self.corruption(noise_key, batch, **dict(self.corruption_kwargs))
        logits, new_state = self.model.apply_train(
            CBIRAutoencoder.reconstructions, params, model_state, inputs, model_key
        )
        losses = [jnp.mean(self.per_example_loss(logits[i], batch)) for i in range(3)]
        return sum(losses) / 3.0, new_state


_ACTIVATIONS = {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": jnp.tanh}


def _check_config(module) -> None:
    check_conv_shapes(module.image_shape, module.features, module.strides)
    for name in ("image_shape", "features", "strides"):  # NumPy integers become Python ints
        object.__setattr__(module, name, tuple(int(v) for v in getattr(module, name)))
    if not 0.0 <= module.dropout < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {module.dropout}")
    for name in ("code_size", "kernel_size"):
        if hasattr(module, name):
            check_positive_int(getattr(module, name), name)
    if hasattr(module, "momentum") and not 0.0 <= module.momentum < 1.0:
        raise ValueError(f"momentum: expected a value in [0, 1), got {module.momentum}")


def _normalise_activate_drop(module, x, train: bool):
    if module.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=module.momentum)(x)
    x = nn.relu(x)
    if module.dropout > 0:
        x = nn.Dropout(module.dropout, deterministic=not train)(x)
    return x
