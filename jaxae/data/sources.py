"""What a data source is to :func:`jaxae.data.load` and :func:`jaxae.data.fetch`.

A :class:`Source` turns a name into verified files (``fetch``) and one split into a container
(``load``). Most sources are a :class:`FileSource`: a function that makes sure the files are in
the cache and returns their paths, and a function that reads those files into full splits;
``FileSource`` adds split parsing, slicing, and a per-process cache of the parsed arrays (made
read-only). The registry in :mod:`jaxae.data.registry` maps names to sources.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from collections.abc import Callable
from typing import Protocol

from jaxae.data import cache, containers, splits

__all__ = ["FileSource", "Source"]

# What a source's load returns (and moving_mnist's source, outside this file: a MovingMnist).
Container = containers.Dataset | containers.TextCorpus


class Source(Protocol):
    """A dataset source, as the registry holds it (``name`` is the full name given by the user,
    e.g. ``"tfds:mnist"`` for a source registered under a prefix)."""

    def fetch(self, name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
        """Makes sure the files are present and verified; returns their paths."""
        ...

    def load(
        self, name: str, split: str, *, data_dir: str | os.PathLike | None, download: bool
    ) -> Container:
        """One split, e.g. ``"train[:100]"``, as a container with read-only arrays."""
        ...


@dataclasses.dataclass(frozen=True, eq=False)
class FileSource:
    """A source whose data are files in the cache (or elsewhere on disk), read whole.

    Attributes:
      files: ``files(root, download) -> paths``: makes sure the files are present under the cache
        directory ``root`` (downloading what is missing if ``download``), verifies them, and
        returns their paths; raises :class:`~jaxae.data.DataFileError` naming the file and the fix.
      read: ``read(paths) -> {split: container}``: the full splits (a :class:`Dataset` or
        :class:`TextCorpus` per split name, ``split`` set to the split name); called once per
        process per version of the files.
      splits: the split names ``load`` accepts (checked before any file is touched).
    """

    files: Callable[[pathlib.Path, bool], list[pathlib.Path]]
    read: Callable[[list[pathlib.Path]], dict[str, Container]]
    splits: tuple[str, ...] = ("train", "test")

    def fetch(self, name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
        del name
        return self.files(cache.data_dir(data_dir), True)

    def load(
        self, name: str, split: str, *, data_dir: str | os.PathLike | None, download: bool
    ) -> Container:
        base, start, stop = splits.parse_split(split, self.splits)
        paths = self.files(cache.data_dir(data_dir), download)
        files = []
        for p in paths:
            stat = p.stat()
            files.append((str(p.resolve()), stat.st_size, stat.st_mtime_ns))
        full = _read(self, tuple(files))[base]
        lo, hi = splits.slice_bounds(start, stop, len(full), name, split)
        return containers.select(full, lo, hi, split=split)


@functools.lru_cache(maxsize=7)
def _read(source: FileSource, files: tuple[tuple[str, int, int], ...]) -> dict[str, Container]:
    """Full splits read from ``files`` ((path, size, mtime_ns)), their arrays made read-only."""
    full = source.read([pathlib.Path(f[0]) for f in files])
    return {split: containers.make_read_only(c) for split, c in full.items()}
