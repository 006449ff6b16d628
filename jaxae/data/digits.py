"""scikit-learn's bundled 8×8 digits (1797 images), pixels / 16: ``"train"`` is the first 1437
examples, ``"test"`` the last 360 (an 80/20 cut in file order)."""

from __future__ import annotations

import importlib.resources
import pathlib

import numpy as np

from jaxae.data import sources
from jaxae.data.cache import DataFileError
from jaxae.data.containers import Dataset

__all__ = ["SOURCE"]

_NUM_TRAIN = 1437  # of 1797: the first 80% in file order


def _files(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    del root, download  # bundled with scikit-learn
    path = importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"
    if not path.is_file():
        raise DataFileError(f"{path} is missing; reinstall scikit-learn")
    return [pathlib.Path(str(path))]


def _read(paths: list[pathlib.Path]) -> dict[str, Dataset]:
    del paths  # read through scikit-learn's own loader
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images[..., None] / 16).astype(np.float32)
    labels = bunch.target.astype(np.int32)
    n = _NUM_TRAIN
    return {
        "train": Dataset(images[:n], labels[:n], "digits", "train"),
        "test": Dataset(images[n:], labels[n:], "digits", "test"),
    }


SOURCE = sources.FileSource(files=_files, read=_read)
