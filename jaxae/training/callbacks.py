"""Host-side callbacks of :func:`jaxae.fit`: early stopping, a wall-time cap, metric writers.

A callback sees each epoch once, after its history row is complete (training metrics, ``eval_fn``
results, ``time_s``) and its checkpoint, when one is due, is saved: ``on_epoch_end(epoch, row,
state)``. It runs on the host between epochs, so it adds no host round-trip inside the jitted
epoch. Returning a string stops training after this epoch (its checkpoint is then saved if it was
not); the string is the reason, kept in ``FitResult.stopped_early``.
A plain function ``(epoch, row, state) -> str | None`` works as a callback too.

On a resumed run (``checkpoint_dir``), ``on_train_begin`` receives the restored history, so
``EarlyStopping`` picks up its count and ``CSVLogger`` rewrites the rows so far; a callback that
had already stopped that run returns its reason there, and ``fit`` trains no further (a rerun of
an early-stopped command returns the same result).

Writers write only on process 0 of a multi-host run.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from jaxae.atomic import atomic_write_text
from jaxae.training.state import TrainState
from jaxae.validation import check_real

__all__ = [
    "Callback",
    "EarlyStopping",
    "WallTimeLimit",
    "CSVLogger",
    "TensorBoardLogger",
    "as_callback",
    "callbacks_of",
]

Row = dict[str, Any]


class Callback:
    """Base class: override what you need; every hook is optional."""

    def on_train_begin(self, *, first_epoch: int, epochs: int, history: list[Row]) -> str | None:
        """Before the first epoch of this call (``history``: rows restored from a checkpoint);
        return a reason (a string) to train no further, e.g. when ``history`` shows that this
        callback had already stopped the run."""
        return None

    def on_epoch_end(self, epoch: int, row: Row, state: TrainState) -> str | None:
        """After each epoch; return a reason (a string, or ``True``) to stop training after
        this epoch."""
        return None

    def on_train_end(self, *, history: list[Row], stopped_early: str | None) -> None:
        """After the last epoch, also when training stopped on an error."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[int, Row, TrainState], str | None]):
        self._fn = fn

    def on_epoch_end(self, epoch, row, state):
        return self._fn(epoch, row, state)


