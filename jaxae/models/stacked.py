"""Stacked autoencoders: greedy layer-wise pretraining, then a softmax on top, fine-tuned.

One API for every kind of layer. A :class:`LayerConfig` says how one layer is pretrained: an
autoencoder with one hidden layer (plain, denoising, sparse, k-sparse, contractive — or any
mix: the kinds are just which regularizers are switched on), trained through :func:`jaxae.fit`,
or an RBM trained by CD-1 through :func:`jaxae.greedy_pretrain`. Layer ``k`` is trained on the
codes of layer ``k - 1``; the encoders are then stacked under a softmax classifier and the whole
network is fine-tuned with cross-entropy on the labels, again through :func:`jaxae.fit`::

    layers = greedy_layerwise_pretrain(x, (784, 1000, 1000, 1000), LayerConfig(
        corruption="masking", corruption_level=0.25, epochs=40), key=key)     # SDAE-3
    model, params = stack_encoders(layers, n_classes=10)
    params, history = finetune_classifier(model, params, x, y, key=key, epochs=30)
    error = classification_error(model, params, x_test, y_test)

Parameters are plain PyTrees: a classifier's are ``{"layers": [{"w": [n_in, n_out], "b":
[n_out]}, ...], "classifier": {"w": [n_top, n_classes], "b": [n_classes]}}``.

References:
  Bengio, Lamblin, Popovici & Larochelle (2007), Greedy Layer-Wise Training of Deep Networks,
  NIPS; Vincent et al. (2010), Stacked Denoising Autoencoders, JMLR, section 3.5 and Fig. 3.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae import noise, regularizers
from jaxae.chunked import chunked_mean
from jaxae.losses import sigmoid_cross_entropy, squared_error
from jaxae.models.deep import PretrainConfig, greedy_pretrain
from jaxae.models.mlp import ACTIVATIONS, MLPAutoencoder
from jaxae.training.fit import fit
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int, check_probability

__all__ = [
    "LayerConfig",
    "PretrainedLayer",
    "StackedClassifier",
    "greedy_layerwise_pretrain",
    "pretrain_layer",
    "encode_layer",
    "stack_encoders",
    "finetune_classifier",
    "classification_error",
    "features_of",
    "layer_autoencoder",
    "reconstruct_layer",
    "regularized_loss",
]

_CORRUPTIONS = ("masking", "gaussian", "salt_and_pepper")


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """How one layer is pretrained; the regularizers switched on make it a kind of autoencoder.

    Attributes:
      kind: "autoencoder" (one hidden layer, trained through :func:`jaxae.fit`) or "rbm"
        (Bernoulli-Bernoulli, CD-1, through :func:`jaxae.greedy_pretrain`; only ``epochs``,
        ``batch_size``, ``learning_rate`` and ``weight_decay`` apply).
      activation: hidden units ("sigmoid", "tanh", "relu"; "linear" for a k-sparse layer).
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
      learning_rate: None: 1e-3 for an autoencoder (Adam), 0.1 for an RBM (Hinton &
        Salakhutdinov's CD-1 recipe).
      optimizer: "adam" or "sgd" (momentum 0.9).
    """

    kind: str = "autoencoder"
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
    learning_rate: float | None = None
    optimizer: str = "adam"

    def __post_init__(self):
        if self.kind not in ("autoencoder", "rbm"):
            raise ValueError(f"kind: expected 'autoencoder' or 'rbm', got {self.kind!r}")
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
            if self.k_initial is not None and self.k_initial < self.k:
                raise ValueError(f"k_initial: expected >= k = {self.k}, got {self.k_initial}")
        if self.k_alpha < 1:
            raise ValueError(f"k_alpha: expected a value >= 1, got {self.k_alpha}")
        for field in ("sparsity_weight", "l1_weight", "contractive_weight", "weight_decay"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field}: expected a value >= 0, got {getattr(self, field)}")
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"learning_rate: expected a value > 0, got {self.learning_rate}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {self.optimizer!r}")


class PretrainedLayer(NamedTuple):
    """One pretrained layer.

    Attributes:
      config: how it was trained (and how it encodes: activation, k, α).
      encoder: ``{"w": [n_in, n_out], "b": [n_out]}``, what the stack keeps.
      params: everything that was trained: the autoencoder's ``{"encoder", "decoder"}`` or the
        RBM's :class:`jaxae.rbm.RBMParams` (decoders are dropped when stacking).
      history: the training loop's per-epoch rows.
    """

    config: LayerConfig
    encoder: dict[str, Array]
    params: Any
    history: list


def _encoder_activation(config: LayerConfig) -> str:
    return "sigmoid" if config.kind == "rbm" else config.activation


def _apply_layer(
    w: Array, b: Array, x: Array, *, activation: str, k: int | None, alpha: float
) -> Array:
    pre = x @ w + b[None, :]
    if k is not None:  # k-sparse: linear units, the α·k largest kept
        return regularizers.k_sparse(pre, k=min(k, w.shape[1]), alpha=alpha)
    return ACTIVATIONS[activation](pre)


def encode_layer(layer: PretrainedLayer, x: ArrayLike, *, chunk: int = 1000) -> np.ndarray:
    """The codes of a pretrained layer for a whole dataset (the next layer's training data).

    Args:
      layer: from :func:`pretrain_layer`.
      x: ``[n, n_in]``.
      chunk: examples per device call.

    Returns:
      ``[n, n_out]`` activations (for a k-sparse layer: the α·k largest kept).
    """
    x = np.asarray(x, np.float32)
    check_array(x, "x", rank=2, last_dim=layer.encoder["w"].shape[0])
    fn = jax.jit(
        functools.partial(
            _apply_layer,
            activation=_encoder_activation(layer.config),
            k=layer.config.k,
            alpha=layer.config.k_alpha,
        )
    )
    return _in_chunks(functools.partial(fn, layer.encoder["w"], layer.encoder["b"]), x, chunk)


def _in_chunks(fn, x: np.ndarray, chunk: int) -> np.ndarray:
    """``fn`` applied to ``x`` ``chunk`` rows at a time, gathered on the host."""
    check_positive_int(chunk, "chunk")
    return np.concatenate([np.asarray(fn(x[i : i + chunk])) for i in range(0, len(x), chunk)])


def _corrupt(config: LayerConfig, key: PRNGKey, x: Array) -> Array:
    if config.corruption is None or config.corruption_level == 0:
        return x
    if config.corruption == "gaussian":
        return noise.gaussian_noise(key, x, stddev=config.corruption_level)
    if config.corruption == "masking":
        return noise.masking_noise(key, x, rate=config.corruption_level)
    return noise.salt_and_pepper_noise(key, x, rate=config.corruption_level)


def layer_autoencoder(config: LayerConfig, n_in: int, n_hidden: int) -> MLPAutoencoder:
    """The one-hidden-layer :class:`jaxae.MLPAutoencoder` a layer config trains."""
    return MLPAutoencoder(
        (n_in, n_hidden),
        activation=config.activation,
        code_activation="linear" if config.k is not None else config.activation,
        output_activation="sigmoid" if config.loss == "cross_entropy" else config.output_activation,
        tied=config.tied,
    )


def reconstruct_layer(layer: PretrainedLayer, x: ArrayLike, *, key: PRNGKey) -> tuple[Array, Array]:
    """A pretrained autoencoder layer's input as it saw it in training, and its reconstruction.

    Args:
      layer: an ``"autoencoder"`` layer from :func:`pretrain_layer`.
      x: ``[batch, n_in]`` clean inputs.
      key: PRNG key for the layer's corruption (unused without one).

    Returns:
      ``(corrupted, reconstruction)``, both ``[batch, n_in]`` (``corrupted`` is ``x`` for a layer
      without corruption; a k-sparse layer decodes its k largest units).
    """
    if layer.config.kind != "autoencoder":
        raise ValueError(f"layer: expected an autoencoder layer, got kind {layer.config.kind!r}")
    x = jnp.asarray(x)
    model = layer_autoencoder(layer.config, x.shape[-1], layer.encoder["w"].shape[1])
    corrupted = _corrupt(layer.config, key, x)
    h = model.encode(layer.params, corrupted)
    if layer.config.k is not None:
        h = regularizers.k_sparse(h, k=layer.config.k)
    return corrupted, model.decode(layer.params, h)


def regularized_loss(
    model: MLPAutoencoder, config: LayerConfig, params: Params, x: Array, key: PRNGKey, k=None
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


def _learning_rate(config: LayerConfig) -> float:
    if config.learning_rate is not None:
        return config.learning_rate
    return 0.1 if config.kind == "rbm" else 1e-3


def _optimizer(config: LayerConfig) -> optax.GradientTransformation:
    if config.optimizer == "sgd":
        return optax.sgd(_learning_rate(config), momentum=0.9)
    return optax.adam(_learning_rate(config))


def pretrain_layer(
    x: ArrayLike,
    n_hidden: int,
    config: LayerConfig,
    *,
    key: PRNGKey,
    progress: bool = True,
    desc: str = "layer",
) -> PretrainedLayer:
    """Trains one layer on ``x`` as ``config`` says: an autoencoder through ``fit``, or an RBM.

    A k-sparse layer with ``k_initial`` anneals k inside the jitted epoch: the step counter
    rides along as the training loop's ``aux`` state, so k changes without recompiling.

    Args:
      x: ``[n, n_in]`` training data (in [0, 1] for cross-entropy and for RBMs).
      n_hidden: the layer's width.
      config: the recipe.
      key: PRNG key.
      progress: show a progress bar.
      desc: the progress bar's label.

    Returns:
      The :class:`PretrainedLayer`.
    """
    x = np.asarray(x, np.float32)
    check_positive_int(n_hidden, "n_hidden")
    needs_unit_range = config.kind == "rbm" or config.loss == "cross_entropy"
    check_array(x, "x", rank=2, value_range=(0.0, 1.0) if needs_unit_range else None)
    if config.k is not None and config.k > n_hidden:
        raise ValueError(f"config.k: expected at most the layer's {n_hidden} units, got {config.k}")
    init_key, fit_key = jax.random.split(key)
    if config.kind == "rbm":
        recipe = PretrainConfig(
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=_learning_rate(config),
            weight_decay=config.weight_decay,
        )
        (rbm_layer,) = greedy_pretrain(
            x,
            (x.shape[1], n_hidden),
            key=fit_key,
            config=recipe,
            top_hidden="bernoulli",
            progress=progress,
        )
        encoder = {"w": rbm_layer.params.w, "b": rbm_layer.params.b_hidden}
        return PretrainedLayer(config, encoder, rbm_layer.params, rbm_layer.history)

    model = layer_autoencoder(config, x.shape[1], n_hidden)
    params = model.init(init_key)
    common = dict(
        optimizer=_optimizer(config),
        key=fit_key,
        epochs=config.epochs,
        batch_size=config.batch_size,
        progress=progress,
        desc=desc,
    )
    loss = functools.partial(regularized_loss, model, config)
    if config.k is not None and config.k_initial is not None and config.k_anneal_epochs:
        steps = max(1, config.k_anneal_epochs * (len(x) // config.batch_size))
        schedule = regularizers.k_sparse_schedule(
            k=config.k, initial_k=min(config.k_initial, n_hidden), transition_steps=steps
        )

        def grad_fn(params, step, batch, key):
            value, grads = jax.value_and_grad(loss)(params, batch, key, schedule(step))
            return grads, step + 1, {"loss": value}

        result = fit(params, x, grad_fn=grad_fn, aux=jnp.zeros((), jnp.int32), **common)
    else:
        result = fit(params, x, loss_fn=loss, **common)
    encoder = dict(result.params["encoder"][0])
    return PretrainedLayer(config, encoder, result.params, result.history)


def greedy_layerwise_pretrain(
    x: ArrayLike,
    sizes: Sequence[int],
    configs: LayerConfig | Sequence[LayerConfig],
    *,
    key: PRNGKey,
    progress: bool = True,
) -> list[PretrainedLayer]:
    """Greedy layer-wise pretraining: layer ``k`` is trained on the codes of layer ``k - 1``.

    Args:
      x: ``[n, sizes[0]]`` training data.
      sizes: widths, input first, e.g. ``(784, 1000, 1000, 1000)``.
      configs: one :class:`LayerConfig` for every layer, or one per layer (bottom first).
      key: PRNG key, split once per layer.
      progress: progress bars.

    Returns:
      One :class:`PretrainedLayer` per pair of adjacent sizes, bottom first.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two layer sizes, got {sizes}")
    for s in sizes:
        check_positive_int(s, "sizes")
    if isinstance(configs, LayerConfig):
        configs = [configs] * (len(sizes) - 1)
    configs = list(configs)
    if len(configs) != len(sizes) - 1:
        raise ValueError(
            f"configs: expected one LayerConfig or {len(sizes) - 1} (one per layer), "
            f"got {len(configs)}"
        )
    codes = np.asarray(x, np.float32)
    check_array(codes, "x", rank=2, last_dim=sizes[0])
    layers = []
    for i, config in enumerate(configs):
        key, layer_key = jax.random.split(key)
        desc = f"{config.kind} {i + 1}/{len(configs)} {sizes[i]}-{sizes[i + 1]}"
        layer = pretrain_layer(
            codes, sizes[i + 1], config, key=layer_key, progress=progress, desc=desc
        )
        layers.append(layer)
        if i < len(configs) - 1:
            codes = encode_layer(layer, codes)
    return layers


@dataclasses.dataclass(frozen=True)
class StackedClassifier:
    """Stacked encoders with a softmax on top: ``x -> h_1 -> ... -> h_L -> softmax``.

    Attributes:
      sizes: ``(n_in, n_1, ..., n_L, n_classes)``.
      activations: one per encoder layer ("linear" layers with a ``k`` are k-sparse).
      ks: per layer, the k of a k-sparse layer or None.
      k_alphas: per layer, the α of the α·k rule.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    ks: tuple[int | None, ...]
    k_alphas: tuple[float, ...]

    def __post_init__(self):
        n = len(self.sizes) - 2
        if n < 0 or not (len(self.activations) == len(self.ks) == len(self.k_alphas) == n):
            raise ValueError(
                f"sizes {self.sizes}, activations {self.activations}, ks {self.ks}: expected one "
                "activation, k and alpha per encoder layer"
            )

    def init(self, key: PRNGKey) -> Params:
        """Glorot-normal weights, zero biases (a randomly initialised network, for baselines)."""
        init = jax.nn.initializers.glorot_normal()
        keys = jax.random.split(key, len(self.sizes) - 1)
        layers = [
            {"w": init(k, (n_in, n_out), jnp.float32), "b": jnp.zeros(n_out)}
            for k, n_in, n_out in zip(keys, self.sizes[:-2], self.sizes[1:-1], strict=False)
        ]
        classifier = {"w": jnp.zeros(self.sizes[-2:]), "b": jnp.zeros(self.sizes[-1])}
        return {"layers": layers, "classifier": classifier}

    def features(self, params: Params, x: ArrayLike) -> Array:
        """The top encoder layer's codes: ``[batch, sizes[0]] -> [batch, sizes[-2]]``."""
        x = jnp.asarray(x)
        check_array(x, "x", rank=2, last_dim=self.sizes[0], floating=True)
        for layer, activation, k, alpha in zip(
            params["layers"], self.activations, self.ks, self.k_alphas, strict=True
        ):
            x = _apply_layer(layer["w"], layer["b"], x, activation=activation, k=k, alpha=alpha)
        return x

    def logits(self, params: Params, x: ArrayLike) -> Array:
        """Class scores: ``[batch, sizes[0]] -> [batch, n_classes]``."""
        h = self.features(params, x)
        return h @ params["classifier"]["w"] + params["classifier"]["b"][None, :]


def stack_encoders(
    layers: Sequence[PretrainedLayer], n_classes: int
) -> tuple[StackedClassifier, Params]:
    """Stacks pretrained encoders under a softmax classifier with zero initial weights.

    Only the encoders (``w``, ``b``) are kept; decoders and RBM visible biases are dropped.

    Args:
      layers: from :func:`greedy_layerwise_pretrain`, bottom first.
      n_classes: number of classes.

    Returns:
      ``(model, params)`` with ``params = {"layers": [...], "classifier": {"w", "b"}}``.
    """
    if not layers:
        raise ValueError("layers: expected at least one pretrained layer, got none")
    check_positive_int(n_classes, "n_classes")
    sizes = [int(layers[0].encoder["w"].shape[0])]
    for i, layer in enumerate(layers):
        n_in, n_out = layer.encoder["w"].shape
        if n_in != sizes[-1]:
            raise ValueError(
                f"layers[{i}]: expected {sizes[-1]} inputs (the width below), got {n_in}"
            )
        sizes.append(int(n_out))
    model = StackedClassifier(
        tuple(sizes) + (n_classes,),
        tuple(_encoder_activation(layer.config) for layer in layers),
        tuple(layer.config.k for layer in layers),
        tuple(layer.config.k_alpha for layer in layers),
    )
    params = {
        "layers": [
            {"w": jnp.asarray(layer.encoder["w"]), "b": jnp.asarray(layer.encoder["b"])}
            for layer in layers
        ],
        "classifier": {"w": jnp.zeros((sizes[-1], n_classes)), "b": jnp.zeros(n_classes)},
    }
    return model, params


def _check_labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    check_array(y, "y", rank=1)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y: expected integer class labels, got {y.dtype}")
    if len(y) != n:
        raise ValueError(f"x and y: expected the same number of examples, got {n} and {len(y)}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y: expected labels in [0, {n_classes - 1}], got [{y.min()}, {y.max()}]")
    return y.astype(np.int32)


def _cross_entropy(model: StackedClassifier, params: Params, batch, key) -> Array:
    del key
    logits = model.logits(params, batch["x"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()


def finetune_classifier(
    model: StackedClassifier,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    key: PRNGKey,
    epochs: int,
    batch_size: int = 100,
    optimizer: optax.GradientTransformation | None = None,
    train_encoders: bool = True,
    eval_fn=None,
    progress: bool = True,
) -> tuple[Params, list]:
    """Supervised fine-tuning with softmax cross-entropy on the labels, through :func:`fit`.

    What is trained:

    - ``train_encoders=True`` (fine-tuning): every encoder layer's ``w`` and ``b`` and the
      classifier's ``w`` and ``b``: all of ``params``.
    - ``train_encoders=False`` (features fed to a classifier): the encoders are frozen — returned
      unchanged, bit for bit — and only the classifier is trained: logistic regression on the
      features, computed once.

    Args:
      model: from :func:`stack_encoders`.
      params: its parameters.
      x: ``[n, sizes[0]]`` inputs.
      y: ``[n]`` integer labels in ``[0, n_classes)``.
      key: PRNG key (batch order).
      epochs: passes over the data.
      batch_size: mini-batch size.
      optimizer: any Optax transformation (default: Adam, 1e-3).
      train_encoders: fine-tune the encoders too (see above).
      eval_fn: passed to :func:`fit` (called with the params being trained).
      progress: progress bar.

    Returns:
      ``(params, history)``: the trained parameters and the loop's per-epoch rows.
    """
    x = np.asarray(x, np.float32)
    check_array(x, "x", rank=2, last_dim=model.sizes[0])
    y = _check_labels(y, len(x), model.sizes[-1])
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    common = dict(
        optimizer=optimizer,
        key=key,
        epochs=epochs,
        batch_size=batch_size,
        eval_fn=eval_fn,
        progress=progress,
    )
    if train_encoders:
        result = fit(
            params,
            {"x": x, "y": y},
            loss_fn=functools.partial(_cross_entropy, model),
            desc="fine-tune",
            **common,
        )
        return result.params, result.history
    features = features_of(model, params, x)
    top = StackedClassifier(model.sizes[-2:], (), (), ())
    result = fit(
        {"layers": [], "classifier": params["classifier"]},
        {"x": features, "y": y},
        loss_fn=functools.partial(_cross_entropy, top),
        desc="classifier",
        **common,
    )
    return {"layers": params["layers"], "classifier": result.params["classifier"]}, result.history


def features_of(
    model: StackedClassifier, params: Params, x: ArrayLike, *, chunk: int = 1000
) -> np.ndarray:
    """``model.features`` of a whole dataset, in memory-sized chunks: ``[n, sizes[-2]]``."""
    x = np.asarray(x, np.float32)
    check_array(x, "x", rank=2, last_dim=model.sizes[0])
    return _in_chunks(functools.partial(jax.jit(model.features), params), x, chunk)


def classification_error(
    model: StackedClassifier, params: Params, x: ArrayLike, y: ArrayLike
) -> float:
    """The fraction of examples whose arg-max class is wrong (0.0118 = 1.18 % error).

    Args:
      model, params: the classifier.
      x: ``[n, sizes[0]]``.
      y: ``[n]`` integer labels.

    Returns:
      The error rate in [0, 1].
    """
    x = np.asarray(x, np.float32)
    y = _check_labels(y, len(x), model.sizes[-1])

    def wrong(p, batch):
        return (jnp.argmax(model.logits(p, batch["x"]), axis=-1) != batch["y"]).astype(jnp.float32)

    return chunked_mean(wrong, {"x": x, "y": y}, args=(params,))
