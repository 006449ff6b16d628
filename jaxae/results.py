"""The results format every experiment writes, and the RESULTS.md generated from it.

Each run writes ``experiments/results/<experiment>.json``: a list of rows, each with exactly the
keys in :data:`ROW_KEYS`. A run replaces only the rows of its own mode and models, so a quick run
never overwrites a full run's numbers, and a full run of some models (``--set models=iwae50``)
keeps the full-run rows of the others. ``python -m jaxae.results`` regenerates
``experiments/RESULTS.md`` from those files; nobody types numbers into it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import pathlib
import platform
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

try:  # POSIX advisory locks; elsewhere concurrent writers of one file are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from jaxae.atomic import atomic_write_text

__all__ = [
    "ROW_KEYS",
    "hardware_description",
    "make_row",
    "write_results",
    "read_results",
    "render_markdown",
]

ROW_KEYS = (
    "experiment",
    "model",
    "metric",
    "split",
    "value",
    "paper_value",
    "paper_source",
    "mode",
    "hardware",
    "wall_time_s",
    "date",
    "seed",
    "command",
)
"""The keys of a result row, in the order RESULTS.md shows them."""
MODES = ("quick", "full")


def hardware_description() -> str:
    """E.g. ``"cpu x2 (Intel Xeon ...), jax 0.10.2"``: backend, device count, CPU model."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    devices = jax.devices()
    kind = devices[0].device_kind if devices[0].platform != "cpu" else cpu
    cores = f"{_usable_cores()} cores"
    if _usable_cores() < (os.cpu_count() or 0):  # pinned, e.g. by taskset
        cores = f"{_usable_cores()} of {os.cpu_count()} cores"
    return f"{devices[0].platform} x{len(devices)} ({kind}; {cores}), jax {jax.__version__}"


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask), where the OS says."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def command_line() -> str:
    """The command that started this process, as a user would type it."""
    argv = sys.argv[:]
    if argv and argv[0].endswith(".py"):
        argv[0] = os.path.relpath(argv[0])
    return "python " + shlex.join(argv)


