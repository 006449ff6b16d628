"""Fine-tuning an unrolled deep autoencoder on its reconstructions (Hinton & Salakhutdinov 2006),
and the paper's metric: one call of :func:`jaxae.fit` after :func:`jaxae.unroll`::

    stack = pretrain_rbm_stack(x, (784, 1000, 500, 250, 30), key=key)
    model, params = jaxae.unroll(stack)
    result = finetune_autoencoder(model, params, x, key=key, epochs=60)
    reconstruction_error(model, result.params, x_test)     # squared error per image

References:
  Hinton & Salakhutdinov, Reducing the Dimensionality of Data with Neural Networks, Science
  2006 (fine-tuning the unrolled network on the reconstruction error).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax.numpy as jnp
import optax

from jaxae import losses
from jaxae.chunked import chunked_mean
from jaxae.models.mlp import MLPAutoencoder
from jaxae.training import FitResult, fit
from jaxae.typing import Array, ArrayLike, Params, PRNGKey

__all__ = [
    "ReconstructionLoss",
    "adamw_cosine",
    "finetune_autoencoder",
    "per_image_squared_error",
    "reconstruction_error",
    "weighted_squared_error",
]


def adamw_cosine(
    learning_rate: float, total_steps: int, *, warmup_steps: int = 0, weight_decay: float = 0.0
) -> optax.GradientTransformation:
    """Adam with a (linear warmup +) cosine-decayed learning rate and decoupled weight decay.

    Args:
      learning_rate: the peak rate (> 0).
      total_steps: updates until the rate reaches 0 (warmup included).
      warmup_steps: updates of linear warmup from 0 (0: start at the peak).
      weight_decay: AdamW's decoupled weight decay (≥ 0).
    """
    if learning_rate <= 0 or weight_decay < 0 or total_steps < 1 or warmup_steps < 0:
        raise ValueError(
            "learning_rate > 0, total_steps ≥ 1, warmup_steps ≥ 0 and weight_decay ≥ 0 expected, "
            f"got {learning_rate}, {total_steps}, {warmup_steps}, {weight_decay}"
        )
    schedule = optax.warmup_cosine_decay_schedule(
        0.0 if warmup_steps else learning_rate, learning_rate, warmup_steps, total_steps
    )
    return optax.adamw(schedule, weight_decay=weight_decay)


RECONSTRUCTION_LOSSES = ("cross_entropy", "squared_error", "softmax_cross_entropy")


@dataclasses.dataclass(frozen=True)
class ReconstructionLoss:
    """Batch mean of a per-image reconstruction loss, as a ``fit`` ``loss_fn``; hashable, so
    fitting the same model twice reuses the compiled epoch.

    ``kind="cross_entropy"``: the summed pixel cross-entropy on the logits (the paper's
    objective, pixels in [0, 1], a logistic output). ``kind="squared_error"``: the squared error
    summed over features, each weighted by ``weights`` (e.g. ``std²`` of a standardisation, to
    measure the error in the original units), for a linear (Gaussian) or logistic output.
    ``kind="softmax_cross_entropy"``: the multinomial cross-entropy of word counts under the
    softmax output (a replicated-softmax stack's, :func:`jaxae.softmax_cross_entropy`).
    """

    model: MLPAutoencoder
    kind: str = "cross_entropy"
    weights: tuple[float, ...] | None = None

    def __post_init__(self):
        output = self.model.output_activation
        if self.kind not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"kind: expected one of {RECONSTRUCTION_LOSSES}, got {self.kind!r}")
        needs = {"cross_entropy": "sigmoid", "softmax_cross_entropy": "softmax"}.get(self.kind)
        if (needs is not None and output != needs) or (
            self.kind == "squared_error" and output == "softmax"
        ):
            raise ValueError(
                f"kind={self.kind!r} does not fit the model's output_activation={output!r}: "
                "use 'cross_entropy' for a sigmoid output, 'softmax_cross_entropy' for a "
                "softmax one (word counts), 'squared_error' for a linear or sigmoid one"
            )
        if self.weights is not None and self.kind != "squared_error":
            raise ValueError(f"weights: only the squared error is weighted, got kind={self.kind!r}")
        if self.weights is not None and len(self.weights) != self.model.sizes[0]:
            raise ValueError(
                f"weights: expected {self.model.sizes[0]} per-feature weights, "
                f"got {len(self.weights)}"
            )

    def __call__(self, params: Params, batch: Array, key: PRNGKey) -> Array:
        del key
        if self.kind == "cross_entropy":
            logits = self.model.reconstruct(params, batch, logits=True)
            return losses.sigmoid_cross_entropy(logits, batch).mean()
        if self.kind == "softmax_cross_entropy":
            logits = self.model.reconstruct(params, batch, logits=True)
            return losses.softmax_cross_entropy(logits, batch).mean()
        weights = None if self.weights is None else jnp.asarray(self.weights)
        return weighted_squared_error(self.model, params, weights, batch).mean()


def finetune_autoencoder(
    model: MLPAutoencoder,
    params: Params,
    x: ArrayLike,
    *,
    key: PRNGKey,
    epochs: int,
    batch_size: int = 128,
    loss_fn: Any = None,
    optimizer: optax.GradientTransformation | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """Fine-tunes an (unrolled) autoencoder on reconstructing ``x`` through :func:`jaxae.fit`.

    Args:
      model: e.g. from :func:`jaxae.unroll`.
      params: its parameters.
      x: ``[n, sizes[0]]`` training data.
      key: PRNG key of the training loop.
      epochs: passes over ``x``.
      batch_size: mini-batch size.
      loss_fn: ``(params, batch, key) -> scalar``; None: :class:`ReconstructionLoss`, the
        cross-entropy for a logistic output, the multinomial cross-entropy of the counts for a
        softmax one, the squared error for a linear one.
      optimizer: None: :func:`adamw_cosine` at rate 1e-3 decayed over the ``epochs``.
      **fit_kwargs: passed to :func:`jaxae.fit` (``checkpoint_dir``, ``eval_fn``,
        ``callbacks``, ``progress``, ``desc``, ``mesh``, ...).

    Returns:
      ``fit``'s :class:`~jaxae.training.FitResult` (``.params``, ``.history``).
    """
    if loss_fn is None:
        kind = {"sigmoid": "cross_entropy", "softmax": "softmax_cross_entropy"}.get(
            model.output_activation, "squared_error"
        )
        loss_fn = ReconstructionLoss(model, kind)
    if optimizer is None:
        optimizer = adamw_cosine(1e-3, max(1, epochs * (len(x) // batch_size)))
    return fit(
        params,
        x,
        loss_fn=loss_fn,
        optimizer=optimizer,
        key=key,
        epochs=epochs,
        batch_size=batch_size,
        **fit_kwargs,
    )


def per_image_squared_error(model: MLPAutoencoder, params: Params, batch: ArrayLike) -> Array:
    """Squared error summed over the pixels of each image: ``[batch]``."""
    return losses.squared_error(model.reconstruct(params, batch), batch)


def weighted_squared_error(
    model: MLPAutoencoder, params: Params, weights: Array | None, batch: ArrayLike
) -> Array:
    """``Σ_i weights_i (x̂_i - x_i)²`` per image: ``[batch]`` (``weights`` None: all 1).

    With ``weights = std²`` of a standardisation and ``batch`` standardised, this is the squared
    error in the original units: ``x̂ - x = (ẑ - z) · std``.
    """
    if weights is None:
        return per_image_squared_error(model, params, batch)
    error = jnp.square(model.reconstruct(params, batch) - batch)
    return jnp.sum(error * weights[None, :], axis=-1)


@functools.cache
def _per_image_error_of(model):  # one function per model, so chunked_mean compiles once
    return functools.partial(weighted_squared_error, model)


def reconstruction_error(
    model: MLPAutoencoder, params: Params, x: ArrayLike, *, weights: ArrayLike | None = None
) -> float:
    """Squared error summed over pixels, averaged over images (the paper's metric); computed in
    chunks.

    Args:
      model: the autoencoder.
      params: its parameters.
      x: ``[n, sizes[0]]``.
      weights: optional ``[sizes[0]]`` per-pixel weights: ``std²`` of the standardisation that
        made ``x`` gives the error in the original pixel units (None: in ``x``'s units).
    """
    if weights is not None:
        weights = jnp.asarray(weights, jnp.float32)
        if weights.shape != (model.sizes[0],):
            raise ValueError(
                f"weights: expected shape ({model.sizes[0]},), got {tuple(weights.shape)}"
            )
    return chunked_mean(_per_image_error_of(model), x, args=(params, weights))
