"""Hinton & Salakhutdinov (2006)'s deep autoencoder on real-valued data, with RBMs for it.

The 784-1000-500-250-30 pipeline (greedy RBM pretraining, unroll, fine-tune) on standardised
Fashion-MNIST with real-valued RBMs: the bottom RBM has Gaussian visible units with learned
per-pixel variances (Cho et al. 2011) and noisy rectified hidden units (Nair & Hinton 2010), the
middle RBMs rectified hidden units over unit-variance Gaussian visible units, the top linear code
units (Hinton 2006); unrolled into a ReLU encoder with a linear output and fine-tuned on the
squared error. Against it: the paper's Bernoulli stack on the same images (pixels in [0, 1],
fine-tuned on the cross-entropy) and PCA-30. Metric, for all three: squared error summed over
the 784 pixels in [0, 1] units (the real-valued stack's reconstructions unstandardised first),
averaged over the test images. ``--validation`` is the split to choose settings on; the
real-valued rates have not been chosen on it at the full budget yet (see ``Config``).

    python experiments/real_valued_rbm.py                 # full run: train on 60k, report test
    python experiments/real_valued_rbm.py --validation    # model selection: 50k train, 10k held out
    python experiments/real_valued_rbm.py --quick         # CI smoke run (subset, few epochs)
    python experiments/real_valued_rbm.py --set sizes=784,1000,500,250,100,30   # the DL4J variant
    python experiments/real_valued_rbm.py --set checkpoint_dir=ckpt   # resumable: rerun to resume

Recorded full run (2026-12-03, 2 AMD EPYC cores shared with short jobs at load 2.5-3.9, 44 min):
test squared error 5.90 for the Gaussian-NReLU stack against 5.11 for the Bernoulli stack, 12.24
for PCA-30 and 67.9 for the mean image: **the target (real-valued at or below Bernoulli) is
missed**. The real-valued rates were chosen at quick scale (see ``Config``); next to try, on
``--validation`` at the full budget: the pretraining rate 0.003 (better at quick scale), the
fine-tuning rate, and a Gaussian-NReLU bottom under Bernoulli upper layers.

``--quick`` reads Fashion-MNIST only from disk (the jaxae cache or Debian's
``dataset-fashion-mnist``); without it, it says so and falls back to MNIST, whose rows are then
labelled ``[MNIST fallback]``. A full run downloads Fashion-MNIST if it has to.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

import jaxae
from jaxae import rbm
from jaxae.data import DataFileError
from jaxae.experiment import (
    Run,
    checkpoint_subdir,
    image_rows_figure,
    load_mnist_splits,
    parse,
    pyplot,
)
from jaxae.models.deep import unroll
from jaxae.recipes import (
    RBMConfig,
    ReconstructionLoss,
    adamw_cosine,
    finetune_autoencoder,
    pretrain_rbm_stack,
    rbm_optimizer,
    reconstruction_error,
)

METRIC = "squared error per image ([0,1] pixels)"
STACKS = ("real_valued", "bernoulli")


@dataclasses.dataclass(frozen=True)
class Config:
    """Defaults: the 2006 paper's architecture and budget; the real-valued rates as the RBM
    guide advises, not yet chosen on validation at the full budget (the quick-scale check
    below favoured a pretraining rate of 0.003 over the default 0.001)."""

    dataset: str = "fashion_mnist"
    sizes: tuple[int, ...] = (784, 1000, 500, 250, 30)  # DL4J: 784,1000,500,250,100,30
    stacks: tuple[str, ...] = STACKS
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 100
    # CD rate of the real-valued layers below the top (None: hinton_rbm_optimizer's 0.001, the
    # log-variances a tenth of it); the linear top layer keeps the paper's 0.001.
    real_valued_pretrain_lr: float | None = None
    # Quick-scale validation (--quick --validation, 3k/500, 2+4 epochs): pretraining at 0.003
    # 26.5 vs 29.6 at 0.001 (0.01 diverges); fine-tuning at 3e-3 67.96, no better than the mean
    # image, vs 29.6 at 1e-3. The full-budget choice is still for a --validation run to make.
    finetune_epochs: int = 60
    finetune_batch_size: int = 128
    finetune_lr: float = 1e-3
    real_valued_finetune_lr: float = 1e-3
    curve_examples: int = 1000  # evaluation images behind the fine-tuning curves
    train_examples: int | None = None  # None: all
    test_examples: int | None = None
    checkpoint_dir: str | None = None  # per-stack, per-layer fit checkpoints: a rerun resumes


QUICK = dataclasses.replace(
    Config(),
    pretrain_epochs=2,
    finetune_epochs=4,
    train_examples=3000,
    test_examples=500,
    curve_examples=500,
)


def load(config: Config, args, run: Run):
    """The run's splits; in quick mode, MNIST when Fashion-MNIST is not on disk."""
    splits = dict(
        validation=args.validation,
        train_examples=config.train_examples,
        eval_examples=config.test_examples,
    )
    try:
        return (
            load_mnist_splits(**splits, dataset=config.dataset, download=not args.quick),
            "",
        )
    except DataFileError as error:
        if not args.quick or config.dataset == "mnist":
            raise
        run.log.warning(
            "%s is not on disk (%s); quick mode falls back to MNIST (apt-get install "
            "dataset-fashion-mnist, or python -m jaxae.data fetch fashion_mnist)",
            config.dataset,
            error,
        )
        return load_mnist_splits(**splits, dataset="mnist"), " [MNIST fallback]"


