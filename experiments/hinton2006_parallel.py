"""Hinton & Salakhutdinov (2006) deep-autoencoder fine-tuning, data-parallel over devices.

The RBM stack is pretrained as in ``experiments/hinton2006.py`` (one device), unrolled, then
fine-tuned by ``jaxae.fit(..., mesh=parallel.data_mesh(n))``: each global batch of 256 split over
``n`` devices, gradients averaged by ``lax.pmean``. The fine-tuning loss is deterministic, so the
``n``-device run computes the 1-device run's numbers up to float rounding; ``--compare`` runs
both and reports the two test errors and their relative difference.

    python experiments/hinton2006_parallel.py --quick --devices 8 --compare
    XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python experiments/hinton2006_parallel.py --quick --devices 8 --compare   # CPU
    python experiments/hinton2006_parallel.py --devices 8     # full run on 8 accelerators
    python experiments/hinton2006_parallel.py --test-config --devices 8 --compare  # ~30 s, CPU

Multi-host recipe (a TPU pod slice, e.g. v5e-32: 8 hosts x 4 chips; or several GPU hosts)
----------------------------------------------------------------------------------------------
Copy the repository to every host and start the same command on all of them at once, e.g.
``gcloud compute tpus tpu-vm ssh NAME --worker=all --command="cd jaxae && python
experiments/hinton2006_parallel.py --distributed --devices 0"``. With ``--distributed``:

1. ``parallel.initialize_distributed(auto=True)`` runs first: on a TPU pod slice JAX finds the
   coordinator, ``jax.process_count()`` and ``jax.process_index()`` itself (elsewhere pass
   ``coordinator_address``, ``num_processes``, ``process_id``, or set ``JAX_COORDINATOR_ADDRESS``
   for SLURM/Open MPI detection). For one process it does nothing.
2. ``parallel.data_mesh()`` (``--devices 0``: all devices) spans every chip of every host.
3. Pretraining: ``pretrain_rbm_stack`` passes ``mesh=`` on to ``fit`` like every recipe; this
   script keeps pretraining on one device per host (the full training set, the same seed), and
   ``multihost_utils.broadcast_one_to_all`` makes sure every host starts fine-tuning from
   process 0's parameters.
4. Fine-tuning data: each host keeps only its own rows, ``x[parallel.process_slice(n)]`` (equal
   shares by ``jax.process_index()`` of ``jax.process_count()``), and
   ``parallel.global_data(rows, mesh)`` (``jax.make_array_from_process_local_data``) assembles
   the global array the devices share; no host holds the others' rows on device.
5. ``jaxae.fit(..., mesh=mesh)`` runs the same program on every host; metrics arrive on every
   host, and only process 0 writes the log, metrics and figures. ``--results-dir`` and ``--out``
   should be on a disk all hosts can reach if checkpoints are added.

Tested here with two processes on one machine over ``jax.distributed`` on 127.0.0.1 (CPU, Gloo
collectives): see ``tests/test_parallel.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pathlib
import shlex
import sys
import time

import jax
import optax

import jaxae
from jaxae import experiment, parallel
from jaxae.chunked import chunked_mean
from jaxae.experiment import Run, apply_overrides, parse_args, sliced_split_name
from jaxae.models.deep import unroll
from jaxae.recipes import RBMConfig, pretrain_rbm_stack

PAPER = (
    "Hinton & Salakhutdinov 2006, Science 313, Fig. 2B caption: average squared errors 3.00 "
    "(deep autoencoder), 8.01 (logistic PCA), 13.87 (PCA)"
)


@dataclasses.dataclass(frozen=True)
class Config:
    """experiments/hinton2006.py's architecture, RBM recipe and fine-tuning settings."""

    sizes: tuple[int, ...] = (784, 1000, 500, 250, 30)
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 100
    finetune_epochs: int = 60
    finetune_batch_size: int = 256
    finetune_lr: float = 3e-3
    finetune_warmup_epochs: int = 0
    finetune_weight_decay: float = 0.05
    train_examples: int | None = None  # None: all
    test_examples: int | None = None


QUICK = dataclasses.replace(
    Config(), pretrain_epochs=6, finetune_epochs=10, train_examples=10_000, test_examples=1_000
)


