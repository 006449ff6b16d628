"""The model contract: what every jaxae model provides (a wrapped Flax Linen module, nearly).

A model is a frozen, hashable config object whose methods are pure functions of a parameter
PyTree, so it can be a static argument of ``jit`` and its methods can be passed to
:func:`jaxae.chunked.chunked_map` or closed over in a loss for :func:`jaxae.fit`::

    params = model.init(key)
    code = model.encode(params, x)                      # [batch, code]
    mean = model.decode(params, code)                   # E[x | code], e.g. pixel probabilities
    logits = model.reconstruct(params, x, logits=True)  # pre-activation of the output layer
    loss = jaxae.sigmoid_cross_entropy(logits, x).mean()

``logits=True`` returns the pre-activation of the layer that ``logits=False`` returns the
activation of: for a Bernoulli output (a sigmoid) the logits the stable cross-entropy wants, for
a softmax output the unnormalised log-probabilities, for a linear layer the same values. For
``encode`` it is the code layer's pre-activation (e.g. to add noise before a sigmoid code, as
semantic hashing does). ``reconstruct(params, x, logits=...)`` is
``decode(params, encode(params, x), logits=...)``.

Variational autoencoders satisfy the same contract: their ``encode`` returns the posterior
mean (a linear layer, so ``logits`` changes nothing) and their ``decode`` the Bernoulli mean;
the posterior's ``(mean, log_variance)`` is :meth:`jaxae.MLPVAE.posterior`, which
:mod:`jaxae.variational` uses.

:class:`jaxae.LinenAutoencoder` (a Flax Linen module, the convolutional and LSTM models among
them) has the four methods with two differences: ``init(key, example)`` returns ``(params,
model_state)``, and the other methods take ``model_state=``; and its ``encode`` returns what the
module's encoder returns whatever ``logits`` says (the wrapper cannot take the module's last
activation off), which is the code's pre-activation only where that encoder ends in a linear
layer (jaxae's ``ConvEncoder`` with its default ``code_activation=None``, say).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from jaxae.typing import Array, ArrayLike, Params, PRNGKey

__all__ = ["Autoencoder"]


@runtime_checkable
class Autoencoder(Protocol):
    """An encoder/decoder pair as pure functions of a parameter PyTree (see the module doc).

    ``isinstance(model, Autoencoder)`` checks that the four methods exist (Python's runtime
    check does not look at their signatures; ``tests/test_contract.py`` checks every jaxae
    model's behaviour).
    """

    def init(self, key: PRNGKey) -> Params:
        """Fresh parameters."""
        ...

    def encode(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``[batch, ...input] -> [batch, code]``; ``logits=True``: the code's pre-activation."""
        ...

    def decode(self, params: Params, z: ArrayLike, *, logits: bool = False) -> Array:
        """``[batch, code] -> [batch, ...input]`` output means; ``logits=True``: pre-activations."""
        ...

    def reconstruct(self, params: Params, x: ArrayLike, *, logits: bool = False) -> Array:
        """``decode(params, encode(params, x), logits=logits)``."""
        ...
