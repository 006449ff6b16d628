"""Restricted Boltzmann machines as pure functions: energies, conditionals, Gibbs chains,
CD-k / PCD gradients, and partition functions (exact enumeration or annealed importance sampling).

An RBM is an ``RBMSpec`` (static: sizes and unit types, hashable, passed as ``spec=``) plus an
``RBMParams`` PyTree ``(w, b_visible, b_hidden)``. With ``c`` the effective hidden bias
(``b_hidden``, or ``D * b_hidden`` for replicated softmax, ``D = Σ_i v_i`` words per document),
the energy is ``E(v, h) = E_v(v) + E_h(h) - vᵀ W h`` with

  ===================  ==================  ============================================
  unit type            energy term         values
  ===================  ==================  ============================================
  visible "bernoulli"  ``-b_v · v``        ``{0, 1}`` (data may be probabilities)
  visible "gaussian"   ``½‖v - b_v‖²``     real, unit variance (standardise the data)
  visible              ``Σ_i (v_i - b_i)²   real, learned variance ``σ_i² = exp(z_i)``:
  "gaussian_learned_var"  / (2σ_i²)``       interaction ``-(v/σ²)ᵀ W h`` (Cho et al. 2011)
  visible "softmax"    ``-b_v · v``        word counts; ``D`` draws from one softmax
  hidden "bernoulli"   ``-c · h``          ``{0, 1}``
  hidden "gaussian"    ``½‖h - c‖²``       real: linear units plus ``N(0, 1)`` noise
  hidden "nrelu"       step-sigmoid unit   ``h ≥ 0``: sampled ``max(0, x + N(0, sigmoid(x)))``
  ===================  ==================  ============================================

Noisy rectified linear ("nrelu") hidden units (Nair & Hinton 2010) stand for infinitely many
copies of a binary unit sharing weights, with biases ``c - i + ½`` (``i = 1, 2, ...``). Which
form is used where:

  * sampling (Gibbs chains, CD/PCD reconstructions): the paper's ``max(0, x + N(0, sigmoid(x)))``
    (``sigmoid(x)`` is the noise *variance*); AIS alone draws the exact count of active copies
    (a sum of independent Bernoulli copies), as its transitions must keep the model's
    distribution;
  * free energy, and so every CD/PCD gradient (``∇F``): the exact step-sigmoid term
    ``-Σ_{i≥1} softplus(x - i + ½)``, whose derivative ``Σ_i sigmoid(x - i + ½) ≈ softplus(x)``
    is the expected hidden activity in both phases (no closed form: computed as an exact sum of
    the linear part plus the 49 copies nearest the threshold, error below ``1e-9``);
  * the deterministic up-pass (``hidden_mean``, ``reconstruction_error``, the data fed to the
    next layer, the unrolled encoder): ``max(0, x)``, a plain ReLU layer;
  * ``energy``: ``h`` is the number of active copies (a non-negative integer), with
    ``E_h(h) = -c h + ½h² + log Π_{k≤h}(1 - e^{-k})`` (the copies' arrangements summed; Euler's
    identity makes ``Σ_h e^{-E}`` the product over copies).

Gaussian visible units with a learned per-unit variance use Cho, Ilin & Raiko's (2011)
parametrisation: ``params.log_var`` holds ``z_i = log σ_i²`` (unconstrained, so a gradient step
cannot make a variance negative), the hidden input is ``(v / σ²) W + c`` and ``p(v | h)`` is
``N(W h + b_v, σ²)``: the decoder mean does not depend on ``σ``. They report that this form
learns the variances more stably than the ``v / σ`` form of Hinton's guide (§13.2). Other unit
types have ``params.log_var = None``. Standardise real-valued data with
``fit_standardization`` / ``standardize`` / ``unstandardize``.

A Gaussian-visible/Gaussian-hidden RBM is normalisable only when the largest singular value of
``W`` is below 1 (of ``W / σ`` row-wise for learned variances); a rectified hidden unit grows
like a linear one (``-F ≈ ½x²`` for large ``x``), so Gaussian-visible/nrelu RBMs need small
weights too: train them with small learning rates (1e-3 on standardised data, the variances
slower still). Every function is pure: ``params`` first, then data, then ``key``; ``spec`` and
chain lengths are keyword-only and static under ``jit``::

    grad_fn = jax.jit(functools.partial(cd_gradients, spec=spec, k=1))
    grads, metrics = grad_fn(params, batch, key)       # descend with any Optax transform

Public functions check shapes (also at trace time) and values (for concrete arrays only, so
check data before it enters ``jit``); the math lives in private functions below them.

References:
  Hinton, G. E. (2002). Training Products of Experts by Minimizing Contrastive Divergence.
  Hinton, G. E. (2010). A Practical Guide to Training Restricted Boltzmann Machines.
    UTML TR 2010-003 (CD recipe §3; bias initialisation §8; free energy §16.1; unit types §13).
  Hinton, G. E. & Salakhutdinov, R. R. (2006). Reducing the Dimensionality of Data with Neural
    Networks. Science 313 (supporting material: linear code units with unit Gaussian noise).
  Salakhutdinov, R. & Hinton, G. E. (2009). Replicated Softmax: an Undirected Topic Model. NIPS.
  Tieleman, T. (2008). Training Restricted Boltzmann Machines using Approximations to the
    Likelihood Gradient. ICML.
  Salakhutdinov, R. & Murray, I. (2008). On the Quantitative Analysis of Deep Belief Networks.
    ICML (annealed importance sampling from a base-rate RBM).
  Nair, V. & Hinton, G. E. (2010). Rectified Linear Units Improve Restricted Boltzmann Machines.
    ICML (§2: step-sigmoid units, ``Σ_i σ(x - i + ½) ≈ log(1 + e^x)``, NReLU sampling).
  Cho, K., Ilin, A. & Raiko, T. (2011). Improved Learning of Gaussian-Bernoulli Restricted
    Boltzmann Machines. ICANN (eq. 2-4: energy and conditionals with log-variances z_i).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxae.typing import Array, ArrayLike, Metrics, PRNGKey
from jaxae.validation import check_array, check_positive_int, eight_bit_hint, is_concrete

__all__ = [
    "RBMSpec",
    "RBMParams",
    "GibbsSample",
    "init_rbm",
    "energy",
    "free_energy",
    "hidden_mean",
    "visible_mean",
    "sample_hidden",
    "sample_visible",
    "gibbs_chain",
    "cd_gradients",
    "pcd_gradients",
    "reconstruction_error",
    "exact_log_partition",
    "ais_log_partition",
    "log_likelihood",
    "visible_std",
    "hidden_affine",
    "Standardization",
    "fit_standardization",
    "standardize",
    "unstandardize",
]

VISIBLE_UNITS = ("bernoulli", "gaussian", "gaussian_learned_var", "softmax")
HIDDEN_UNITS = ("bernoulli", "gaussian", "nrelu")
_GAUSSIAN_VISIBLE = ("gaussian", "gaussian_learned_var")
# Step-sigmoid units: copies farther than this from the threshold are summed in closed form.
_SSU_WINDOW = 24
# log Π_{k≤n}(1 - e^{-k}) is summed over k ≤ 40 (later factors differ from 1 by < 1e-17).
_SSU_QPOCH_TERMS = 40
# fit_standardization's default floor on a feature's standard deviation (data units).
DEFAULT_MIN_STD = 1e-2
MAX_ENUMERATED_UNITS = 20
_LOG_2PI = math.log(2.0 * math.pi)
# Enumerated states are processed in chunks of at most 2**22 (state, unit) entries.
_CHUNK_LOG2_ELEMENTS = 22
# Bernoulli base rates are clipped to [eps, 1 - eps] so that always-off pixels get a finite bias.
_BASE_RATE_EPS = 1e-3


@dataclasses.dataclass(frozen=True)
class RBMSpec:
    """Sizes and unit types of an RBM: static (hashable) configuration for ``jit``.

    Attributes:
      n_visible: number of visible units (vocabulary size for ``"softmax"``).
      n_hidden: number of hidden units.
      visible: ``"bernoulli"``, ``"gaussian"`` (unit variance), ``"gaussian_learned_var"``
        (per-unit variance ``exp(params.log_var)``, Cho et al. 2011) or ``"softmax"``
        (replicated softmax over word counts, Salakhutdinov & Hinton 2009).
      hidden: ``"bernoulli"``, ``"gaussian"`` (linear units with unit-variance Gaussian noise,
        the code layer of Hinton & Salakhutdinov 2006) or ``"nrelu"`` (noisy rectified linear
        units, Nair & Hinton 2010; deterministic pass ``max(0, x)``).
    """

    n_visible: int
    n_hidden: int
    visible: str = "bernoulli"
    hidden: str = "bernoulli"

    def __post_init__(self):
        check_positive_int(self.n_visible, "RBMSpec.n_visible")
        check_positive_int(self.n_hidden, "RBMSpec.n_hidden")
        # Plain ints keep the spec hashable and equal across int / np.integer inputs.
        object.__setattr__(self, "n_visible", int(self.n_visible))
        object.__setattr__(self, "n_hidden", int(self.n_hidden))
        if self.visible not in VISIBLE_UNITS:
            raise ValueError(
                f"RBMSpec.visible: expected one of {VISIBLE_UNITS}, got {self.visible!r}"
            )
        if self.hidden not in HIDDEN_UNITS:
            raise ValueError(f"RBMSpec.hidden: expected one of {HIDDEN_UNITS}, got {self.hidden!r}")


class RBMParams(NamedTuple):
    """RBM parameters (a PyTree).

    Attributes:
      w: ``[n_visible, n_hidden]`` weights.
      b_visible: ``[n_visible]`` visible biases.
      b_hidden: ``[n_hidden]`` hidden biases.
      log_var: ``[n_visible]`` log-variances ``z_i = log σ_i²`` of ``"gaussian_learned_var"``
        visible units (Cho et al. 2011); ``None`` for every other visible type. (Optax masks
        and labels built as ``RBMParams(w=..., b_visible=..., b_hidden=...)`` leave it None:
        give it a value too for a learned-variance RBM.)
    """

    w: Array
    b_visible: Array
    b_hidden: Array
    log_var: Array | None = None


class GibbsSample(NamedTuple):
    """The end of a Gibbs chain.

    Attributes:
      v: ``[..., n_visible]`` final visible state ``v_k``.
      h: ``[..., n_hidden]`` hidden state sampled from ``p(h | v_k)``: ``(v, h)`` is a joint sample.
      v_mean: ``[..., n_visible]`` ``E[v | h_{k-1}]``, the mean ``v_k`` was drawn from.
      h_mean: ``[..., n_hidden]`` ``E[h | v_k]`` (``max(0, x)`` for nrelu units).
    """

    v: Array
    h: Array
    v_mean: Array
    h_mean: Array


# ------------------------------------------------------------------------------------------------
# Input checks (plain Python, before the math; value checks skip tracers).


def _check_spec(spec) -> None:
    if not isinstance(spec, RBMSpec):
        raise TypeError(f"spec: expected an RBMSpec, got {type(spec).__name__}")


def _check_params(params, spec: RBMSpec) -> None:
    _check_spec(spec)
    expected = {
        "w": (spec.n_visible, spec.n_hidden),
        "b_visible": (spec.n_visible,),
        "b_hidden": (spec.n_hidden,),
    }
    for field, shape in expected.items():
        if not hasattr(params, field):
            raise TypeError(
                f"params: expected an RBMParams with fields w, b_visible, b_hidden, "
                f"got {type(params).__name__}"
            )
        x = getattr(params, field)
        check_array(x, f"params.{field}", floating=True, finite=False)
        if tuple(x.shape) != shape:
            raise ValueError(
                f"params.{field}: expected shape {shape} for n_visible={spec.n_visible}, "
                f"n_hidden={spec.n_hidden}, got {tuple(x.shape)}"
            )
    log_var = getattr(params, "log_var", None)
    if spec.visible == "gaussian_learned_var":
        if log_var is None:
            raise ValueError(
                "params.log_var: a 'gaussian_learned_var' visible layer needs per-unit "
                f"log-variances of shape ({spec.n_visible},), got None (init_rbm makes them)"
            )
        check_array(log_var, "params.log_var", floating=True)
        if tuple(log_var.shape) != (spec.n_visible,):
            raise ValueError(
                f"params.log_var: expected shape ({spec.n_visible},) for "
                f"n_visible={spec.n_visible}, got {tuple(log_var.shape)}"
            )
    elif log_var is not None:
        raise ValueError(
            "params.log_var: only a 'gaussian_learned_var' visible layer has log-variances, "
            f"this RBM's visible layer is {spec.visible!r}: expected None"
        )


def _check_visible(v, spec: RBMSpec, name: str) -> None:
    """Rank, size, NaN and the value range of the visible layer's unit type."""
    check_array(v, name, rank=(1, 2), last_dim=spec.n_visible)
    if not is_concrete(v) or spec.visible in _GAUSSIAN_VISIBLE:
        return
    values = np.asarray(v)
    lo, hi = float(values.min()), float(values.max())
    if spec.visible == "bernoulli" and (lo < 0.0 or hi > 1.0):
        raise ValueError(
            f"{name}: expected values in [0, 1] for a bernoulli visible layer, "
            f"got values in [{lo:g}, {hi:g}]" + eight_bit_hint(lo, hi, 1.0)
        )
    if spec.visible == "softmax":
        _check_counts(values, name, "word counts for a softmax visible layer")


