"""IDX files (LeCun's MNIST format) of unsigned bytes, optionally gzipped.

Layout: magic ``0 0 0x08 ndim``, then ``ndim`` big-endian uint32 dimensions, then the bytes in
C order. Any mismatch is a :class:`~jaxae.data.DataFileError` naming the file.
"""

from __future__ import annotations

import gzip
import pathlib

import numpy as np

from jaxae.data.cache import DataFileError

__all__ = ["parse_idx", "read_idx_gz"]


def parse_idx(data: bytes, path: pathlib.Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file's bytes ``data``; ``path`` names the file in errors.

    Args:
      data: the whole (decompressed) file.
      path: where ``data`` came from, for the message.
      ndim: the number of dimensions the file must have.

    Returns:
      A read-only uint8 view of ``data`` with the header's shape.

    Raises:
      DataFileError: bad magic, wrong ``ndim``, or a payload whose size disagrees with the header.
    """
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


def read_idx_gz(path: pathlib.Path, ndim: int) -> np.ndarray:
    """The uint8 array in the gzipped IDX file at ``path`` (see :func:`parse_idx`)."""
    return parse_idx(gzip.decompress(path.read_bytes()), path, ndim)
