"""Moving MNIST: MNIST digits bouncing inside a frame, generated deterministically from a key.

How the paper builds its frames (read from the authors' code, ``data_handler.py``,
``BouncingMNISTDataHandler``, and its configs ``datasets/bouncing_mnist.pbtxt`` and
``models/lstm_combo_1layer_mnist.pbtxt`` in github.com/emansim/unsupervised-videos, the code
linked from the paper), and what this module does the same way:

* **Grey levels, not binary.** Digits are pasted with their MNIST intensities; nothing
  thresholds them. The model config says ``binary_data: true``, but in ``lstm_combo.py`` that
  only selects logistic outputs and the Bernoulli cross-entropy
  ``-t log p - (1 - t) log(1 - p)`` on those grey targets. The released test file
  ``mnist_test_seq.npy`` is grey ``uint8`` too. Frames here are ``uint8 / 256`` (jaxae's MNIST
  is ``k / 256``), so pixels take the digits' own values.
* **Overlap is a maximum** (``Overlap(a, b) = np.maximum(a, b)``), not a clipped sum.
* **Motion.** Each digit starts at a position uniform in the unit square (scaled to the
  ``frame_size - digit_size`` pixels of room, so a digit is always wholly inside), with a
  direction uniform on the circle and a fixed speed ``step_length = 0.1`` of that room per frame
  (3.6 pixels in a 64×64 frame). The paper's text says the speed was drawn "uniformly at random
  over a fixed range"; the code uses one fixed speed, and so do we. Each frame first takes the
  step, then bounces: a coordinate at or beyond 0 or 1 is clamped to the wall and that velocity
  component flips sign. Positions are truncated to integer pixels (``astype(int32)``).
* **Digits.** Each sequence takes ``num_digits`` digits walking through a shuffled copy of the
  digit set (reshuffled when it runs out), as the handler does with MNIST's training digits.
* **Sizes.** 64×64 frames, two 28×28 digits, 20 frames: 10 input, 10 future.
* **The measure.** The code's logged losses (``Train`` and ``Validate``) are summed over pixels
  and divided by batch size *and by the number of frames*: per frame, not per 10-frame sequence.
  Report both when comparing with the paper's Table 1 or with a reproduction's logs. Grey
  targets carry their own entropy: on the first 1,000 test sequences here the cross-entropy of
  a perfect predictor (the targets' own binary entropy) is 85.6 nats per 64×64 frame, 856 per
  10 frames — so a logged ~341-346 can only be per frame, not per sequence.

Splits (``load``): ``"test"``, 10,000 sequences from MNIST's 10k test digits; ``"validation"``,
2,000 sequences from the held-out training digits ``train[50000:]``; both cached as ``uint8``
``.npy`` files in ``jaxae.data.data_dir()/moving_mnist`` with a sha256 beside each (a file that
does not match is refused, never silently used). ``"train"`` draws from ``train[:50000]`` and
is generated in memory (not cached); for training, draw fresh sequences every step with
:func:`sequences_from_digits` inside the loss, from :func:`training_digits` (the data is
infinite, as in the paper). A slice such as ``"test[:1000]"`` takes the first sequences.

References:
  Srivastava, Mansimov & Salakhutdinov, "Unsupervised Learning of Video Representations using
  LSTMs", ICML 2015, Sec. 3 (Moving MNIST); code: github.com/emansim/unsupervised-videos.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.atomic import atomic_open, atomic_write_text
from jaxae.data import splits
from jaxae.typing import Array, ArrayLike, PRNGKey
from jaxae.validation import check_array, check_positive_int

__all__ = [
    "MovingMnist",
    "MovingMnistSource",
    "Trajectories",
    "bouncing_trajectories",
    "cached_sequences",
    "load",
    "render_frames",
    "sample_sequences",
    "sequences_from_digits",
    "training_digits",
]

PIXEL_SCALE = 256  # frames are stored as uint8 k with pixel k / 256, MNIST's own scale
_SPLITS = {
    # split: (MNIST split of the digits, default number of sequences, cached)
    "train": ("train[:50000]", 10_000, False),
    "validation": ("train[50000:]", 2_000, True),
    "test": ("test", 10_000, True),
}
_SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}
_CHUNK = 500  # sequences generated per jitted call when building a split


class Trajectories(NamedTuple):
    """Top-left digit positions and velocities per frame.

    Attributes:
      top, left: int32 ``[..., num_frames]`` pixel offsets in ``[0, room]``.
      v_y, v_x: float32 ``[..., num_frames]`` velocity after each frame's bounce (unit-square
        coordinates per frame).
    """

    top: Array
    left: Array
    v_y: Array
    v_x: Array


@functools.partial(jax.jit, static_argnames=("shape", "num_frames", "room", "step_length"))
def bouncing_trajectories(
    key: PRNGKey, shape: tuple[int, ...], *, num_frames: int, room: int, step_length: float = 0.1
) -> Trajectories:
    """Random bouncing paths: uniform start, uniform direction, fixed speed, walls reflect.

    Follows ``GetRandomTrajectory`` of the paper's code: step, then clamp to the wall and flip
    the velocity component that crossed it; positions scaled by ``room`` and truncated.

    Args:
      key: PRNG key.
      shape: batch shape of independent paths, e.g. ``(num_sequences, num_digits)``.
      num_frames: frames per path.
      room: free pixels per axis, ``frame_size - digit_size``.
      step_length: speed, as a fraction of ``room`` per frame.

    Returns:
      :class:`Trajectories` with arrays ``[*shape, num_frames]``.
    """
    k_y, k_x, k_theta = jax.random.split(key, 3)
    y = jax.random.uniform(k_y, shape)
    x = jax.random.uniform(k_x, shape)
    theta = jax.random.uniform(k_theta, shape) * (2 * jnp.pi)

    def bounce(p, v):
        low, high = p <= 0.0, p >= 1.0
        p = jnp.where(low, 0.0, jnp.where(high, 1.0, p))
        return p, jnp.where(low | high, -v, v)

    def step(carry, _):
        y, x, v_y, v_x = carry
        y, v_y = bounce(y + v_y * step_length, v_y)
        x, v_x = bounce(x + v_x * step_length, v_x)
        return (y, x, v_y, v_x), (y, x, v_y, v_x)

    _, (ys, xs, v_ys, v_xs) = jax.lax.scan(
        step, (y, x, jnp.sin(theta), jnp.cos(theta)), length=num_frames
    )
    last = lambda a: jnp.moveaxis(a, 0, -1)  # noqa: E731  [T, *shape] -> [*shape, T]
    return Trajectories(
        top=last((room * ys).astype(jnp.int32)),
        left=last((room * xs).astype(jnp.int32)),
        v_y=last(v_ys),
        v_x=last(v_xs),
    )


def render_frames(digits: ArrayLike, top: ArrayLike, left: ArrayLike, *, frame_size: int) -> Array:
    """Pastes each digit at its offsets on a blank frame; overlapping digits take the maximum.

    Args:
      digits: ``[batch, num_digits, h, w]`` in [0, 1].
      top, left: int ``[batch, num_digits, num_frames]`` offsets in ``[0, frame_size - h]``.
      frame_size: the frames' side, at least the digits' side.

    Returns:
      ``[batch, num_frames, frame_size, frame_size]``, the digits' dtype.
    """
    digits = jnp.asarray(digits)
    check_array(digits, "digits", rank=4, floating=True)
    if frame_size < max(digits.shape[2:]):
        raise ValueError(f"frame_size: expected at least the digit size {digits.shape[2:]}")
    blank = jnp.zeros((frame_size, frame_size), digits.dtype)

    def paste(digit, top, left):  # one digit at one frame's offset
        return jax.lax.dynamic_update_slice(blank, digit, (top, left))

    over_frames = jax.vmap(paste, in_axes=(None, 0, 0))
    frames = jax.vmap(jax.vmap(over_frames))(digits, jnp.asarray(top), jnp.asarray(left))
    return frames.max(axis=1)  # the paper's Overlap: np.maximum


@functools.partial(
    jax.jit, static_argnames=("num_digits", "num_frames", "frame_size", "step_length")
)
def sequences_from_digits(
    key: PRNGKey,
    digits: ArrayLike,
    *,
    num_digits: int = 2,
    num_frames: int = 20,
    frame_size: int = 64,
    step_length: float = 0.1,
) -> Array:
    """Moving-digit sequences from a batch of digits, ``num_digits`` per sequence (jittable).

    Use inside a loss to draw fresh trajectories every step: ``batch`` = digits from
    :func:`training_digits`, ``batch_size`` a multiple of ``num_digits``.

    Args:
      key: PRNG key for the trajectories.
      digits: ``[batch * num_digits, h, w]`` in [0, 1] (``uint8`` is read as ``k / 256``);
        consecutive groups of ``num_digits`` share a sequence.
      num_digits, num_frames, frame_size, step_length: see the module docstring.

    Returns:
      float32 ``[batch, num_frames, frame_size, frame_size]`` in [0, 1].
    """
    digits = jnp.asarray(digits)
    check_array(digits, "digits", rank=3)
    if digits.shape[0] % num_digits:
        raise ValueError(
            f"digits: expected a multiple of num_digits={num_digits} digits, got {digits.shape[0]}"
        )
    if digits.dtype == jnp.uint8:
        digits = digits.astype(jnp.float32) / PIXEL_SCALE
    digits = digits.reshape(-1, num_digits, *digits.shape[1:]).astype(jnp.float32)
    room = frame_size - max(digits.shape[2:])
    if room < 0:
        raise ValueError(f"frame_size: expected at least the digit size, got {frame_size}")
    paths = bouncing_trajectories(
        key, digits.shape[:2], num_frames=num_frames, room=room, step_length=step_length
    )
    return render_frames(digits, paths.top, paths.left, frame_size=frame_size)


def sample_sequences(
    key: PRNGKey,
    digits: ArrayLike,
    num_sequences: int,
    *,
    num_digits: int = 2,
    num_frames: int = 20,
    frame_size: int = 64,
    step_length: float = 0.1,
) -> np.ndarray:
    """``num_sequences`` sequences as ``uint8`` (pixel = value / 256), a function of ``key``.

    Digits walk through shuffled copies of ``digits`` (reshuffled when used up), as the paper's
    data handler does. ``key`` splits into an order key (the shuffles) and a path key;
    trajectories come from ``fold_in(path_key, chunk)`` per chunk of 500.

    Args:
      key: PRNG key.
      digits: the digit set ``[n, h, w]``, values multiples of 1/256 in [0, 255/256] (jaxae's
        MNIST) or ``uint8``.
      num_sequences: how many sequences.
      num_digits, num_frames, frame_size, step_length: see the module docstring.

    Returns:
      uint8 ``[num_sequences, num_frames, frame_size, frame_size]``.
    """
    check_positive_int(num_sequences, "num_sequences")
    check_positive_int(num_digits, "num_digits")
    check_positive_int(num_frames, "num_frames")
    pool = _as_uint8(digits)
    order_key, path_key = jax.random.split(key)
    needed = num_sequences * num_digits
    shuffles = -(-needed // len(pool))
    order = np.concatenate(
        [
            np.asarray(jax.random.permutation(k, len(pool)))
            for k in jax.random.split(order_key, shuffles)
        ]
    )[:needed]
    out = np.empty((num_sequences, num_frames, frame_size, frame_size), np.uint8)
    generate = functools.partial(
        sequences_from_digits,
        num_digits=num_digits,
        num_frames=num_frames,
        frame_size=frame_size,
        step_length=step_length,
    )
    for chunk, start in enumerate(range(0, num_sequences, _CHUNK)):
        stop = min(start + _CHUNK, num_sequences)
        chunk_digits = pool[order[start * num_digits : stop * num_digits]]
        frames = generate(jax.random.fold_in(path_key, chunk), chunk_digits)
        # exact: every pixel is one digit's k / 256
        out[start:stop] = np.rint(np.asarray(frames) * PIXEL_SCALE).astype(np.uint8)
    return out


def _as_uint8(digits: ArrayLike) -> np.ndarray:
    digits = np.asarray(digits)
    check_array(digits, "digits", rank=3)
    if digits.dtype == np.uint8:
        return digits
    scaled = digits.astype(np.float64) * PIXEL_SCALE
    if np.any(scaled < 0) or np.any(scaled > 255) or np.any(scaled != np.rint(scaled)):
        raise ValueError("digits: expected values k / 256 with integer k in [0, 255] (or uint8)")
    return scaled.astype(np.uint8)


@dataclasses.dataclass(frozen=True, eq=False)
class MovingMnist:
    """One split of Moving MNIST.

    Attributes:
      frames: uint8 ``[N, num_frames, H, W]``; a pixel's value is ``frames / 256``.
      num_input: the frames the models read (the rest are the future to predict).
      split: the split given to :func:`jaxae.data.load`.
    """

    frames: np.ndarray
    num_input: int
    split: str

    def __post_init__(self):
        check_array(self.frames, "frames", rank=4)
        if self.frames.dtype != np.uint8:
            raise TypeError(f"frames: expected uint8, got {self.frames.dtype}")
        if not 0 < self.num_input < self.frames.shape[1]:
            raise ValueError(
                f"num_input: expected 1 to {self.frames.shape[1] - 1}, got {self.num_input}"
            )

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def sequences(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start:stop`` as float32 ``[n, num_frames, H*W]`` in [0, 1] (flattened)."""
        frames = self.frames[start:stop]
        return frames.reshape(*frames.shape[:2], -1).astype(np.float32) / PIXEL_SCALE


