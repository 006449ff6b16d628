"""The file cache: where it is, sha256 checks (once per process per file version), and files
written atomically only when their sha256 is the expected one (from a stream or a URL)."""

from __future__ import annotations

import errno
import hashlib
import os
import pathlib
import shlex
import urllib.request
from collections.abc import Iterable, Iterator

from jaxae.atomic import atomic_open

__all__ = [
    "DataFileError",
    "data_dir",
    "download_url",
    "fetch_command",
    "read_chunks",
    "sha256_of",
    "verify",
    "write_verified",
]

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns, sha256) of files already hashed in this process.
_VERIFIED: set[tuple[str, int, int, str]] = set()


class DataFileError(ValueError):
    """A data file is missing, truncated or corrupted; the message names the file and the fix."""


def data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The cache directory: ``data_dir`` if given, else ``$JAXAE_DATA_DIR``, else ~/.cache/jaxae."""
    path = data_dir
    if path is None:
        path = os.environ.get("JAXAE_DATA_DIR") or pathlib.Path.home() / ".cache" / "jaxae"
    return pathlib.Path(path).expanduser()


def fetch_command(name: str, root: pathlib.Path) -> str:
    """The shell command that fetches ``name`` into ``root``, in backquotes, for messages."""
    command = f"python -m jaxae.data fetch {name}"
    if root != data_dir(None):
        command += f" --data-dir {shlex.quote(str(root))}"
    return f"`{command}`"


def sha256_of(path: pathlib.Path) -> str:
    """The hex sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: pathlib.Path, sha256: str, *, if_missing: str, if_corrupted: str) -> None:
    """Raises ``DataFileError`` unless ``path`` exists and has the expected sha256.

    A file is hashed once per process per (size, mtime): a changed file is hashed again.
    ``if_missing`` and ``if_corrupted`` say how to fix each case, e.g. "run `...`".
    """
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # NotADirectoryError: below a regular file
        raise DataFileError(f"{path} is missing; {if_missing}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256)
    if key in _VERIFIED:
        return
    got = sha256_of(path)
    if got != sha256:
        raise DataFileError(
            f"{path} is truncated or corrupted ({stat.st_size} bytes, sha256 {got}, expected "
            f"{sha256}); {if_corrupted}"
        )
    _VERIFIED.add(key)


# The errors of a cache directory that cannot take the file.
_UNWRITABLE = frozenset(
    getattr(errno, name)
    for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOENT", "ENOTDIR", "EEXIST")
    if hasattr(errno, name)
)


def write_verified(path: pathlib.Path, chunks: Iterable[bytes], sha256: str, source: str) -> None:
    """Writes ``chunks`` to ``path`` atomically, only if their sha256 is the expected one.

    ``source`` names where the bytes come from (a URL, ``wheel:member``), for the message.
    """
    digest = hashlib.sha256()
    try:
        with atomic_open(path, "wb") as f:
            for chunk in chunks:
                digest.update(chunk)
                f.write(chunk)
            if digest.hexdigest() != sha256:
                # Raised inside atomic_open: the temp file is removed, `path` is left untouched.
                raise DataFileError(
                    f"{source} has sha256 {digest.hexdigest()}, expected {sha256}; not writing "
                    f"{path}"
                )
    except OSError as error:
        # A read-only cache (or file system), a cache path below a regular file or where no
        # directory can be made (ENOENT in /proc), a full disk: the strerror says which. An
        # error of the source being read (no such errno) is not the cache's: it propagates.
        if error.errno not in _UNWRITABLE:
            raise
        raise DataFileError(
            f"{path} is missing and cannot be written ({error.strerror or error}): the data "
            f"directory {path.parent} must be a writable directory; pass data_dir= (or set "
            "JAXAE_DATA_DIR) to one, or copy the file there by hand"
        ) from error
    path.chmod(0o644)  # mkstemp creates 0600; these are public data, readable in a shared cache
    stat = path.stat()
    _VERIFIED.add((str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256))


def read_chunks(f) -> Iterator[bytes]:
    """The bytes of the binary file object ``f``, in chunks of 1 MiB."""
    while chunk := f.read(_CHUNK):
        yield chunk


def download_url(url: str, path: pathlib.Path, sha256: str) -> None:
    """Downloads ``url`` to ``path`` (atomic, sha256-checked); a network error is a
    ``DataFileError`` naming the path and the URL."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            write_verified(path, read_chunks(response), sha256, url)
    except OSError as e:  # urllib.error.URLError, timeouts, resets
        raise DataFileError(
            f"{path} is missing and downloading {url} failed ({e}); retry, or download it by "
            f"hand to {path}"
        ) from e
