"""The deep autoencoder of Hinton & Salakhutdinov (2006), unrolled from a stack of RBMs: the
encoder starts from the RBM weights, the decoder from their transposes. A pure function of the
stack; the greedy pretraining that makes the stack is a recipe
(:func:`jaxae.recipes.pretrain_rbm_stack`)::

    stack = jaxae.recipes.pretrain_rbm_stack(x, (784, 1000, 500, 250, 30), key=key)
    model, params = unroll(stack)          # an MLPAutoencoder and its (untied) parameters
    jaxae.fit(params, x, loss_fn=..., optimizer=optax.adam(1e-3), ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from jaxae.models.mlp import MLPAutoencoder
from jaxae.rbm import hidden_affine
from jaxae.typing import Params

__all__ = ["unroll"]


def _spec_and_params(layer: Any) -> tuple[Any, Any]:
    # A pretrained layer (anything with .spec and .params) or a (spec, params) pair.
    if hasattr(layer, "spec") and hasattr(layer, "params"):
        return layer.spec, layer.params
    spec, params = layer
    return spec, params


# The hidden units below the top, and the visible units of the layer above that model them:
# binary features feed Bernoulli visible units, rectified features Gaussian ones.
_HIDDEN_ACTIVATIONS = {"bernoulli": "sigmoid", "nrelu": "relu"}
_VISIBLE_ABOVE = {"bernoulli": ("bernoulli",), "nrelu": ("gaussian", "gaussian_learned_var")}
_CODE_ACTIVATIONS = {"bernoulli": "sigmoid", "gaussian": "linear", "nrelu": "relu"}
_OUTPUTS = {
    "bernoulli": "sigmoid",
    "gaussian": "linear",
    "gaussian_learned_var": "linear",
    "softmax": "softmax",
}


def unroll(stack: Sequence[Any], *, tied: bool = False) -> tuple[MLPAutoencoder, Params]:
    """The deep autoencoder of an RBM stack: encoder ``W_i``, decoder ``W_i^T``, both biases.

    Encoder layer ``i`` is ``(w_i, b_hidden_i)``; decoder layers run top-down with
    ``(w_i^T, b_visible_i)``. Hidden layers are logistic for Bernoulli hidden units and ReLU for
    noisy rectified ("nrelu") ones (their deterministic pass ``max(0, x)``); every layer below
    the top must have the same hidden type, which the decoder's hidden layers share. The code
    layer is linear when the top RBM has Gaussian hidden units (Hinton & Salakhutdinov 2006),
    logistic for Bernoulli and ReLU for nrelu ones; the output is logistic for Bernoulli
    visible units and linear for Gaussian ones (unit or learned variance: the mean of
    ``p(v | h)`` is ``W h + b_visible`` either way), e.g. standardised pixels.

    The real-valued stack (Nair & Hinton 2010 units, Hinton 2006 layout): a bottom RBM with
    ``"gaussian_learned_var"`` visible and ``"nrelu"`` hidden units, middle RBMs with
    ``"nrelu"`` hidden units whose visible units are ``"gaussian"`` (unit variance; learned
    variances are accepted too), and a top RBM with ``"gaussian"`` (linear) code units. Above
    the bottom, the data are the rectified features ``max(0, x) ≥ 0`` of the layer below.
    Nair & Hinton train each higher RBM on those real-valued activities, and Hinton's practical
    guide (§13.2) models real values with Gaussian visible units of fixed unit variance
    (learning variances is the unstable part, and a rectified feature that is often exactly 0
    would drive its variance to 0), so the middle layers are unit-variance Gaussian; the
    unrolled decoder then rectifies their reconstructions ``W h + b`` as the encoder rectifies
    the features they model, which keeps every decoder layer a ReLU layer (one activation for
    all hidden layers). A learned-variance bottom layer's encoder weights are
    ``W / σ²[:, None]`` (:func:`jaxae.rbm.hidden_affine`), so they are not the decoder's
    transpose: unroll such a stack untied.

    A replicated-softmax bottom layer (word counts) scales its hidden bias by the document
    length ``D = Σ_i v_i``; since ``v W + D b = v (W + 1 b^T)``, the first encoder layer gets
    the weights ``w_0 + b_hidden_0`` (the bias added to every row) and a zero bias, which
    computes ``E[h | v]`` exactly for every count vector. Its output is ``softmax`` over the
    vocabulary (the word distribution): fine-tune with
    :func:`jaxae.losses.softmax_cross_entropy` on ``decode(..., logits=True)`` and the counts.

    Args:
      stack: RBM layers bottom first: :class:`jaxae.recipes.PretrainedLayer` with a ``spec``
        (from :func:`jaxae.recipes.pretrain_rbm_stack`) or ``(spec, params)`` pairs.
      tied: share the decoder weights with the encoder (default: untied copies, as fine-tuned in
        the paper).

    Returns:
      ``(model, params)``: an :class:`MLPAutoencoder` and its parameter PyTree.

    References:
      Hinton & Salakhutdinov (2006), Reducing the Dimensionality of Data with Neural Networks.
      Nair & Hinton (2010), Rectified Linear Units Improve Restricted Boltzmann Machines.
      Hinton (2010), A Practical Guide to Training Restricted Boltzmann Machines, §13.2.
    """
    if len(stack) == 0:
        raise ValueError("stack: expected at least one RBM layer, got none")
    pairs = [_spec_and_params(layer) for layer in stack]
    specs = [spec for spec, _ in pairs]
    params = [p for _, p in pairs]
    for i, spec in enumerate(specs):
        if spec is None:
            raise ValueError(f"stack[{i}]: expected an RBM layer (with a spec), got an autoencoder")
    for i, (spec, p) in enumerate(zip(specs, params, strict=True)):
        if tuple(p.w.shape) != (spec.n_visible, spec.n_hidden):
            raise ValueError(
                f"stack[{i}]: weights of shape {tuple(p.w.shape)} do not match its spec "
                f"({spec.n_visible}, {spec.n_hidden})"
            )
        if i and specs[i - 1].n_hidden != spec.n_visible:
            raise ValueError(
                f"stack[{i - 1}] and stack[{i}]: mismatched layer sizes — layer {i - 1} has "
                f"{specs[i - 1].n_hidden} hidden units but layer {i} has {spec.n_visible} visible"
            )
        if i < len(specs) - 1 and spec.hidden not in _HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"stack[{i}]: only the top layer may have {spec.hidden!r} hidden units "
                f"(below it: {' or '.join(map(repr, _HIDDEN_ACTIVATIONS))})"
            )
        if i < len(specs) - 1 and spec.hidden != specs[0].hidden:
            raise ValueError(
                f"stack[{i}]: {spec.hidden!r} hidden units below the top, but stack[0] has "
                f"{specs[0].hidden!r}; the unrolled autoencoder has one hidden activation"
            )
    if tied and specs[0].visible == "softmax":
        raise ValueError(
            "tied: a softmax bottom layer's encoder weights absorb its hidden bias, so they are "
            "not the decoder's transpose; unroll it untied"
        )
    for i, spec in enumerate(specs[1:], start=1):
        below = specs[i - 1].hidden
        if spec.visible not in _VISIBLE_ABOVE[below]:
            if spec.visible in ("softmax", "gaussian_learned_var") and below == "bernoulli":
                raise ValueError(
                    f"stack[{i}]: only the bottom layer may have {spec.visible!r} visible units"
                )
            expected = " or ".join(map(repr, _VISIBLE_ABOVE[below]))
            raise ValueError(
                f"stack[{i}]: {spec.visible!r} visible units cannot model the {below!r} hidden "
                f"units of stack[{i - 1}] (expected {expected})"
            )
    if tied and any(spec.visible == "gaussian_learned_var" for spec in specs):
        raise ValueError(
            "tied: a learned-variance layer's encoder weights are W / σ², not the decoder's "
            "transpose W; unroll it untied"
        )
    sizes = (specs[0].n_visible,) + tuple(spec.n_hidden for spec in specs)
    model = MLPAutoencoder(
        sizes,
        activation=_HIDDEN_ACTIVATIONS.get(specs[0].hidden, "sigmoid"),
        code_activation=_CODE_ACTIVATIONS[specs[-1].hidden],
        output_activation=_OUTPUTS[specs[0].visible],
        tied=tied,
    )
    encoder = []
    for spec, p in zip(specs, params, strict=True):
        # Learned variances folded in, (v / σ²) W + c; a softmax layer's length scaling too,
        # v W + D b_hidden = v (W + 1 b_hidden^T) with D = Σ v.
        w, b = hidden_affine(p, spec=spec)
        encoder.append({"w": jnp.asarray(w), "b": jnp.asarray(b)})
    decoder = []
    for p in reversed(params):
        layer = {"b": jnp.asarray(p.b_visible)}
        if not tied:
            layer["w"] = jnp.asarray(p.w).T
        decoder.append(layer)
    return model, {"encoder": encoder, "decoder": decoder}