def _nan_unless_valid_visible(tree, v, spec: RBMSpec):
    """Under tracing, where ``_check_visible`` cannot look at values: ``tree`` with NaN leaves
    when ``v`` leaves its unit type's range (Bernoulli [0, 1]; softmax non-negative integer
    counts), so :func:`jaxae.fit` stops (and names the check) instead of training on it."""
    if is_concrete(v) or spec.visible in _GAUSSIAN_VISIBLE:
        return tree
    if spec.visible == "bernoulli":
        ok = jnp.all((v >= 0) & (v <= 1))
    else:
        ok = jnp.all((v >= 0) & (v == jnp.round(v)))
    return jax.tree.map(lambda x: jnp.where(ok, x, jnp.nan), tree)


def _nan_rows_unless_valid_visible(value: Array, v, spec: RBMSpec) -> Array:
    """Under tracing: ``value`` (``[batch]`` or a scalar for one ``v``, or ``[batch, n]`` /
    ``[n]`` of per-example vectors) with NaN for every example whose ``v`` leaves its unit type's
    range, as the losses do under ``jit``, so a traced free energy or hidden mean is never a wrong
    finite number (and :func:`jaxae.fit` names the check)."""
    if is_concrete(v) or spec.visible in _GAUSSIAN_VISIBLE:
        return value
    if spec.visible == "bernoulli":
        ok = (v >= 0) & (v <= 1)
    else:
        ok = (v >= 0) & (v == jnp.round(v))
    ok = jnp.all(ok, axis=-1)
    ok = ok.reshape(ok.shape + (1,) * (jnp.ndim(value) - ok.ndim))  # per-example vectors
    return jnp.where(ok, value, jnp.nan)


def _check_counts(values: np.ndarray, name: str, what: str) -> None:
    if values.size == 0:
        return
    if values.min() < 0:
        raise ValueError(
            f"{name}: expected non-negative integer {what}, got a minimum of {values.min():g}"
        )
    if np.any(values != np.round(values)):
        bad = values[values != np.round(values)].flat[0]
        raise ValueError(f"{name}: expected non-negative integer {what}, got {bad:g}")


def _check_hidden(h, spec: RBMSpec, name: str = "h", counts: bool = False) -> None:
    check_array(h, name, rank=(1, 2), last_dim=spec.n_hidden)
    if spec.hidden == "nrelu" and is_concrete(h):
        values = np.asarray(h)
        if counts:
            _check_counts(values, name, "counts of active copies for an nrelu hidden layer")
        elif values.size and values.min() < 0:
            raise ValueError(
                f"{name}: expected non-negative values for an nrelu hidden layer, got a "
                f"minimum of {values.min():g}"
            )
    if spec.hidden == "bernoulli" and is_concrete(h):
        values = np.asarray(h)
        lo, hi = float(values.min()), float(values.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name}: expected values in [0, 1] for a bernoulli hidden layer, "
                f"got values in [{lo:g}, {hi:g}]"
            )


