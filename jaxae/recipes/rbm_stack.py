"""Greedy RBM pretraining (Hinton & Salakhutdinov 2006): a stack of RBMs trained one layer at a
time, each on the hidden probabilities of the layer below, every layer a call of
:func:`jaxae.fit` with a contrastive-divergence ``grad_fn`` and an Optax transformation::

    stack = pretrain_rbm_stack(x, (784, 1000, 500, 250, 30), key=key)
    model, params = jaxae.unroll(stack)     # the deep autoencoder, to fine-tune through fit

References:
  Hinton & Salakhutdinov, Reducing the Dimensionality of Data with Neural Networks, Science
  2006 (supporting online material: the recipe of :func:`hinton_rbm_optimizer`).
  Tieleman, Training Restricted Boltzmann Machines using Approximations to the Likelihood
  Gradient, ICML 2008 (persistent CD).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae import rbm
from jaxae.recipes.layers import PretrainedLayer, check_layer_fingerprint, encode_layers
from jaxae.training import fit
from jaxae.typing import ArrayLike, PRNGKey
from jaxae.validation import check_array, check_counts, check_positive_int

__all__ = [
    "RBMConfig",
    "ContrastiveDivergence",
    "hinton_rbm_optimizer",
    "pretrain_rbm_stack",
    "rbm_optimizer",
    "train_rbm",
]


@dataclasses.dataclass(frozen=True)
class RBMConfig:
    """How one RBM layer is trained (defaults: Hinton & Salakhutdinov 2006).

    Frozen and hashable; the same config (and optimizer object) on the same shapes reuses the
    training loop's compilation.

    Attributes:
      epochs: passes over the data (the paper: 50; 20 already reaches its error).
      batch_size: mini-batch size (100).
      k: Gibbs sweeps of CD-k (1).
      persistent: persistent CD (Tieleman 2008), one fantasy chain per batch example.
      optimizer: an Optax transformation for this layer; None: :func:`hinton_rbm_optimizer`
        for the layer's unit types and the data's batches per epoch.
    """

    epochs: int = 20
    batch_size: int = 100
    k: int = 1
    persistent: bool = False
    optimizer: optax.GradientTransformation | None = None

    def __post_init__(self):
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.k, "k")
        if self.optimizer is not None and not isinstance(
            self.optimizer, optax.GradientTransformation
        ):
            raise TypeError(
                "optimizer: expected an optax.GradientTransformation or None, got "
                f"{type(self.optimizer).__name__}"
            )


REAL_VALUED_LEARNING_RATE = 0.001
"""The CD learning rate of :func:`hinton_rbm_optimizer` for real-valued (nrelu or learned-variance)
layers."""
LOG_VAR_RATE_FACTOR = 0.1
"""Learned log-variances learn at this fraction of their layer's rate."""


