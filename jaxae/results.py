"""The results format every experiment writes, and the RESULTS.md generated from it.

Each run writes ``experiments/results/<experiment>.json``: a list of rows, each with exactly the
keys in :data:`ROW_KEYS`. A run replaces only the rows of its own mode and models, so a quick run
never overwrites a full run's numbers, and a full run of some models (``--set models=iwae50``)
keeps the full-run rows of the others. A full run's test rows that stand beside a paper's
number are never dropped when a later run of the same model replaces them: they stay, with mode
``"superseded"``, so the record shows every test score a setting was chosen after, not only the
last (RESULTS.md lists them, and the headline names them beside the row it shows).
``python -m jaxae.results`` regenerates ``experiments/RESULTS.md`` from those files; nobody
types numbers into it.

RESULTS.md opens with a headline table: the full-run, test-split rows with a ``paper_value``,
ours beside the paper's, and whether we met it (:func:`compare_to_papers`, in the direction
:func:`lower_is_better` gives the metric), one row per paper number (:func:`headline_rows`: of
several runs against one number, the largest on the whole test split). A ``paper_source``
containing ``"target:"`` marks its ``paper_value`` as an acceptance target of ours, not a
paper's number; such rows stay out of the headline. A ``paper_source`` starting ``"baseline:"``
marks a baseline the paper reported (PCA beside its deep autoencoder): the headline lists it
beside ours but does not count it as a paper result met or missed, since a baseline of ours
that beats the paper's is no reproduction of the paper's method.
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
import re
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
    "check_finite",
    "make_row",
    "write_results",
    "read_results",
    "lower_is_better",
    "compare_to_papers",
    "headline_rows",
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
RUN_MODES = ("quick", "full")  # what a run writes
MODES = (*RUN_MODES, "superseded")  # a full run's paper-compared test row, replaced since


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


def check_finite(name: str, value: float, paper_value: float | None, hint: str = "") -> None:
    """Refuses a NaN or infinite ``value`` or ``paper_value`` of the result ``name``: strict JSON
    has no such numbers (``hint``: what to do instead, appended to the message)."""
    for field, number in (("value", value), ("paper_value", paper_value)):
        if number is not None and not math.isfinite(float(number)):
            raise ValueError(f"{field}: expected a finite number for {name}, got {number}{hint}")


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
    if mode not in RUN_MODES:
        raise ValueError(f"mode: expected one of {RUN_MODES}, got {mode!r}")
    value = float(value)
    check_finite(f"{model}/{metric}", value, paper_value)
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
    the rows of the others (and the command that produced them) in place. A replaced full-run row
    on the test split with a ``paper_value`` is kept as ``mode="superseded"`` (unless the new run
    is the same command with the same value: the same result written again).
    """
    rows = [dict(row) for row in rows]
    if not rows:
        raise ValueError("rows: expected at least one row, got none")
    modes = {row["mode"] for row in rows}
    for i, row in enumerate(rows):
        _check_row(row, f"rows[{i}]")
        if row["mode"] not in RUN_MODES:
            raise ValueError(f"rows[{i}]: a run writes mode {RUN_MODES}, got {row['mode']!r}")
        if row["experiment"] != experiment:
            raise ValueError(f"rows[{i}]: experiment {row['experiment']!r} != {experiment!r}")
    if len(modes) != 1:
        raise ValueError(f"rows: expected a single mode per write, got {sorted(modes)}")
    path = pathlib.Path(results_dir) / f"{experiment}.json"
    replaced = {(row["mode"], row["model"]) for row in rows}
    # Two runs of one experiment (say VAE and IWAE side by side) may finish together: the lock
    # makes their read-modify-writes take turns, so neither drops the other's rows.
    with _exclusive_lock(path):
        new = {(r["model"], r["metric"], r["split"]): r for r in rows}
        kept = []
        for row in read_results(path):
            if (row["mode"], row["model"]) not in replaced:
                kept.append(row)
            elif _is_paper_test_row(row):
                again = new.get((row["model"], row["metric"], row["split"]))
                same = again is not None and (again["command"], again["value"]) == (
                    row["command"],
                    row["value"],
                )
                if not same:
                    kept.append({**row, "mode": "superseded"})
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


