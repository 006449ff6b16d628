"""Hinton & Salakhutdinov (2006), Reducing the Dimensionality of Data with Neural Networks.

A 784-1000-500-250-30 autoencoder on MNIST: RBMs pretrained greedily by CD-1, unrolled, then
fine-tuned on the reconstruction cross-entropy. Reported beside the same architecture trained
from a random initialisation with the same fine-tuning budget, PCA-30 and logistic PCA-30.
Metric: squared error summed over the 784 pixels, averaged over the 10,000 test images.

    python experiments/hinton2006.py                 # full run: train on 60k, report test
    python experiments/hinton2006.py --validation    # model selection: 50k train, 10k held out
    python experiments/hinton2006.py --quick         # CI smoke run (subset, few epochs)
    python experiments/hinton2006.py --set finetune_lr=2e-3 --set finetune_epochs=80
    python experiments/hinton2006.py --set checkpoint_dir=experiments/runs/hinton2006/ckpt

With ``checkpoint_dir`` every fit saves after each epoch and a rerun of the same command
resumes; the training wall-time row sums the epochs' times, restored ones included.

Recorded full run (2026-12-04, 2 idle AMD EPYC cores, seed 0, ``--set
checkpoint_dir=experiments/runs/hinton2006/ckpt``): test squared error 2.39 (paper 3.00), the
deep autoencoder trained in 487 s (pretraining 135 s, 60 epochs of fine-tuning 352 s); the
whole script, with logistic PCA, the random-initialisation baseline (8.63) and the 2-D codes,
took 1053 s. Logistic PCA-30: 2.90 against the paper's 8.01. The paper does not say how its
logistic PCA coded the test images; ours fits each test image's 30 coordinates by Newton's
method (an optimisation per image, not a feed-forward encoder), which likely explains most of
the gap: it is a stronger baseline than the paper's, not a better reproduction of it.

The whole script does not fit the 10 minutes we aimed for on 2 cores, because the fine-tuning is
compute-bound: a step costs about 17 MFLOP an image (2.8 M weights, forward and backward), 60
epochs of 60k images about 61 TFLOP, and 352 s is about 174 GFLOP/s, near the two cores'
float32 peak (about 190 with AVX-512 FMA at 3 GHz). bfloat16 products are no faster on XLA's
CPU backend here (a 256×1000×784 product: 86 against 103 GFLOP/s). The random-initialisation
baseline repeats that fine-tuning (371 s) and the 2-D codes add 124 s; without them
(``--set random_init_baseline=false --set codes_2d=false``) the run takes about 1053 - 371 -
124 ≈ 560 s.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import jaxae
from jaxae.experiment import Run, checkpoint_subdir, load_mnist_splits, parse, pyplot
from jaxae.models.deep import unroll
from jaxae.recipes import (
    RBMConfig,
    adamw_cosine,
    encode_layers,
    finetune_autoencoder,
    pretrain_rbm_stack,
    reconstruction_error,
)

PAPER = (
    "Hinton & Salakhutdinov 2006, Science 313, Fig. 2B caption: average squared errors 3.00 "
    "(deep autoencoder), 8.01 (logistic PCA), 13.87 (PCA)"
)
# The paper's baselines, beside its method: listed in the headline, not counted as met or missed.
BASELINE = "baseline: " + PAPER
LOGISTIC_PCA_BASELINE = (
    BASELINE + "; ours codes each test image by Newton's method, a stronger baseline than the "
    "paper's (whose test-time coding is not stated), so the two are not comparable"
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Defaults: the paper's architecture and RBM recipe; fine-tuning chosen on validation.

    The fine-tuned network overfits: after 30 epochs (50k training images, lr 3e-3, batch 256)
    its error is 1.93 on training images against 2.83 on the 10k held out. AdamW's decoupled
    weight decay narrows the gap. Validation error after 30 epochs (2026-12-04, one pretrained
    stack, seed 0): lr 1e-3 / batch 128 2.90; lr 3e-3 / 128 2.82; 3e-3 / 256 2.83; 6e-3 / 512
    2.92; 1e-2 / 256 with 1 epoch of warmup 3.07; the squared error as the fine-tuning loss
    2.87; 10 % input masking 3.48; weight decay 0.025 / 0.05 / 0.1 / 0.4: 2.71 / 2.68 / 2.78 /
    5.25. At the full 60 epochs, see ``finetune_weight_decay``.
    """

    sizes: tuple[int, ...] = (784, 1000, 500, 250, 30)
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 100
    finetune_epochs: int = 60
    finetune_batch_size: int = 256
    finetune_lr: float = 3e-3
    finetune_warmup_epochs: int = 0
    finetune_weight_decay: float = 0.05  # AdamW; after 60 epochs: 0.03 -> 2.56, 0.05 -> 2.53
    random_init_baseline: bool = True
    logistic_pca: bool = True
    logistic_pca_iterations: int = 15
    logistic_pca_l2: float = 0.01
    codes_2d: bool = True  # the paper's Fig. 3: a 784-1000-500-250-2 autoencoder
    codes_2d_finetune_epochs: int = 20
    train_examples: int | None = None  # None: all
    test_examples: int | None = None
    # Each fit saves here (<checkpoint_dir>/pretrain/layer_<i>, /finetune, /random_init,
    # /codes_2d/...) and a rerun of the same command resumes it. One checkpoint_dir per command.
    checkpoint_dir: str | None = None


