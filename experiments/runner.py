"""Plumbing shared by the experiment scripts: output folder, log, figures, result rows.

The science lives in ``jaxae``; this module only records a run the same way for every paper.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import pathlib
import time
from typing import Any

import numpy as np

import jaxae
from jaxae import results
from jaxae.atomic import atomic_write_bytes, atomic_write_text

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS_DIR = ROOT / "results"


def parse_args(
    description: str, argv: list[str] | None, *, validation: bool = False
) -> argparse.Namespace:
    """The flags every experiment takes: ``--quick``, ``--out``, ``--results-dir``, ``--seed``,
    ``--set NAME=VALUE`` (config overrides) and, where offered, ``--validation``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small subset, few epochs (CI)")
    parser.add_argument("--out", default=None, help="folder for log, metrics and figures")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR), help="where <name>.json goes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a config field"
    )
    if validation:
        parser.add_argument(
            "--validation",
            action="store_true",
            help="model selection: train on train[:50000], report on the held-out train[50000:]",
        )
    return parser.parse_args(argv)


def apply_overrides(config: Any, assignments: list[str]) -> Any:
    """``config`` with ``NAME=VALUE`` assignments applied, each parsed as the field's type."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or name not in fields:
            raise SystemExit(
                f"--set {assignment!r}: expected NAME=VALUE with NAME in {sorted(fields)}"
            )
        current = getattr(config, name)
        try:
            changes[name] = _parse_like(current, text, str(fields[name].type))
        except ValueError as error:
            raise SystemExit(f"--set {assignment!r}: {error}") from None
    return dataclasses.replace(config, **changes)


def _parse_like(current: Any, text: str, annotation: str) -> Any:
    if text.lower() == "none":
        return None
    if current is None:  # an optional field: parse by its annotation, e.g. "int | None"
        if annotation.startswith("tuple"):
            current = ()
        else:
            current = 0 if "int" in annotation else 0.0 if "float" in annotation else ""
    if isinstance(current, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    if isinstance(current, tuple):
        return tuple(int(part) for part in text.split(","))
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    return text


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """MNIST arrays for one run: training images and labels, and the split it reports on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    name: str  # "test" or "validation"


def load_mnist_splits(
    validation: bool, train_examples: int | None = None, eval_examples: int | None = None
) -> MnistSplits:
    """MNIST: train on the 60k training set and report on test, or (``validation``) train on
    ``train[:50000]`` and report on the 10k held out of the training set — test is never used
    for model selection."""
    train_split, eval_split = (
        ("train[:50000]", "train[50000:]") if validation else ("train", "test")
    )
    train = jaxae.data.load("mnist", train_split)
    evaluation = jaxae.data.load("mnist", eval_split)
    return MnistSplits(
        train.flat[:train_examples],
        train.labels[:train_examples],
        evaluation.flat[:eval_examples],
        evaluation.labels[:eval_examples],
        "validation" if validation else "test",
    )


class Run:
    """One run of an experiment: times it, logs to ``<out>/log.txt``, collects result rows.

    Full runs put their figures in ``experiments/figures/<name>/`` (committed, linked from
    RESULTS.md); quick runs use ``experiments/runs/<name>/quick/`` unless ``--out`` says otherwise.
    """

    def __init__(self, name: str, args: argparse.Namespace, config: Any):
        self.name = name
        self.mode = "quick" if args.quick else "full"
        self.seed = args.seed
        self.results_dir = pathlib.Path(args.results_dir)
        default_out = (
            ROOT
            / ("figures" if self.mode == "full" else "runs/" + name)
            / (name if self.mode == "full" else "quick")
        )
        self.out = pathlib.Path(args.out) if args.out else default_out
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self.start = time.perf_counter()
        self.log = logging.getLogger(f"jaxae.experiments.{name}")
        self.log.setLevel(logging.INFO)
        self.log.handlers.clear()
        self.log.propagate = False
        self._log_buffer = io.StringIO()
        for stream in (None, self._log_buffer):
            handler = logging.StreamHandler(stream)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
            self.log.addHandler(handler)
        self.log.info("%s (%s mode), config: %s", name, self.mode, dataclasses.asdict(config))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def record(
        self,
        model: str,
        metric: str,
        value: float,
        *,
        split: str = "test",
        paper_value: float | None = None,
        paper_source: str = "",
    ) -> None:
        """Adds a result row (written by :meth:`finish`) and logs it beside the paper's number."""
        self.metrics[f"{model}/{metric}/{split}"] = float(value)
        paper = "" if paper_value is None else f" (paper: {paper_value:g}, {paper_source})"
        self.log.info("%-28s %-34s %-6s %.4f%s", model, metric, split, value, paper)
        self.rows.append(
            dict(
                model=model,
                metric=metric,
                split=split,
                value=value,
                paper_value=paper_value,
                paper_source=paper_source,
            )
        )

    def save_figure(self, fig, filename: str) -> pathlib.Path:
        """Saves a matplotlib figure as PNG atomically and closes it."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        path = self.out / filename
        atomic_write_bytes(path, buffer.getvalue())
        self.log.info("figure: %s", path)
        return path

    def finish(self) -> pathlib.Path:
        """Writes the result rows, ``metrics.json`` and ``log.txt``; returns the results file."""
        wall = self.elapsed
        hardware = results.hardware_description()
        rows = [
            results.make_row(
                experiment=self.name,
                mode=self.mode,
                seed=self.seed,
                wall_time_s=wall,
                hardware=hardware,
                **row,
            )
            for row in self.rows
        ]
        path = results.write_results(self.name, rows, self.results_dir)
        self.log.info("wall time %.1f s; results: %s", wall, path)
        summary = {"experiment": self.name, "mode": self.mode, "wall_time_s": wall}
        summary["config"] = dataclasses.asdict(self.config)
        summary["metrics"] = self.metrics
        atomic_write_text(self.out / "metrics.json", json.dumps(summary, indent=1) + "\n")
        atomic_write_text(self.out / "log.txt", self._log_buffer.getvalue())
        return path