def as_callback(callback: Callback | Callable) -> Callback:
    """``callback`` itself, or a plain function ``(epoch, row, state) -> str | bool | None``
    wrapped (a string or ``True`` stops training after the epoch)."""
    if isinstance(callback, Callback):
        return callback
    if callable(callback):
        return _FunctionCallback(callback)
    raise TypeError(
        "callbacks: expected jaxae.training.Callback instances or functions (epoch, row, state) "
        f"-> str | None, got {type(callback).__name__}"
    )


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Epochs whose row lacks ``monitor`` (e.g. between ``eval_every`` evaluations) do not count.

    Args:
      monitor: the history key to watch, e.g. ``"loss"`` or an ``eval_fn`` result.
      patience: how many evaluated epochs without improvement to allow.
      min_delta: the smallest change that counts as an improvement (>= 0).
      mode: ``"min"`` (lower is better) or ``"max"``.
    """

    def __init__(
        self, monitor: str = "loss", *, patience: int = 5, min_delta: float = 0.0, mode: str = "min"
    ):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor: expected a history key (a str), got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, got {patience!r}")
        check_real(min_delta, "min_delta")
        if min_delta < 0:
            raise ValueError(f"min_delta: expected a value >= 0, got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def _update(self, epoch: int, row: Row) -> str | None:
        if self.monitor not in row:
            return None
        value = float(row[self.monitor])
        sign = 1.0 if self.mode == "min" else -1.0
        # A NaN (an undefined metric) never becomes the best: it would compare worse than every
        # later value. It counts as an epoch without improvement.
        if not math.isnan(value) and (
            self.best is None or sign * (self.best - value) > self.min_delta
        ):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return None
        self.wait += 1
        if self.wait > self.patience:
            best = (
                "no value yet, only NaN"
                if self.best is None
                else f"best {self.best:.6g} at epoch {self.best_epoch}"
            )
            return (
                f"early stopping: {self.monitor} did not improve by more than {self.min_delta:g} "
                f"for {self.wait} epochs ({best})"
            )
        return None

    def on_train_begin(self, *, first_epoch, epochs, history):
        self.best, self.best_epoch, self.wait = None, None, 0
        reason = None
        for row in history:
            reason = self._update(int(row["epoch"]), row) or reason
        if reason is not None:  # a resumed run that this callback had stopped: it stays stopped
            return f"{reason}; already reached before this call (restored history)"
        return None

    def on_epoch_end(self, epoch, row, state):
        return self._update(epoch, row)


class WallTimeLimit(Callback):
    """Stops after the first epoch that ends more than ``seconds`` after this ``fit`` call began."""

    def __init__(self, seconds: float):
        check_real(seconds, "seconds", finite=False)  # inf: no limit
        if not seconds > 0:
            raise ValueError(f"seconds: expected a positive number, got {seconds}")
        self.seconds = float(seconds)
        self._start = time.monotonic()

    def on_train_begin(self, *, first_epoch, epochs, history):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, row, state):
        elapsed = time.monotonic() - self._start
        if elapsed > self.seconds:
            return (
                f"wall-time limit: {elapsed:.1f} s after epoch {epoch} exceeds {self.seconds:g} s"
            )
        return None


def _scalars(row: Row) -> dict[str, float]:
    out = {}
    for name, value in row.items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class CSVLogger(Callback):
    """Writes the history to a CSV file, one row per epoch, rewritten atomically each epoch.

    A reader (or a killed run) never sees a half-written file. Columns are every key seen so far,
    in order of first appearance; a row without a key leaves its cell empty.

    Args:
      path: the ``.csv`` file (its directory is created).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self._rows: list[Row] = []

    def _write(self) -> None:
        if jax.process_index() != 0:
            return
        columns: list[str] = []
        for row in self._rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write_text(self.path, buffer.getvalue())

    def on_train_begin(self, *, first_epoch, epochs, history):
        self._rows = [dict(row) for row in history]
        if self._rows:
            self._write()

    def on_epoch_end(self, epoch, row, state):
        self._rows.append(dict(row))
        self._write()
        return None


class TensorBoardLogger(Callback):
    """Writes every numeric history value as a TensorBoard scalar (step = epoch), via tensorboardX.

    Needs ``tensorboardX`` (``pip install "jaxae[tensorboard]"``). Event files are flushed after
    every epoch and closed at the end of training.

    Args:
      logdir: the run's directory (``tensorboard --logdir`` its parent to compare runs).
      prefix: prepended to each tag, e.g. ``"pretrain/"``.
    """

    def __init__(self, logdir: str | os.PathLike, *, prefix: str = ""):
        try:
            import tensorboardX
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "TensorBoardLogger needs tensorboardX: pip install 'jaxae[tensorboard]'"
            ) from error
        self._module = tensorboardX
        self.logdir = pathlib.Path(logdir)
        self.prefix = prefix
        self._writer = None

    def _open(self):
        if self._writer is None and jax.process_index() == 0:
            self._writer = self._module.SummaryWriter(logdir=str(self.logdir))
        return self._writer

    def on_epoch_end(self, epoch, row, state):
        writer = self._open()
        if writer is None:
            return None
        for name, value in _scalars(row).items():
            if name != "epoch" and math.isfinite(value):
                writer.add_scalar(self.prefix + name, value, global_step=epoch)
        writer.flush()
        return None

    def on_train_end(self, *, history, stopped_early):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def callbacks_of(callbacks: Sequence[Callback | Callable] | Callback | None) -> list[Callback]:
    """``fit``'s ``callbacks`` argument as a list of :class:`Callback`."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or (callable(callbacks) and not isinstance(callbacks, list)):
        callbacks = [callbacks]
    return [as_callback(c) for c in callbacks]