def _check_batch_shapes(a, b, name_a: str, name_b: str) -> None:
    if tuple(a.shape[:-1]) != tuple(b.shape[:-1]):
        raise ValueError(
            f"{name_a} and {name_b}: expected the same batch shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def _check_k(k) -> None:
    check_positive_int(k, "k")


def _check_bool(value, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a Python bool (it is static), got {value!r}")


def _visible_total_counts(total_counts, spec: RBMSpec, batch_shape: tuple, dtype) -> Array | None:
    """Checks ``total_counts`` (required for softmax, rejected otherwise); returns ``D`` or None."""
    if spec.visible != "softmax":
        if total_counts is not None:
            raise ValueError(
                f"total_counts: only a softmax visible layer takes total_counts, "
                f"this RBM's visible layer is {spec.visible!r}"
            )
        return None
    if total_counts is None:
        raise ValueError(
            "total_counts: required for a softmax visible layer (the number of words D per "
            "document), got None"
        )
    total_counts = jnp.asarray(total_counts) if is_concrete(total_counts) else total_counts
    check_array(total_counts, "total_counts", rank=(0, len(batch_shape)), nonempty=False)
    if total_counts.ndim and tuple(total_counts.shape) != tuple(batch_shape):
        raise ValueError(
            f"total_counts: expected shape () or {tuple(batch_shape)}, got "
            f"{tuple(total_counts.shape)}"
        )
    if is_concrete(total_counts):
        _check_counts(np.asarray(total_counts), "total_counts", "document lengths")
    return jnp.broadcast_to(jnp.asarray(total_counts, dtype), batch_shape)


def _as_float(x, params: RBMParams) -> Array:
    return jnp.asarray(x, dtype=params.w.dtype)


# ------------------------------------------------------------------------------------------------
# The math (no checks). ``x`` is the hidden input vW + c, ``y`` the visible input W h + b_v.


def _bias(b: Array, batch_shape: tuple) -> Array:
    # Explicit broadcast: the library runs with jax_numpy_rank_promotion="raise".
    return jnp.broadcast_to(b, tuple(batch_shape) + b.shape)


def _effective_hidden_bias(b_hidden: Array, spec: RBMSpec, d: Array | None, batch_shape) -> Array:
    """``c``: ``b_hidden``, or ``D * b_hidden`` for replicated softmax; ``[..., n_hidden]``."""
    c = _bias(b_hidden, batch_shape)
    if spec.visible == "softmax":
        c = jnp.expand_dims(d, -1) * c
    return c


def _doc_lengths(v: Array, spec: RBMSpec) -> Array | None:
    return jnp.sum(v, axis=-1) if spec.visible == "softmax" else None


def _scaled_visible(params: RBMParams, v: Array, spec: RBMSpec) -> Array:
    """``v / σ²`` for learned-variance Gaussian units (Cho et al. 2011), else ``v``."""
    if spec.visible == "gaussian_learned_var":
        return v * _bias(jnp.exp(-params.log_var), v.shape[:-1])
    return v


def _hidden_input(params: RBMParams, v: Array, spec: RBMSpec) -> Array:
    c = _effective_hidden_bias(params.b_hidden, spec, _doc_lengths(v, spec), v.shape[:-1])
    return _scaled_visible(params, v, spec) @ params.w + c


def _visible_input(params: RBMParams, h: Array) -> Array:
    return h @ params.w.T + _bias(params.b_visible, h.shape[:-1])


def _hidden_mean_from_input(x: Array, spec: RBMSpec) -> Array:
    if spec.hidden == "nrelu":
        return jax.nn.relu(x)  # the deterministic pass of a rectified unit (module docstring)
    return jax.nn.sigmoid(x) if spec.hidden == "bernoulli" else x


def _ssu_log_sum(x: Array) -> Array:
    """``Σ_{i≥1} softplus(x - i + ½)`` elementwise: the step-sigmoid unit's ``-F`` term.

    Copies ``i < i0`` (``x - i + ½ > 24``) contribute ``softplus(u) = u`` to float precision
    and are summed in closed form; the ``2·24 + 1`` copies from ``i0`` on are summed exactly;
    the rest contribute ``< e^{-23}`` in all.
    """
    i0, u = _ssu_window(x)
    below = i0 - 1.0  # copies summed in closed form: Σ_{i<i0} (x + ½ - i)
    linear = below * (x + 0.5) - 0.5 * below * i0
    return linear + jnp.sum(jax.nn.softplus(u), axis=-1)


def _ssu_window(x: Array) -> tuple[Array, Array]:
    """``(i0, u)``: the first copy ``i0`` of the ``2·24 + 1`` around ``x`` (those below are on to
    float precision) and the window's inputs ``u = x - i + ½``, ``[..., 49]``."""
    i0 = jnp.maximum(1.0, jnp.floor(x + 0.5) - _SSU_WINDOW)
    offsets = jnp.arange(2 * _SSU_WINDOW + 1, dtype=x.dtype)
    return i0, jnp.expand_dims(x + 0.5 - i0, -1) - _bias(offsets, x.shape)


def _log_qpochhammer(n: Array) -> Array:
    """``log Π_{k=1}^{n} (1 - e^{-k})`` for non-negative integer-valued ``n`` (elementwise)."""
    k = jnp.arange(1, _SSU_QPOCH_TERMS + 1, dtype=n.dtype)
    terms = jnp.log1p(-jnp.exp(-k))
    active = jnp.expand_dims(n, -1) >= _bias(k, n.shape)
    return jnp.sum(jnp.where(active, _bias(terms, n.shape), 0.0), axis=-1)


def _sample_hidden_from_input(x: Array, key: PRNGKey, spec: RBMSpec) -> Array:
    if spec.hidden == "bernoulli":
        return jax.random.bernoulli(key, jax.nn.sigmoid(x)).astype(x.dtype)
    noise = jax.random.normal(key, x.shape, x.dtype)
    if spec.hidden == "nrelu":
        # Nair & Hinton (2010): max(0, x + N(0, sigmoid(x))), sigmoid(x) the noise variance.
        return jax.nn.relu(x + jnp.sqrt(jax.nn.sigmoid(x)) * noise)
    # Hinton & Salakhutdinov (2006): linear code units, state = mean + N(0, 1) noise.
    return x + noise


def _sample_hidden_exact(x: Array, key: PRNGKey, spec: RBMSpec) -> Array:
    """A draw from the model's exact ``p(h | v)``; differs from :func:`_sample_hidden_from_input`
    only for nrelu units, whose exact conditional is the step-sigmoid unit's: the number of active
    copies ``Σ_{i≥1} Bernoulli(sigmoid(x - i + ½))`` (independent copies; the energy's
    ``log Π (1 - e^{-k})`` term is what makes the count distribution this one). Copies below the
    ``2·24 + 1`` window around ``x`` are on with probability ``> 1 - e^{-24}``, those above it
    off with probability ``> 1 - e^{-24}``: counted as such. AIS needs this draw (each of its
    transitions must keep its intermediate RBM's distribution); Nair & Hinton's Gaussian
    approximation biased it by 0.2-0.4 nats on small RBMs.
    """
    if spec.hidden != "nrelu":
        return _sample_hidden_from_input(x, key, spec)
    i0, logits = _ssu_window(x)
    on = jax.random.bernoulli(key, jax.nn.sigmoid(logits))
    return (i0 - 1.0) + jnp.sum(on, axis=-1).astype(x.dtype)


def _visible_mean_from_input(y: Array, spec: RBMSpec, d: Array | None) -> Array:
    if spec.visible == "bernoulli":
        return jax.nn.sigmoid(y)
    if spec.visible in _GAUSSIAN_VISIBLE:
        return y  # Cho et al. (2011): the mean W h + b_v does not involve σ
    return jnp.expand_dims(d, -1) * jax.nn.softmax(y, axis=-1)


def _sample_visible_from_input(
    y: Array, key: PRNGKey, spec: RBMSpec, d: Array | None, log_var: Array | None = None
) -> Array:
    if spec.visible == "bernoulli":
        return jax.random.bernoulli(key, jax.nn.sigmoid(y)).astype(y.dtype)
    if spec.visible == "gaussian":
        return y + jax.random.normal(key, y.shape, y.dtype)
    if spec.visible == "gaussian_learned_var":
        std = _bias(jnp.exp(0.5 * log_var), y.shape[:-1])
        return y + std * jax.random.normal(key, y.shape, y.dtype)
    # D draws from softmax(y): counts sum to D exactly (a scan of binomials over the vocabulary).
    return jax.random.multinomial(key, d, jax.nn.softmax(y, axis=-1), dtype=y.dtype)


def _visible_energy(
    v: Array, b_visible: Array, spec: RBMSpec, log_var: Array | None = None
) -> Array:
    if spec.visible == "gaussian":
        return 0.5 * jnp.sum(jnp.square(v - _bias(b_visible, v.shape[:-1])), axis=-1)
    if spec.visible == "gaussian_learned_var":
        inv_var = _bias(jnp.exp(-log_var), v.shape[:-1])
        return 0.5 * jnp.sum(jnp.square(v - _bias(b_visible, v.shape[:-1])) * inv_var, axis=-1)
    return -(v @ b_visible)


def _hidden_energy(h: Array, c: Array, spec: RBMSpec) -> Array:
    if spec.hidden == "gaussian":
        return 0.5 * jnp.sum(jnp.square(h - c), axis=-1)
    if spec.hidden == "nrelu":
        # h active copies of a step-sigmoid unit, their arrangements summed (module docstring).
        return jnp.sum(-c * h + 0.5 * jnp.square(h) + _log_qpochhammer(h), axis=-1)
    return -jnp.sum(c * h, axis=-1)


def _hidden_log_sum(x: Array, c: Array, spec: RBMSpec) -> Array:
    """``log Σ_h exp(-E_h(h) + h·(x - c))`` summed over hidden units (x = vW + c)."""
    if spec.hidden == "bernoulli":
        # log(1 + e^x) as softplus: no overflow for large x.
        return jnp.sum(jax.nn.softplus(x), axis=-1)
    if spec.hidden == "nrelu":
        return jnp.sum(_ssu_log_sum(x), axis=-1)
    # ∫ exp(-½(h - c)² + (x - c) h) dh = √(2π) exp(½x² - ½c²).
    return jnp.sum(0.5 * jnp.square(x) - 0.5 * jnp.square(c) + 0.5 * _LOG_2PI, axis=-1)


def _visible_log_sum(
    y: Array, b_visible: Array, spec: RBMSpec, d: Array | None, log_var: Array | None = None
) -> Array:
    """``log Σ_v exp(-E_v(v) + v·(y - b_v))`` summed over visible units (y = W h + b_v).

    Learned variance: ``log ∫ exp(-(v - b)²/2σ² + v (y - b)/σ²) dv = (y² - b²)/2σ² + ½ log 2πσ²``.
    """
    if spec.visible == "bernoulli":
        return jnp.sum(jax.nn.softplus(y), axis=-1)
    if spec.visible == "gaussian":
        b = _bias(b_visible, y.shape[:-1])
        return jnp.sum(0.5 * jnp.square(y) - 0.5 * jnp.square(b) + 0.5 * _LOG_2PI, axis=-1)
    if spec.visible == "gaussian_learned_var":
        b = _bias(b_visible, y.shape[:-1])
        z = _bias(log_var, y.shape[:-1])
        return jnp.sum(
            0.5 * (jnp.square(y) - jnp.square(b)) * jnp.exp(-z) + 0.5 * (_LOG_2PI + z), axis=-1
        )
    # D ordered words, each from one shared softmax: (Σ_k e^{y_k})^D.
    return d * jax.nn.logsumexp(y, axis=-1)


def _energy(params: RBMParams, v: Array, h: Array, spec: RBMSpec) -> Array:
    c = _effective_hidden_bias(params.b_hidden, spec, _doc_lengths(v, spec), v.shape[:-1])
    interaction = jnp.sum((_scaled_visible(params, v, spec) @ params.w) * h, axis=-1)
    e_v = _visible_energy(v, params.b_visible, spec, params.log_var)
    return e_v + _hidden_energy(h, c, spec) - interaction


def _free_energy(params: RBMParams, v: Array, spec: RBMSpec) -> Array:
    c = _effective_hidden_bias(params.b_hidden, spec, _doc_lengths(v, spec), v.shape[:-1])
    x = _scaled_visible(params, v, spec) @ params.w + c
    e_v = _visible_energy(v, params.b_visible, spec, params.log_var)
    return e_v - _hidden_log_sum(x, c, spec)


def _gibbs_step(params, v, key, spec, d, use_means):
    """One sweep v -> h ~ p(h|v) -> v' ~ p(v|h) (or v' = E[v|h]); returns (v', E[v|h])."""
    key_h, key_v = jax.random.split(key)
    h = _sample_hidden_from_input(_hidden_input(params, v, spec), key_h, spec)
    y = _visible_input(params, h)
    v_mean = _visible_mean_from_input(y, spec, d)
    v_next = v_mean if use_means else _sample_visible_from_input(y, key_v, spec, d, params.log_var)
    return v_next, v_mean


def _run_chain(params, v0, key, spec, k, use_means):
    """k Gibbs sweeps from v0; returns the GibbsSample and the first sweep's visible mean."""
    d = _doc_lengths(v0, spec)
    keys = jax.random.split(key, k + 1)
    first = _gibbs_step(params, v0, keys[0], spec, d, use_means)

    def sweep(carry, step_key):
        v, _ = carry
        return _gibbs_step(params, v, step_key, spec, d, use_means), None

    (v, v_mean), _ = lax.scan(sweep, first, keys[1:k])
    x = _hidden_input(params, v, spec)
    h = _sample_hidden_from_input(x, keys[k], spec)
    return GibbsSample(v, h, v_mean, _hidden_mean_from_input(x, spec)), first[1]


def _contrastive_gradients(params, v_data, v_model, spec):
    """∇ [mean F(v_data) - mean F(v_model)]: the (negative log-likelihood) CD/PCD estimate."""
    v_model = lax.stop_gradient(v_model)

    def objective(p):
        f_data = _free_energy(p, v_data, spec)
        return jnp.mean(f_data) - jnp.mean(_free_energy(p, v_model, spec)), f_data

    return jax.grad(objective, has_aux=True)(params)


def _squared_error(v: Array, v_rec: Array) -> Array:
    return jnp.sum(jnp.square(v - v_rec), axis=-1)


# ------------------------------------------------------------------------------------------------
# Public API.


def init_rbm(
    key: PRNGKey,
    spec: RBMSpec,
    *,
    scale: float = 0.01,
    visible_data: ArrayLike | None = None,
    min_std: float = DEFAULT_MIN_STD,
) -> RBMParams:
    """Small random weights and base-rate visible biases.

    ``w ~ N(0, scale²)``, hidden biases 0. Visible biases are 0, or with ``visible_data`` the
    base rates of the data (Hinton 2010, §8): ``log(p / (1 - p))`` of the per-unit means for
    Bernoulli units (``p`` clipped to ``[1e-3, 1 - 1e-3]``), the per-unit means for Gaussian units,
    and the log word frequencies (clipped at ``1e-6``) for softmax units, so that the zero-weight
    model already matches the data's marginals.

    Args:
      key: PRNG key for the weights.
      spec: the RBM's sizes and unit types.
      scale: standard deviation of the initial weights (≥ 0).
      visible_data: optional ``[batch, n_visible]`` training data for the visible biases (and,
        for ``"gaussian_learned_var"``, ``log_var = log max(var, min_std²)`` of the data;
        without data ``log_var = 0``, i.e. unit variance for standardised data).
      min_std: floor on the initial standard deviations of learned-variance units (> 0). For
        standardised data prefer no ``visible_data`` (``log_var = 0``): constant features
        would start at ``σ = min_std`` and scale their hidden input by ``1/σ²``, which makes
        CD unstable at ordinary learning rates.

    Returns:
      ``RBMParams`` with ``w: [n_visible, n_hidden]``, ``b_visible: [n_visible]``,
      ``b_hidden: [n_hidden]``.

    References:
      Hinton (2010), A Practical Guide to Training Restricted Boltzmann Machines, §8.
    """
    _check_spec(spec)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)):
        raise TypeError(f"scale: expected a float, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale: expected a finite value ≥ 0, got {scale}")
    w = scale * jax.random.normal(key, (spec.n_visible, spec.n_hidden))
    b_visible = jnp.zeros((spec.n_visible,), w.dtype)
    if visible_data is not None:
        _check_visible(visible_data, spec, "visible_data")
        x = jnp.asarray(visible_data, w.dtype).reshape(-1, spec.n_visible)
        if spec.visible == "bernoulli":
            p = jnp.clip(jnp.mean(x, axis=0), _BASE_RATE_EPS, 1.0 - _BASE_RATE_EPS)
            b_visible = jnp.log(p) - jnp.log1p(-p)
        elif spec.visible == "gaussian":
            b_visible = jnp.mean(x, axis=0)
        elif spec.visible == "gaussian_learned_var":
            b_visible = jnp.mean(x, axis=0)
        else:
            counts = jnp.sum(x, axis=0)
            b_visible = jnp.log(jnp.clip(counts / jnp.maximum(jnp.sum(counts), 1.0), 1e-6))
    log_var = None
    if spec.visible == "gaussian_learned_var":
        if not (isinstance(min_std, (int, float)) and math.isfinite(min_std) and min_std > 0):
            raise ValueError(f"min_std: expected a finite value > 0, got {min_std!r}")
        log_var = jnp.zeros((spec.n_visible,), w.dtype)
        if visible_data is not None:
            var = jnp.maximum(jnp.var(x, axis=0), min_std**2)
            log_var = jnp.log(var)
    return RBMParams(w, b_visible, jnp.zeros((spec.n_hidden,), w.dtype), log_var)