def make_row(
    *,
    experiment: str,
    model: str,
    metric: str,
    split: str,
    value: float,
    mode: str,
    seed: int,
    wall_time_s: float,
    paper_value: float | None = None,
    paper_source: str = "",
    hardware: str | None = None,
    date: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """One result row with every key of :data:`ROW_KEYS`, checked."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    value = float(value)
    if not math.isfinite(value):  # NaN or inf: strict JSON has no such numbers
        raise ValueError(f"value: expected a finite number for {model}/{metric}, got {value}")
    if paper_value is not None and not math.isfinite(float(paper_value)):
        raise ValueError(
            f"paper_value: expected a finite number for {model}/{metric}, got {paper_value}"
        )
    return {
        "experiment": experiment,
        "model": model,
        "metric": metric,
        "split": split,
        "value": value,
        "paper_value": None if paper_value is None else float(paper_value),
        "paper_source": paper_source,
        "mode": mode,
        "hardware": hardware if hardware is not None else hardware_description(),
        "wall_time_s": round(float(wall_time_s), 1),
        "date": date if date is not None else datetime.date.today().isoformat(),
        "seed": int(seed),
        "command": command if command is not None else command_line(),
    }


def _check_row(row: Mapping[str, Any], where: str) -> None:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected a JSON object (a row), got {type(row).__name__}")
    if set(row) != set(ROW_KEYS):
        missing, extra = set(ROW_KEYS) - set(row), set(row) - set(ROW_KEYS)
        raise ValueError(
            f"{where}: row keys differ from ROW_KEYS (missing {missing}, extra {extra})"
        )
    if row["mode"] not in MODES:
        raise ValueError(f"{where}: mode must be one of {MODES}, got {row['mode']!r}")


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of one results file (empty if it does not exist), each checked."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error}); fix or delete the file and rerun the experiment"
        ) from error
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        _check_row(row, f"{path} row {i}")
    return rows


def write_results(
    experiment: str, rows: Iterable[Mapping[str, Any]], results_dir: str | os.PathLike
) -> pathlib.Path:
    """Writes ``rows`` to ``<results_dir>/<experiment>.json`` atomically.

    Rows already there are kept unless they share both mode and model with a new row: a quick run
    replaces quick rows only, a full run full rows only, and a run that reports some models leaves
    the rows of the others (and the command that produced them) in place.
    """
    rows = [dict(row) for row in rows]
    if not rows:
        raise ValueError("rows: expected at least one row, got none")
    modes = {row["mode"] for row in rows}
    for i, row in enumerate(rows):
        _check_row(row, f"rows[{i}]")
        if row["experiment"] != experiment:
            raise ValueError(f"rows[{i}]: experiment {row['experiment']!r} != {experiment!r}")
    if len(modes) != 1:
        raise ValueError(f"rows: expected a single mode per write, got {sorted(modes)}")
    path = pathlib.Path(results_dir) / f"{experiment}.json"
    replaced = {(row["mode"], row["model"]) for row in rows}
    # Two runs of one experiment (say VAE and IWAE side by side) may finish together: the lock
    # makes their read-modify-writes take turns, so neither drops the other's rows.
    with _exclusive_lock(path):
        kept = [row for row in read_results(path) if (row["mode"], row["model"]) not in replaced]
        try:
            text = json.dumps(kept + rows, indent=1, allow_nan=False)
        except ValueError as error:
            raise ValueError(
                f"rows: {path} would hold NaN/inf, which JSON has not: {error}"
            ) from None
        atomic_write_text(path, text + "\n")
    return path


@contextlib.contextmanager
def _exclusive_lock(path: pathlib.Path) -> Iterator[None]:
    """Holds an advisory lock on the folder of ``path``: no lock file left behind (POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped so a metric like ``|cos|`` keeps the columns."""
    return str(text).replace("|", "\\|")


def _format_number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def render_markdown(results_dir: str | os.PathLike) -> str:
    """RESULTS.md text: one table per experiment, full runs first, quick runs marked as such."""
    results_dir = pathlib.Path(results_dir)
    lines = [
        "# Results",
        "",
        "Generated by `python -m jaxae.results` from `experiments/results/*.json`; do not edit.",
        "Full runs are the reproductions; quick runs are CI smoke runs on subsets and are "
        "never comparable to the paper.",
        "",
    ]
    for path in sorted(results_dir.glob("*.json")):
        rows = read_results(path)
        if not rows:
            continue
        lines += [f"## {path.stem}", ""]
        for mode in ("full", "quick"):
            commands = dict.fromkeys(row["command"] for row in rows if row["mode"] == mode)
            for command in commands:
                run_rows = [r for r in rows if r["mode"] == mode and r["command"] == command]
                lines += _table(mode, command, run_rows)
        figure_dir = results_dir.parent / "figures" / path.stem
        figures = sorted(f.relative_to(figure_dir).as_posix() for f in figure_dir.rglob("*.png"))
        if figures:
            lines.append(
                "Figures: " + ", ".join(f"[{f}](figures/{path.stem}/{f})" for f in figures)
            )
            lines.append("")
    return "\n".join(lines)


_HEADER = (
    "| model | metric | split | ours | paper | paper source | hardware | wall time (s) "
    "| date | seed |"
)


def _table(mode: str, command: str, rows: list[Mapping[str, Any]]) -> list[str]:
    """The Markdown lines of one run: its command, then one table row per result row."""
    lines = [f"**{mode} run** — `{command}`", "", _HEADER, "|" + "---|" * 10]
    for row in rows:
        lines.append(
            f"| {_cell(row['model'])} | {_cell(row['metric'])} | {row['split']} "
            f"| {_format_number(row['value'])} | {_format_number(row['paper_value'])} "
            f"| {_cell(row['paper_source'] or '—')} | {row['hardware']} "
            f"| {row['wall_time_s']:.0f} | {row['date']} | {row['seed']} |"
        )
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate experiments/RESULTS.md.")
    parser.add_argument("--results-dir", default="experiments/results")
    parser.add_argument("--out", default="experiments/RESULTS.md")
    args = parser.parse_args(argv)
    atomic_write_text(args.out, render_markdown(args.results_dir))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
