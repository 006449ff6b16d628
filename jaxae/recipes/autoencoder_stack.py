"""Greedy layer-wise stacking of any autoencoder kind (and RBMs): layer ``k`` is trained on
the codes of layer ``k - 1``, each layer a call of :func:`jaxae.fit`::

    layers = pretrain_stack(x, (784, 1000, 1000, 1000), AutoencoderConfig(
        corruption="masking", corruption_level=0.25, epochs=40), key=key)     # SDAE-3
    model, params = jaxae.recipes.stack_encoders(layers, n_classes=10)

A layer's config says what it is: an :class:`AutoencoderConfig` (one hidden layer; the
regularizers switched on make it plain, denoising, sparse, k-sparse or contractive) or an
:class:`jaxae.recipes.RBMConfig` (a Bernoulli-Bernoulli RBM trained by CD-k).

References:
  Bengio, Lamblin, Popovici & Larochelle (2007), Greedy Layer-Wise Training of Deep Networks,
  NIPS; Vincent et al. (2010), Stacked Denoising Autoencoders, JMLR, section 3.5 and Fig. 3.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae import noise, rbm, regularizers
from jaxae.losses import sigmoid_cross_entropy, squared_error
from jaxae.models.mlp import ACTIVATIONS, MLPAutoencoder
from jaxae.recipes.layers import PretrainedLayer, check_layer_fingerprint, encode_layers
from jaxae.recipes.rbm_stack import (
    RBMConfig,
    check_fit_kwargs,
    layer_dir,
    per_layer,
    train_rbm,
)
from jaxae.training import fit
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int, check_probability

__all__ = [
    "DEFAULT_OPTIMIZER",
    "AutoencoderConfig",
    "layer_autoencoder",
    "pretrain_layer",
    "pretrain_stack",
    "reconstruct_layer",
    "regularized_loss",
]

_CORRUPTIONS = ("masking", "gaussian", "salt_and_pepper")
K_SPARSE_ACTIVATIONS = ("linear", "relu")  # the units a k-sparse layer's top k is taken of

#: Adam at 1e-3, one object shared by every default config, so that layers trained with the
#: default hit ``fit``'s compilation cache.
DEFAULT_OPTIMIZER: optax.GradientTransformation = optax.adam(1e-3)


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """How one autoencoder layer is pretrained; the regularizers switched on make its kind.

    One hidden layer, trained through :func:`jaxae.fit` (plain, denoising, sparse, k-sparse,
    contractive, or any mix). Frozen and hashable: the same config on the same shapes reuses
    the training loop's compilation. (An RBM layer in a stack is an
    :class:`jaxae.recipes.RBMConfig`.)

    Attributes:
      activation: hidden units ("sigmoid", "tanh", "relu", "linear"); for a k-sparse layer the
        units before the top k, "linear" (Makhzani & Frey) or "relu".
      tied: decoder weights are the transposed encoder weights.
      loss: "cross_entropy" (sigmoid outputs, inputs in [0, 1]) or "squared_error".
      output_activation: the reconstruction's nonlinearity with ``loss="squared_error"``.
      corruption: None, "masking", "gaussian" or "salt_and_pepper" (a denoising autoencoder:
        the encoder sees the corrupted input, the loss compares with the clean one).
      corruption_level: ν (rate) for masking and salt-and-pepper, σ for Gaussian.
      sparsity_target: ρ of the KL sparsity penalty (None: off).
      sparsity_weight: β, the KL penalty's weight.
      l1_weight: weight of the L1 activity penalty.
      k: keep the k largest hidden units (a k-sparse autoencoder; None: off).
      k_initial: anneal k linearly from ``k_initial`` to ``k`` over ``k_anneal_epochs``.
      k_anneal_epochs: epochs of the annealing (Makhzani & Frey: the first half).
      k_alpha: the α·k rule: units kept when encoding for the next layer or the classifier.
      contractive_weight: λ of the contractive penalty (closed form for sigmoid units,
        ``jax.jacfwd`` otherwise).
      weight_decay: coefficient of :func:`jaxae.regularizers.weight_decay` (weights only).
      epochs, batch_size: the optimisation budget.
      optimizer: any Optax transformation (default: Adam at 1e-3, one shared object).
    """

    activation: str = "sigmoid"
    tied: bool = True
    loss: str = "cross_entropy"
    output_activation: str = "sigmoid"
    corruption: str | None = None
    corruption_level: float = 0.0
    sparsity_target: float | None = None
    sparsity_weight: float = 0.0
    l1_weight: float = 0.0
    k: int | None = None
    k_initial: int | None = None
    k_anneal_epochs: int = 0
    k_alpha: float = 1.0
    contractive_weight: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 100
    optimizer: optax.GradientTransformation = DEFAULT_OPTIMIZER

    def __post_init__(self):
        for field in ("activation", "output_activation"):
            if getattr(self, field) not in ACTIVATIONS:
                raise ValueError(
                    f"{field}: expected one of {sorted(ACTIVATIONS)}, got {getattr(self, field)!r}"
                )
        if self.loss not in ("cross_entropy", "squared_error"):
            raise ValueError(
                f"loss: expected 'cross_entropy' or 'squared_error', got {self.loss!r}"
            )
        if self.corruption is not None and self.corruption not in _CORRUPTIONS:
            raise ValueError(
                f"corruption: expected None or one of {_CORRUPTIONS}, got {self.corruption!r}"
            )
        if self.corruption in ("masking", "salt_and_pepper"):
            check_probability(self.corruption_level, "corruption_level")
        elif self.corruption_level < 0:
            raise ValueError(f"corruption_level: expected >= 0, got {self.corruption_level}")
        if self.sparsity_target is not None:
            check_probability(self.sparsity_target, "sparsity_target", open_interval=True)
        if self.k is not None:
            check_positive_int(self.k, "k")
            if self.activation not in K_SPARSE_ACTIVATIONS:
                raise ValueError(
                    f"activation: a k-sparse layer (k={self.k}) expects one of "
                    f"{K_SPARSE_ACTIVATIONS} before its top k (linear: Makhzani & Frey), got "
                    f"{self.activation!r}"
                )
            if self.k_initial is not None and self.k_initial < self.k:
                raise ValueError(f"k_initial: expected >= k = {self.k}, got {self.k_initial}")
        if (self.k_initial is not None) != (self.k_anneal_epochs > 0):
            raise ValueError(
                "k_initial and k_anneal_epochs: set both (an annealing from k_initial over "
                f"k_anneal_epochs) or neither, got {self.k_initial} and {self.k_anneal_epochs}"
            )
        if self.k_anneal_epochs > self.epochs:
            raise ValueError(
                f"k_anneal_epochs: expected at most epochs = {self.epochs} (training would end "
                f"before k reaches {self.k}, the k it encodes with), got {self.k_anneal_epochs}"
            )
        if self.k_alpha < 1:
            raise ValueError(f"k_alpha: expected a value >= 1, got {self.k_alpha}")
        for field in ("sparsity_weight", "l1_weight", "contractive_weight", "weight_decay"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field}: expected a value >= 0, got {getattr(self, field)}")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        if not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                "optimizer: expected an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
                f"got {type(self.optimizer).__name__}"
            )


def _corrupt(config: AutoencoderConfig, key: PRNGKey, x: Array) -> Array:
    if config.corruption is None or config.corruption_level == 0:
        return x
    if config.corruption == "gaussian":
        return noise.gaussian_noise(key, x, stddev=config.corruption_level)
    if config.corruption == "masking":
        return noise.masking_noise(key, x, rate=config.corruption_level)
    return noise.salt_and_pepper_noise(key, x, rate=config.corruption_level)


def layer_autoencoder(config: AutoencoderConfig, n_in: int, n_hidden: int) -> MLPAutoencoder:
    """The one-hidden-layer :class:`jaxae.MLPAutoencoder` a layer config trains."""
    return MLPAutoencoder(
        (n_in, n_hidden),
        activation=config.activation,
        code_activation=config.activation,
        output_activation="sigmoid" if config.loss == "cross_entropy" else config.output_activation,
        tied=config.tied,
    )


def reconstruct_layer(layer: PretrainedLayer, x: ArrayLike, *, key: PRNGKey) -> tuple[Array, Array]:
    """A pretrained autoencoder layer's input as it saw it in training, and its reconstruction.

    Args:
      layer: an autoencoder layer from :func:`pretrain_layer`.
      x: ``[batch, n_in]`` clean inputs.
      key: PRNG key for the layer's corruption (unused without one).

    Returns:
      ``(corrupted, reconstruction)``, both ``[batch, n_in]`` (``corrupted`` is ``x`` for a layer
      without corruption; a k-sparse layer decodes its k largest units).
    """
    if not isinstance(layer.config, AutoencoderConfig):
        raise ValueError(
            f"layer: expected an autoencoder layer, got one of {type(layer.config).__name__}"
        )
    x = jnp.asarray(x)
    model = layer_autoencoder(layer.config, x.shape[-1], layer.encoder["w"].shape[1])
    corrupted = _corrupt(layer.config, key, x)
    h = model.encode(layer.params, corrupted)
    if layer.config.k is not None:
        h = regularizers.k_sparse(h, k=layer.config.k)
    return corrupted, model.decode(layer.params, h)


def regularized_loss(
    model: MLPAutoencoder, config: AutoencoderConfig, params: Params, x: Array, key: PRNGKey, k=None
) -> Array:
    """The batch-mean pretraining objective of one layer: reconstruction + penalties.

    Args:
      model: from :func:`layer_autoencoder`.
      config: which corruption and penalties apply.
      params: the autoencoder's parameters.
      x: ``[batch, n_in]`` clean inputs (the reconstruction target).
      key: PRNG key for the corruption.
      k: the current k of a k-sparse layer (may be traced; default ``config.k``).

    Returns:
      A scalar: mean over the batch of the per-example terms, plus weight decay.
    """
    h = model.encode(params, _corrupt(config, key, x))
    if config.k is not None:
        bound = max(config.k, config.k_initial or config.k)  # the schedule never exceeds it
        h = regularizers.k_sparse(h, k=config.k if k is None else k, max_k=bound)
    logits = model.decode(params, h, logits=True)
    if config.loss == "cross_entropy":
        per_example = sigmoid_cross_entropy(logits, x)
    else:
        output = ACTIVATIONS[model.output_activation](logits)
        per_example = squared_error(output, x)
    if config.sparsity_target is not None and config.sparsity_weight:
        per_example += config.sparsity_weight * regularizers.kl_sparsity_penalty(
            h, target=config.sparsity_target
        )
    if config.l1_weight:
        per_example += config.l1_weight * regularizers.l1_activity(h)
    if config.contractive_weight:
        # The contraction of the clean input's encoding (Rifai et al. 2011, eq. 2).
        if config.activation == "sigmoid" and config.k is None:
            clean_h = model.encode(params, x) if config.corruption else h
            penalty = regularizers.sigmoid_contractive_penalty(clean_h, params["encoder"][0]["w"])
        else:
            penalty = regularizers.contractive_penalty(model.encode, params, x)
        per_example += config.contractive_weight * penalty
    loss = jnp.mean(per_example)
    if config.weight_decay:
        loss += config.weight_decay * regularizers.weight_decay(params)
    return loss


@dataclasses.dataclass(frozen=True)
class _LayerLoss:
    """``loss_fn(params, batch, key)`` of one layer: a hashable value, not a fresh closure."""

    model: MLPAutoencoder
    config: AutoencoderConfig

    def __call__(self, params: Params, x: Array, key: PRNGKey) -> Array:
        return regularized_loss(self.model, self.config, params, x, key)


@dataclasses.dataclass(frozen=True)
class _AnnealedKGradient:
    """A k-sparse layer whose k anneals ``initial_k -> k``: the step count rides in ``aux``."""

    model: MLPAutoencoder
    config: AutoencoderConfig
    initial_k: int
    transition_steps: int

    def __call__(self, params: Params, step: Array, x: Array, key: PRNGKey):
        schedule = regularizers.k_sparse_schedule(
            k=self.config.k, initial_k=self.initial_k, transition_steps=self.transition_steps
        )

        def loss(p):
            return regularized_loss(self.model, self.config, p, x, key, schedule(step))

        value, grads = jax.value_and_grad(loss)(params)
        return grads, step + 1, {"loss": value}


_RESERVED = ("optimizer", "key", "epochs", "batch_size", "grad_fn", "loss_fn", "aux", "has_aux")


def pretrain_layer(
    x: ArrayLike,
    n_hidden: int,
    config: AutoencoderConfig | RBMConfig,
    *,
    key: PRNGKey,
    **fit_kwargs: Any,
) -> PretrainedLayer:
    """Trains one layer on ``x`` as ``config`` says: an autoencoder, or an RBM, through ``fit``.

    A k-sparse layer with ``k_initial`` anneals k inside the jitted epoch: the step counter
    rides along as the training loop's ``aux`` state, so k changes without recompiling.

    Args:
      x: ``[n, n_in]`` training data (in [0, 1] for cross-entropy and for RBMs).
      n_hidden: the layer's width.
      config: the recipe: :class:`AutoencoderConfig` or :class:`jaxae.recipes.RBMConfig`
        (Bernoulli hidden units).
      key: PRNG key.
      **fit_kwargs: passed to :func:`jaxae.fit` (``mesh``, ``devices``, ``checkpoint_dir``,
        ``callbacks``, ``progress``, ``desc``, ``example_keys``, ``eval_fn``, ...).

    Returns:
      The :class:`PretrainedLayer`.
    """
    x = np.asarray(x, np.float32)
    check_positive_int(n_hidden, "n_hidden")
    if not isinstance(config, (AutoencoderConfig, RBMConfig)):
        raise TypeError(
            f"config: expected AutoencoderConfig or RBMConfig, got {type(config).__name__}"
        )
    check_fit_kwargs(fit_kwargs, _RESERVED)
    init_key, fit_key = jax.random.split(key)
    if isinstance(config, RBMConfig):
        # The keys a one-layer pretrain_rbm_stack(key=fit_key) would use.
        _, rbm_init_key, rbm_key = jax.random.split(fit_key, 3)
        spec = rbm.RBMSpec(x.shape[1], n_hidden)
        return train_rbm(x, spec, config, init_key=rbm_init_key, key=rbm_key, **fit_kwargs)
    needs_unit_range = config.loss == "cross_entropy"
    check_array(x, "x", rank=2, value_range=(0.0, 1.0) if needs_unit_range else None)
    if config.corruption == "salt_and_pepper" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            "corruption: salt-and-pepper sets inputs to 0 and 1, the ends of the range of "
            f"pixels or sigmoid codes; this layer's inputs lie in [{x.min():g}, {x.max():g}] "
            "(tanh or ReLU codes below?): use masking or Gaussian corruption"
        )
    if (
        config.sparsity_target is not None
        and config.sparsity_weight
        and (fit_kwargs.get("example_keys"))
    ):
        raise ValueError(
            "example_keys: the KL sparsity penalty needs the batch's mean activation, and "
            "per-example keys evaluate the loss one example at a time; train without "
            "example_keys"
        )
    if config.k is not None and config.k > n_hidden:
        raise ValueError(f"config.k: expected at most the layer's {n_hidden} units, got {config.k}")
    if fit_kwargs.get("checkpoint_dir") is not None:
        check_layer_fingerprint(fit_kwargs["checkpoint_dir"], config, x, n_hidden, key)
    model = layer_autoencoder(config, x.shape[1], n_hidden)
    params = model.init(init_key)
    common = dict(
        optimizer=config.optimizer,
        key=fit_key,
        epochs=config.epochs,
        batch_size=config.batch_size,
        **fit_kwargs,
    )
    if config.k is not None and config.k_initial is not None and config.k_anneal_epochs:
        if any(fit_kwargs.get(name) is not None for name in ("mesh", "devices")):
            raise ValueError(
                "mesh/devices: an annealed k (k_initial) counts its steps in fit's aux state, "
                "which data-parallel training splits over devices; anneal on one device, or "
                "train a fixed k data-parallel"
            )
        steps = max(1, config.k_anneal_epochs * (len(x) // config.batch_size))
        grad_fn = _AnnealedKGradient(model, config, min(config.k_initial, n_hidden), steps)
        result = fit(params, x, grad_fn=grad_fn, aux=jnp.zeros((), jnp.int32), **common)
    else:
        result = fit(params, x, loss_fn=_LayerLoss(model, config), **common)
    return PretrainedLayer(config, result.params, result.history)


def pretrain_stack(
    x: ArrayLike,
    sizes: Sequence[int],
    configs: AutoencoderConfig | RBMConfig | Sequence[AutoencoderConfig | RBMConfig],
    *,
    key: PRNGKey,
    checkpoint_dir: str | os.PathLike | None = None,
    **fit_kwargs: Any,
) -> list[PretrainedLayer]:
    """Greedy layer-wise pretraining: layer ``k`` is trained on the codes of layer ``k - 1``.

    Args:
      x: ``[n, sizes[0]]`` training data.
      sizes: widths, input first, e.g. ``(784, 1000, 1000, 1000)``.
      configs: one config for every layer, or one per layer (bottom first), each an
        :class:`AutoencoderConfig` or an :class:`jaxae.recipes.RBMConfig`.
      key: PRNG key, split once per layer.
      checkpoint_dir: passed to ``fit`` as ``checkpoint_dir/layer_<i>`` for layer ``i``, so a
        killed pretraining resumes the layer it was in. A layer's folder records its recipe,
        input and key (``layer.json``); a rerun with others is refused, not restored.
      **fit_kwargs: passed to every layer's :func:`jaxae.fit` (``mesh``, ``devices``,
        ``callbacks``, ``progress``, ``example_keys``, ...).

    Returns:
      One :class:`PretrainedLayer` per pair of adjacent sizes, bottom first.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two layer sizes, got {sizes}")
    for s in sizes:
        check_positive_int(s, "sizes")
    configs = per_layer(configs, len(sizes) - 1, (AutoencoderConfig, RBMConfig))
    check_fit_kwargs(fit_kwargs, _RESERVED)
    codes = np.asarray(x, np.float32)
    check_array(codes, "x", rank=2, last_dim=sizes[0])
    layers = []
    for i, config in enumerate(configs):
        key, layer_key = jax.random.split(key)
        kind = "rbm" if isinstance(config, RBMConfig) else "autoencoder"
        kwargs = dict(fit_kwargs)
        kwargs.setdefault("desc", f"{kind} {i + 1}/{len(configs)} {sizes[i]}-{sizes[i + 1]}")
        layer_checkpoints = layer_dir(checkpoint_dir, i)
        if layer_checkpoints is not None:
            kwargs["checkpoint_dir"] = layer_checkpoints
        layer = pretrain_layer(codes, sizes[i + 1], config, key=layer_key, **kwargs)
        layers.append(layer)
        if i < len(configs) - 1:
            codes = np.asarray(encode_layers([layer], codes))
    return layers
