"""What every experiment script does: its command line, its run record, its figures.

A script in ``experiments/`` is a config dataclass (defaults: the paper's settings), a quick
variant, and ``main(argv) -> metrics``; it imports only ``jaxae``, never another script::

    def main(argv=None) -> dict:
        args, config = experiment.parse(__file__, __doc__, argv, config=Config(), quick=QUICK)
        run = experiment.Run("paper2006", args, config)
        ...
        run.record("deep AE", "squared error per image", error, paper_value=3.0, paper_source=S)
        run.save_figure(fig, "reconstructions.png")
        run.finish()
        return run.metrics

Every script takes ``--quick``, ``--out``, ``--results-dir``, ``--seed``, ``--no-progress``,
``--set NAME=VALUE`` (repeatable) and, where offered, ``--validation``. ``--set`` values are
parsed by the field's type annotation through simple_parsing (a kept library, argparse-based):
``--set finetune_lr=2e-3``, ``--set sizes=784,500,30`` and ``--set models=vae,iwae`` for tuple
fields (comma-separated), ``--set tied=true``, ``--set limit=none`` for an optional field.

The result rows go through :mod:`jaxae.results` (``python -m jaxae.results`` renders them).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import logging
import os
import pathlib
import shlex
import sys
import time
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxae import results
from jaxae.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "check_retrieval_sizes",
    "FinetuneResult",
    "OPTIMIZERS",
    "MnistSplits",
    "Run",
    "apply_overrides",
    "checkpoint_subdir",
    "cosine_optimizer",
    "error_curves_figure",
    "filters_figure",
    "image_rows_figure",
    "load_mnist_splits",
    "model_names",
    "sliced_split_name",
    "named_optimizer",
    "parse",
    "parse_args",
    "pretrain_and_finetune",
    "pyplot",
    "record_best_epoch",
    "tile_images",
]


# --------------------------------------------------------------------------- command line


def parse_args(
    description: str,
    argv: Sequence[str] | None,
    *,
    validation: bool = False,
    parser: argparse.ArgumentParser | None = None,
) -> argparse.Namespace:
    """The flags every experiment takes: ``--quick``, ``--out``, ``--results-dir``, ``--seed``,
    ``--no-progress``, ``--set NAME=VALUE`` and, with ``validation``, ``--validation``.

    ``parser``: a parser with the script's own flags already added (this adds the common ones).
    ``--results-dir`` defaults to None here; :func:`parse` and :class:`Run` resolve it.
    """
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small subset, few epochs (CI)")
    parser.add_argument("--out", default=None, help="folder for log, metrics and figures")
    parser.add_argument("--results-dir", default=None, help="where <name>.json goes")
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
    return parser.parse_args(None if argv is None else list(argv))


def parse(
    script: str,
    description: str | None,
    argv: Sequence[str] | None,
    *,
    config: Any,
    quick: Any = None,
    validation: bool = False,
    parser: argparse.ArgumentParser | None = None,
) -> tuple[argparse.Namespace, Any]:
    """The opening of every ``main(argv)``: the flags, and the config they select.

    Args:
      script: the script's ``__file__``; its folder holds ``results/``, ``figures/``, ``runs/``.
      description: the script's ``__doc__`` (its first line is the ``--help`` description).
      argv: the arguments (None: ``sys.argv[1:]``).
      config: the full run's config (a dataclass instance, the paper's settings).
      quick: the ``--quick`` config (None: ``--quick`` keeps ``config``).
      validation: offer ``--validation``.
      parser: a parser with the script's own flags (see :func:`parse_args`).

    Returns:
      ``(args, config)``: ``config`` is ``quick`` under ``--quick``, else ``config``, with the
      ``--set`` overrides applied. ``args.experiments_dir`` is the script's folder;
      ``args.command`` the command the result rows record (``argv`` as given, so a ``main([...])``
      called from a notebook or a test records its own arguments, not the caller's).
    """
    first_line = (description or "").strip().splitlines()[:1]
    args = parse_args(
        first_line[0] if first_line else "", argv, validation=validation, parser=parser
    )
    args.experiments_dir = str(pathlib.Path(script).resolve().parent)
    given = sys.argv[1:] if argv is None else list(argv)
    args.command = "python " + shlex.join([os.path.relpath(script), *given])
    if args.results_dir is None:
        args.results_dir = str(pathlib.Path(args.experiments_dir) / "results")
    base = quick if args.quick and quick is not None else config
    return args, apply_overrides(base, args.set)


class _OverrideError(Exception):
    pass


@functools.cache
def _parser_type() -> type:
    import simple_parsing

    class Parser(simple_parsing.ArgumentParser):
        def error(self, message: str):  # raise, so the caller can name the assignment
            raise _OverrideError(message)

    return Parser


def _annotation(config_type: type, name: str) -> Any:
    try:
        return typing.get_type_hints(config_type)[name]
    except Exception:  # unresolvable annotation: parse by the current value's type
        return None


def _is_optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation) and (
        typing.get_origin(annotation) in (typing.Union, types.UnionType)
    )


def _is_sequence(annotation: Any) -> bool:
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) in (tuple, list):
            return True
    return False


def apply_overrides(config: Any, assignments: Sequence[str]) -> Any:
    """``config`` with ``NAME=VALUE`` assignments applied, each parsed by the field's type.

    Parsing is simple_parsing's, from the dataclass's annotations; tuple fields take
    comma-separated values (``sizes=784,500,30``, ``models=vae,iwae``) and ``none`` sets an
    optional field to None. A bad assignment exits with a message that names it.
    """
    import simple_parsing

    fields = {f.name: f for f in dataclasses.fields(config)}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or name not in fields:
            raise SystemExit(
                f"--set {assignment!r}: expected NAME=VALUE with NAME in {sorted(fields)}"
            )
        annotation = _annotation(type(config), name)
        if text.strip().lower() == "none" and (
            _is_optional(annotation) or getattr(config, name) is None
        ):
            config = dataclasses.replace(config, **{name: None})
            continue
        if _is_sequence(annotation) and not text.strip():  # models= : an empty tuple
            config = dataclasses.replace(config, **{name: ()})
            continue
        values = [v.strip() for v in text.split(",")] if _is_sequence(annotation) else [text]
        # A dataclass of this one field, its annotation resolved: simple_parsing then never
        # reads the config's other annotations, which it cannot parse as strings (`from
        # __future__ import annotations`) when one is, say, `tuple[int, ...] | None`.
        field_type = annotation if annotation is not None else type(getattr(config, name))
        one_field = dataclasses.make_dataclass(
            "Override", [(name, field_type, dataclasses.field(default=getattr(config, name)))]
        )
        parser = _parser_type()(
            add_option_string_dash_variants=simple_parsing.DashVariant.UNDERSCORE,
            add_config_path_arg=False,
            add_help=False,
        )
        parser.add_arguments(one_field, dest="override")
        try:
            value = getattr(parser.parse_args([f"--{name}", *values]).override, name)
        except _OverrideError as error:
            raise SystemExit(f"--set {assignment!r}: {error}") from None
        config = dataclasses.replace(config, **{name: value})
    return config


def model_names(
    models: Sequence[str], known: Sequence[str], *, allow_empty: bool = False
) -> list[str]:
    """``--set models=...`` as a list, or ``SystemExit`` before any data loads: a name the
    script does not know, a name twice (two runs would share rows and checkpoint folders), or
    none at all unless the script has something to do without models."""
    names = list(models)
    unknown = [name for name in names if name not in known]
    if unknown or len(set(names)) != len(names) or not (names or allow_empty):
        some = "distinct names" if allow_empty else "one or more distinct names"
        raise SystemExit(f"--set models=...: expected {some} from {list(known)}, got {names}")
    return names


def check_retrieval_sizes(
    n_database: int,
    n_queries: int,
    *,
    largest_k: int,
    timed_k: int,
    timed_queries: int,
    figure_queries: int,
    shortlist: int | None = None,
) -> None:
    """A retrieval script's sizes, checked when its data is loaded, not after the training:
    ``SystemExit`` naming each setting the database or the queries cannot serve."""
    problems = []
    if largest_k > n_database:
        problems.append(
            f"precision@{largest_k} needs a database of at least {largest_k} items, got "
            f"{n_database} (--set train_examples)"
        )
    if shortlist is not None and not timed_k <= shortlist <= n_database:
        problems.append(
            f"shortlist: expected {timed_k} <= shortlist <= the database's {n_database}, got "
            f"{shortlist}"
        )
    if figure_queries > min(timed_queries, n_queries):
        problems.append(
            f"figure_queries: expected at most min(timed_queries, queries) = "
            f"{min(timed_queries, n_queries)}, got {figure_queries}"
        )
    if problems:
        raise SystemExit("; ".join(problems))


def checkpoint_subdir(checkpoint_dir: str | os.PathLike | None, *names: str) -> str | None:
    """``<checkpoint_dir>/<name>/...``: one folder a ``fit``, so a cut run resumes each one.

    None when ``checkpoint_dir`` is None (no saving). ``fit`` checks that a checkpoint it finds
    is of the same model and optimizer, not of the same data or schedule (a pretrained layer's
    recipe, data and key are checked: ``jaxae.recipes.check_layer_fingerprint``): give each
    command its own ``checkpoint_dir`` (a ``--quick`` or ``--validation`` run too).
    """
    if checkpoint_dir is None:
        return None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names: expected one or more non-empty strings, got {names!r}")
    return str(pathlib.Path(checkpoint_dir).joinpath(*names))


# --------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """MNIST arrays for one run: training images and labels, and the split it reports on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    name: str  # "test" or "validation"


def load_mnist_splits(
    validation: bool,
    train_examples: int | None = None,
    eval_examples: int | None = None,
    *,
    dataset: str = "mnist",
    download: bool = True,
) -> MnistSplits:
    """MNIST: train on the 60k training set and report on test, or (``validation``) train on
    ``train[:50000]`` and report on the 10k held out of the training set — test is never used
    for model selection. ``dataset="fashion_mnist"``: the same splits of Fashion-MNIST (also
    60k/10k); ``download=False`` raises :class:`jaxae.data.DataFileError` where the files are
    not already on disk."""
    from jaxae import data

    train_split, eval_split = (
        ("train[:50000]", "train[50000:]") if validation else ("train", "test")
    )
    train = data.load(dataset, train_split, download=download)
    evaluation = data.load(dataset, eval_split, download=download)
    name = "validation" if validation else "test"
    return MnistSplits(
        train.flat[:train_examples],
        train.labels[:train_examples],
        evaluation.flat[:eval_examples],
        evaluation.labels[:eval_examples],
        sliced_split_name(name, len(evaluation.labels), eval_examples),
    )


def sliced_split_name(name: str, size: int, examples: int | None) -> str:
    """``name``, or ``name[:examples]`` when only the first ``examples`` of its ``size`` rows are
    used: a result row on a subset must say so (the headline never takes it for the whole).
    ``name`` may itself be a first-rows slice (``"test[:5000]"``): its first rows are the
    split's, so the result is ``"test[:examples]"``."""
    if examples is None or examples >= size:
        return name
    return f"{name.partition('[')[0]}[:{examples}]"


# --------------------------------------------------------------------------- the run record


class Run:
    """One run of an experiment: times it, logs to ``<out>/log.txt``, collects result rows.

    Full runs put their figures in ``experiments/figures/<name>/`` (committed, linked from
    RESULTS.md); quick runs use ``experiments/runs/<name>/quick/`` unless ``--out`` says otherwise.
    """

    def __init__(self, name: str, args: argparse.Namespace, config: Any):
        self.name = name
        self.mode = "quick" if args.quick else "full"
        self.command = getattr(args, "command", None)  # None: this process's command line
        self.seed = args.seed
        self.progress = not getattr(args, "no_progress", False)
        root = pathlib.Path(getattr(args, "experiments_dir", None) or "experiments")
        self.results_dir = pathlib.Path(args.results_dir or root / "results")
        default_out = (
            root
            / ("figures" if self.mode == "full" else "runs/" + name)
            / (name if self.mode == "full" else "quick")
        )
        self.out = pathlib.Path(args.out) if args.out else default_out
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self.start = time.perf_counter()
        # A rerun of a command made in pieces: the training its earlier processes checkpointed
        # counts in the recorded wall time (read before any fit of this process restores it).
        self.resumed_s = 0.0
        checkpoint_dir = getattr(config, "checkpoint_dir", None)
        if checkpoint_dir:
            from jaxae.training.checkpoint import saved_training_seconds

            self.resumed_s = saved_training_seconds(checkpoint_dir)
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
        if self.resumed_s:
            self.log.info(
                "resuming: %s holds %.1f s of training by earlier processes",
                checkpoint_dir,
                self.resumed_s,
            )

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
        """Adds a result row (written by :meth:`finish`) and logs it beside the paper's number.

        A non-finite value is refused here, when it is recorded, not at :meth:`finish` after
        the rest of the run (``results.make_row`` would refuse it there)."""
        results.check_finite(
            f"{model}/{metric}/{split}", value, paper_value,
            hint="; record nothing (or a count of the cases) where a metric is undefined",
        )  # fmt: skip
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
        plt = pyplot()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        path = self.out / filename
        atomic_write_bytes(path, buffer.getvalue())
        self.log.info("figure: %s", path)
        return path

    def finish(self) -> pathlib.Path:
        """Writes the result rows, ``metrics.json`` and ``log.txt``; returns the results file."""
        wall = self.elapsed + self.resumed_s
        hardware = results.hardware_description()
        rows = [
            results.make_row(
                experiment=self.name,
                mode=self.mode,
                seed=self.seed,
                wall_time_s=wall,
                hardware=hardware,
                command=self.command,
                **row,
            )
            for row in self.rows
        ]
        path = results.write_results(self.name, rows, self.results_dir)
        resumed = f" ({self.resumed_s:.1f} s of it in earlier processes)" if self.resumed_s else ""
        self.log.info("wall time %.1f s%s; results: %s", wall, resumed, path)
        summary = {"experiment": self.name, "mode": self.mode, "wall_time_s": wall}
        summary["config"] = dataclasses.asdict(self.config)
        summary["metrics"] = self.metrics
        atomic_write_text(self.out / "metrics.json", json.dumps(summary, indent=1) + "\n")
        atomic_write_text(self.out / "log.txt", self._log_buffer.getvalue())
        return path


# --------------------------------------------------------------------------- figures


@functools.cache
def pyplot():
    """``matplotlib.pyplot``, on the Agg backend (PNG files, no display) in a script; a notebook
    (an IPython kernel) or a session that already imported pyplot keeps its backend, so its
    ``plt.show()`` still displays."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tile_images(images: np.ndarray, rows: int, cols: int, side: int = 28) -> np.ndarray:
    """``rows * cols`` flat ``side x side`` images as one ``[rows * side, cols * side]`` image."""
    images = np.asarray(images).reshape(rows, cols, side, side)
    return images.transpose(0, 2, 1, 3).reshape(rows * side, cols * side)


def image_rows_figure(
    rows: dict[str, Any],
    *,
    clip: bool = True,
    side: int = 28,
    figsize: tuple[float, float] | None = None,
    fontsize: float = 8,
    value_range: tuple[float, float] | None = None,
):
    """A figure with one row per entry (e.g. digits, corrupted, reconstructed), one column per
    example, each flat image shown as ``side x side`` grey levels, the entry's name on the left.

    ``value_range``: the values shown black and white (e.g. ``(0, 1)`` for probabilities, so
    faint predictions look faint); None scales each image to its own range. NaN shows blank.
    """
    plt = pyplot()
    n = len(next(iter(rows.values())))
    figsize = figsize or (n * 0.9, len(rows) * 1.0)
    fig, axes = plt.subplots(len(rows), n, figsize=figsize, squeeze=False)
    vmin, vmax = value_range or (None, None)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            image = np.asarray(images[c]).reshape(side, side)
            image = np.clip(image, 0, 1) if clip else image
            axes[r, c].imshow(image, cmap="gray", vmin=vmin, vmax=vmax)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=fontsize)
    return fig


def neighbours_figure(
    queries,
    query_labels,
    database,
    database_labels,
    neighbours: dict[str, Any],
    n_queries: int,
    *,
    title: str,
    shown: int = 10,
):
    """Each query (left) beside its ``shown`` nearest database images by each method; a red
    frame marks a neighbour whose label differs from the query's.

    Args:
      queries: flat 28x28 query images ``[n, 784]`` (or ``[n, 28, 28, ...]``).
      query_labels: ``[n]`` class labels of the queries.
      database: the searched images, shaped like ``queries``.
      database_labels: their class labels.
      neighbours: method name -> ``[n_queries_or_more, >= shown]`` database indices, nearest first.
      n_queries: how many queries (rows per method) to show.
      title: the figure's title.
    """
    plt = pyplot()
    rows = [(q, method) for q in range(n_queries) for method in neighbours]
    fig, axes = plt.subplots(
        len(rows), shown + 1, figsize=(0.6 * (shown + 1) + 3, 0.6 * len(rows)), squeeze=False
    )
    for r, (q, method) in enumerate(rows):
        ids = neighbours[method][q, :shown]
        images = [queries[q]] + [database[i] for i in ids]
        wrong = [False] + [database_labels[i] != query_labels[q] for i in ids]
        for c, (image, bad) in enumerate(zip(images, wrong, strict=True)):
            ax = axes[r, c]
            ax.imshow(np.asarray(image).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color("red" if bad else "none")
                spine.set_linewidth(2)
        axes[r, 0].set_ylabel(method, rotation=0, ha="right", va="center", fontsize=6)
    axes[0, 0].set_title("query", fontsize=7)
    fig.suptitle(title, y=1.0)
    return fig


def _filter_tiles(weights: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` columns of ``[784, n_hidden]`` weights as one image of 28×28 tiles, each
    tile scaled to its own [min, max]."""
    columns = np.asarray(weights)[:, :n].T.reshape(-1, 28, 28)
    low = columns.min(axis=(1, 2), keepdims=True)
    high = columns.max(axis=(1, 2), keepdims=True)
    columns = (columns - low) / np.maximum(high - low, 1e-8)
    side = int(np.ceil(np.sqrt(len(columns))))
    grid = np.ones((side * 29 + 1, side * 29 + 1))
    for i, tile in enumerate(columns):
        r, c = divmod(i, side)
        grid[1 + 29 * r : 29 * (r + 1), 1 + 29 * c : 29 * (c + 1)] = tile
    return grid


def filters_figure(panels: dict[str, np.ndarray], n: int = 100):
    """First-layer filters (``[784, n_hidden]`` each) as grids of 28×28 tiles, side by side."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9), squeeze=False)
    for ax, (title, weights) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(_filter_tiles(weights, n), cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    return fig


# --------------------------------------------------------------------------- shared pipelines


class FinetuneResult(NamedTuple):
    """What :func:`pretrain_and_finetune` returns."""

    layers: list  # the pretrained layers (jaxae.recipes.PretrainedLayer), bottom first
    curve: list[float]  # classification error (%) on the eval split after each fine-tuning epoch


def pretrain_and_finetune(
    run: Run,
    label: str,
    data: MnistSplits,
    sizes: Sequence[int],
    configs: Any,
    *,
    key: Any,
    finetune_epochs: int,
    finetune_lr: float,
    finetune_batch_size: int,
    progress: bool,
    paper_value: float | None,
    paper_source: str,
    checkpoint_dir: str | os.PathLike | None = None,
    finetune_optimizer: str = "adam",
    finetune_momentum: float = 0.9,
    finetune_weight_decay: float = 0.0,
) -> FinetuneResult:
    """Greedy layer-wise pretraining, a softmax on top, supervised fine-tuning (Adam or SGD,
    cosine-decayed rate: :func:`cosine_optimizer`); records the classification error in % on
    ``data``'s eval split and, on the validation split, the fine-tuning epoch where it was
    lowest (:func:`record_best_epoch`).

    The pipeline of the regularized-autoencoder reproductions (rifai2011, vincent2010), wired to
    their MNIST splits and result rows. After each fine-tuning epoch the eval split's error is
    computed (``fit``'s ``eval_fn``: a forward pass over the eval images, small beside an
    epoch's forward and backward passes over the training set) and kept in the fit history as
    ``"error"`` (a fraction).

    Args:
      checkpoint_dir: one model's folder, e.g. ``checkpoint_subdir(config.checkpoint_dir,
        model)``: pretraining saves to ``<checkpoint_dir>/pretrain/layer_<i>``, fine-tuning to
        ``<checkpoint_dir>/finetune``, and a rerun of the same command resumes (same key, same
        data: the same result). None: nothing saved.
      finetune_optimizer: ``"adam"`` or ``"sgd"`` (heavy-ball momentum ``finetune_momentum``),
        either with its rate cosine-decayed from ``finetune_lr`` to 0 over the fine-tuning.
      finetune_weight_decay: decay of the weight matrices during fine-tuning
        (:func:`named_optimizer`'s ``weight_decay``).

    Returns:
      :class:`FinetuneResult`: the pretrained layers and the fine-tuning curve in %, whose last
      value is the recorded error.
    """
    import jax

    import jaxae

    # Built first, so that a bad optimizer name fails before minutes of pretraining.
    steps = finetune_epochs * (len(data.x_train) // finetune_batch_size)
    optimizer = cosine_optimizer(
        finetune_optimizer,
        finetune_lr,
        steps,
        momentum=finetune_momentum,
        weight_decay=finetune_weight_decay,
        setting="finetune_optimizer",
    )
    pretrain_key, finetune_key = jax.random.split(key)
    layers = jaxae.pretrain_stack(
        data.x_train,
        sizes,
        configs,
        key=pretrain_key,
        checkpoint_dir=checkpoint_subdir(checkpoint_dir, "pretrain"),
        progress=progress,
    )
    model, params = jaxae.stack_encoders(layers, n_classes=10)

    def eval_fn(p):
        return {"error": jaxae.classification_error(model, p, data.x_eval, data.y_eval)}

    _, history = jaxae.finetune_classifier(
        model,
        params,
        data.x_train,
        data.y_train,
        key=finetune_key,
        epochs=finetune_epochs,
        batch_size=finetune_batch_size,
        optimizer=optimizer,
        eval_fn=eval_fn,
        checkpoint_dir=checkpoint_subdir(checkpoint_dir, "finetune"),
        progress=progress,
    )
    error = history[-1]["error"]  # eval_fn runs after the last epoch: the tuned params' error
    run.record(
        label,
        "classification error (%)",
        100 * error,
        split=data.name,
        paper_value=paper_value,
        paper_source=paper_source,
    )
    curve = [100 * row["error"] for row in history]
    record_best_epoch(run, label, curve, split=data.name)
    return FinetuneResult(layers, curve)


OPTIMIZERS = ("adam", "sgd")


def named_optimizer(
    name: str,
    learning_rate: Any,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    setting: str = "optimizer",
) -> Any:
    """``optax.adam(learning_rate)`` or ``optax.sgd(learning_rate, momentum)`` (heavy-ball; 0
    for none) by name: the reproductions' ``--set ..._optimizer=sgd`` switch, since some papers'
    results depend on SGD. ``learning_rate``: a float or an Optax schedule. ``setting`` names
    the option in the error.

    ``weight_decay`` > 0 decays the weight matrices (:func:`jaxae.regularizers.weight_mask`:
    leaves with two or more axes; biases are left alone): AdamW's decoupled decay for
    ``"adam"`` (``optax.adamw``: each step shrinks a weight by ``rate * weight_decay`` times
    itself), an L2 term ``weight_decay * w`` added to the gradient for ``"sgd"``
    (``optax.add_decayed_weights``, as in the 2000s papers).
    """
    import optax

    from jaxae.regularizers import weight_mask

    if weight_decay < 0:
        raise ValueError(f"{setting}: weight_decay ≥ 0 expected, got {weight_decay}")
    if name == "adam":
        if weight_decay:
            return optax.adamw(learning_rate, weight_decay=weight_decay, mask=weight_mask)
        return optax.adam(learning_rate)
    if name == "sgd":
        sgd = optax.sgd(learning_rate, momentum=momentum or None)
        if weight_decay:
            return optax.chain(optax.add_decayed_weights(weight_decay, weight_mask), sgd)
        return sgd
    raise ValueError(f"{setting}: expected one of {OPTIMIZERS}, got {name!r}")


def cosine_optimizer(
    name: str,
    learning_rate: float,
    steps: int,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    setting: str = "optimizer",
) -> Any:
    """:func:`named_optimizer` with its rate decaying from ``learning_rate`` to 0 over ``steps``
    updates (``optax.cosine_decay_schedule``)."""
    import optax

    schedule = optax.cosine_decay_schedule(learning_rate, steps)
    return named_optimizer(
        name, schedule, momentum=momentum, weight_decay=weight_decay, setting=setting
    )


def record_best_epoch(
    run: Run, label: str, curve: Sequence[float], *, split: str, stage: str = "fine-tuning"
) -> int | None:
    """Records the epoch (from 1) of the lowest value of an error curve, on the validation split
    only: there it may choose a budget. On the test split nothing is recorded, and None returned
    — the best test epoch must not select anything (that would tune on test).

    Args:
      run: the run that gets the row ``(label, "best <stage> epoch (lowest error)", split)``.
      label: the model's row label.
      curve: the eval split's error after each epoch (at least one value).
      split: the eval split's name, "validation" or "test".
      stage: the training stage the epochs count ("fine-tuning", "classifier").

    Returns:
      The best epoch (the first, on ties), or None on any split but "validation".
    """
    if not len(curve):
        raise ValueError(f"curve: expected one value per epoch, got none for {label!r}")
    if split.partition("[")[0] != "validation":  # "validation" or a slice of it
        # On the test split the best epoch must not be used for selection (a budget chosen
        # there would be tuned on test): it is not recorded at all.
        return None
    best = 1 + int(np.argmin(np.asarray(curve, np.float64)))
    run.record(label, f"best {stage} epoch (lowest error)", best, split=split)
    return best


def error_curves_figure(
    curves: Mapping[str, Sequence[float]],
    *,
    split: str,
    paper_values: Mapping[str, float | None] | None = None,
    xlabel: str = "fine-tuning epoch",
    ylabel: str = "classification error (%)",
):
    """Error per epoch, one line per model, each with its paper's number as a dashed line of
    the same colour.

    Args:
      curves: model label -> its error after each epoch (epoch 1 first).
      split: the split the errors are measured on ("validation" or "test"), named on the axis.
      paper_values: model label -> the paper's number (None or missing: no line).
      xlabel: the x axis's label.
      ylabel: the y axis's label (the split is added to it).
    """
    plt = pyplot()
    paper_values = paper_values or {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, values) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(range(1, len(values) + 1), values, "o-", color=color, markersize=3, label=label)
        paper = paper_values.get(label)
        if paper is not None:
            ax.axhline(paper, color=color, linestyle="--", linewidth=1, label=f"{label}, paper")
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs: whole numbers
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel}, {split} split")
    ax.set_title(f"{ylabel} on the {split} split (dashed: the paper's test numbers)", fontsize=9)
    ax.legend(fontsize=7)
    return fig
