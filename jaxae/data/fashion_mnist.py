"""Fashion-MNIST from its four gzipped IDX files: the cache first, then Debian's package
``dataset-fashion-mnist`` (read in place), then the official URLs (downloaded into the cache).

60k train / 10k test images ``[N, 28, 28, 1]``, pixels / 255.
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxae.data import cache, idx, sources
from jaxae.data.cache import DataFileError
from jaxae.data.containers import Dataset

__all__ = ["SOURCE"]

_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"
    ),
    "train-labels-idx1-ubyte.gz": (
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
    ),
}


def _files(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    paths = []
    for filename, sha256 in _SHA256.items():
        cached = root / "fashion_mnist" / filename
        debian = _DEBIAN_DIR / filename
        command = cache.fetch_command("fashion_mnist", root)
        fix = f"delete it and run {command}"
        if cached.exists():
            path = cached
        elif debian.exists():
            path = debian
            fix = (
                "run `apt-get install --reinstall dataset-fashion-mnist`, or put a good copy in "
                f"{cached.parent} (searched first)"
            )
        elif download:
            path = cached
            cache.download_url(_URL + filename, cached, sha256)
        else:
            raise DataFileError(
                f"{cached} is missing (and not in {_DEBIAN_DIR}); run {command} or call "
                "load(..., download=True)"
            )
        cache.verify(path, sha256, if_missing=f"run {command}", if_corrupted=fix)
        paths.append(path)
    return paths


def _read(paths: list[pathlib.Path]) -> dict[str, Dataset]:
    by_name = {p.name: p for p in paths}
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        image_path = by_name[f"{prefix}-images-idx3-ubyte.gz"]
        label_path = by_name[f"{prefix}-labels-idx1-ubyte.gz"]
        images = idx.read_idx_gz(image_path, 3)
        labels = idx.read_idx_gz(label_path, 1)
        if images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"{image_path} has {images.shape[0]} images but {label_path} has "
                f"{labels.shape[0]} labels"
            )
        splits[split] = Dataset(
            (images[..., None] / np.float32(255)).astype(np.float32),
            labels.astype(np.int32),
            "fashion_mnist",
            split,
        )
    return splits


SOURCE = sources.FileSource(files=_files, read=_read)
