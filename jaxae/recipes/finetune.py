"""Supervised fine-tuning of pretrained encoders: the stack under a softmax classifier, trained
with cross-entropy on the labels through :func:`jaxae.fit`::

    layers = pretrain_stack(x, (784, 1000, 1000, 1000), AutoencoderConfig(...), key=key)
    model, params = stack_encoders(layers, n_classes=10)
    params, history = finetune_classifier(model, params, x, y, key=key, epochs=30)
    error = classification_error(model, params, x_test, y_test)
    features = jaxae.chunked.chunked_map(model.features, x, args=(params,))

Parameters are plain PyTrees: ``{"layers": [{"w": [n_in, n_out], "b": [n_out]}, ...],
"classifier": {"w": [n_top, n_classes], "b": [n_classes]}}``.

References:
  Bengio, Lamblin, Popovici & Larochelle (2007), Greedy Layer-Wise Training of Deep Networks,
  NIPS; Vincent et al. (2010), Stacked Denoising Autoencoders, JMLR, section 3.5.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae.chunked import chunked_map, chunked_mean
from jaxae.recipes.autoencoder_stack import DEFAULT_OPTIMIZER
from jaxae.recipes.layers import PretrainedLayer, apply_encoder
from jaxae.recipes.rbm_stack import check_fit_kwargs
from jaxae.training import fit
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int

__all__ = ["StackedClassifier", "classification_error", "finetune_classifier", "stack_encoders"]


@dataclasses.dataclass(frozen=True)
class StackedClassifier:
    """Stacked encoders with a softmax on top: ``x -> h_1 -> ... -> h_L -> softmax``.

    Attributes:
      sizes: ``(n_in, n_1, ..., n_L, n_classes)``.
      activations: one per encoder layer (a layer with a ``k`` is k-sparse: the activation,
        then its α·k largest units kept).
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
        """Glorot-normal encoder weights, a zero softmax layer, zero biases (a randomly
        initialised network, for baselines)."""
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
            x = apply_encoder(layer["w"], layer["b"], x, activation=activation, k=k, alpha=alpha)
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
      layers: from :func:`jaxae.recipes.pretrain_stack` (or ``pretrain_rbm_stack``), bottom
        first.
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
        tuple(layer.activation for layer in layers),
        tuple(layer.k for layer in layers),
        tuple(layer.k_alpha for layer in layers),
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


@dataclasses.dataclass(frozen=True)
class _CrossEntropy:
    """The fine-tuning ``loss_fn``: a hashable value, so repeated fine-tunes reuse one compile."""

    model: StackedClassifier

    def __call__(self, params: Params, batch, key) -> Array:
        del key
        logits = self.model.logits(params, batch["x"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()


@dataclasses.dataclass(frozen=True)
class _Wrong:
    model: StackedClassifier

    def __call__(self, params: Params, batch) -> Array:
        predicted = jnp.argmax(self.model.logits(params, batch["x"]), axis=-1)
        return (predicted != batch["y"]).astype(jnp.float32)


def finetune_classifier(
    model: StackedClassifier,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    key: PRNGKey,
    epochs: int,
    batch_size: int = 100,
    optimizer: optax.GradientTransformation = DEFAULT_OPTIMIZER,
    train_encoders: bool = True,
    **fit_kwargs: Any,
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
      **fit_kwargs: passed to :func:`jaxae.fit` (``eval_fn``, ``callbacks``, ``mesh``,
        ``devices``, ``checkpoint_dir``, ``progress``, ``desc``, ``example_keys``, ...). With
        ``train_encoders=False``, ``eval_fn`` still gets the whole model's parameters; the
        loop's state (callbacks, checkpoints) holds the classifier alone.

    Returns:
      ``(params, history)``: the trained parameters and the loop's per-epoch rows.
    """
    x = np.asarray(x, np.float32)
    check_array(x, "x", rank=2, last_dim=model.sizes[0])
    y = _check_labels(y, len(x), model.sizes[-1])
    check_fit_kwargs(fit_kwargs, ("optimizer", "key", "epochs", "batch_size", "loss_fn"))
    common = dict(optimizer=optimizer, key=key, epochs=epochs, batch_size=batch_size)
    if train_encoders:
        fit_kwargs.setdefault("desc", "fine-tune")
        result = fit(params, {"x": x, "y": y}, loss_fn=_CrossEntropy(model), **common, **fit_kwargs)
        return result.params, result.history
    features = chunked_map(model.features, x, args=(params,))
    top = StackedClassifier(model.sizes[-2:], (), (), ())
    fit_kwargs.setdefault("desc", "classifier")
    eval_fn = fit_kwargs.get("eval_fn")
    if eval_fn is not None:  # fit trains the classifier alone; eval_fn sees the whole model's
        fit_kwargs["eval_fn"] = lambda p: eval_fn(
            {"layers": params["layers"], "classifier": p["classifier"]}
        )
    result = fit(
        {"layers": [], "classifier": params["classifier"]},
        {"x": features, "y": y},
        loss_fn=_CrossEntropy(top),
        **common,
        **fit_kwargs,
    )
    return {"layers": params["layers"], "classifier": result.params["classifier"]}, result.history


def classification_error(
    model: StackedClassifier, params: Params, x: ArrayLike, y: ArrayLike
) -> float:
    """The fraction of examples whose arg-max class is wrong (0.0118 = 1.18 % error).

    Args:
      model: the classifier.
      params: its parameters.
      x: ``[n, sizes[0]]``.
      y: ``[n]`` integer labels.

    Returns:
      The error rate in [0, 1].
    """
    x = np.asarray(x, np.float32)
    y = _check_labels(y, len(x), model.sizes[-1])

    return chunked_mean(_Wrong(model), {"x": x, "y": y}, args=(params,))