def pretrain_configs(config: Config, n_train: int) -> list[RBMConfig]:
    """One RBMConfig per layer; the real-valued rate override, if set, below the top."""
    n_layers = len(config.sizes) - 1
    base = RBMConfig(epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size)
    if config.real_valued_pretrain_lr is None:
        return [base] * n_layers
    rate = config.real_valued_pretrain_lr
    switch = 5 * (n_train // config.pretrain_batch_size)
    configs = []
    for i in range(n_layers - 1):
        optimizer = rbm_optimizer(
            rate,
            momentum_switch_step=switch,
            log_var_learning_rate=0.1 * rate if i == 0 else None,
        )
        configs.append(dataclasses.replace(base, optimizer=optimizer))
    return configs + [base]  # the linear top layer: hinton_rbm_optimizer's 0.001


def train_stack(kind: str, x, x_curve, *, config: Config, key, weights, progress: bool):
    """Pretrains, unrolls and fine-tunes one stack; returns (model, params before / after
    fine-tuning, pretraining history, fine-tuning history, wall times)."""
    pretrain_key, finetune_key = jax.random.split(key)
    ckpt = checkpoint_subdir(config.checkpoint_dir, kind)
    real = kind == "real_valued"
    start = time.perf_counter()
    stack = pretrain_rbm_stack(
        x,
        config.sizes,
        key=pretrain_key,
        configs=pretrain_configs(config, len(x))
        if real
        else RBMConfig(epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size),
        visible="gaussian_learned_var" if real else "bernoulli",
        hidden="nrelu" if real else "bernoulli",
        checkpoint_dir=checkpoint_subdir(ckpt, "pretrain"),
        progress=progress,
    )
    pretrain_s = time.perf_counter() - start
    model, params = unroll(stack)
    steps = config.finetune_epochs * (len(x) // config.finetune_batch_size)
    lr = config.real_valued_finetune_lr if real else config.finetune_lr
    # The real-valued stack descends the squared error in [0, 1] pixel units (std² weights on
    # standardised pixels), the metric itself; the Bernoulli stack the paper's cross-entropy.
    loss = ReconstructionLoss(model, "squared_error", weights) if real else None
    curve_weights = None if weights is None else np.asarray(weights, np.float32)

    def eval_fn(p):
        return {"eval_error": reconstruction_error(model, p, x_curve, weights=curve_weights)}

    start = time.perf_counter()
    result = finetune_autoencoder(
        model,
        params,
        x,
        key=finetune_key,
        epochs=config.finetune_epochs,
        batch_size=config.finetune_batch_size,
        loss_fn=loss,
        optimizer=adamw_cosine(lr, max(steps, 1)),
        eval_fn=eval_fn,
        checkpoint_dir=checkpoint_subdir(ckpt, "finetune"),
        progress=progress,
        desc=f"fine-tune {kind}",
    )
    finetune_s = time.perf_counter() - start
    pretrain_history = [layer.history for layer in stack]
    return model, params, result.params, pretrain_history, result.history, pretrain_s, finetune_s


def main(argv: list[str] | None = None) -> dict:
    args, config = parse(__file__, __doc__, argv, config=Config(), quick=QUICK, validation=True)
    unknown = set(config.stacks) - set(STACKS)
    if unknown:
        raise SystemExit(f"--set stacks: expected some of {STACKS}, got {sorted(unknown)}")
    name = "real_valued_rbm_validation" if args.validation else "real_valued_rbm"
    run = Run(name, args, config)
    progress = not args.no_progress
    data, suffix = load(config, args, run)
    x_train, x_eval, split = data.x_train, data.x_eval, data.name
    run.log.info("train %s, %s %s%s", x_train.shape, split, x_eval.shape, suffix)
    stats = rbm.fit_standardization(x_train)
    z_train = np.asarray(rbm.standardize(x_train, stats))
    z_eval = np.asarray(rbm.standardize(x_eval, stats))
    variances = tuple(float(v) for v in np.square(np.asarray(stats.std)))
    n_curve = min(config.curve_examples, len(x_eval))

    def record(model_name, value, **kw):
        run.record(model_name + suffix, METRIC, value, split=split, **kw)

    mean_image = x_train.mean(axis=0, keepdims=True)
    record("mean training image", float(np.square(x_eval - mean_image).sum(axis=1).mean()))
    code = config.sizes[-1]
    pca = jaxae.fit_pca(x_train, code)
    pca_recon = np.asarray(jaxae.pca_decode(pca, jaxae.pca_encode(pca, x_eval)))
    pca_error = float(np.square(pca_recon - x_eval).sum(axis=1).mean())
    record(f"pca-{code}", pca_error)

    labels = {
        "real_valued": "Gaussian-NReLU stack",
        "bernoulli": "Bernoulli stack",
    }
    key = jax.random.key(args.seed)
    shown, histories, curves = {}, {}, {}
    for i, kind in enumerate(config.stacks):
        real = kind == "real_valued"
        x, x_curve = (z_train, z_eval[:n_curve]) if real else (x_train, x_eval[:n_curve])
        model, params, tuned, pretrain_history, history, pretrain_s, finetune_s = train_stack(
            kind,
            x,
            x_curve,
            config=config,
            key=jax.random.fold_in(key, i),
            weights=variances if real else None,
            progress=progress,
        )
        weights = np.asarray(variances, np.float32) if real else None
        x_in = z_eval if real else x_eval
        label = f"{labels[kind]} {'-'.join(map(str, config.sizes))}"
        record(
            f"{label}, pretrained only", reconstruction_error(model, params, x_in, weights=weights)
        )
        record(f"{label}, fine-tuned", reconstruction_error(model, tuned, x_in, weights=weights))
        run.record(
            label + suffix,
            "pretraining + fine-tuning wall time (s)",
            pretrain_s + finetune_s,
            split="train",
        )
        # The last epoch of each fit ran compiled: the per-epoch cost a longer run scales from.
        last = [
            rows[-1].get("time_s", float("nan")) if rows else float("nan")
            for rows in (*pretrain_history, history)
        ]
        run.log.info(
            "%s: pretraining %.0f s, fine-tuning %.0f s; last epoch of each RBM %s s, of "
            "fine-tuning %.2f s (%d examples)",
            kind,
            pretrain_s,
            finetune_s,
            ", ".join(f"{t:.2f}" for t in last[:-1]),
            last[-1],
            len(x),
        )
        recon = np.asarray(model.reconstruct(tuned, x_in[:10]))
        if real:
            recon = np.asarray(rbm.unstandardize(recon, stats))
        shown[labels[kind]] = recon
        histories[labels[kind]] = pretrain_history
        curves[labels[kind]] = [row["eval_error"] for row in history]

    rows = {"originals": x_eval[:10], **shown, f"PCA-{code}": pca_recon[:10]}
    run.save_figure(image_rows_figure(rows, figsize=(9, 1.0 * len(rows))), "reconstructions.png")
    run.save_figure(
        training_curves(histories, curves, pca_error, split=split, n_curve=n_curve),
        "training_curves.png",
    )
    run.finish()
    return run.metrics


def training_curves(histories: dict, curves: dict, pca_error: float, *, split: str, n_curve: int):
    """Left: each RBM's CD reconstruction error per epoch (its own units: probabilities or
    standardised values, so compare shapes, not levels). Right: the fine-tuning curves in the
    metric's units on ``n_curve`` evaluation images, PCA as a line."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for label, layers in histories.items():
        style = "-" if "Gaussian" in label else "--"
        for i, rows in enumerate(layers):
            values = [row["reconstruction_error"] for row in rows]
            left.plot(
                range(1, len(values) + 1),
                values,
                style,
                color=f"C{i}",
                label=f"{label}, RBM {i + 1}",
            )
    left.set_yscale("log")
    left.set_xlabel("pretraining epoch")
    left.set_ylabel("CD-1 reconstruction error (layer units)")
    left.legend(fontsize=6)
    for label, values in curves.items():
        right.plot(range(1, len(values) + 1), values, "o-", label=label, markersize=3)
    right.axhline(pca_error, color="grey", linestyle=":", label="PCA")
    right.set_xlabel("fine-tuning epoch")
    right.set_ylabel(f"{METRIC}, {n_curve} {split} images")
    right.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    main()
