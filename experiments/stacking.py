"""Shared by the regularized-autoencoder reproductions (rifai2011, vincent2010, makhzani2013):
the pretrain → stack → fine-tune → test-error pipeline, and the two figures.

The science lives in :mod:`jaxae.models.stacked`; this module only wires it to MNIST and to the
run's records the same way for the three papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import optax

import jaxae
from experiments.runner import MnistSplits, Run
from jaxae.models.stacked import LayerConfig, PretrainedLayer

CHANCE = 0.9  # ten balanced classes


def pretrain_and_finetune(
    run: Run,
    label: str,
    data: MnistSplits,
    sizes: Sequence[int],
    configs: LayerConfig | Sequence[LayerConfig],
    *,
    key: jax.Array,
    finetune_epochs: int,
    finetune_lr: float,
    finetune_batch_size: int,
    progress: bool,
    paper_value: float | None,
    paper_source: str,
) -> list[PretrainedLayer]:
    """Greedy pretraining, a softmax on top, supervised fine-tuning; records the error in %."""
    pretrain_key, finetune_key = jax.random.split(key)
    layers = jaxae.greedy_layerwise_pretrain(
        data.x_train, sizes, configs, key=pretrain_key, progress=progress
    )
    model, params = jaxae.stack_encoders(layers, n_classes=10)
    steps = finetune_epochs * (len(data.x_train) // finetune_batch_size)
    tuned, _ = jaxae.finetune_classifier(
        model,
        params,
        data.x_train,
        data.y_train,
        key=finetune_key,
        epochs=finetune_epochs,
        batch_size=finetune_batch_size,
        optimizer=optax.adam(optax.cosine_decay_schedule(finetune_lr, steps)),
        progress=progress,
    )
    error = jaxae.classification_error(model, tuned, data.x_eval, data.y_eval)
    run.record(
        label,
        "classification error (%)",
        100 * error,
        split=data.name,
        paper_value=paper_value,
        paper_source=paper_source,
    )
    return layers


def _tiles(weights: np.ndarray, n: int) -> np.ndarray:
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


def plot_filters(run: Run, panels: dict[str, np.ndarray], filename: str, n: int = 100) -> None:
    """First-layer filters (``[784, n_hidden]`` each) as grids of 28×28 tiles, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.9), squeeze=False)
    for ax, (title, weights) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(_tiles(weights, n), cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    run.save_figure(fig, filename)


def plot_corruption(
    run: Run, rows: dict[str, np.ndarray], filename: str, *, clip: bool = True
) -> None:
    """Rows of 28×28 images (e.g. clean, corrupted, reconstructed), one column per example."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            image = np.asarray(images[c]).reshape(28, 28)
            axes[r, c].imshow(np.clip(image, 0, 1) if clip else image, cmap="gray")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    run.save_figure(fig, filename)
