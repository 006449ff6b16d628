"""Any Flax Linen autoencoder as a jaxae model: pure functions of ``(params, model_state)``.

Give :class:`LinenAutoencoder` either one module with ``encode(x, train)`` and
``decode(z, train)`` methods, or an ``encoder`` and a ``decoder`` module (each ``__call__(x,
train)``). ``decode`` must return the output's logits (pre-activation); ``train`` switches
BatchNorm (``use_running_average=not train``) and Dropout (``deterministic=not train``)::

    ae = jaxae.LinenAutoencoder(encoder=MyEncoder(), decoder=MyDecoder())
    params, model_state = ae.init(key, x[:2])           # model_state: {"batch_stats": ...}
    result = jaxae.fit(params, x, loss_fn=ae.loss(jaxae.sigmoid_cross_entropy),
                       model_state=model_state, optimizer=optax.adam(1e-3), key=key, ...)
    codes = ae.encode(result.params, x, model_state=result.model_state)   # eval mode

Train mode (inside ``loss``): the mutable collections (``batch_stats``) are updated and
returned, and each step's key becomes the modules' ``"dropout"`` RNG. Eval mode (``encode``,
``decode``, ``reconstruct``): running statistics, no dropout, deterministic. ``ae.loss(...)``
returns an object equal to the next ``ae.loss(...)`` with the same arguments, so repeated
``fit`` calls reuse the compiled epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.typing import Array, ArrayLike, Params, PRNGKey

__all__ = ["DenoisingLoss", "LinenAutoencoder", "ReconstructionLoss"]


class _EncoderDecoder(nn.Module):
    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x, **kwargs):
        return self.encoder(x, **kwargs)

    def decode(self, z, **kwargs):
        return self.decoder(z, **kwargs)


def _reconstruct(module, x, **kwargs):
    return module.decode(module.encode(x, **kwargs), **kwargs)


@dataclasses.dataclass(frozen=True)
class LinenAutoencoder:
    """A Linen autoencoder behind the model contract (init / encode / decode / reconstruct).

    Attributes:
      module: a module with ``encode(x, train)`` and ``decode(z, train)`` methods; or None
        with ``encoder`` and ``decoder`` given (their parameters live under ``"encoder"`` and
        ``"decoder"``).
      encoder, decoder: separate modules, ``__call__(x, train)``.
      output_activation: turns ``decode``'s logits into the output (``logits=False``).
      train_argument: the keyword the modules take for train/eval mode (None: they take none).
      rng_names: the RNG streams the modules draw in train mode (``"dropout"``).
    """

    module: nn.Module | None = None
    encoder: nn.Module | None = None
    decoder: nn.Module | None = None
    output_activation: Callable[[Array], Array] = jax.nn.sigmoid
    train_argument: str | None = "train"
    rng_names: Sequence[str] = ("dropout",)

    def __post_init__(self):
        object.__setattr__(self, "rng_names", tuple(self.rng_names))
        pair = self.encoder is not None and self.decoder is not None
        either = self.encoder is not None or self.decoder is not None
        if (self.module is None) == (not pair) or (self.module is not None and either):
            raise ValueError(
                "LinenAutoencoder: pass module (with encode/decode methods), or both encoder "
                "and decoder"
            )
        for name in ("module", "encoder", "decoder"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, nn.Module):
                raise TypeError(f"{name}: expected a flax.linen.Module, got {type(value).__name__}")
        if self.module is not None:
            for method in ("encode", "decode"):
                if not callable(getattr(self.module, method, None)):
                    raise TypeError(f"module: expected a method {method}(x, train), none found")

    @property
    def _module(self) -> nn.Module:
        if self.module is not None:
            return self.module
        return _EncoderDecoder(self.encoder, self.decoder)

    def _mode(self, train: bool) -> dict[str, bool]:
        return {} if self.train_argument is None else {self.train_argument: train}

    def init(self, key: PRNGKey, example: ArrayLike) -> tuple[Params, dict[str, Any]]:
        """``(params, model_state)`` from an example batch (its shape fixes the layers').

        ``model_state`` holds every collection but ``"params"`` (e.g. ``{"batch_stats": ...}``),
        ``{}`` for a module without any.
        """
        keys = jax.random.split(key, 1 + len(self.rng_names))
        rngs = {"params": keys[0], **dict(zip(self.rng_names, keys[1:], strict=True))}
        variables = jax.jit(
            lambda r, x: self._module.init(r, x, method=_reconstruct, **self._mode(False))
        )(rngs, jnp.asarray(example))
        variables = dict(variables)
        params = variables.pop("params", {})
        return params, variables

    def _apply(self, method, params, model_state, inputs, *, train=False, key=None):
        variables = {"params": params, **(model_state or {})}
        if not train:
            return self._module.apply(variables, inputs, method=method, **self._mode(False))
        if key is None:
            raise ValueError("key: train mode needs a PRNG key (the dropout RNG)")
        keys = jax.random.split(key, len(self.rng_names)) if self.rng_names else []
        rngs = dict(zip(self.rng_names, keys, strict=True))
        mutable = list(model_state or {})
        # mutable=[] would still return (out, {}): pass False for a module without state.
        out = self._module.apply(
            variables, inputs, method=method, rngs=rngs, mutable=mutable or False,
            **self._mode(True),
        )  # fmt: skip
        if not mutable:
            return out, {}
        y, updates = out
        return y, {**(model_state or {}), **dict(updates)}

    def encode(
        self,
        params: Params,
        x: ArrayLike,
        *,
        model_state: dict[str, Any] | None = None,
        logits: bool = False,
    ) -> Array:
        """Codes of a batch, eval mode (running statistics, no dropout).

        ``logits`` is accepted for the model contract; the module's code is returned either way,
        so it is the code's pre-activation only where the module's encoder ends linear.
        """
        del logits
        return self._apply("encode", params, model_state, jnp.asarray(x))

    def decode(
        self,
        params: Params,
        z: ArrayLike,
        *,
        model_state: dict[str, Any] | None = None,
        logits: bool = False,
    ) -> Array:
        """Outputs from codes, eval mode; ``logits=True`` skips ``output_activation``."""
        out = self._apply("decode", params, model_state, jnp.asarray(z))
        return out if logits else self.output_activation(out)

    def reconstruct(
        self,
        params: Params,
        x: ArrayLike,
        *,
        model_state: dict[str, Any] | None = None,
        logits: bool = False,
    ) -> Array:
        """``decode(encode(x))`` in eval mode."""
        out = self._apply(_reconstruct, params, model_state, jnp.asarray(x))
        return out if logits else self.output_activation(out)

    def reconstruct_train(
        self, params: Params, model_state: dict[str, Any], x: ArrayLike, key: PRNGKey
    ) -> tuple[Array, dict[str, Any]]:
        """Train mode: ``(reconstruction logits, new model_state)``; ``key`` drives dropout."""
        return self._apply(_reconstruct, params, model_state, jnp.asarray(x), train=True, key=key)

    def apply_train(
        self,
        method: str | Callable,
        params: Params,
        model_state: dict[str, Any],
        inputs: ArrayLike,
        key: PRNGKey,
    ) -> tuple[Any, dict[str, Any]]:
        """Train mode for any method of the module (a name, or ``fn(module, inputs, train)``):
        ``(its output, new model_state)``; ``key`` drives dropout. For losses that need more
        than ``decode(encode(x))``, e.g. a module with two codes."""
        return self._apply(method, params, model_state, jnp.asarray(inputs), train=True, key=key)

    def loss(
        self, per_example_loss: Callable[[Array, Array], Array], *, logits: bool = True
    ) -> ReconstructionLoss:
        """``fit``'s ``loss_fn(params, model_state, batch, key) -> (loss, new_model_state)``.

        Args:
          per_example_loss: ``(output, x) -> [batch]``, e.g. :func:`jaxae.sigmoid_cross_entropy`
            (which takes logits) or :func:`jaxae.squared_error` with ``logits=False``.
          logits: hand ``per_example_loss`` the logits (True) or ``output_activation`` of them.
        """
        return ReconstructionLoss(self, per_example_loss, logits)

    def denoising_loss(
        self,
        per_example_loss: Callable[[Array, Array], Array],
        corruption: Callable[..., Array],
        *,
        logits: bool = True,
        **corruption_kwargs: Any,
    ) -> DenoisingLoss:
        """``fit``'s loss for a denoising autoencoder: reconstruct the clean batch from a
        corrupted copy, ``corruption(key, x, **corruption_kwargs)`` (a :mod:`jaxae.noise`
        process, e.g. ``masking_noise, rate=0.25``), drawn afresh every step.

        Equal arguments give equal loss objects, so repeated ``fit`` calls compile once.

        References:
          Vincent et al. (2010), JMLR 11, section 4.2 (the clean input is the target).
        """
        return DenoisingLoss(
            self, per_example_loss, corruption, tuple(sorted(corruption_kwargs.items())), logits
        )


@dataclasses.dataclass(frozen=True)
class ReconstructionLoss:
    """The batch mean of a per-example reconstruction loss in train mode (see
    :meth:`LinenAutoencoder.loss`); equal objects for equal arguments, so ``fit`` reuses its
    compiled epoch."""

    model: LinenAutoencoder
    per_example_loss: Callable[[Array, Array], Array]
    logits: bool = True

    def __call__(self, params, model_state, batch, key):
        out, new_state = self.model.reconstruct_train(params, model_state, batch, key)
        if not self.logits:
            out = self.model.output_activation(out)
        return jnp.mean(self.per_example_loss(out, batch)), new_state


@dataclasses.dataclass(frozen=True)
class DenoisingLoss:
    """The batch mean of a per-example loss between the reconstruction of a corrupted batch and
    the clean batch, in train mode (see :meth:`LinenAutoencoder.denoising_loss`)."""

    model: LinenAutoencoder
    per_example_loss: Callable[[Array, Array], Array]
    corruption: Callable[..., Array]
    corruption_kwargs: tuple[tuple[str, Any], ...] = ()
    logits: bool = True

    def __call__(self, params, model_state, batch, key):
        noise_key, model_key = jax.random.split(key)
        corrupted = self.corruption(noise_key, batch, **dict(self.corruption_kwargs))
        out, new_state = self.model.reconstruct_train(params, model_state, corrupted, model_key)
        if not self.logits:
            out = self.model.output_activation(out)
        return jnp.mean(self.per_example_loss(out, batch)), new_state
