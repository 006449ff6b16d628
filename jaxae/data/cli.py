"""``python -m jaxae.data {fetch,info} NAME [--data-dir DIR]``: fetch and verify a dataset's
files and print their paths, or print the shape (or size) of each split."""

from __future__ import annotations

import argparse
import sys

from jaxae.data.containers import TextCorpus
from jaxae.data.moving_mnist import MovingMnist
from jaxae.data.registry import fetch, load, names

__all__ = ["main"]

_SPLITS = ("train", "test")


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
        sub.add_argument("name", help=f"one of {', '.join(names())}")
        sub.add_argument("--data-dir", default=None, help="cache directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for path in fetch(args.name, data_dir=args.data_dir):
                print(path)
        else:
            # Moving MNIST's training sequences are generated afresh, not cached: its info
            # reads the cached splits only.
            splits = ("validation", "test") if args.name == "moving_mnist" else _SPLITS
            for split in splits:
                ds = load(args.name, split, data_dir=args.data_dir)
                if isinstance(ds, MovingMnist):
                    print(
                        f"{split}: frames {ds.frames.shape} {ds.frames.dtype} "
                        f"([sequences, frames, H, W]; the first {ds.num_input} are the input)"
                    )
                elif isinstance(ds, TextCorpus):
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