def visible_std(params: RBMParams, *, spec: RBMSpec) -> Array:
    """Per-unit standard deviation of ``p(v | h)``: ``exp(log_var / 2)``, 1 for ``"gaussian"``.

    Args:
      params: the RBM's parameters.
      spec: sizes and unit types (a Gaussian visible layer).

    Returns:
      ``[n_visible]`` standard deviations ``σ_i``.
    """
    _check_params(params, spec)
    if spec.visible not in _GAUSSIAN_VISIBLE:
        raise ValueError(
            f"spec: visible_std needs a Gaussian visible layer, got {spec.visible!r} units"
        )
    if spec.visible == "gaussian":
        return jnp.ones((spec.n_visible,), params.w.dtype)
    return jnp.exp(0.5 * params.log_var)


def hidden_affine(params: RBMParams, *, spec: RBMSpec) -> tuple[Array, Array]:
    """``(w, b)`` with hidden input ``x = v @ w + b``: the encoder layer an unrolled RBM becomes.

    ``w = W / σ²[:, None]`` for ``"gaussian_learned_var"`` visible units (the variance folded
    into the rows); for ``"softmax"`` visible units (word counts), whose hidden input
    ``v W + D b_hidden`` scales the bias by the document length ``D = Σ v``, ``w = W + 1 b^T``
    and ``b = 0`` (the length scaling folded in, exact for every count vector); ``W`` and
    ``b_hidden`` otherwise. Apply the hidden type's deterministic nonlinearity after it:
    sigmoid (``"bernoulli"``), identity (``"gaussian"``), ReLU (``"nrelu"``), which is what
    ``hidden_mean`` computes. The decoder is ``(W^T, b_visible)`` (the mean of ``p(v | h)``
    does not involve ``σ``; a softmax layer's is the softmax of it).

    Args:
      params: the RBM's parameters.
      spec: sizes and unit types.

    Returns:
      ``(w: [n_visible, n_hidden], b: [n_hidden])``.
    """
    _check_params(params, spec)
    w, b = params.w, params.b_hidden
    if spec.visible == "softmax":
        return w + b[None, :], jnp.zeros_like(b)
    if spec.visible == "gaussian_learned_var":
        w = w * jnp.exp(-params.log_var)[:, None]
    return w, b


