"""Penalties that stop an autoencoder from copying its input: pure functions to add to any loss.

Every penalty of the hidden code returns one value per example, ``[batch]``, like the losses of
:mod:`jaxae.losses`, so a regularized objective is plain arithmetic before the caller reduces::

    h = model.encode(params, x)
    logits = model.decode(params, h, logits=True)
    per_example = (sigmoid_cross_entropy(logits, x)
                   + 3.0 * kl_sparsity_penalty(h, target=0.03)
                   + 0.1 * contractive_penalty(model.encode, params, x))
    loss = per_example.mean() + 1e-4 * weight_decay(params)

Hyperparameters are keyword-only Python numbers, checked when the function is called (before
tracing); data values (NaN, range) are checked when the arrays are concrete.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike, Params
from jaxae.validation import (
    check_array,
    check_positive_int,
    check_probability,
    check_real,
    is_concrete,
)

__all__ = [
    "weight_decay",
    "weight_mask",
    "kl_sparsity_penalty",
    "l1_activity",
    "k_sparse",
    "k_sparse_schedule",
    "contractive_penalty",
    "sigmoid_contractive_penalty",
]

# Clip the batch-mean activation away from 0 and 1: log(ρ̂) and log(1 - ρ̂) stay finite.
_KL_EPS = 1e-6


def weight_decay(params: Params) -> Array:
    """Half the squared L2 norm of the weights, not the biases: ``½ Σ_W Σ W²``, a scalar.

    Weights are the leaves of rank ≥ 2 (the ``"w"`` matrices of :class:`jaxae.MLPAutoencoder`,
    ``RBMParams.w``, Flax kernels); biases (rank 1) and scalars are left alone. The result does
    not depend on the data, so it is a scalar, not ``[batch]``: add it after reducing the
    per-example terms (``per_example.mean() + λ * weight_decay(params)``). Its gradient is
    ``W`` for every weight matrix, as ``optax.add_decayed_weights`` adds.

    Args:
      params: any PyTree of arrays.

    Returns:
      ``[]`` scalar in the weights' dtype (float32 when there are none).
    """
    weights = [w for w in jax.tree.leaves(params) if _is_weight(w)]
    if not weights:
        return jnp.zeros((), jnp.float32)
    return 0.5 * sum(jnp.sum(jnp.square(w)) for w in weights)


def weight_mask(params: Params) -> Params:
    """True for the weights :func:`weight_decay` penalizes (rank ≥ 2), False for the rest: the
    mask for Optax's decay, e.g. ``optax.adamw(rate, weight_decay=wd, mask=weight_mask)``.

    Args:
      params: any PyTree of arrays.

    Returns:
      A PyTree of Python bools with the structure of ``params``.
    """
    return jax.tree.map(_is_weight, params)


def _is_weight(leaf: ArrayLike) -> bool:
    return jnp.ndim(leaf) >= 2


def _check_codes(h: Array, name: str = "h", **kwargs) -> None:
    check_array(h, name, rank=range(2, 6), floating=True, **kwargs)


def kl_sparsity_penalty(h: ArrayLike, *, target: float) -> Array:
    """The KL sparsity penalty ``Σ_j KL(ρ ‖ ρ̂_j)``, ``ρ̂_j`` the batch-mean activation of unit j.

    ``KL(ρ ‖ ρ̂) = ρ log(ρ / ρ̂) + (1 - ρ) log((1 - ρ) / (1 - ρ̂))``, zero when ``ρ̂_j = ρ`` for
    every unit. The penalty is a property of the whole batch, not of one example; the
    per-example convention here: **every example carries the whole batch's penalty**, so the
    mean over the batch is the textbook objective (``mean reconstruction + β Σ_j KL``), and a
    sum over the batch counts it once per example. (Vmapping over single examples would
    compute ρ̂ from one example: call it on the batch.)

    Args:
      h: ``[batch, ..., n_hidden]`` activations in [0, 1] (sigmoid units); the mean is over
        every axis but the last.
      target: the target mean activation ρ in (0, 1), e.g. 0.03 or 0.05.

    Returns:
      ``[batch]``, every entry the same.

    References:
      Ng (2011), Sparse autoencoder, CS294A lecture notes, section 3; Goodfellow, Bengio &
      Courville (2016), Deep Learning, section 14.2.1.
    """
    h = jnp.asarray(h)
    check_real(target, "target")
    check_probability(target, "target", open_interval=True)
    _check_codes(h, value_range=(0.0, 1.0))
    rho = jnp.asarray(target, h.dtype)
    mean = jnp.mean(h, axis=tuple(range(h.ndim - 1)))
    # Clipped in value (a finite KL for a unit that is never on), not in gradient: a plain clip
    # would give exactly such a dead unit no sparsity gradient at all.
    rho_hat = mean + jax.lax.stop_gradient(jnp.clip(mean, _KL_EPS, 1.0 - _KL_EPS) - mean)
    kl = rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat))
    # Under jit the range check above cannot raise: a batch with an activation outside [0, 1]
    # (tanh or linear codes) gets a NaN penalty, not a wrong finite one.
    in_range = jnp.all((h >= 0) & (h <= 1))
    return jnp.full(h.shape[:1], jnp.where(in_range, jnp.sum(kl), jnp.nan), h.dtype)


def l1_activity(h: ArrayLike) -> Array:
    """The L1 activity penalty ``Σ_j |h_j|`` of each example.

    Args:
      h: ``[batch, ...]`` activations.

    Returns:
      ``[batch]``.

    References:
      Goodfellow, Bengio & Courville (2016), Deep Learning, section 7.10 (representational
      sparsity).
    """
    h = jnp.asarray(h)
    _check_codes(h)
    return jnp.sum(jnp.abs(h), axis=tuple(range(1, h.ndim)))


def _check_k(k, name: str = "k") -> None:
    # An array k (a schedule's value) must be an integer scalar, traced or not: a float one
    # would be truncated eagerly and rounded under jit, keeping different numbers of units.
    if hasattr(k, "dtype") or not is_concrete(k):
        dtype = getattr(k, "dtype", None) or jnp.result_type(k)
        if jnp.ndim(k) != 0 or not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(
                f"{name}: expected an integer scalar, got {dtype} of shape "
                f"{jnp.shape(k)} (round a float schedule: jnp.round(k).astype(jnp.int32))"
            )
        if not is_concrete(k):  # a scheduled k under jit: checked where it was built
            return
        k = int(k)
    check_positive_int(k, name)


def k_sparse(
    h: ArrayLike, *, k: int | Array, alpha: float = 1.0, max_k: int | None = None
) -> Array:
    """Keeps the ``k`` largest activations of each example and sets the others to zero.

    Exactly ``min(round(alpha * k), n_hidden)`` units are kept per example (ties are broken by
    unit index). The result is ``h * mask`` with a constant mask, so gradients flow only through
    the kept units: back-propagating through the k largest activities is Makhzani & Frey's
    training step. ``k`` may be a traced integer (a schedule inside ``jit``, see
    :func:`k_sparse_schedule`); it then changes no shapes and compiles once.

    Args:
      h: ``[..., n_hidden]`` pre-activations of the (linear) hidden layer.
      k: number of units kept per example, ``1 <= k <= n_hidden`` (Python int or int scalar).
      alpha: the α of the α·k rule: at encoding time (features for a classifier) Makhzani &
        Frey keep ``α k`` units (α = 3 for MNIST), capped at ``n_hidden``; 1 when training.
      max_k: for a traced ``k``, a Python bound ``>= k`` (e.g. the schedule's ``initial_k``):
        only the ``α max_k`` largest units are then ranked, which is much faster than ranking
        all of them (a full sort of ``[batch, 1000]`` dominates a CPU training step). Unused
        for a Python ``k``; without it a traced ``k`` ranks every unit.

    Returns:
      ``[..., n_hidden]``, at most the kept number of non-zeros per example; all NaN when a
      traced ``k`` is outside ``[1, n_hidden]`` or above ``max_k`` (a Python ``k`` raises).

    References:
      Makhzani & Frey (2014), k-Sparse Autoencoders, ICLR, Algorithm 1 and section 3.3.
    """
    h = jnp.asarray(h)
    check_array(h, "h", rank=range(1, 6), floating=True)
    _check_k(k)
    check_real(alpha, "alpha")
    if alpha < 1:
        raise ValueError(f"alpha: expected a value >= 1, got {alpha}")
    n = h.shape[-1]
    if is_concrete(k) and int(k) > n:
        raise ValueError(f"k: expected at most the layer's {n} units, got {int(k)}")
    if max_k is not None:
        check_positive_int(max_k, "max_k")
    if not is_concrete(k):
        kept = jnp.minimum(jnp.round(alpha * jnp.asarray(k, jnp.float32)), n).astype(jnp.int32)
        bound = n if max_k is None else min(round(alpha * max_k), n)
    else:
        kept = bound = min(round(alpha * int(k)), n)
    # The `bound` largest units, in descending order; lax.top_k puts the lower index first on
    # ties, so exactly `kept` units are kept even among equal activations.
    _, index = jax.lax.top_k(jax.lax.stop_gradient(h), bound)
    keep = (jnp.arange(bound) < kept).astype(h.dtype)
    mask = jnp.put_along_axis(
        jnp.zeros_like(h), index, jnp.broadcast_to(keep, index.shape), axis=-1, inplace=False
    )
    if not is_concrete(k):
        # A traced k cannot raise: a k outside [1, n_hidden] (or above max_k) makes the result NaN
        # rather than silently clamping it.
        limit = n if max_k is None else min(n, max_k)
        valid = (k >= 1) & (k <= limit)
        return jnp.where(valid, h * mask, jnp.nan)
    return h * mask


def k_sparse_schedule(*, k: int, initial_k: int, transition_steps: int) -> Callable[[Array], Array]:
    """Makhzani & Frey's annealing of k: ``initial_k`` lowered linearly to ``k``, then constant.

    Starting with many active units lets every unit take part early (no dead units); the paper
    lowers k from a large value to the target over the first half of the epochs (e.g. from 100
    to 25 on MNIST). Use it for ``k_sparse(h, k=schedule(step))`` under ``jit``.

    Args:
      k: the final number of active units, ``1 <= k``.
      initial_k: the number at step 0, ``>= k``.
      transition_steps: steps over which k decreases (``>= 1``).

    Returns:
      ``schedule(step) -> int32 scalar``, pure (like an optax schedule).

    References:
      Makhzani & Frey (2014), k-Sparse Autoencoders, ICLR, section 3.2 ("scheduling of the
      sparsity level").
    """
    check_positive_int(k, "k")
    check_positive_int(initial_k, "initial_k")
    check_positive_int(transition_steps, "transition_steps")
    if initial_k < k:
        raise ValueError(f"initial_k: expected a value >= k = {k}, got {initial_k}")

    def schedule(step: ArrayLike) -> Array:
        fraction = jnp.clip(jnp.asarray(step, jnp.float32) / transition_steps, 0.0, 1.0)
        return jnp.round(initial_k + fraction * (k - initial_k)).astype(jnp.int32)

    return schedule


def contractive_penalty(
    encode_fn: Callable[[Params, Array], Array], params: Params, x: ArrayLike
) -> Array:
    """The squared Frobenius norm of the encoder's Jacobian, ``‖∂h(x)/∂x‖²_F``, per example.

    Computed from the full Jacobian with ``jax.vmap(jax.jacfwd(...))`` — forward mode, one JVP
    per input dimension — so it works for any differentiable encoder (deep, any activation).
    It costs ``n_in`` forward passes and holds a ``[batch, n_code, n_in]`` Jacobian
    (batch 100 × 1000 × 784 float32 ≈ 314 MB); for one sigmoid layer
    :func:`sigmoid_contractive_penalty` gives the same number for the cost of one pass
    (benchmarks/README.md, row 4, measures both).

    Args:
      encode_fn: ``(params, x [batch, ...]) -> codes [batch, ...]``, applied row-wise, e.g.
        ``model.encode`` of an :class:`jaxae.MLPAutoencoder`; it is called on one-example
        batches.
      params: its parameters (differentiated through, as for training a CAE).
      x: ``[batch, ...]`` inputs.

    Returns:
      ``[batch]``.

    References:
      Rifai, Vincent, Muller, Glorot & Bengio (2011), Contractive Auto-Encoders: Explicit
      Invariance During Feature Extraction, ICML, equation 2.
    """
    x = jnp.asarray(x)
    check_array(x, "x", rank=range(2, 6), floating=True)

    def encode_one(p, example):
        return encode_fn(p, example[None])[0]

    jacobians = jax.vmap(jax.jacfwd(encode_one, argnums=1), in_axes=(None, 0))(params, x)
    return jnp.sum(jnp.square(jacobians), axis=tuple(range(1, jacobians.ndim)))


def sigmoid_contractive_penalty(h: ArrayLike, w: ArrayLike) -> Array:
    """The contractive penalty of one sigmoid layer in closed form: ``Σ_j (h_j(1-h_j))² Σ_i W_ij²``.

    For ``h = sigmoid(x W + b)``, ``∂h_j/∂x_i = h_j (1 - h_j) W_ij``, so the squared Frobenius
    norm factorises: the fast path (and the test oracle) of :func:`contractive_penalty`.

    Args:
      h: ``[batch, n_hidden]`` the layer's sigmoid activations (computed from ``w``, so that
        gradients reach ``w`` through both factors).
      w: ``[n_in, n_hidden]`` its weights.

    Returns:
      ``[batch]``.

    References:
      Rifai et al. (2011), Contractive Auto-Encoders, ICML, section 3 (closed form for sigmoid).
    """
    h, w = jnp.asarray(h), jnp.asarray(w)
    check_array(h, "h", rank=2, floating=True)
    check_array(w, "w", rank=2, last_dim=h.shape[-1], floating=True)
    column_norms = jnp.sum(jnp.square(w), axis=0)  # [n_hidden]
    return jnp.sum(jnp.square(h * (1.0 - h)) * column_norms[None, :], axis=1)