QUICK = dataclasses.replace(
    Config(),
    pretrain_epochs=6,
    finetune_epochs=10,
    codes_2d_finetune_epochs=3,
    train_examples=10_000,
    test_examples=1_000,
)


def finetune(
    model, params, x, *, config: Config, epochs: int, key, progress: bool, desc: str, name: str
):
    """The paper's fine-tuning (pixel cross-entropy) with this config's Adam schedule; returns
    ``fit``'s result. ``name``: its folder under ``config.checkpoint_dir``."""
    steps = epochs * (len(x) // config.finetune_batch_size)
    optimizer = adamw_cosine(
        config.finetune_lr,
        steps,
        warmup_steps=config.finetune_warmup_epochs * (len(x) // config.finetune_batch_size),
        weight_decay=config.finetune_weight_decay,
    )
    return finetune_autoencoder(
        model,
        params,
        x,
        key=key,
        epochs=epochs,
        batch_size=config.finetune_batch_size,
        optimizer=optimizer,
        progress=progress,
        desc=desc,
        checkpoint_dir=checkpoint_subdir(config.checkpoint_dir, *name.split("/")),
    )


def logistic_pca_error(x_train, x_eval, config: Config) -> float:
    """Logistic PCA-30's squared error per eval image: fitted on ``x_train``, each eval image's
    30 coordinates then fitted by Newton's method with the components fixed (there is no encoder:
    this per-image optimisation is stronger than one feed-forward pass, see the module docstring).
    """
    model, _ = jaxae.fit_logistic_pca(
        x_train, 30, iterations=config.logistic_pca_iterations, l2=config.logistic_pca_l2
    )
    codes = jaxae.logistic_pca_encode(model, x_eval, l2=config.logistic_pca_l2)
    return float(jaxae.squared_error(jaxae.logistic_pca_decode(model, codes), x_eval).mean())


def epoch_seconds(histories) -> float:
    """Training time summed over the epochs of ``fit`` histories: a resumed run counts the epochs
    it restored too (the time of this process alone would understate the run)."""
    return float(sum(row["time_s"] for history in histories for row in history))


def main(argv: list[str] | None = None) -> dict:
    args, config = parse(__file__, __doc__, argv, config=Config(), quick=QUICK, validation=True)
    name = "hinton2006_validation" if args.validation else "hinton2006"
    run = Run(name, args, config)
    progress = not args.no_progress
    key = jax.random.key(args.seed)

    data = load_mnist_splits(args.validation, config.train_examples, config.test_examples)
    x_train, x_eval, y_eval, split = data.x_train, data.x_eval, data.y_eval, data.name
    run.log.info("train %s, %s %s", x_train.shape, split, x_eval.shape)

    pca = jaxae.fit_pca(x_train, 30)
    pca_recon = jaxae.pca_decode(pca, jaxae.pca_encode(pca, x_eval))
    pca_error = float(jaxae.squared_error(pca_recon, x_eval).mean())
    run.record(
        "pca-30",
        "squared error per image",
        pca_error,
        split=split,
        paper_value=13.87,
        paper_source=BASELINE,
    )
    if config.logistic_pca:
        run.record(
            "logistic pca-30",
            "squared error per image",
            logistic_pca_error(x_train, x_eval, config),
            split=split,
            paper_value=8.01,
            paper_source=LOGISTIC_PCA_BASELINE,
        )

    key, pretrain_key, finetune_key, random_key, key_2d = jax.random.split(key, 5)
    random_init_key, random_finetune_key = jax.random.split(random_key)
    pretrain = RBMConfig(epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size)
    stack = pretrain_rbm_stack(
        x_train,
        config.sizes,
        key=pretrain_key,
        configs=pretrain,
        progress=progress,
        checkpoint_dir=checkpoint_subdir(config.checkpoint_dir, "pretrain"),
    )
    pretrain_s = epoch_seconds(layer.history for layer in stack)
    model, params = unroll(stack)
    run.record(
        "deep AE, pretrained only",
        "squared error per image",
        reconstruction_error(model, params, x_eval),
        split=split,
    )

    finetuned = finetune(
        model,
        params,
        x_train,
        config=config,
        epochs=config.finetune_epochs,
        key=finetune_key,
        progress=progress,
        desc="fine-tune",
        name="finetune",
    )
    tuned, finetune_s = finetuned.params, epoch_seconds([finetuned.history])
    deep_error = reconstruction_error(model, tuned, x_eval)
    paper_model = tuple(config.sizes) == Config().sizes  # 3.00 is the 784-...-30 network's
    run.record(
        "deep AE, pretrained + fine-tuned",
        "squared error per image",
        deep_error,
        split=split,
        paper_value=3.00 if paper_model else None,
        paper_source=PAPER if paper_model else "",
    )
    run.record(
        "deep AE, pretrained + fine-tuned",
        "training wall time (s)",
        pretrain_s + finetune_s,
        split="train",
    )
    run.log.info("pretraining %.0f s, fine-tuning %.0f s", pretrain_s, finetune_s)

    if config.random_init_baseline:
        random_tuned = finetune(
            model,
            model.init(random_init_key),
            x_train,
            config=config,
            epochs=config.finetune_epochs,
            key=random_finetune_key,
            progress=progress,
            desc="random init",
            name="random_init",
        ).params
        run.record(
            "deep AE, random init (same fine-tuning)",
            "squared error per image",
            reconstruction_error(model, random_tuned, x_eval),
            split=split,
        )

    plot_reconstructions(
        run, x_eval[:10], model.reconstruct(tuned, x_eval[:10]), pca_recon[:10], config.sizes[-1]
    )
    if config.codes_2d:
        codes_2d(
            run,
            stack,
            x_train,
            x_eval,
            y_eval,
            config=config,
            key=key_2d,
            progress=progress,
            split=split,
        )
    run.finish()
    return run.metrics


def codes_2d(run: Run, stack, x_train, x_eval, y_eval, *, config, key, progress, split):
    """The paper's Fig. 3: a 784-1000-500-250-2 autoencoder's codes beside PCA-2 (with other
    ``sizes``, their last layer replaced by 2 units).

    The three lower RBMs are the ones already pretrained (greedy pretraining would train the same
    layers again); only the 250-2 top layer is new.
    """
    pretrain_key, finetune_key = jax.random.split(key)
    below = encode_layers(stack[:-1], x_train)
    pretrain = RBMConfig(epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size)
    top = pretrain_rbm_stack(
        below,
        (below.shape[1], 2),
        key=pretrain_key,
        configs=pretrain,
        progress=progress,
        checkpoint_dir=checkpoint_subdir(config.checkpoint_dir, "codes_2d", "pretrain"),
    )
    model, params = unroll(list(stack[:-1]) + top)
    tuned = finetune(
        model,
        params,
        x_train,
        config=config,
        epochs=config.codes_2d_finetune_epochs,
        key=finetune_key,
        progress=progress,
        desc="fine-tune 2-D",
        name="codes_2d/finetune",
    ).params
    run.record(
        "deep AE " + "-".join(map(str, (*config.sizes[:-1], 2))),
        "squared error per image",
        reconstruction_error(model, tuned, x_eval),
        split=split,
    )
    n = min(len(x_eval), 5000)
    pca = jaxae.fit_pca(x_train, 2)
    panels = {
        "PCA-2": np.asarray(jaxae.pca_encode(pca, x_eval[:n])),
        "autoencoder, 2-D code": np.asarray(model.encode(tuned, x_eval[:n])),
    }

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (title, points) in zip(axes, panels.items(), strict=True):
        scatter = ax.scatter(points[:, 0], points[:, 1], c=y_eval[:n], cmap="tab10", s=3, alpha=0.7)
        ax.set_title(f"{title} ({n} {split} digits)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(scatter, ax=axes, ticks=range(10), label="digit")
    run.save_figure(fig, "codes_2d.png")


def plot_reconstructions(run: Run, originals, deep, pca, code_size: int = 30) -> None:
    plt = pyplot()
    rows = {"digits": originals, f"deep AE-{code_size}": deep, "PCA-30": pca}
    fig, axes = plt.subplots(3, len(originals), figsize=(len(originals), 3.3))
    for r, (label, images) in enumerate(rows.items()):
        for c in range(len(originals)):
            axes[r, c].imshow(np.clip(np.asarray(images[c]).reshape(28, 28), 0, 1), cmap="gray")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    run.save_figure(fig, "reconstructions.png")


if __name__ == "__main__":
    main()