def energy(params: RBMParams, v: ArrayLike, h: ArrayLike, *, spec: RBMSpec) -> Array:
    """Energy ``E(v, h) = E_v(v) + E_h(h) - vᵀ W h`` of joint states (table in the module doc).

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) visible states: in [0, 1] for Bernoulli,
        real for Gaussian, word counts for softmax.
      h: ``[batch, n_hidden]`` hidden states, the same batch shape (``"nrelu"``: non-negative
        integer numbers of active step-sigmoid copies, see the module docstring).
      spec: sizes and unit types.

    Returns:
      ``[batch]`` energies; under ``jit``, NaN for an example whose ``v`` leaves the visible
      layer's range (outside ``jit`` that is a ``ValueError``).

    References:
      Hinton (2010), A Practical Guide to Training RBMs, eq. 1 and §13 (Gaussian units).
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2 (energy with the ``D·b_hidden`` term).
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    _check_hidden(h, spec, counts=True)
    _check_batch_shapes(v, h, "v", "h")
    value = _energy(params, _as_float(v, params), _as_float(h, params), spec)
    return _nan_rows_unless_valid_visible(value, v, spec)


def free_energy(params: RBMParams, v: ArrayLike, *, spec: RBMSpec) -> Array:
    """Free energy ``F(v) = -log Σ_h exp(-E(v, h))``, hidden units marginalised analytically.

    Bernoulli hidden: ``F(v) = E_v(v) - Σ_j softplus(x_j)``; Gaussian (linear) hidden:
    ``F(v) = E_v(v) - Σ_j (½x_j² - ½c_j² + ½ log 2π)``; with ``x = vW + c``, ``E_v`` as in the
    module table (``½‖v - b_v‖²`` for Gaussian visible units).

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) visible data.
      spec: sizes and unit types.

    Returns:
      ``[batch]`` free energies (``p(v) = exp(-F(v)) / Z``); under ``jit``, NaN for an example
      outside the visible layer's range (outside ``jit`` that is a ``ValueError``).

    References:
      Hinton (2010), A Practical Guide to Training RBMs, §16.1 (free energy of a visible vector).
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2.
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    return _nan_rows_unless_valid_visible(_free_energy(params, _as_float(v, params), spec), v, spec)


def hidden_mean(params: RBMParams, v: ArrayLike, *, spec: RBMSpec) -> Array:
    """``E[h | v]``: ``sigmoid(x)`` (Bernoulli), ``x`` (linear) or ``max(0, x)`` (nrelu).

    ``x = vW + c`` (``(v / σ²) W + c`` for learned-variance visible units), ``c = b_hidden``,
    or ``D · b_hidden`` for replicated softmax (``D = Σ_i v_i``). For nrelu units this is the
    deterministic pass ``max(0, x)`` that a ReLU encoder computes and greedy stacking feeds to
    the next layer, not the step-sigmoid mean ``Σ_i sigmoid(x - i + ½) ≈ softplus(x)`` that
    the CD gradients use (module docstring).

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) visible data.
      spec: sizes and unit types.

    Returns:
      ``[batch, n_hidden]`` hidden means (probabilities for Bernoulli units).

    References:
      Hinton (2010), A Practical Guide to Training RBMs, eq. 7.
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2 (hidden input scaled by ``D``).
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    mean = _hidden_mean_from_input(_hidden_input(params, _as_float(v, params), spec), spec)
    return _nan_rows_unless_valid_visible(mean, v, spec)


def sample_hidden(params: RBMParams, v: ArrayLike, key: PRNGKey, *, spec: RBMSpec) -> Array:
    """Draws ``h ~ p(h | v)``: binary states, ``x + N(0, 1)`` for linear units, or
    ``max(0, x + N(0, sigmoid(x)))`` for nrelu units (Nair & Hinton 2010).

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) visible data.
      key: PRNG key.
      spec: sizes and unit types.

    Returns:
      ``[batch, n_hidden]`` hidden states.
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    x = _hidden_input(params, _as_float(v, params), spec)
    return _nan_rows_unless_valid_visible(_sample_hidden_from_input(x, key, spec), v, spec)


def visible_mean(
    params: RBMParams,
    h: ArrayLike,
    *,
    spec: RBMSpec,
    total_counts: ArrayLike | None = None,
) -> Array:
    """``E[v | h]``: ``sigmoid(y)``, ``y``, or ``D · softmax(y)``, with ``y = W h + b_v``.

    Args:
      params: the RBM's parameters.
      h: ``[batch, n_hidden]`` (or ``[n_hidden]``) hidden states.
      spec: sizes and unit types.
      total_counts: softmax visible only (required there): words per document ``D``, a scalar
        or ``[batch]`` of non-negative integers.

    Returns:
      ``[batch, n_visible]`` visible means (expected word counts for softmax).

    References:
      Hinton (2010), A Practical Guide to Training RBMs, eq. 8 and §13.
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2.
    """
    _check_params(params, spec)
    _check_hidden(h, spec)
    h = _as_float(h, params)
    d = _visible_total_counts(total_counts, spec, h.shape[:-1], h.dtype)
    return _visible_mean_from_input(_visible_input(params, h), spec, d)


def sample_visible(
    params: RBMParams,
    h: ArrayLike,
    key: PRNGKey,
    *,
    spec: RBMSpec,
    total_counts: ArrayLike | None = None,
) -> Array:
    """Draws ``v ~ p(v | h)``: binary states, ``E[v | h] + N(0, 1)``, or ``D`` words.

    Softmax visible units draw ``D`` words from ``softmax(W h + b_v)`` with
    ``jax.random.multinomial`` (a scan over the vocabulary of binomial draws): the counts sum to
    ``D`` exactly and there is no cap on ``D``.

    Args:
      params: the RBM's parameters.
      h: ``[batch, n_hidden]`` (or ``[n_hidden]``) hidden states.
      key: PRNG key.
      spec: sizes and unit types.
      total_counts: softmax visible only (required there): words per document ``D``, a scalar
        or ``[batch]`` of non-negative integers.

    Returns:
      ``[batch, n_visible]`` visible states (word counts for softmax, as floats).
    """
    _check_params(params, spec)
    _check_hidden(h, spec)
    h = _as_float(h, params)
    d = _visible_total_counts(total_counts, spec, h.shape[:-1], h.dtype)
    return _sample_visible_from_input(_visible_input(params, h), key, spec, d, params.log_var)


