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
from jaxae.typing import Params

__all__ = ["unroll"]


def _spec_and_params(layer: Any) -> tuple[Any, Any]:
    # A pretrained layer (anything with .spec and .params) or a (spec, params) pair.
    if hasattr(layer, "spec") and hasattr(layer, "params"):
        return layer.spec, layer.params
    spec, params = layer
    return spec, params


def unroll(stack: Sequence[Any], *, tied: bool = False) -> tuple[MLPAutoencoder, Params]:
    """The deep autoencoder of an RBM stack: encoder ``W_i``, decoder ``W_i^T``, both biases.

    Encoder layer ``i`` is ``(w_i, b_hidden_i)``; decoder layers run top-down with
    ``(w_i^T, b_visible_i)``. Hidden layers are logistic; the code layer is linear when the top
    RBM has Gaussian hidden units; the output is logistic (linear for Gaussian visible units).

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
        if i < len(specs) - 1 and spec.hidden != "bernoulli":
            raise ValueError(
                f"stack[{i}]: only the top layer may have {spec.hidden!r} hidden units"
            )
    outputs = {"bernoulli": "sigmoid", "gaussian": "linear", "softmax": "softmax"}
    if tied and specs[0].visible == "softmax":
        raise ValueError(
            "tied: a softmax bottom layer's encoder weights absorb its hidden bias, so they are "
            "not the decoder's transpose; unroll it untied"
        )
    for i, spec in enumerate(specs[1:], start=1):
        if spec.visible != "bernoulli":
            raise ValueError(
                f"stack[{i}]: only the bottom layer may have {spec.visible!r} visible units"
            )
    sizes = (specs[0].n_visible,) + tuple(spec.n_hidden for spec in specs)
    model = MLPAutoencoder(
        sizes,
        activation="sigmoid",
        code_activation="linear" if specs[-1].hidden == "gaussian" else "sigmoid",
        output_activation=outputs[specs[0].visible],
        tied=tied,
    )
    encoder = [{"w": jnp.asarray(p.w), "b": jnp.asarray(p.b_hidden)} for p in params]
    if specs[0].visible == "softmax":
        # v W + D b_hidden = v (W + 1 b_hidden^T) with D = Σ v: the length scaling, folded in.
        w, b = encoder[0]["w"], encoder[0]["b"]
        encoder[0] = {"w": w + b[None, :], "b": jnp.zeros_like(b)}
    decoder = []
    for p in reversed(params):
        layer = {"b": jnp.asarray(p.b_visible)}
        if not tied:
            layer["w"] = jnp.asarray(p.w).T
        decoder.append(layer)
    return model, {"encoder": encoder, "decoder": decoder}
