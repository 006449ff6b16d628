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

Each LSTM layer is the cell of ``flax.linen.OptimizedLSTMCell`` (gates i, f, g, o; the same
parameters, names and initialisers) run over time by a ``lax.scan`` whose body holds only the
recurrent matmul ``h @ W_h``: the input projection of every step is one matmul before the loop
(the layer's whole input sequence is known, except for a future predictor that reads its own
predictions), the output layer one matmul after it, and an unconditional decoder, whose input is
zero, skips its input projection (it is zero). The math is the cell's, step by step; only where
the matmuls run differs (on the CPU this is ~2x faster than ``flax.linen.RNN`` / ``nn.scan``
over the cell). :class:`LSTMSequenceModel` wraps the Linen module as a frozen config with pure
``init`` / ``apply`` / ``loss`` functions of the variables PyTree, so it trains through
``jaxae.fit`` with ``loss_fn=model.loss_fn`` and no mutable state.

References:
  Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning of Video Representations using
  LSTMs", ICML 2015, Sec. 2.3-2.5 (Figs. 2-4); code: github.com/emansim/unsupervised-videos.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.losses import sigmoid_cross_entropy, squared_error
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int, positive_ints

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


_GATES = "ifgo"  # nn.OptimizedLSTMCell's gate order: input, forget, cell, output


class _DenseParams(nn.Module):
    """The ``kernel [in, out]`` (and ``bias [out]``) of a dense map, created as ``nn.Dense``
    creates them and returned unapplied, for use inside a ``lax.scan`` body."""

    in_features: int
    features: int
    use_bias: bool
    kernel_init: nn.initializers.Initializer
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self) -> tuple[Array, Array | None]:
        shape = (self.in_features, self.features)
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        if not self.use_bias:
            return kernel, None
        return kernel, self.param("bias", self.bias_init, (self.features,), jnp.float32)


class _LSTMWeights(nn.Module):
    """One LSTM layer's parameters as ``nn.OptimizedLSTMCell`` names and initialises them
    (``ii``..``io`` input kernels, lecun-normal; ``hi``..``ho`` recurrent kernels, orthogonal,
    and the one zero bias), fused over the gates i, f, g, o: ``(w_x [in, 4H], w_h [H, 4H],
    b [4H])``."""

    features: int
    in_features: int

    @nn.compact
    def __call__(self) -> tuple[Array, Array, Array]:
        w_x, w_h, b = [], [], []
        for gate in _GATES:
            kernel, _ = _DenseParams(
                self.in_features,
                self.features,
                use_bias=False,
                kernel_init=nn.initializers.lecun_normal(),
                name=f"i{gate}",
            )()
            recurrent, bias = _DenseParams(
                self.features,
                self.features,
                use_bias=True,
                kernel_init=nn.initializers.orthogonal(),
                name=f"h{gate}",
            )()
            w_x.append(kernel)
            w_h.append(recurrent)
            b.append(bias)
        return (
            jnp.concatenate(w_x, axis=-1),
            jnp.concatenate(w_h, axis=-1),
            jnp.concatenate(b, axis=-1),
        )


def _project(x: Array, kernel: Array) -> Array:
    """``x @ kernel`` over the last axis of ``x [..., in]`` as one 2-D matmul (XLA's CPU dot is
    slower on a 3-D operand, measured here up to 2x)."""
    y = jnp.dot(x.reshape(-1, x.shape[-1]), kernel)
    return y.reshape(*x.shape[:-1], kernel.shape[-1])


def _lstm_cell(carry: tuple[Array, Array], z: Array) -> tuple[Array, Array]:
    """The new ``(c, h)`` from the pre-activations ``z [B, 4H]`` (gates i, f, g, o), as
    ``nn.OptimizedLSTMCell`` computes them."""
    c, _ = carry
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def _preactivations(carry, w_h: Array, b: Array, x_proj: Array | None) -> Array:
    """``(h @ w_h + b) + x @ w_x``, summed in the cell's order; ``x_proj=None``: a zero input."""
    z = jnp.dot(carry[1], w_h) + b[None, :]
    return z if x_proj is None else z + x_proj


def _lstm_layer(w_h, b, carry, x_proj: Array | None, length: int):
    """One LSTM layer over time: ``lax.scan`` from ``carry``, its input projected beforehand.

    Args:
      w_h, b: the fused recurrent kernel ``[H, 4H]`` and bias ``[4H]``.
      carry: the initial ``(c, h)``, ``[B, H]`` each.
      x_proj: ``[T, B, 4H]``, the input sequence times ``w_x`` (time-major), or None for a
        zero input (its projection is zero).
      length: ``T``.

    Returns:
      The final ``(c, h)`` and the hidden states ``[T, B, H]``.
    """

    def step(carry, x_t):
        carry = _lstm_cell(carry, _preactivations(carry, w_h, b, x_t))
        return carry, carry[1]

    return jax.lax.scan(step, carry, x_proj, length=length)