def gibbs_chain(
    params: RBMParams,
    v0: ArrayLike,
    key: PRNGKey,
    *,
    spec: RBMSpec,
    k: int,
    use_means: bool = False,
) -> GibbsSample:
    """Runs ``k`` block-Gibbs sweeps ``v → h ~ p(h|v) → v ~ p(v|h)`` from ``v0`` (``lax.scan``).

    Every chain in the batch is independent; the function is ``vmap``-able over chains (one
    key per chain). Softmax chains keep each document's length ``D = Σ_i v0_i``.

    Args:
      params: the RBM's parameters.
      v0: ``[batch, n_visible]`` (or ``[n_visible]``) starting states.
      key: PRNG key (split into one key per sweep plus one for the final hidden sample).
      spec: sizes and unit types.
      k: number of sweeps (≥ 1), static.
      use_means: if True the visible update is ``E[v | h]`` instead of a sample (mean-field
        reconstructions, no longer an exact sampler); hidden states are always sampled. Static.

    Returns:
      ``GibbsSample(v, h, v_mean, h_mean)``: the final visible state ``v_k``, a hidden sample
      from ``p(h | v_k)``, the mean ``E[v | h_{k-1}]`` and ``E[h | v_k]``.
    """
    _check_params(params, spec)
    _check_visible(v0, spec, "v0")
    _check_k(k)
    _check_bool(use_means, "use_means")
    chain, _ = _run_chain(params, _as_float(v0, params), key, spec, k, use_means)
    return chain


def cd_gradients(
    params: RBMParams,
    v: ArrayLike,
    key: PRNGKey,
    *,
    spec: RBMSpec,
    k: int = 1,
    use_means: bool = True,
) -> tuple[RBMParams, Metrics]:
    """CD-k estimate of the gradient of the negative mean log-likelihood (descend on it).

    ``grads = ∇θ [mean F(v) - mean F(v_k)]``: the positive phase uses the hidden probabilities
    ``E[h | v]``; the chain starts at the data, samples hidden states at every sweep, and the
    negative phase uses ``v_k`` with ``E[h | v_k]`` (Hinton 2010, §3). By default the visible
    reconstructions are the conditional means ``E[v | h]`` (probabilities, ``D·softmax`` for
    word counts), as the practical guide (§3.2) and Hinton & Salakhutdinov's code recommend for
    less sampling noise; ``use_means=False`` samples them, which long chains (large ``k``) need to
    approach the model distribution. Add weight decay etc. with Optax (``optax.chain``).

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` data (Bernoulli: in [0, 1]; softmax: word counts).
      key: PRNG key for the chain.
      spec: sizes and unit types.
      k: Gibbs sweeps (≥ 1), static.
      use_means: visible reconstructions are means (True) or samples (False), static.

    Returns:
      ``(grads, metrics)``: ``grads`` an ``RBMParams`` of the same shapes (all NaN when a traced
      ``v`` is outside the visible layer's range; concrete data raises); ``metrics`` with
      ``reconstruction_error`` (batch mean of the squared error, summed over features, between
      ``v`` and the first sweep's visible mean ``E[v | h_0]``, ``h_0 ~ p(h|v)``) and
      ``free_energy`` (batch mean of ``F(v)``: watch it against held-out data for overfitting).

    References:
      Hinton (2002), Training Products of Experts by Minimizing Contrastive Divergence.
      Hinton (2010), A Practical Guide to Training RBMs, §3.
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2 (CD for word counts).
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    _check_k(k)
    _check_bool(use_means, "use_means")
    raw = v
    v = _as_float(v, params)
    chain, first_mean = _run_chain(params, v, key, spec, k, use_means)
    grads, f_data = _contrastive_gradients(params, v, chain.v, spec)
    metrics = {
        "reconstruction_error": jnp.mean(_squared_error(v, first_mean)),
        "free_energy": jnp.mean(f_data),
    }
    return _nan_unless_valid_visible((grads, metrics), raw, spec)


def pcd_gradients(
    params: RBMParams,
    chains: ArrayLike,
    v: ArrayLike,
    key: PRNGKey,
    *,
    spec: RBMSpec,
    k: int = 1,
) -> tuple[RBMParams, Array, Metrics]:
    """Persistent-CD gradient of the negative mean log-likelihood (Tieleman 2008).

    The negative phase comes from persistent fantasy chains advanced ``k`` sampled Gibbs sweeps
    (visible states are sampled, never means, so the chains keep sampling the model):
    ``grads = ∇θ [mean F(v) - mean F(chains_k)]``. Initialise ``chains`` from data or from
    ``sample_visible``; softmax chains keep their own document lengths.

    Args:
      params: the RBM's parameters.
      chains: ``[n_chains, n_visible]`` current fantasy states.
      v: ``[batch, n_visible]`` data.
      key: PRNG key.
      spec: sizes and unit types.
      k: Gibbs sweeps per call (≥ 1), static.

    Returns:
      ``(grads, new_chains, metrics)``: ``new_chains: [n_chains, n_visible]``; ``metrics`` as in
      ``cd_gradients`` (the reconstruction is one sweep from the data).

    References:
      Tieleman (2008), Training Restricted Boltzmann Machines using Approximations to the
      Likelihood Gradient, ICML.
    """
    _check_params(params, spec)
    _check_visible(chains, spec, "chains")
    _check_visible(v, spec, "v")
    _check_k(k)
    raw = v
    v, chains = _as_float(v, params), _as_float(chains, params)
    key_chain, key_recon = jax.random.split(key)
    chain, _ = _run_chain(params, chains, key_chain, spec, k, False)
    _, first_mean = _gibbs_step(params, v, key_recon, spec, _doc_lengths(v, spec), True)
    grads, f_data = _contrastive_gradients(params, v, chain.v, spec)
    metrics = {
        "reconstruction_error": jnp.mean(_squared_error(v, first_mean)),
        "free_energy": jnp.mean(f_data),
    }
    grads, metrics = _nan_unless_valid_visible((grads, metrics), raw, spec)
    return grads, chain.v, metrics


def reconstruction_error(params: RBMParams, v: ArrayLike, *, spec: RBMSpec) -> Array:
    """Squared error of the deterministic up-down pass ``v → E[h|v] → E[v|E[h|v]]``.

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) data.
      spec: sizes and unit types.

    Returns:
      ``[batch]`` squared error summed over visible units (softmax: against ``D·softmax``).
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    v = _as_float(v, params)
    h = _hidden_mean_from_input(_hidden_input(params, v, spec), spec)
    v_rec = _visible_mean_from_input(_visible_input(params, h), spec, _doc_lengths(v, spec))
    return _nan_rows_unless_valid_visible(_squared_error(v, v_rec), v, spec)


def _logsumexp_over_binary_states(fn, n_units: int, width: int, dtype) -> Array:
    """``logsumexp`` of ``fn(states)`` over all ``2**n_units`` binary states, chunk by chunk."""
    chunk_bits = min(n_units, max(0, _CHUNK_LOG2_ELEMENTS - max(width - 1, 0).bit_length()))
    chunk = 2**chunk_bits
    n_chunks = 2**n_units // chunk
    bits = jnp.arange(n_units, dtype=jnp.int32)

    def chunk_logsumexp(i):
        index = i * chunk + jnp.arange(chunk, dtype=jnp.int32)
        states = ((index[:, None] >> bits[None, :]) & 1).astype(dtype)
        return jax.nn.logsumexp(fn(states))

    return jax.nn.logsumexp(lax.map(chunk_logsumexp, jnp.arange(n_chunks, dtype=jnp.int32)))


@functools.partial(jax.jit, static_argnames=("spec", "side"))
def _exact_log_partition(params, total_counts, *, spec, side):
    dtype = params.w.dtype
    width = spec.n_visible + spec.n_hidden
    if side == "visible":
        return _logsumexp_over_binary_states(
            lambda v: -_free_energy(params, v, spec), spec.n_visible, width, dtype
        )

    def neg_hidden_free_energy(h):
        batch = h.shape[:-1]
        d = jnp.broadcast_to(total_counts, batch) if spec.visible == "softmax" else None
        c = _effective_hidden_bias(params.b_hidden, spec, d, batch)
        y = _visible_input(params, h)
        log_sum = _visible_log_sum(y, params.b_visible, spec, d, params.log_var)
        return log_sum - _hidden_energy(h, c, spec)

    return _logsumexp_over_binary_states(neg_hidden_free_energy, spec.n_hidden, width, dtype)