@functools.lru_cache(maxsize=128)
def rbm_optimizer(
    learning_rate: float = 0.1,
    *,
    weight_decay: float = 2e-4,
    momentum_start: float = 0.5,
    momentum_final: float = 0.9,
    momentum_switch_step: int = 0,
    hidden_bias_learning_rate: float | None = None,
    log_var_learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """SGD with momentum ``momentum_start -> momentum_final`` and weight decay on ``w`` only.

    ``inc = m * inc + (grad + weight_decay * w); param -= learning_rate * inc``: the update of
    Hinton & Salakhutdinov's code, written as an Optax chain. ``hidden_bias_learning_rate``, if
    given, replaces ``learning_rate`` for ``b_hidden``, and ``log_var_learning_rate`` for the
    learned log-variances ``log_var`` (both through an ``optax.multi_transform``). The same
    arguments return the same object (cached), so repeated recipes reuse one compilation.

    Args:
      learning_rate: > 0.
      weight_decay: L2 coefficient on the weights (not the biases), >= 0.
      momentum_start: momentum before ``momentum_switch_step``.
      momentum_final: momentum from ``momentum_switch_step`` on.
      momentum_switch_step: the update count at which the momentum switches.
      hidden_bias_learning_rate: a separate rate for ``b_hidden`` (None: ``learning_rate``).
      log_var_learning_rate: a separate rate for ``log_var`` of ``"gaussian_learned_var"``
        visible units (None: ``learning_rate``); slower than the weights' for stability.

    Returns:
      The transformation, for parameters of type :class:`jaxae.rbm.RBMParams`.
    """
    if learning_rate <= 0 or weight_decay < 0:
        raise ValueError(
            f"learning_rate > 0 and weight_decay >= 0 expected, got {learning_rate}, {weight_decay}"
        )
    for name, rate in (
        ("hidden_bias_learning_rate", hidden_bias_learning_rate),
        ("log_var_learning_rate", log_var_learning_rate),
    ):
        if rate is not None and rate <= 0:
            raise ValueError(f"{name}: expected > 0 or None, got {rate}")
    momentum = optax.join_schedules(
        [optax.constant_schedule(momentum_start), optax.constant_schedule(momentum_final)],
        [momentum_switch_step],
    )
    shared = optax.chain(
        optax.add_decayed_weights(weight_decay, mask=_weights_only),
        optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate, momentum=momentum),
    )
    if hidden_bias_learning_rate is None and log_var_learning_rate is None:
        return shared
    transforms = {"shared": shared}
    if hidden_bias_learning_rate is not None:
        transforms["hidden_bias"] = optax.inject_hyperparams(optax.sgd)(
            learning_rate=hidden_bias_learning_rate, momentum=momentum
        )
    if log_var_learning_rate is not None:
        transforms["log_var"] = optax.inject_hyperparams(optax.sgd)(
            learning_rate=log_var_learning_rate, momentum=momentum
        )
    labels = functools.partial(
        _labels,
        hidden_bias=hidden_bias_learning_rate is not None,
        log_var=log_var_learning_rate is not None,
    )
    return optax.multi_transform(transforms, labels)


# Masks and labels are functions of the parameters, so an RBM with learned visible variances
# (``RBMParams.log_var`` set) gets the same treatment: decay on ``w`` only, the shared rate.
def _weights_only(params: rbm.RBMParams) -> rbm.RBMParams:
    return jax.tree.map(lambda _: False, params)._replace(w=True)


def _labels(params: rbm.RBMParams, *, hidden_bias: bool, log_var: bool) -> rbm.RBMParams:
    labels = jax.tree.map(lambda _: "shared", params)
    if hidden_bias:
        labels = labels._replace(b_hidden="hidden_bias")
    if log_var and params.log_var is not None:
        labels = labels._replace(log_var="log_var")
    return labels


