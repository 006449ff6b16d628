"""Any TensorFlow Datasets image dataset with ``image`` and ``label`` features, as
``"tfds:<name>"``, read through ``tfds.data_source`` (``pip install "jaxae[tfds]"``).

Any TFDS split name is accepted, with an optional integer slice (``"train[3:-2]"``) applied
here, reading only the records it selects; TFDS's own split syntax (``"train[:10%]"``,
``"train+test"``) is not. Images are uint8 HWC (HW becomes HW1), scaled by 1/255.
"""

from __future__ import annotations

import functools
import os
import pathlib

import numpy as np

from jaxae.data import splits
from jaxae.data.containers import Dataset

__all__ = ["PREFIX", "SOURCE"]

PREFIX = "tfds:"


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            'tfds: datasets need tensorflow-datasets; pip install "jaxae[tfds]"'
        ) from e
    return tfds


class _TFDSSource:
    """The source of every ``tfds:<name>``: ``data_dir`` is TFDS's (``None``: TFDS's default)."""

    def fetch(self, name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
        tfds = _import_tfds()
        builder = tfds.builder(
            name.removeprefix(PREFIX), data_dir=data_dir, file_format="array_record"
        )
        builder.download_and_prepare()
        return [pathlib.Path(str(builder.data_dir))]

    def load(
        self, name: str, split: str, *, data_dir: str | os.PathLike | None, download: bool
    ) -> Dataset:
        _import_tfds()  # before the cache, so a missing package always says how to install it
        base, start, stop = splits.parse_split(split, None)
        root = None if data_dir is None else str(pathlib.Path(data_dir).expanduser())
        images, labels = _read(name.removeprefix(PREFIX), base, start, stop, root, download)
        return Dataset(images=images, labels=labels, name=name, split=split)


@functools.lru_cache(maxsize=8)
def _read(name: str, split: str, start: int | None, stop: int | None, root, download):
    """Examples ``[start:stop]`` of a TFDS split, as read-only (images, labels)."""
    tfds = _import_tfds()
    source = tfds.data_source(name, split=split, data_dir=root, download=download)
    lo, hi = splits.slice_bounds(start, stop, len(source), f"{PREFIX}{name}", split)
    records = [source[i] for i in range(lo, hi)]
    missing = {"image", "label"} - set(records[0])
    if missing:
        raise ValueError(
            f"name: tfds:{name} has features {sorted(records[0])}; jaxae needs 'image' and 'label'"
        )
    images = np.stack([np.asarray(r["image"]) for r in records])
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"name: tfds:{name} images are {images.dtype} {images.shape[1:]}; expected uint8 HWC"
        )
    if images.ndim == 3:  # HW -> HW1
        images = images[..., None]
    images = (images / np.float32(255)).astype(np.float32)
    labels = np.asarray([r["label"] for r in records]).astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


SOURCE = _TFDSSource()