# Whole words (or phrases) of a metric's name that say which way is better. A metric matching
# neither list, or both, is refused: a new metric needs a decision, not a guess.
_LOWER_IS_BETTER_WORDS = ("error", "nll", "cross-entropy", "loss", "excess")
_NEGATED = re.compile(
    r"(negative\s+|(?<![\w-])[-\u2212]\s*)"
    r"(log[- ]?likelihood|likelihood|elbo|iwae bound|bound|log p)"
)
_HIGHER_IS_BETTER_WORDS = (
    "precision",
    "recall",
    "map",
    "accuracy",
    "auc",
    "cos",
    "cosine",
    "likelihood",
    "elbo",
    "bound",
    "log p",
)


def _words_in(metric: str, words: tuple[str, ...]) -> list[str]:
    """The ``words`` found in ``metric`` as whole words: ``precision@10`` has ``precision``."""
    text = metric.lower()
    return [w for w in words if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text)]


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better result, decided from its name.

    Lower: error (also ``classification error (%)``), NLL, cross-entropy, loss, excess, and a
    negated higher-is-better quantity (``negative log-likelihood``, ``-ELBO``, ``−ELBO``).
    Higher: precision, recall, mAP, accuracy, AUC, cosine (``cos``), likelihood, ELBO, bound
    (``IWAE bound``), ``log p``. Units (nats, bits, %) say nothing either way.

    Args:
      metric: a result row's ``metric``, e.g. ``"NLL, k=5000 importance samples (nats)"``.

    Returns:
      ``True`` for a metric where lower is better, ``False`` where higher is.

    Raises:
      ValueError: if the name matches neither list, or both (``"-ELBO (nats)"``): the headline
        would otherwise give a verdict in a direction nobody chose.
    """
    # A negated quantity ("negative log-likelihood", "-ELBO") is lower-is-better: the negation
    # counts as a lower word and its quantity is taken out of the higher ones.
    negated = _NEGATED.findall(metric.lower())
    text = _NEGATED.sub(" ", metric.lower())
    lower = _words_in(text, _LOWER_IS_BETTER_WORDS) + [f"negated {q}" for _, q in negated]
    higher = _words_in(text, _HIGHER_IS_BETTER_WORDS)
    if bool(lower) == bool(higher):
        found = f"both {lower} (lower) and {higher} (higher)" if lower else "none of the words"
        raise ValueError(
            f"metric: cannot tell whether lower or higher is better for {metric!r} (found "
            f"{found}); name it so it has one of {_LOWER_IS_BETTER_WORDS} (lower is better) or "
            f"{_HIGHER_IS_BETTER_WORDS} (higher), or extend those lists in jaxae/results.py"
        )
    return bool(lower)


def _is_paper_test_row(row: Mapping[str, Any]) -> bool:
    """A full run's row on the test split that stands beside a paper's number (or a target)."""
    return row["mode"] == "full" and row["paper_value"] is not None and _is_test_split(row["split"])


def _is_test_split(split: str) -> bool:
    """``test`` or a slice of it (``test[:1000]``); never ``train``, ``validation``, ``weights``."""
    return split == "test" or split.startswith("test[")


def is_baseline(row: Mapping[str, Any]) -> bool:
    """Whether a row's ``paper_value`` is a baseline the paper reported (``"baseline:"``)."""
    return row["paper_source"].lower().startswith("baseline:")


def compare_to_papers(
    rows: Iterable[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], bool | None]]:
    """The rows that reproduce a paper's number, each with whether ours meets it.

    A row counts if it is a full run, on the test split (or a slice such as ``test[:1000]``),
    with a ``paper_value`` that is the paper's (a ``paper_source`` containing ``"target:"`` is
    our own acceptance target, not a paper result). Ours meets the paper's number when it is as
    good or better in the direction of :func:`lower_is_better`; equal values (to float rounding,
    a relative 1e-9) count as met. A baseline's (:func:`is_baseline`) verdict is None: it is
    listed, never counted.

    Args:
      rows: result rows, as :func:`read_results` returns them.

    Returns:
      ``(row, met)`` pairs in the order of ``rows``; ``met`` is None for a baseline.

    Raises:
      ValueError: for a counted row whose metric :func:`lower_is_better` cannot classify.
    """
    compared = []
    for row in rows:
        if row["mode"] != "full" or row["paper_value"] is None:
            continue
        if not _is_test_split(row["split"]) or "target:" in row["paper_source"].lower():
            continue
        try:
            lower = lower_is_better(row["metric"])
        except ValueError as error:
            raise ValueError(f"{row['experiment']}, model {row['model']!r}: {error}") from None
        value, paper = float(row["value"]), float(row["paper_value"])
        if is_baseline(row):
            met = None
        elif math.isclose(value, paper, rel_tol=1e-9):
            met = True
        else:
            met = value < paper if lower else value > paper
        compared.append((row, met))
    return compared