def hinton_rbm_optimizer(spec: rbm.RBMSpec, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optimizer of Hinton & Salakhutdinov (2006) for one RBM layer (RBMConfig's default).

    :func:`rbm_optimizer` with rate 0.1 (0.001 for a layer with Gaussian hidden units), weight
    decay 2e-4, momentum 0.5 for 5 epochs, then 0.9. Real-valued layers (noisy rectified hidden
    units, or learned visible variances) learn at :data:`REAL_VALUED_LEARNING_RATE`: Hinton's
    practical guide (§13.2) asks for a rate one or two orders of magnitude below the binary
    one, since such an RBM has no bound on its activities; learned log-variances (initialised
    at 0, unit variance for standardised data) learn ten times slower still
    (:data:`LOG_VAR_RATE_FACTOR`), as the variances are what makes CD diverge first.

    Args:
      spec: the layer's sizes and unit types.
      steps_per_epoch: updates per epoch (``n // batch_size``): when the momentum switches.
    """
    if spec.hidden == "gaussian":
        rate = 0.001
    elif spec.hidden == "nrelu" or spec.visible == "gaussian_learned_var":
        rate = REAL_VALUED_LEARNING_RATE
    else:
        rate = 0.1
    log_var_rate = None
    if spec.visible == "gaussian_learned_var":
        log_var_rate = rate * LOG_VAR_RATE_FACTOR
    return rbm_optimizer(
        rate,
        weight_decay=2e-4,
        momentum_start=0.5,
        momentum_final=0.9,
        momentum_switch_step=5 * steps_per_epoch,
        log_var_learning_rate=log_var_rate,
    )


@dataclasses.dataclass(frozen=True)
class ContrastiveDivergence:
    """The CD-k (or persistent CD-k) gradient estimator of one RBM, as a ``fit`` ``grad_fn``.

    A hashable value rather than a fresh closure, so fitting the same spec twice reuses the
    compiled epoch. CD: ``(params, batch, key) -> (grads, metrics)``; persistent: ``(params,
    chains, batch, key) -> (grads, chains, metrics)``, the chains riding in ``fit``'s ``aux``.
    """

    spec: rbm.RBMSpec
    k: int = 1
    persistent: bool = False

    def __call__(self, params: rbm.RBMParams, *args: Any) -> tuple[Any, ...]:
        if self.persistent:
            chains, batch, key = args
            return rbm.pcd_gradients(params, chains, batch, key, spec=self.spec, k=self.k)
        batch, key = args
        return rbm.cd_gradients(params, batch, key, spec=self.spec, k=self.k)


def layer_dir(checkpoint_dir: str | os.PathLike | None, i: int) -> str | None:
    # One subdirectory per layer: a killed pretraining resumes the layer it was in.
    return None if checkpoint_dir is None else os.path.join(os.fspath(checkpoint_dir), f"layer_{i}")


def check_fit_kwargs(fit_kwargs: dict[str, Any], reserved: Sequence[str]) -> None:
    """Raises if a recipe's ``**fit_kwargs`` sets what the recipe itself passes to ``fit``."""
    for name in reserved:
        if name in fit_kwargs:
            raise TypeError(
                f"{name}: set by the recipe (through its config), not a fit option to pass on"
            )


_RESERVED = ("optimizer", "key", "epochs", "batch_size", "grad_fn", "loss_fn", "aux", "has_aux")


def train_rbm(
    x: ArrayLike,
    spec: rbm.RBMSpec,
    config: RBMConfig = RBMConfig(),
    *,
    init_key: PRNGKey,
    key: PRNGKey,
    **fit_kwargs: Any,
) -> PretrainedLayer:
    """One RBM trained on ``x`` by (persistent) CD-k through :func:`jaxae.fit`.

    Args:
      x: ``[n, spec.n_visible]`` (in [0, 1] for Bernoulli visible units).
      spec: sizes and unit types.
      config: the recipe.
      init_key: PRNG key of the initial weights.
      key: PRNG key of the training loop.
      **fit_kwargs: passed to :func:`jaxae.fit` (``mesh``, ``devices``, ``checkpoint_dir``,
        ``callbacks``, ``progress``, ``desc``, ``example_keys``, ...).

    Returns:
      A :class:`PretrainedLayer` with ``spec`` set.
    """
    x = np.asarray(x, np.float32)
    value_range = (0.0, 1.0) if spec.visible == "bernoulli" else None
    check_array(x, "x", rank=2, last_dim=spec.n_visible, value_range=value_range)
    check_fit_kwargs(fit_kwargs, _RESERVED)
    if fit_kwargs.get("checkpoint_dir") is not None:
        check_layer_fingerprint(
            fit_kwargs["checkpoint_dir"], config, x, spec.n_hidden, key,
            init_key=init_key, spec=spec,
        )  # fmt: skip
    optimizer = config.optimizer
    if optimizer is None:
        optimizer = hinton_rbm_optimizer(spec, len(x) // config.batch_size)
    params = rbm.init_rbm(init_key, spec, visible_data=x if spec.visible == "bernoulli" else None)
    if config.persistent:
        fit_kwargs["aux"] = jnp.asarray(x[: config.batch_size])
    result = fit(
        params,
        x,
        grad_fn=ContrastiveDivergence(spec, config.k, config.persistent),
        optimizer=optimizer,
        key=key,
        epochs=config.epochs,
        batch_size=config.batch_size,
        **fit_kwargs,
    )
    return PretrainedLayer(config, result.params, result.history, spec)


# The visible units of a layer above one with these hidden units (see jaxae.models.deep.unroll).
_VISIBLE_ABOVE = {"bernoulli": "bernoulli", "nrelu": "gaussian"}


def _layer_specs(
    sizes: Sequence[int], visible: str, top_hidden: str, hidden: str = "bernoulli"
) -> list[rbm.RBMSpec]:
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two layer sizes, got {sizes}")
    if hidden not in _VISIBLE_ABOVE:
        raise ValueError(f"hidden: expected one of {sorted(_VISIBLE_ABOVE)}, got {hidden!r}")
    specs = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        is_top = i == len(sizes) - 2
        specs.append(
            rbm.RBMSpec(
                n_in,
                n_out,
                visible=visible if i == 0 else _VISIBLE_ABOVE[hidden],
                hidden=top_hidden if is_top else hidden,
            )
        )
    return specs


def per_layer(configs: Any, n_layers: int, kinds: type | tuple[type, ...]) -> list:
    """One config per layer: a single config repeated, or a sequence of ``n_layers``."""
    if isinstance(configs, kinds):
        return [configs] * n_layers
    configs = list(configs)
    if len(configs) != n_layers:
        raise ValueError(
            f"configs: expected one config or {n_layers} (one per layer), got {len(configs)}"
        )
    for i, c in enumerate(configs):
        if not isinstance(c, kinds):
            names = (
                kinds.__name__
                if isinstance(kinds, type)
                else " or ".join(k.__name__ for k in kinds)
            )
            raise TypeError(f"configs[{i}]: expected {names}, got {type(c).__name__}")
    return configs


def pretrain_rbm_stack(
    x: ArrayLike,
    sizes: Sequence[int],
    *,
    key: PRNGKey,
    configs: RBMConfig | Sequence[RBMConfig] = RBMConfig(),
    visible: str = "bernoulli",
    top_hidden: str = "gaussian",
    hidden: str = "bernoulli",
    checkpoint_dir: str | os.PathLike | None = None,
    **fit_kwargs: Any,
) -> list[PretrainedLayer]:
    """Trains a stack of RBMs one layer at a time, each on the hidden probabilities below it.

    Args:
      x: ``[n, sizes[0]]`` training data (in [0, 1] for a Bernoulli visible layer).
      sizes: layer widths, input first, e.g. ``(784, 1000, 500, 250, 30)``.
      key: PRNG key; split once per layer.
      configs: one :class:`RBMConfig` for every layer, or one per layer (bottom first).
      visible: the bottom layer's visible units ("bernoulli", "gaussian",
        "gaussian_learned_var" for standardised real-valued data, or "softmax").
      top_hidden: the top layer's hidden units: "gaussian" (linear code units, as in the paper),
        "bernoulli" or "nrelu".
      hidden: the hidden units of every layer below the top: "bernoulli" (the paper), or
        "nrelu" (Nair & Hinton 2010), whose layers above the bottom then have unit-variance
        "gaussian" visible units for the rectified features they are trained on (why: see
        :func:`jaxae.models.deep.unroll`).
      checkpoint_dir: passed to ``fit`` as ``checkpoint_dir/layer_<i>`` for layer ``i``, so a
        killed pretraining resumes the layer it was in (finished layers restore at once). A
        layer's folder records its recipe, unit types, input and keys (``layer.json``); a rerun
        with others is refused, not restored.
      **fit_kwargs: passed to every layer's :func:`jaxae.fit` (``mesh``, ``devices``,
        ``callbacks``, ``progress``, ``example_keys``, ...).

    Returns:
      One :class:`PretrainedLayer` (with ``spec``) per pair of adjacent sizes, bottom first.
    """
    x = np.asarray(x, np.float32)
    sizes = tuple(sizes)
    specs = _layer_specs(sizes, visible, top_hidden, hidden)
    configs = per_layer(configs, len(specs), RBMConfig)
    value_range = (0.0, 1.0) if visible == "bernoulli" else None
    check_array(x, "x", rank=2, last_dim=sizes[0], value_range=value_range)
    if visible == "softmax":
        check_counts(x, "x", "word counts for a softmax visible layer")
    check_fit_kwargs(fit_kwargs, _RESERVED)
    layers = []
    for i, (spec, config) in enumerate(zip(specs, configs, strict=True)):
        key, init_key, fit_key = jax.random.split(key, 3)
        kwargs = dict(fit_kwargs)
        kwargs.setdefault("desc", f"RBM {i + 1}/{len(specs)} {spec.n_visible}-{spec.n_hidden}")
        layer = train_rbm(
            x,
            spec,
            config,
            init_key=init_key,
            key=fit_key,
            checkpoint_dir=layer_dir(checkpoint_dir, i),
            **kwargs,
        )
        layers.append(layer)
        if i < len(specs) - 1:
            x = np.asarray(encode_layers([layer], x))
    return layers
