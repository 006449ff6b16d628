"""LSTM sequence autoencoders: reconstruct the input in reverse, predict the future, or both.

An encoder LSTM stack reads the input frames; its final state (every layer's cell and hidden
state) becomes the initial state of one or two decoder LSTM stacks:

* the **autoencoder** decoder outputs the input frames in reverse order (the last input frame
  first), so the first target is the one the encoder saw last;
* the **future predictor** outputs the frames that follow the input;
* the **composite** model has one encoder and both decoders, trained on the sum of both terms.

A decoder is **unconditional** (it gets no input: zeros) or **conditional**: at step ``t > 0``
it reads the target of step ``t - 1``. As in the authors' code (``lstm_combo.py``), a conditional
reconstruction decoder always reads the true previous frame (it is a frame the encoder saw);
a conditional future predictor reads the true previous frame while training and its own
previous prediction (the sigmoid of its logits) at test time (``train=False``). Outputs are
Bernoulli logits per input feature (per pixel, for flattened frames); inputs may be pixels or
any features.

The time loops are ``lax.scan``: ``flax.linen.RNN`` for the encoder, ``flax.linen.scan`` over
one decoder step for the decoders. :class:`LSTMSequenceModel` wraps the Linen module as a
frozen config with pure ``init`` / ``apply`` / ``loss`` functions of the variables PyTree, so
it trains through ``jaxae.fit`` with ``loss_fn=model.loss_fn`` and no mutable state.

References:
  Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning of Video Representations using
  LSTMs", ICML 2015, Sec. 2.3-2.5 (Figs. 2-4); code: github.com/emansim/unsupervised-videos.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.losses import sigmoid_cross_entropy, squared_error
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int

__all__ = [
    "LSTMSequenceModel",
    "LSTMDecoder",
    "LSTMEncoder",
    "SequenceAutoencoder",
    "future_targets",
    "reconstruction_targets",
]

KINDS = ("autoencoder", "future", "composite")


def reconstruction_targets(x: ArrayLike, num_input: int) -> Array:
    """The autoencoder's targets: the input frames reversed, ``[B, num_input, D]``."""
    return jnp.flip(jnp.asarray(x)[:, :num_input], axis=1)


def future_targets(x: ArrayLike, num_input: int) -> Array:
    """The future predictor's targets: the frames after the input, ``[B, T - num_input, D]``."""
    return jnp.asarray(x)[:, num_input:]


class LSTMEncoder(nn.Module):
    """A stack of LSTMs over ``[B, T, D]``; returns each layer's final ``(c, h)`` carry."""

    features: tuple[int, ...]

    @nn.compact
    def __call__(self, x: Array) -> tuple[tuple[Array, Array], ...]:
        carries = []
        for i, units in enumerate(self.features):
            carry, x = nn.RNN(nn.OptimizedLSTMCell(units), return_carry=True, name=f"lstm_{i}")(x)
            carries.append(carry)
        return tuple(carries)


class _DecoderStep(nn.Module):
    """One decoder step: read an input, advance every layer, emit logits from the top layer.

    ``feed``: ``"none"`` (a zero input), ``"given"`` (the scanned input, e.g. the true previous
    frame) or ``"generated"`` (the sigmoid of the previous step's logits, carried along).
    """

    features: tuple[int, ...]
    output_dim: int
    feed: str
    output_bias: float

    @nn.compact
    def __call__(self, carry, given):
        cells, previous = carry
        if self.feed == "none":
            h = jnp.zeros_like(given[..., :1])
        elif self.feed == "given":
            h = given
        else:
            h = previous
        new_cells = []
        for i, (units, cell_carry) in enumerate(zip(self.features, cells, strict=True)):
            cell_carry, h = nn.OptimizedLSTMCell(units, name=f"lstm_{i}")(cell_carry, h)
            new_cells.append(cell_carry)
        logits = nn.Dense(
            self.output_dim, bias_init=nn.initializers.constant(self.output_bias), name="output"
        )(h)
        return (tuple(new_cells), jax.nn.sigmoid(logits)), logits


_ScannedStep = nn.scan(
    _DecoderStep,
    variable_broadcast="params",
    split_rngs={"params": False},
    in_axes=1,
    out_axes=1,
)