def render_markdown(results_dir: str | os.PathLike) -> str:
    """RESULTS.md text: the headline table, then one table per experiment, full runs first."""
    results_dir = pathlib.Path(results_dir)
    lines = [
        "# Results",
        "",
        "Generated by `python -m jaxae.results` from `experiments/results/*.json`; do not edit.",
        "Full runs are the reproductions; quick runs are CI smoke runs on subsets and are "
        "never comparable to the paper. Superseded runs are earlier full runs' test rows beside "
        "a paper number, replaced by a later run of the same model: kept, so that every test "
        "score a setting was chosen after stays on record.",
        "",
    ]
    experiments = [(path.stem, read_results(path)) for path in sorted(results_dir.glob("*.json"))]
    lines += _headline(experiments)
    for name, rows in experiments:
        if not rows:
            continue
        lines += [f"## {name}", ""]
        for mode in ("full", "superseded", "quick"):
            commands = dict.fromkeys(row["command"] for row in rows if row["mode"] == mode)
            for command in commands:
                run_rows = [r for r in rows if r["mode"] == mode and r["command"] == command]
                lines += _table(mode, command, run_rows)
        figure_dir = results_dir.parent / "figures" / name
        figures = sorted(f.relative_to(figure_dir).as_posix() for f in figure_dir.rglob("*.png"))
        if figures:
            lines.append("Figures: " + ", ".join(f"[{f}](figures/{name}/{f})" for f in figures))
            lines.append("")
    return "\n".join(lines)


_HEADLINE_HEADER = "| paper | model | metric | paper's number | ours | met? | budget |"


_BUDGET_SUFFIX = re.compile(r", \d+ epochs\b.*$")


def _paper_result(row: Mapping[str, Any]) -> tuple[str, str, float, bool]:
    """Which paper result a row reproduces: the paper (as :func:`_paper_short_name` gives it),
    the model without a trailing budget (``"VAE k=1, 60 epochs"`` is ``"VAE k=1"``), the
    paper's number and the metric's direction. Rows with one key are runs of one result: two
    budgets of a model, or the same PCA-30 baseline in two experiments."""
    model = _BUDGET_SUFFIX.sub("", row["model"])
    return (
        _paper_short_name(row),
        model,
        float(row["paper_value"]),
        lower_is_better(row["metric"]),
    )


def headline_rows(
    compared: Iterable[tuple[str, Mapping[str, Any], bool | None]],
) -> list[tuple[str, Mapping[str, Any], bool | None, list[Mapping[str, Any]]]]:
    """One ``(experiment, row, met, others)`` per paper result, in order of first appearance.

    Where several full runs compare against the same paper number (the same paper as the
    headline names it, model without a trailing ``", N epochs ..."`` budget, number and metric
    direction), the one shown is the run on the whole test split before one on a subset
    (``test[:1000]``), then the run with the largest wall time (the largest budget), then the
    latest; ``others`` are the rest, which the headline lists beside it. Never the best value:
    that would pick among test scores.

    Args:
      compared: ``(experiment, row, met)`` triples, as :func:`compare_to_papers` gives per file.
    """
    groups: dict[tuple[str, str, float, bool], list[tuple[str, Mapping[str, Any], bool]]] = {}
    for name, row, met in compared:
        groups.setdefault(_paper_result(row), []).append((name, row, met))
    shown = []
    for runs in groups.values():
        name, row, met = max(
            runs,
            key=lambda run: (run[1]["split"] == "test", run[1]["wall_time_s"], run[1]["date"]),
        )
        shown.append((name, row, met, [r for _, r, _ in runs if r is not row]))
    return shown