def cross_entropy_loss(model: jaxae.MLPAutoencoder, params, batch, key):
    """Batch mean of the summed pixel cross-entropy: the paper's fine-tuning objective."""
    del key
    logits = model.reconstruct(params, batch, logits=True)
    return jaxae.sigmoid_cross_entropy(logits, batch).mean()


def finetune_optimizer(config: Config, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam with a (warmup +) cosine-decayed learning rate, optional decoupled weight decay."""
    total = config.finetune_epochs * steps_per_epoch
    warmup = config.finetune_warmup_epochs * steps_per_epoch
    schedule = optax.warmup_cosine_decay_schedule(
        0.0 if warmup else config.finetune_lr, config.finetune_lr, warmup, total
    )
    return optax.adamw(schedule, weight_decay=config.finetune_weight_decay)


def per_image_squared_error(model, params, batch):
    """Squared error summed over the pixels of each image: ``[batch]``."""
    return jaxae.squared_error(model.reconstruct(params, batch), batch)


@functools.cache
def _per_image_error_of(model):  # one function per model, so chunked_mean compiles once
    return functools.partial(per_image_squared_error, model)


def reconstruction_error(model, params, x) -> float:
    """Squared error summed over pixels, averaged over images (the paper's metric)."""
    return chunked_mean(_per_image_error_of(model), x, args=(params,))


# Small enough for a test on 2 CPU cores (a few seconds per fine-tuning), big enough that
# fine-tuning moves the test error.
TEST = dataclasses.replace(
    QUICK,
    sizes=(784, 128, 16),
    pretrain_epochs=1,
    finetune_epochs=4,
    finetune_batch_size=64,
    finetune_lr=3e-3,
    train_examples=2_048,
    test_examples=500,
)


def finetune_data_parallel(
    model, params, x, *, config: Config, mesh, key, progress: bool = False, desc: str = ""
):
    """``hinton2006``'s fine-tuning, with the global batch split over ``mesh``'s devices."""
    steps_per_epoch = x.shape[0] // config.finetune_batch_size
    result = jaxae.fit(
        params,
        x,
        loss_fn=functools.partial(cross_entropy_loss, model),
        optimizer=finetune_optimizer(config, steps_per_epoch),
        key=key,
        epochs=config.finetune_epochs,
        batch_size=config.finetune_batch_size,
        mesh=mesh,
        progress=progress,
        desc=desc or f"fine-tune on {mesh.size} devices",
    )
    return result.params


def pretrained_autoencoder(x_train, config: Config, *, key, progress: bool = False):
    """The unrolled autoencoder of a greedily pretrained RBM stack, the same on every host."""
    pretrain = RBMConfig(epochs=config.pretrain_epochs, batch_size=config.pretrain_batch_size)
    stack = pretrain_rbm_stack(x_train, config.sizes, key=key, configs=pretrain, progress=progress)
    model, params = unroll(stack)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        params = multihost_utils.broadcast_one_to_all(params)
    return model, params


def compare_device_counts(
    config: Config,
    device_counts=(1, 8),
    *,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Pretrains once, fine-tunes on each device count; the test errors and times of each.

    Returns:
      ``{"pretrained_error": float, "errors": {n: float}, "finetune_s": {n: float}}``, errors in
      the paper's metric (squared error summed over pixels, mean over test images).
    """
    pretrain_key, finetune_key = jax.random.split(jax.random.key(seed))
    x_train = jaxae.data.load("mnist", "train").flat[: config.train_examples]
    x_test = jaxae.data.load("mnist", "test").flat[: config.test_examples]
    model, params = pretrained_autoencoder(x_train, config, key=pretrain_key, progress=progress)
    out = {"pretrained_error": reconstruction_error(model, params, x_test)}
    out["errors"], out["finetune_s"] = {}, {}
    for n in device_counts:
        mesh = parallel.data_mesh(n)
        start = time.perf_counter()
        tuned = finetune_data_parallel(
            model, params, x_train, config=config, mesh=mesh, key=finetune_key, progress=progress
        )
        out["finetune_s"][n] = time.perf_counter() - start
        out["errors"][n] = reconstruction_error(model, jax.device_get(tuned), x_test)
    return out


def _parse(argv):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--devices", type=int, default=0, help="data-parallel devices (0: all)")
    extra.add_argument("--compare", action="store_true", help="also fine-tune on 1 device")
    extra.add_argument(
        "--distributed", action="store_true", help="multi-host: jax.distributed (see docstring)"
    )
    extra.add_argument("--test-config", action="store_true", help="the tiny config the test runs")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], rest)
    args.experiments_dir = str(pathlib.Path(__file__).resolve().parent)
    args.results_dir = args.results_dir or str(pathlib.Path(args.experiments_dir) / "results")
    for name, value in vars(known).items():
        setattr(args, name, value)
    args.quick = args.quick or args.test_config  # recorded, and written, as a quick run
    given = sys.argv[1:] if argv is None else list(argv)  # main([...]) records its own arguments
    args.command = "python " + shlex.join([os.path.relpath(__file__), *given])
    return args


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    if args.distributed:
        parallel.initialize_distributed(auto=True)
    base = TEST if args.test_config else QUICK if args.quick else Config()
    config = apply_overrides(base, args.set)
    is_writer = jax.process_index() == 0
    run = Run("hinton2006_parallel", args, config)
    progress = not args.no_progress and is_writer
    mesh = parallel.data_mesh(args.devices or None)
    n = mesh.size
    run.log.info(
        "fine-tuning on %d %s device(s), %d process(es)",
        n,
        jax.default_backend(),
        jax.process_count(),
    )

    pretrain_key, finetune_key = jax.random.split(jax.random.key(args.seed))
    x_train = jaxae.data.load("mnist", "train").flat[: config.train_examples]
    x_test = jaxae.data.load("mnist", "test").flat[: config.test_examples]
    split = sliced_split_name("test", 10_000, config.test_examples)  # test[:n] for a subset
    pca = jaxae.fit_pca(x_train, 30)
    pca_recon = jaxae.pca_decode(pca, jaxae.pca_encode(pca, x_test))
    run.record(
        "pca-30",
        "squared error per image",
        float(jaxae.squared_error(pca_recon, x_test).mean()),
        split=split,
        paper_value=13.87,
        paper_source="baseline: " + PAPER,  # the paper's baseline: listed, not counted
    )
    model, params = pretrained_autoencoder(x_train, config, key=pretrain_key, progress=progress)
    run.record(
        "deep AE, pretrained only",
        "squared error per image",
        reconstruction_error(model, params, x_test),
        split=split,
    )

    x_fit = x_train
    if jax.process_count() > 1:  # each host's devices get that host's rows only
        x_fit = parallel.global_data(x_train[parallel.process_slice(len(x_train))], mesh)
    start = time.perf_counter()
    tuned = finetune_data_parallel(
        model, params, x_fit, config=config, mesh=mesh, key=finetune_key, progress=progress
    )
    wall = time.perf_counter() - start
    tuned = jax.device_get(tuned)  # replicated: every host reads its own copy
    error = reconstruction_error(model, tuned, x_test)
    run.record(
        f"deep AE, fine-tuned on {n} devices",
        "squared error per image",
        error,
        split=split,
        paper_value=3.00,
        paper_source=PAPER,
    )
    run.record(  # compilation included, once per device count (the same for the --compare run)
        f"deep AE, fine-tuned on {n} devices",
        "fine-tuning wall time, compilation included (s)",
        wall,
        split="train",
    )
    if args.compare and n > 1:
        start = time.perf_counter()
        single = finetune_data_parallel(
            model,
            params,
            x_train,
            config=config,
            mesh=parallel.data_mesh(jax.local_devices()[:1]),  # on each host alone
            key=finetune_key,
            progress=progress,
        )
        single_wall = time.perf_counter() - start
        single_error = reconstruction_error(model, jax.device_get(single), x_test)
        run.record(
            "deep AE, fine-tuned on 1 device", "squared error per image", single_error, split=split
        )
        run.record(
            "deep AE, fine-tuned on 1 device",
            "fine-tuning wall time, compilation included (s)",
            single_wall,
            split="train",
        )
        run.record(
            f"{n} devices vs 1",
            "relative difference of test error",
            abs(error - single_error) / single_error,
            split=split,
        )
    if is_writer:
        rows = {
            "digits": x_test[:10],
            "deep AE-30": model.reconstruct(tuned, x_test[:10]),
            "PCA-30": pca_recon[:10],
        }
        run.save_figure(
            experiment.image_rows_figure(rows, figsize=(10, 3.3), fontsize=9), "reconstructions.png"
        )
        run.finish()
    return run.metrics


if __name__ == "__main__":
    main()
