"""Training: state -> step -> batching -> epoch -> parallel -> checkpoint -> callbacks -> fit.

Each module imports only the ones before it in that order, and only their public names.
"""

from jaxae.training import parallel
from jaxae.training.batching import batch_indices
from jaxae.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    TensorBoardLogger,
    WallTimeLimit,
)
from jaxae.training.epoch import EpochRunner, epoch_fn, epoch_runner, run_epoch
from jaxae.training.fit import FitResult, InvalidDataError, NonFiniteError, fit
from jaxae.training.state import TrainState, all_finite, init_train_state
from jaxae.training.step import gradients_of_loss, guarded_scan, make_train_step, scan_steps

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "EpochRunner",
    "FitResult",
    "InvalidDataError",
    "NonFiniteError",
    "TensorBoardLogger",
    "TrainState",
    "WallTimeLimit",
    "all_finite",
    "batch_indices",
    "epoch_fn",
    "epoch_runner",
    "fit",
    "gradients_of_loss",
    "guarded_scan",
    "init_train_state",
    "make_train_step",
    "parallel",
    "run_epoch",
    "scan_steps",
]