def _headline(experiments: list[tuple[str, list[Mapping[str, Any]]]]) -> list[str]:
    """The headline section: each paper number beside ours, met or not, and the run's budget."""
    compared = headline_rows(
        (name, row, met) for name, rows in experiments for row, met in compare_to_papers(rows)
    )
    lines = [
        "## Headline",
        "",
        "Every paper number a full run compares against, beside ours, on the test split (a "
        "subset such as `test[:1000]` is named in the metric). One row per paper number: where "
        "several full runs compare against the same one (smaller budgets, a test subset, the "
        "same baseline in two experiments), the row is the run on the whole test split with "
        "the largest wall time, never the best score, and the budget says how many runs there "
        "were, and lists the others' scores; every run is in the experiment's tables. Met: ours "
        "is as good as the paper's or better (lower error, NLL, nats; higher precision, mAP). "
        "A baseline the paper reported beside its method (PCA beside the deep autoencoder) is "
        "listed but not counted: a baseline of ours that beats the paper's is no reproduction "
        "of the paper's method. The paper links go "
        "to the experiment's tables, where the source (table, page) of each number is; our own "
        "targets (`target:` sources) are there too, not here. Budget: the run's wall time, "
        "hardware and its `--set` overrides of the script's defaults, and the test scores of "
        "earlier runs of the same model that a later run replaced (superseded runs).",
        "",
    ]
    if not compared:
        return lines + ["No full run compares against a paper number yet.", ""]
    counted = [met for _, _, met, _ in compared if met is not None]
    baselines = len(compared) - len(counted)
    lines += [
        f"**{sum(counted)} of {len(counted)} paper results met.**"
        + (
            f" ({baselines} baseline{'s' if baselines > 1 else ''} listed beside them, not "
            "counted.)"
            if baselines
            else ""
        ),
        "",
        _HEADLINE_HEADER,
        "|" + "---|" * 7,
    ]
    earlier: dict[tuple[str, str, float, bool], list[Mapping[str, Any]]] = {}
    for _, rows in experiments:
        for row in rows:
            if row["mode"] == "superseded" and "target:" not in row["paper_source"].lower():
                earlier.setdefault(_paper_result(row), []).append(row)
    for name, row, met, others in compared:
        metric = row["metric"] if row["split"] == "test" else f"{row['metric']}, {row['split']}"
        budget = _budget(row)
        if others:
            listed = "; ".join(
                _scored(r, r["model"], _subset(r), _wall(r["wall_time_s"])) for r in others
            )
            budget += f" (the largest of {len(others) + 1} runs; the others: {listed})"
        replaced = sorted(earlier.get(_paper_result(row), []), key=lambda r: r["date"])
        if replaced:
            values = ", ".join(_scored(r, _subset(r), r["date"]) for r in replaced)
            budget += f"; earlier test runs, since replaced: {values}"
        lines.append(
            f"| [{_cell(_paper_short_name(row))}](#{name}) | {_cell(row['model'])} "
            f"| {_cell(metric)} | {_format_number(row['paper_value'])} "
            f"| {_format_number(row['value'])} | {_verdict(met)} | {_cell(budget)} |"
        )
    return lines + [""]


def _subset(row: Mapping[str, Any]) -> str:
    """A row's split where it is not the whole test set (``test[:1000]``), else empty."""
    return "" if row["split"] == "test" else row["split"]


def _scored(row: Mapping[str, Any], *details: str) -> str:
    """``"87.78 (VAE k=1, 170 min)"``: a row's value and the non-empty ``details``."""
    return f"{_format_number(row['value'])} ({', '.join(d for d in details if d)})"


def _verdict(met: bool | None) -> str:
    return "baseline, not counted" if met is None else ("yes" if met else "no")


def _wall(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _paper_short_name(row: Mapping[str, Any]) -> str:
    """``"Burda, Grosse & Salakhutdinov 2015"``: the source up to its year, with "as cited ..."."""
    source = re.sub(r"^baseline:\s*", "", row["paper_source"], flags=re.IGNORECASE)
    match = re.match(r".*?\b(?:19|20)\d\d\b", source)
    short = match.group(0) if match else row["experiment"]
    cited = re.search(r"as (?:commonly )?cited[^;,()]*", source)  # a number not read in the paper
    return f"{short}, {cited.group(0).strip()}" if cited else short


def _budget(row: Mapping[str, Any]) -> str:
    """E.g. ``"23 min, cpu x1 (...); `--set epochs=60`"``: what the run was given."""
    wall = _wall(row["wall_time_s"])
    try:
        argv = shlex.split(row["command"])
    except ValueError:  # an unbalanced quote: show the command as it is, not a guess at it
        return f"{wall}, {row['hardware']}; `{row['command']}`"
    overrides = []
    for i, arg in enumerate(argv):
        if arg == "--set" and i + 1 < len(argv):
            overrides.append(argv[i + 1])
        elif arg.startswith("--set="):
            overrides.append(arg.removeprefix("--set="))
    sets = " ".join(f"--set {o}" for o in overrides)
    return f"{wall}, {row['hardware']}; " + (f"`{sets}`" if sets else "script defaults")


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
