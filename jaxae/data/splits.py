"""Split strings as in TFDS: ``"train"``, ``"test"``, or a slice of one like ``"train[:50000]"``
(integer start/stop, either optional, negative counts from the end)."""

from __future__ import annotations

import re

__all__ = ["parse_split", "slice_bounds"]

_SPLIT_RE = re.compile(r"(?P<base>\w+)(?:\[(?P<start>[+-]?\d+)?:(?P<stop>[+-]?\d+)?\])?")


def parse_split(split: str, allowed: tuple[str, ...] | None) -> tuple[str, int | None, int | None]:
    """``"train[10:-5]"`` -> ``("train", 10, -5)``; ``allowed=None`` accepts any base name.

    Raises:
      ValueError: not a split string, or its base is not in ``allowed``.
    """
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


def slice_bounds(start: int | None, stop: int | None, n: int, name: str, split: str):
    """``(lo, hi)`` of ``[start:stop]`` in a split of ``n`` examples, resolved as Python does,
    except that an out-of-range or empty slice is a ``ValueError`` naming ``split`` and ``name``."""
    for bound in (start, stop):
        if bound is not None and not -n <= bound <= n:
            raise ValueError(
                f"split: {split!r} is out of range for {name}, whose split has {n} examples"
            )
    lo, hi, _ = slice(start, stop).indices(n)
    if hi <= lo:
        raise ValueError(f"split: {split!r} of {name} is empty ({n} examples in the split)")
    return lo, hi