def _enumerable_sides(spec: RBMSpec) -> dict[str, int]:
    sides = {}
    if spec.visible == "bernoulli":
        sides["visible"] = spec.n_visible
    if spec.hidden == "bernoulli":
        sides["hidden"] = spec.n_hidden
    return sides


def _softmax_total_counts(total_counts, spec: RBMSpec, dtype) -> Array:
    if spec.visible != "softmax":
        if total_counts is not None:
            raise ValueError(
                f"total_counts: only a softmax visible layer takes total_counts, "
                f"this RBM's visible layer is {spec.visible!r}"
            )
        return jnp.zeros((), dtype)
    if total_counts is None:
        raise ValueError(
            "total_counts: required for a softmax visible layer (Z depends on the document "
            "length D), got None"
        )
    check_positive_int(total_counts, "total_counts")
    return jnp.asarray(total_counts, dtype)


def exact_log_partition(
    params: RBMParams,
    *,
    spec: RBMSpec,
    side: str | None = None,
    total_counts: int | None = None,
) -> Array:
    """Exact ``log Z`` by enumerating every state of one binary layer.

    Enumerating the visible layer sums ``exp(-F(v))`` (any hidden type); enumerating the hidden
    layer integrates the visible layer analytically: ``Σ_v e^{v·y}`` = ``Π(1 + e^y)`` for
    Bernoulli, the Gaussian integral ``(2π)^{n/2} exp(½‖y‖² - ½‖b_v‖²)`` for Gaussian units, and
    ``(Σ_k e^{y_k})^D`` for replicated softmax with ``y = W h + b_v``. States are enumerated in
    chunks (``lax.map``), so ``2**20`` states fit in memory. Differentiable in ``params``.

    Args:
      params: the RBM's parameters.
      spec: sizes and unit types.
      side: ``"visible"`` or ``"hidden"`` to force the enumerated layer; by default the smaller
        Bernoulli layer.
      total_counts: softmax visible only (required there): the document length ``D``; ``Z``
        normalises over ordered sequences of ``D`` words.

    Returns:
      scalar ``log Z``.

    Raises:
      ValueError: if no layer can be enumerated (both Gaussian/softmax) or the enumerated layer
        has more than 20 units.

    References:
      Hinton (2010), A Practical Guide to Training RBMs, §16.1.
      Salakhutdinov & Hinton (2009), Replicated Softmax, §2.
    """
    _check_params(params, spec)
    sides = _enumerable_sides(spec)
    if side is None:
        if not sides:
            raise ValueError(
                f"exact_log_partition: cannot enumerate a {spec.visible}-visible, "
                f"{spec.hidden}-hidden RBM: one layer must be bernoulli"
            )
        side = min(sides, key=sides.get)
    elif side not in ("visible", "hidden"):
        raise ValueError(f"side: expected 'visible', 'hidden' or None, got {side!r}")
    elif side not in sides:
        unit = spec.visible if side == "visible" else spec.hidden
        raise ValueError(
            f"side: cannot enumerate the {side} layer: its units are {unit!r}, not 'bernoulli'"
        )
    if sides[side] > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"exact_log_partition: the {side} layer has {sides[side]} units; enumerating "
            f"2**{sides[side]} states needs at most {MAX_ENUMERATED_UNITS} units "
            "(use ais_log_partition)"
        )
    d = _softmax_total_counts(total_counts, spec, params.w.dtype)
    return _exact_log_partition(params, d, spec=spec, side=side)


def _default_betas(num_betas: int) -> np.ndarray:
    """Salakhutdinov & Murray's 500/4000/10000 spacing on [0, .5), [.5, .9), [.9, 1], rescaled."""
    if num_betas < 100:
        return np.linspace(0.0, 1.0, num_betas)
    n1 = round(num_betas * 500 / 14500)
    n2 = round(num_betas * 4000 / 14500)
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1.0, num_betas - n1 - n2),
        ]
    )


def _base_log_partition(base_bias, spec: RBMSpec, d, log_var) -> Array:
    """``log Z`` of the zero-weight, zero-hidden-bias base RBM (same visible variances)."""
    if spec.visible == "bernoulli":
        log_z = jnp.sum(jax.nn.softplus(base_bias))
    elif spec.visible == "gaussian":
        log_z = 0.5 * spec.n_visible * _LOG_2PI
    elif spec.visible == "gaussian_learned_var":
        log_z = jnp.sum(0.5 * (_LOG_2PI + log_var))
    else:
        log_z = d * jax.nn.logsumexp(base_bias)
    if spec.hidden == "nrelu":
        per_hidden = _ssu_log_sum(jnp.zeros((), base_bias.dtype))
    else:
        per_hidden = math.log(2.0) if spec.hidden == "bernoulli" else 0.5 * _LOG_2PI
    return log_z + spec.n_hidden * per_hidden


@functools.partial(jax.jit, static_argnames=("spec", "num_chains"))
def _ais(params, key, betas, base_bias, total_counts, *, spec, num_chains):
    batch = (num_chains,)
    d = jnp.broadcast_to(total_counts, batch) if spec.visible == "softmax" else None
    c = _effective_hidden_bias(params.b_hidden, spec, d, batch)
    key_init, key_scan = jax.random.split(key)
    log_var = params.log_var
    v = _sample_visible_from_input(_bias(base_bias, batch), key_init, spec, d, log_var)

    # The intermediate distribution at β is itself an RBM: (βW, (1-β) b_A + β b_v, β b_hidden).
    def visible_bias(beta):
        return (1.0 - beta) * base_bias + beta * params.b_visible

    def neg_free_energy(v, vw, beta):
        return _hidden_log_sum(beta * (vw + c), beta * c, spec) - _visible_energy(
            v, visible_bias(beta), spec, log_var
        )

    def anneal(carry, inputs):
        v, log_w = carry
        beta_prev, beta, step_key = inputs
        vw = _scaled_visible(params, v, spec) @ params.w
        log_w = log_w + neg_free_energy(v, vw, beta) - neg_free_energy(v, vw, beta_prev)
        key_h, key_v = jax.random.split(step_key)
        h = _sample_hidden_exact(beta * (vw + c), key_h, spec)
        y = beta * (h @ params.w.T) + _bias(visible_bias(beta), batch)
        return (_sample_visible_from_input(y, key_v, spec, d, log_var), log_w), None

    keys = jax.random.split(key_scan, betas.shape[0] - 1)
    log_w0 = jnp.zeros(batch, params.w.dtype)
    (_, log_w), _ = lax.scan(anneal, (v, log_w0), (betas[:-1], betas[1:], keys))

    log_z0 = _base_log_partition(base_bias, spec, total_counts, log_var)
    log_mean_w = jax.nn.logsumexp(log_w) - math.log(num_chains)
    log_z = log_z0 + log_mean_w
    # σ of the estimate of Z relative to Z: std(w) / (mean(w) √M), from normalised weights.
    relative = jnp.exp(log_w - log_mean_w)
    sigma = jnp.std(relative) / math.sqrt(num_chains)
    # log1p(-3σ) is NaN for 3σ > 1; that branch is discarded by the where.
    lower = jnp.where(3.0 * sigma < 1.0, log_z + jnp.log1p(-3.0 * sigma), -jnp.inf)
    stats = {
        "log_weights": log_w,
        "log_weights_std": jnp.std(log_w),
        "log_z_lower": lower,
        "log_z_upper": log_z + jnp.log1p(3.0 * sigma),
        "log_z_base": log_z0,
    }
    return log_z, stats