class LSTMDecoder(nn.Module):
    """A decoder LSTM stack started from the encoder's state; returns ``[B, T, D]`` logits.

    Attributes:
      features: units per layer (the encoder's, whose state it starts from).
      output_dim: ``D``, logits per step.
      conditional: read the previous target (``targets`` shifted right, zeros first).
      output_bias: initial bias of the logits (e.g. the logit of the mean pixel).
    """

    features: tuple[int, ...]
    output_dim: int
    conditional: bool = False
    output_bias: float = 0.0

    @nn.compact
    def __call__(self, state, targets: Array, *, generate: bool = False) -> Array:
        # At step t a conditional decoder reads targets[t - 1]; step 0 reads zeros.
        given = jnp.concatenate([jnp.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        if not self.conditional:
            feed = "none"
        else:
            feed = "generated" if generate else "given"
        step = _ScannedStep(
            features=self.features,
            output_dim=self.output_dim,
            feed=feed,
            output_bias=self.output_bias,
            name="steps",
        )
        _, logits = step((tuple(state), jnp.zeros_like(targets[:, 0])), given)
        return logits


class SequenceAutoencoder(nn.Module):
    """Encoder + reconstruction and/or future decoders; returns a dict of logits.

    Attributes:
      features: units per LSTM layer, shared by the encoder and the decoders.
      output_dim: features per frame ``D`` (pixels for flattened frames).
      num_input: frames the encoder reads.
      kind: ``"autoencoder"``, ``"future"`` or ``"composite"``.
      conditional_reconstruction, conditional_future: whether each decoder reads the previous
        target.
      output_bias: initial bias of the logits.
    """

    features: tuple[int, ...]
    output_dim: int
    num_input: int
    kind: str = "composite"
    conditional_reconstruction: bool = False
    conditional_future: bool = False
    output_bias: float = 0.0

    @nn.compact
    def __call__(self, x: Array, *, train: bool = False) -> dict[str, Array]:
        state = LSTMEncoder(self.features, name="encoder")(x[:, : self.num_input])
        out = {}
        if self.kind in ("autoencoder", "composite"):
            out["reconstruction"] = LSTMDecoder(
                self.features,
                self.output_dim,
                self.conditional_reconstruction,
                self.output_bias,
                name="reconstruction",
            )(state, reconstruction_targets(x, self.num_input))
        if self.kind in ("future", "composite"):
            out["future"] = LSTMDecoder(
                self.features,
                self.output_dim,
                self.conditional_future,
                self.output_bias,
                name="future",
            )(state, future_targets(x, self.num_input), generate=not train)
        return out


@dataclasses.dataclass(frozen=True)
class LSTMSequenceModel:
    """An LSTM sequence autoencoder as pure functions of its variables (see the module docstring).

    Attributes:
      input_dim: features per frame ``D`` (``H * W`` for flattened frames).
      features: units per LSTM layer (encoder and decoders alike).
      num_input: input frames; sequences are ``[B, num_input + num_future, D]``.
      num_future: future frames to predict (``"future"`` and ``"composite"``).
      kind: ``"autoencoder"`` (reconstruct the input in reverse), ``"future"`` or
        ``"composite"``.
      conditional_reconstruction, conditional_future: decoders that read the previous target.
      output_bias: initial logit bias (``log(m / (1 - m))`` for mean pixel ``m`` speeds up
        training on sparse frames).

    Example::

        model = LSTMSequenceModel(input_dim=64 * 64, features=(2048,), kind="composite")
        params = model.init(jax.random.key(0))
        result = jaxae.fit(params, x, loss_fn=model.loss_fn, optimizer=optax.adam(1e-3), ...)
    """

    input_dim: int
    features: tuple[int, ...] = (2048,)
    num_input: int = 10
    num_future: int = 10
    kind: str = "composite"
    conditional_reconstruction: bool = False
    conditional_future: bool = False
    output_bias: float = 0.0

    def __post_init__(self):
        check_positive_int(self.input_dim, "input_dim")
        check_positive_int(self.num_input, "num_input")
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.kind != "autoencoder":
            check_positive_int(self.num_future, "num_future")
        if not isinstance(self.features, Sequence) or not self.features:
            raise ValueError(f"features: expected a non-empty tuple of ints, got {self.features!r}")
        for units in self.features:
            check_positive_int(units, "features")
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def num_frames(self) -> int:
        """Frames per sequence: ``num_input`` (+ ``num_future`` with a future decoder)."""
        return self.num_input + (0 if self.kind == "autoencoder" else self.num_future)

    @property
    def module(self) -> SequenceAutoencoder:
        return SequenceAutoencoder(
            features=self.features,
            output_dim=self.input_dim,
            num_input=self.num_input,
            kind=self.kind,
            conditional_reconstruction=self.conditional_reconstruction,
            conditional_future=self.conditional_future,
            output_bias=self.output_bias,
        )

    def init(self, key: PRNGKey) -> Params:
        """Initial variables (``{"params": ...}``) for ``[B, num_frames, input_dim]`` inputs."""
        dummy = jnp.zeros((1, self.num_frames, self.input_dim), jnp.float32)
        return self.module.init(key, dummy, train=True)

    def _check(self, x) -> Array:
        x = jnp.asarray(x)
        t, d = self.num_frames, self.input_dim
        if x.ndim > 3 and x.shape[1] == t and math.prod(x.shape[2:]) == d:
            raise ValueError(
                f"x: expected [batch, {t}, {d}] (num_frames, input_dim), got shape "
                f"{tuple(x.shape)}: frames are not flattened; use x.reshape(len(x), {t}, {d})"
            )
        check_array(x, "x", rank=3, floating=True)
        if x.shape[1:] != (t, d):
            hint = ""
            if x.shape[0] == t and x.shape[2] == d:
                hint = "; time-major [num_frames, batch, input_dim]? use x.transpose(1, 0, 2)"
            raise ValueError(
                f"x: expected [batch, {t}, {d}] (num_frames, input_dim), got shape "
                f"{tuple(x.shape)}{hint}"
            )
        return x

    def apply(self, params: Params, x: ArrayLike, *, train: bool = False) -> dict[str, Array]:
        """Logits of each decoder.

        Args:
          params: variables from :meth:`init`.
          x: ``[B, num_frames, input_dim]``; the first ``num_input`` frames are read, the rest
            are the future targets (read only by a conditional future decoder while training).
          train: a conditional future predictor reads the true previous frame (``True``) or its
            own previous prediction (``False``, as at test time).

        Returns:
          ``{"reconstruction": [B, num_input, D]}`` in decoder order (reversed: index 0 is the
          last input frame) and/or ``{"future": [B, num_future, D]}``.
        """
        return self.module.apply(params, self._check(x), train=train)

    def reconstruct(self, params: Params, x: ArrayLike) -> Array:
        """Reconstructed input frames as probabilities, in input order: ``[B, num_input, D]``."""
        return jnp.flip(jax.nn.sigmoid(self.apply(params, x)["reconstruction"]), axis=1)

    def predict(self, params: Params, x: ArrayLike) -> Array:
        """Predicted future frames as probabilities (test-time feeding): ``[B, num_future, D]``."""
        return jax.nn.sigmoid(self.apply(params, x)["future"])

    def losses(self, params: Params, x: ArrayLike, *, train: bool = False) -> dict[str, Array]:
        """Bernoulli cross-entropy per sequence of each decoder, summed over frames and features.

        Returns:
          ``{"reconstruction": [B]}`` and/or ``{"future": [B]}`` (the paper's measure, per
          sequence; divide by the frame count for the per-frame numbers its code logs).
        """
        x = self._check(x)
        logits = self.apply(params, x, train=train)
        targets = {
            "reconstruction": reconstruction_targets(x, self.num_input),
            "future": future_targets(x, self.num_input),
        }
        return {k: sigmoid_cross_entropy(v, targets[k]) for k, v in logits.items()}

    def squared_errors(self, params: Params, x: ArrayLike) -> dict[str, Array]:
        """Squared error of the predicted probabilities per frame, averaged over frames: [B]."""
        x = self._check(x)
        logits = self.apply(params, x)
        targets = {
            "reconstruction": reconstruction_targets(x, self.num_input),
            "future": future_targets(x, self.num_input),
        }
        return {
            k: squared_error(jax.nn.sigmoid(v), targets[k]) / v.shape[1] for k, v in logits.items()
        }

    def loss(self, params: Params, x: ArrayLike, *, train: bool = True) -> Array:
        """Training objective per sequence ``[B]``: the sum of the decoders' cross-entropies."""
        return sum(self.losses(params, x, train=train).values())

    def loss_fn(self, params: Params, batch: ArrayLike, key: PRNGKey) -> Array:
        """``jaxae.fit``'s ``loss_fn``: the batch mean of :meth:`loss` (``key`` unused)."""
        del key
        return self.loss(params, batch, train=True).mean()