class LSTMEncoder(nn.Module):
    """A stack of LSTMs over ``[B, T, D]``; returns each layer's final ``(c, h)`` carry."""

    features: tuple[int, ...]

    @nn.compact
    def __call__(self, x: Array) -> tuple[tuple[Array, Array], ...]:
        inputs = jnp.swapaxes(x, 0, 1)  # time-major [T, B, D]
        carries = []
        for i, units in enumerate(self.features):
            # named as flax.linen.RNN(nn.OptimizedLSTMCell(units)) named them: the same layout
            w_x, w_h, b = _LSTMWeights(units, inputs.shape[-1], name=f"OptimizedLSTMCell_{i}")()
            zeros = jnp.zeros((x.shape[0], units), w_h.dtype)
            carry, inputs = _lstm_layer(w_h, b, (zeros, zeros), _project(inputs, w_x), len(inputs))
            carries.append(carry)
        return tuple(carries)


class _DecoderWeights(nn.Module):
    """A decoder's parameters, laid out as the ``nn.scan`` over one step that preceded it kept
    them: ``lstm_0``.. (one ``_LSTMWeights`` a layer) and ``output`` (``nn.Dense``'s)."""

    features: tuple[int, ...]
    input_dim: int
    output_dim: int
    output_bias: float

    @nn.compact
    def __call__(self):
        layers, in_features = [], self.input_dim
        for i, units in enumerate(self.features):
            layers.append(_LSTMWeights(units, in_features, name=f"lstm_{i}")())
            in_features = units
        output = _DenseParams(
            in_features,
            self.output_dim,
            use_bias=True,
            kernel_init=nn.initializers.lecun_normal(),
            bias_init=nn.initializers.constant(self.output_bias),
            name="output",
        )()
        return tuple(layers), output


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
        batch, length = targets.shape[:2]
        # an unconditional decoder reads a zero of width 1
        input_dim = targets.shape[-1] if self.conditional else 1
        layers, (w_out, b_out) = _DecoderWeights(
            self.features, input_dim, self.output_dim, self.output_bias, name="steps"
        )()
        if self.conditional and generate:
            return _generate(layers, w_out, b_out, tuple(state), batch, length)
        x_proj = None  # unconditional: the input is zero, and so is its projection
        if self.conditional:
            # At step t a conditional decoder reads targets[t - 1]; step 0 reads zeros.
            w_x = layers[0][0]
            x_proj = _project(jnp.swapaxes(targets[:, :-1], 0, 1), w_x)
            first = jnp.zeros((1, batch, w_x.shape[-1]), x_proj.dtype)
            x_proj = jnp.concatenate([first, x_proj], axis=0)
        hidden = None
        for (w_x, w_h, b), carry in zip(layers, state, strict=True):
            if hidden is not None:  # a layer above the first reads the hidden states below
                x_proj = _project(hidden, w_x)
            _, hidden = _lstm_layer(w_h, b, carry, x_proj, length)
        return _project(jnp.swapaxes(hidden, 0, 1), w_out) + b_out[None, None, :]


def _generate(layers, w_out, b_out, state, batch: int, length: int) -> Array:
    """A conditional decoder reading its own previous prediction: every layer and the output
    layer run inside one ``lax.scan`` (step ``t`` reads the sigmoid of step ``t - 1``'s logits,
    step 0 zeros); returns the logits ``[B, T, D]``."""

    def step(carry, _):
        cells, previous = carry
        h, new_cells = previous, []
        for (w_x, w_h, b), cell in zip(layers, cells, strict=True):
            cell = _lstm_cell(cell, _preactivations(cell, w_h, b, jnp.dot(h, w_x)))
            new_cells.append(cell)
            h = cell[1]
        logits = jnp.dot(h, w_out) + b_out[None, :]
        return (tuple(new_cells), jax.nn.sigmoid(logits)), logits

    previous = jnp.zeros((batch, w_out.shape[-1]), w_out.dtype)
    _, logits = jax.lax.scan(step, (state, previous), None, length=length)
    return jnp.swapaxes(logits, 0, 1)


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
        features = positive_ints(self.features, "features", what="LSTM widths (one a layer)")
        object.__setattr__(self, "features", features)

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
        self._require("reconstruction", "reconstruct", ("autoencoder", "composite"))
        return jnp.flip(jax.nn.sigmoid(self.apply(params, x)["reconstruction"]), axis=1)

    def predict(self, params: Params, x: ArrayLike) -> Array:
        """Predicted future frames as probabilities (test-time feeding): ``[B, num_future, D]``."""
        self._require("future", "predict", ("future", "composite"))
        return jax.nn.sigmoid(self.apply(params, x)["future"])

    def _require(self, decoder: str, method: str, kinds: tuple[str, ...]) -> None:
        if self.kind not in kinds:
            raise ValueError(
                f"{method}: a kind={self.kind!r} model has no {decoder} decoder; it needs kind "
                f"in {kinds}"
            )

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