def ais_log_partition(
    params: RBMParams,
    key: PRNGKey,
    *,
    spec: RBMSpec,
    num_chains: int = 100,
    num_betas: int = 10_000,
    betas: ArrayLike | None = None,
    base_visible_bias: ArrayLike | None = None,
    total_counts: int | None = None,
) -> tuple[Array, Metrics]:
    """Annealed importance sampling estimate of ``log Z`` (Salakhutdinov & Murray 2008).

    Anneals from a base-rate RBM A (zero weights, visible biases ``b_A``, zero hidden biases;
    ``log Z_A`` in closed form) to the model B through the RBMs ``(βW, (1-β) b_A + β b_v, β c)``,
    one Gibbs sweep per β (``lax.scan``). ``log Z ≈ log Z_A + log mean_m w_m`` with log weights
    ``log w_m = Σ_k F_{β_{k-1}}(v_k) - F_{β_k}(v_k)``. The estimate of ``Z`` is unbiased, so
    ``log Z`` tends to be underestimated (by Jensen) when the weights have a large spread; check
    ``log_weights_std`` and the ±3σ bracket. Works for every unit type (softmax: one document
    length ``D`` for all chains; nrelu hidden units are sampled exactly, as step-sigmoid units).

    Args:
      params: the RBM's parameters.
      key: PRNG key.
      spec: sizes and unit types.
      num_chains: independent annealing runs ``M`` (static).
      num_betas: number of inverse temperatures when ``betas`` is None: the paper's
        500/4000/10000 spacing on [0, 0.5), [0.5, 0.9), [0.9, 1] rescaled to ``num_betas`` points
        (linear below 100 points).
      betas: ``[num_betas]`` explicit schedule from 0 to 1, non-decreasing; overrides
        ``num_betas``.
      base_visible_bias: ``[n_visible]`` visible biases ``b_A`` of the base RBM (e.g. the data's
        base rates, as ``init_rbm(..., visible_data=...)`` computes); default: the model's own.
      total_counts: softmax visible only (required there): the document length ``D``.

    Returns:
      ``(log_z, stats)``: scalar estimate; ``stats`` with ``log_weights: [num_chains]``,
      ``log_weights_std``, ``log_z_lower`` / ``log_z_upper`` (``log(Ẑ ∓ 3σ̂)``, σ̂ the standard
      error of ``Ẑ``; the lower end is ``-inf`` when ``3σ̂ ≥ Ẑ``) and ``log_z_base``.

    References:
      Neal (2001), Annealed Importance Sampling. Statistics and Computing 11.
      Salakhutdinov & Murray (2008), On the Quantitative Analysis of Deep Belief Networks, ICML
      (AIS for RBMs, the base-rate model, the 14,500-β schedule).
    """
    _check_params(params, spec)
    check_positive_int(num_chains, "num_chains")
    dtype = params.w.dtype
    if betas is None:
        check_positive_int(num_betas, "num_betas")
        if num_betas < 2:
            raise ValueError(f"num_betas: expected at least 2, got {num_betas}")
        betas = _default_betas(num_betas)
    else:
        betas = np.asarray(betas) if is_concrete(betas) else betas
        check_array(betas, "betas", rank=1)
        if betas.shape[0] < 2:
            raise ValueError(f"betas: expected at least 2 values, got shape {tuple(betas.shape)}")
        if is_concrete(betas):
            values = np.asarray(betas, dtype=np.float64)
            if values[0] != 0.0 or values[-1] != 1.0 or np.any(np.diff(values) < 0):
                raise ValueError(
                    f"betas: expected a non-decreasing schedule from 0 to 1, got "
                    f"{values[0]:g} ... {values[-1]:g}"
                )
    if base_visible_bias is None:
        base_visible_bias = params.b_visible
    else:
        if is_concrete(base_visible_bias):
            base_visible_bias = np.asarray(base_visible_bias)
        check_array(base_visible_bias, "base_visible_bias", rank=1, last_dim=spec.n_visible)
    d = _softmax_total_counts(total_counts, spec, dtype)
    return _ais(
        params,
        key,
        jnp.asarray(betas, dtype),
        jnp.asarray(base_visible_bias, dtype),
        d,
        spec=spec,
        num_chains=int(num_chains),
    )


def log_likelihood(params: RBMParams, v: ArrayLike, log_z: ArrayLike, *, spec: RBMSpec) -> Array:
    """``log p(v) = -F(v) - log Z`` (a log density for Gaussian visible units).

    For replicated softmax this is the log-probability of the document as an ordered sequence
    of ``D`` words (the paper's convention, with ``log Z`` for that ``D``); add
    ``log(D! / Π_i v_i!)`` for the probability of the bag of counts.

    Args:
      params: the RBM's parameters.
      v: ``[batch, n_visible]`` (or ``[n_visible]``) data.
      log_z: scalar ``log Z`` (``exact_log_partition`` or ``ais_log_partition``), or ``[batch]``.
      spec: sizes and unit types.

    Returns:
      ``[batch]`` log-likelihoods in nats.

    References:
      Salakhutdinov & Murray (2008), On the Quantitative Analysis of Deep Belief Networks.
    """
    _check_params(params, spec)
    _check_visible(v, spec, "v")
    log_z = jnp.asarray(log_z) if is_concrete(log_z) else log_z
    check_array(log_z, "log_z", rank=(0, v.ndim - 1))
    if log_z.ndim and tuple(log_z.shape) != tuple(v.shape[:-1]):
        raise ValueError(
            f"log_z: expected shape () or {tuple(v.shape[:-1])}, got {tuple(log_z.shape)}"
        )
    value = -_free_energy(params, _as_float(v, params), spec) - log_z
    return _nan_rows_unless_valid_visible(value, v, spec)


# ------------------------------------------------------------------------------------------------
# Standardisation of real-valued data for Gaussian visible units.


class Standardization(NamedTuple):
    """Per-feature statistics of the training data (a PyTree).

    Attributes:
      mean: ``[n_features]`` training means.
      std: ``[n_features]`` training standard deviations, floored at ``min_std``.
    """

    mean: Array
    std: Array


def fit_standardization(x: ArrayLike, *, min_std: float = DEFAULT_MIN_STD) -> Standardization:
    """Per-feature mean and standard deviation of ``x`` (fit on the training split only).

    Constant features (MNIST's border pixels) have ``std = 0``; their ``std`` is floored at
    ``min_std`` (default ``1e-2``, in the data's units: 1 % of the range of data in [0, 1];
    rescale 0-255 data first or pass a larger floor), so they standardise to 0 exactly and a
    rare non-zero test value stays bounded by ``|x - mean| / min_std``. ``min_std=0`` turns the
    floor off and raises on constant features instead.

    Args:
      x: ``[n_examples, n_features]`` finite training data (at least 2 examples).
      min_std: floor on the standard deviation (≥ 0).

    Returns:
      ``Standardization(mean, std)``, both ``[n_features]``.

    Raises:
      ValueError: for NaN/inf data, a wrong rank, fewer than 2 examples, a negative or non-finite
        ``min_std``, or (``min_std=0``) a zero-variance feature, named by index.
    """
    check_array(x, "x", rank=2)
    if isinstance(min_std, bool) or not isinstance(min_std, (int, float, np.floating)):
        raise TypeError(f"min_std: expected a float, got {type(min_std).__name__}")
    if not (math.isfinite(min_std) and min_std >= 0):
        raise ValueError(f"min_std: expected a finite value ≥ 0, got {min_std}")
    if x.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 examples to fit a std, got shape {x.shape}")
    values = np.asarray(x, np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    if min_std == 0 and np.any(std == 0):
        constant = np.flatnonzero(std == 0)
        raise ValueError(
            f"x: {constant.size} features have zero variance (indices {constant[:10].tolist()}"
            f"{' ...' if constant.size > 10 else ''}); pass min_std > 0 to floor their std "
            "(they then standardise to 0)"
        )
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else np.float32
    return Standardization(jnp.asarray(mean, dtype), jnp.asarray(np.maximum(std, min_std), dtype))


def _check_standardization(x, stats, name: str) -> None:
    if not isinstance(stats, Standardization):
        raise TypeError(f"stats: expected a Standardization, got {type(stats).__name__}")
    check_array(stats.mean, "stats.mean", rank=1)
    check_array(stats.std, "stats.std", rank=1, last_dim=stats.mean.shape[0])
    check_array(x, name, rank=(1, 2), last_dim=stats.mean.shape[0])
    if is_concrete(stats.std) and np.any(np.asarray(stats.std) <= 0):
        raise ValueError(
            f"stats.std: expected positive standard deviations, got a minimum of "
            f"{float(np.min(stats.std)):g}"
        )


def standardize(x: ArrayLike, stats: Standardization) -> Array:
    """``(x - mean) / std`` per feature.

    Args:
      x: ``[batch, n_features]`` (or ``[n_features]``) data.
      stats: from ``fit_standardization`` on the training split.

    Returns:
      Standardised data of ``x``'s shape.
    """
    _check_standardization(x, stats, "x")
    batch = tuple(x.shape[:-1])
    return (jnp.asarray(x) - _bias(stats.mean, batch)) / _bias(stats.std, batch)


def unstandardize(z: ArrayLike, stats: Standardization) -> Array:
    """``z * std + mean`` per feature: the inverse of ``standardize`` (e.g. for reconstructions).

    Args:
      z: ``[batch, n_features]`` (or ``[n_features]``) standardised values.
      stats: the ``Standardization`` they were made with.

    Returns:
      Data in the original units, of ``z``'s shape.
    """
    _check_standardization(z, stats, "z")
    batch = tuple(z.shape[:-1])
    return jnp.asarray(z) * _bias(stats.std, batch) + _bias(stats.mean, batch)