def training_digits(*, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """MNIST's first 50,000 training digits as uint8 ``[50000, 28, 28]`` (pixel = k / 256)."""
    from jaxae import data  # the package this module belongs to

    return _as_uint8(data.load("mnist", "train[:50000]", data_dir=data_dir).images[..., 0])


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sequences(path: str | os.PathLike, build) -> np.ndarray:
    """The uint8 array at ``path`` if its sha256 matches ``path.sha256``; else built and cached.

    A file whose checksum does not match (or has none) raises ``DataFileError`` and is left for
    the user to delete: it is never silently used or replaced. The checksum is written before the
    array, so a process killed in between leaves no array, and the next call builds it again.

    Args:
      path: the ``.npy`` file.
      build: ``() -> np.ndarray``, called only when the file is absent.
    """
    from jaxae.data import DataFileError

    path = pathlib.Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if path.exists():
        expected = sidecar.read_text().split()[0] if sidecar.exists() else None
        got = _sha256(path)
        if got != expected:
            raise DataFileError(
                f"{path} does not match its checksum ({sidecar}: {expected}, file: {got}); it is "
                f"truncated or corrupted — delete it and it will be generated again"
            )
        return np.load(path, allow_pickle=False)
    array = build()
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    raw = buffer.getvalue()
    atomic_write_text(sidecar, f"{hashlib.sha256(raw).hexdigest()}  {path.name}\n")
    with atomic_open(path, "wb") as f:
        f.write(raw)
    return array


def load(
    split: str = "test",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    num_sequences: int | None = None,
    num_digits: int = 2,
    num_frames: int = 20,
    num_input: int = 10,
    frame_size: int = 64,
    step_length: float = 0.1,
) -> MovingMnist:
    """One split of Moving MNIST, generated from MNIST digits with a fixed key per split.

    Args:
      split: ``"test"``, ``"validation"`` or ``"train"``, optionally sliced like ``"test[:1000]"``
        or ``"test[-500:]"`` (:func:`jaxae.data.splits.parse_split`); the slice is of the
        split's ``num_sequences`` sequences.
      data_dir: the cache directory (see ``jaxae.data.data_dir``).
      download: fetch MNIST if missing.
      num_sequences: sequences in the split (default 10,000 test / 2,000 validation / 10,000
        train); another value is another file.
      num_digits, num_frames, frame_size, step_length: see the module docstring; each
        combination is its own cached file.
      num_input: frames read by the models; the other ``num_frames - num_input`` are the future.

    Returns:
      :class:`MovingMnist`.
    """
    from jaxae import data

    base, start, stop = splits.parse_split(split, tuple(_SPLITS))
    mnist_split, default_n, cached = _SPLITS[base]
    n = default_n if num_sequences is None else num_sequences
    check_positive_int(n, "num_sequences")

    def build():
        digits = data.load("mnist", mnist_split, data_dir=data_dir, download=download)
        return sample_sequences(
            jax.random.key(_SPLIT_SEEDS[base]),
            digits.images[..., 0],
            n,
            num_digits=num_digits,
            num_frames=num_frames,
            frame_size=frame_size,
            step_length=step_length,
        )

    if cached:
        name = f"{base}-n{n}-d{num_digits}-t{num_frames}-f{frame_size}-s{step_length:g}.npy"
        frames = cached_sequences(data.data_dir(data_dir) / "moving_mnist" / name, build)
    else:
        frames = build()
    if start is not None or stop is not None:
        lo, hi = splits.slice_bounds(start, stop, n, "moving_mnist", split)
        frames = frames[lo:hi]
    frames.setflags(write=False)
    return MovingMnist(frames=frames, num_input=num_input, split=split)


@dataclasses.dataclass(frozen=True)
class MovingMnistSource:
    """The registry's entry for ``"moving_mnist"`` (:mod:`jaxae.data.registry`).

    ``fetch`` makes sure the MNIST digits are there (sequences are generated from them on first
    use and cached with their checksum); ``load`` is :func:`load` with the default frame
    settings — call :func:`load` itself for other frame sizes, digit counts or lengths.
    """

    def fetch(self, name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
        del name
        from jaxae import data

        return data.fetch("mnist", data_dir=data_dir)

    def load(
        self, name: str, split: str, *, data_dir: str | os.PathLike | None, download: bool
    ) -> MovingMnist:
        del name
        return load(split, data_dir=data_dir, download=download)


SOURCE = MovingMnistSource()
