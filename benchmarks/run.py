"""Speed of jaxae against its peers, measured side by side in one process and reported as ratios.

    python benchmarks/run.py                # full run (a few minutes) -> benchmarks/RESULTS.md
    python benchmarks/run.py --quick        # smoke run (< 1 min) -> benchmarks/RESULTS-quick.md
    python benchmarks/run.py --out FILE.md  # anywhere else

Five rows (see benchmarks/README.md):

1. CD-1 on a 784-1000 Bernoulli RBM (batch 100) against scikit-learn's ``BernoulliRBM.fit``.
2. One fine-tuning epoch of the 784-1000-500-250-30 deep autoencoder (batch 256, Adam) against
   the same network in PyTorch on the CPU.
3. The FLOP/s of that fine-tuning epoch as a fraction of a large float32 matmul's, both
   measured here.
4. The contractive penalty: ``jax.jacfwd`` Jacobian norm against its closed form.
5. ``jaxae.fit`` against a plain ``lax.scan`` training loop, per model family (RBM, deep AE, VAE).

The jaxae side is what ``jaxae.fit`` runs: the jitted epoch (a ``lax.scan`` of
``make_train_step`` over device-resident batches) from ``jaxae.training``. Every timed unit is run
``--repeats`` times. Within a repeat the runners take turns, and the order rotates from one
repeat to the next, so background load falls on jaxae and its peers alike. Medians are reported.
Peers are timed both with their default thread count and with a single thread: on a shared
machine a multi-threaded BLAS can slow down many times over while other processes hold the
cores. Each ratio is taken against the faster peer setting, so no ratio rests on a peer slowed
by that. ``main(argv)`` returns the results as a dict, so a test can call it. Timings never
belong in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import math
import os
import pathlib
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable

# This machine pins OpenBLAS to older kernels through these variables; the peers deserve their best
# kernels, so the benchmark (run as a script, never in tests or CI) drops them for itself: a
# re-exec, because OpenBLAS reads them once, when numpy loads it. The report names the kernel
# that ran (threadpoolctl) and what was unset.
_OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _OPENBLAS_PINS):
    _env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_PINS}
    _env["JAXAE_BENCH_UNSET"] = ", ".join(
        f"{v}={os.environ[v]}" for v in _OPENBLAS_PINS if v in os.environ
    )
    os.execve(sys.executable, [sys.executable, *sys.argv], _env)

import numpy as np  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import jaxae  # noqa: E402
from jaxae import rbm, regularizers  # noqa: E402
from jaxae.atomic import atomic_write_text  # noqa: E402
from jaxae.recipes import rbm_optimizer  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
AE_SIZES = (784, 1000, 500, 250, 30)
GOALS = {
    "rbm_cd1_vs_sklearn": 3.0,
    "ae_finetune_vs_torch": 1.5,
    "ae_finetune_fraction_of_peak": 0.85,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Sizes of the timed work. ``QUICK`` shrinks everything for a smoke run."""

    repeats: int = 5
    budget_s: float = 6.0  # a runner stops repeating once it has used this much ...
    min_repeats: int = 2  # ... and has run at least this often
    rbm_examples: int = 10_000  # per timed epoch (100 steps of 100)
    rbm_batch: int = 100
    rbm_hidden: int = 1000
    ae_steps: int = 40  # per timed epoch (10,240 examples)
    ae_batch: int = 256
    peak_sizes: tuple[int, ...] = (2048, 4096)
    peak_matmuls: tuple[int, ...] = (5, 1)  # matmuls per timed unit, per size
    fit_epochs: int = 3  # the jaxae.fit cross-check: one warm-up epoch, the rest timed
    contractive_batch: int = 100
    contractive_hidden: int = 1000
    scan_examples: int = 5_000  # per epoch in the fit-vs-scan rows


QUICK = Config(
    repeats=2,
    budget_s=2.0,
    min_repeats=1,
    rbm_examples=2_000,
    ae_steps=5,
    peak_sizes=(2048,),
    peak_matmuls=(2,),
    fit_epochs=2,
    contractive_batch=20,
    scan_examples=1_000,
)


# ------------------------------------------------------------------------------------------------
# Timing.


@dataclasses.dataclass
class Timing:
    """Seconds per timed unit of one runner, and how much work a unit is."""

    name: str
    seconds: list[float]
    work: float  # examples, steps, or FLOPs per unit
    unit: str  # what ``work`` counts: "examples", "FLOP", ...

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Work per second at the median time."""
        return self.work / self.median


def interleaved(runners: dict[str, Callable[[], float]], cfg: Config) -> dict[str, list[float]]:
    """Runs each runner ``cfg.repeats`` times, taking turns, the order rotating each repeat.

    Each runner does one unit of work and returns the seconds it spent on the timed part.
    A runner that has used ``cfg.budget_s`` seconds in total stops once it has run
    ``cfg.min_repeats`` times, or after one run that alone took longer than the budget, so a peer
    slowed down by contention cannot stretch the run.
    """
    repeats, budget_s = cfg.repeats, cfg.budget_s
    names = list(runners)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            done = seconds[name]
            spent = sum(done)
            if spent >= budget_s and (len(done) >= cfg.min_repeats or done[0] >= budget_s):
                continue
            done.append(runners[name]())
    return seconds


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def _fit_steady_epoch(params, x, *, key, batch_size, **fit_kwargs) -> tuple[object, float]:
    """``jaxae.fit`` for 2 epochs; returns its parameters and the second epoch's ``time_s``."""
    result = jaxae.fit(
        params, x, key=key, epochs=2, batch_size=batch_size, progress=False, **fit_kwargs
    )
    return result.params, result.history[-1]["time_s"]


# ------------------------------------------------------------------------------------------------
# Data.


def load_images(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """``n`` MNIST training images as float32 ``[n, 784]`` in [0, 1], or binary noise if the
    offline MNIST cannot be loaded; returns the array and a description of its source."""
    try:
        x = np.array(jaxae.data.load("mnist", "train").flat[:n], dtype=np.float32)
        return x, f"MNIST train[:{n}] (grey levels in [0, 1])"
    except Exception as error:  # noqa: BLE001 - any failure falls back to noise, and says why
        rng = np.random.default_rng(seed)
        x = (rng.random((n, 784)) < 0.13).astype(np.float32)
        return x, f"random binary [{n}, 784], p=0.13 (MNIST unavailable: {type(error).__name__})"


# ------------------------------------------------------------------------------------------------
# 1. CD-1 RBM against scikit-learn.


def bench_rbm(cfg: Config, x: np.ndarray) -> dict:
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    n, batch = len(x), cfg.rbm_batch
    steps = n // batch
    spec = rbm.RBMSpec(x.shape[1], cfg.rbm_hidden)

    def make_optimizer():
        # The Hinton & Salakhutdinov recipe (momentum, weight decay): more work than sklearn's
        # plain SGD step, not less.
        return rbm_optimizer(
            0.1,
            weight_decay=2e-4,
            momentum_start=0.5,
            momentum_final=0.9,
            momentum_switch_step=5 * steps,
        )

    grad_fn = functools.partial(rbm.cd_gradients, spec=spec, k=1)
    key = jax.random.key(1)
    fit_params = rbm.init_rbm(jax.random.key(0), spec, visible_data=x)
    epoch = 0

    def jaxae_epoch() -> float:
        # jaxae.fit's own steady-state epoch: a 2-epoch fit, its second epoch's time_s (the first
        # may compile); training continues from the last call's parameters.
        nonlocal fit_params, epoch
        fit_params, seconds = _fit_steady_epoch(
            fit_params,
            x,
            grad_fn=grad_fn,
            optimizer=make_optimizer(),
            key=jax.random.fold_in(key, epoch),
            batch_size=batch,
        )
        epoch += 1
        return seconds

    def sklearn_epoch(threads: int | None) -> Callable[[], float]:
        def run() -> float:
            model = BernoulliRBM(
                n_components=cfg.rbm_hidden,
                batch_size=batch,
                learning_rate=0.1,
                n_iter=1,
                random_state=epoch,
            )
            with threadpool_limits(limits=threads, user_api="blas"):
                start = time.perf_counter()
                model.fit(x)  # float32 in, float32 parameters (partial_fit would cast to float64)
                return time.perf_counter() - start

        return run

    jaxae_epoch()  # compile and warm up
    sklearn_epoch(1)()

    # scikit-learn's fit draws its initial weights inside the timed call: measure that share.
    rng = np.random.RandomState(0)
    init_s = statistics.median(
        _timed(lambda: rng.normal(0, 0.01, (cfg.rbm_hidden, x.shape[1]))) for _ in range(5)
    )

    runners = {
        "jaxae.fit steady-state epoch (CD-1)": jaxae_epoch,
        f"sklearn BernoulliRBM.fit, BLAS threads = default ({os.cpu_count()})": sklearn_epoch(None),
        "sklearn BernoulliRBM.fit, BLAS threads = 1": sklearn_epoch(1),
    }
    seconds = interleaved(runners, cfg)
    timings = [Timing(name, s, steps * batch, "examples") for name, s in seconds.items()]

    # Cross-check, not interleaved: ``jaxae.fit`` itself, its own per-epoch wall times.
    result = jaxae.fit(
        rbm.init_rbm(jax.random.key(0), spec, visible_data=x),
        x,
        grad_fn=grad_fn,
        optimizer=make_optimizer(),
        key=key,
        epochs=cfg.fit_epochs,
        batch_size=batch,
        progress=False,
    )
    fit_seconds = [row["time_s"] for row in result.history[1:]]
    timings.append(
        Timing("jaxae.fit end-to-end (not interleaved)", fit_seconds, steps * batch, "examples")
    )

    jaxae_rate = timings[0].rate
    peers = timings[1:3]
    best_peer = max(peers, key=lambda t: t.rate)
    return {
        "timings": timings,
        "jaxae_examples_per_s": jaxae_rate,
        "fit_examples_per_s": timings[-1].rate,
        "sklearn_default_threads_examples_per_s": peers[0].rate,
        "sklearn_1_thread_examples_per_s": peers[1].rate,
        "best_peer": best_peer.name,
        "ratio": jaxae_rate / best_peer.rate,
        "ratio_vs_default_threads": jaxae_rate / peers[0].rate,
        "sklearn_init_s": init_s,
        "steps": steps,
    }


# ------------------------------------------------------------------------------------------------
# 2 and 3. Deep-autoencoder fine-tuning against PyTorch; FLOP/s against a large matmul.


def ae_flops_per_step(sizes: tuple[int, ...], batch: int) -> dict[str, float]:
    """Matmul FLOPs of one training step of the unrolled autoencoder.

    forward = 2·batch·Σ(in·out) over the 2·(len(sizes)-1) layers; backward = weight gradients
    (another forward's worth) + input gradients (a forward's worth less the first layer, whose
    input gradient nobody needs). ``approx`` is the usual 3 × forward.
    """
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    layers = pairs + [(b, a) for a, b in reversed(pairs)]
    forward = 2.0 * batch * sum(a * b for a, b in layers)
    first = 2.0 * batch * layers[0][0] * layers[0][1]
    return {"forward": forward, "exact": 3.0 * forward - first, "approx": 3.0 * forward}


def _torch_autoencoder(params, torch):
    """The same network as ``jaxae.MLPAutoencoder(AE_SIZES)``, with the same initial weights."""
    weights = [layer["w"] for layer in params["encoder"]] + [
        layer["w"] for layer in params["decoder"]
    ]
    biases = [layer["b"] for layer in params["encoder"]] + [
        layer["b"] for layer in params["decoder"]
    ]
    code_layer, output_layer = len(params["encoder"]) - 1, len(weights) - 1
    modules = []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        linear = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(w).T))
            linear.bias.copy_(torch.from_numpy(np.array(b)))
        modules.append(linear)
        if i not in (code_layer, output_layer):  # linear code, logits out
            modules.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*modules)


def bench_autoencoder(cfg: Config, x: np.ndarray) -> dict:
    try:
        import torch
    except ImportError as error:
        raise SystemExit(
            "benchmarks/run.py: the autoencoder row needs PyTorch (pip install jaxae[bench])"
        ) from error

    batch, steps = cfg.ae_batch, cfg.ae_steps
    n = batch * steps
    x = x[:n]
    model = jaxae.MLPAutoencoder(AE_SIZES)  # logistic hidden units, linear code
    optimizer = optax.adam(1e-3)

    def loss_fn(params, batch_x, key):
        del key
        logits = model.reconstruct(params, batch_x, logits=True)
        return jnp.mean(jaxae.sigmoid_cross_entropy(logits, batch_x))

    step = jaxae.make_train_step(jaxae.gradients_of_loss(loss_fn), optimizer)
    data = jax.device_put(x)
    key = jax.random.key(1)
    params0 = model.init(jax.random.key(0))

    def fresh_state():  # own buffers: the donated step below must not delete another's
        return jaxae.init_train_state(jax.tree.map(jnp.copy, params0), optimizer)

    # (a) jaxae.fit's own steady-state epoch (a 2-epoch fit, the second epoch's time_s).
    fit_params, epoch = jax.tree.map(jnp.copy, params0), 0

    def jaxae_epoch() -> float:
        nonlocal fit_params, epoch
        fit_params, seconds = _fit_steady_epoch(
            fit_params,
            x,
            loss_fn=loss_fn,
            optimizer=optax.adam(1e-3),
            key=jax.random.fold_in(key, epoch),
            batch_size=batch,
        )
        epoch += 1
        return seconds

    # (b) The bare step, jitted with the state donated, one dispatch per batch.
    jit_step = jax.jit(step, donate_argnums=0)
    step_state = fresh_state()
    batches = list(data.reshape(steps, batch, -1))

    def jaxae_steps() -> float:
        nonlocal step_state
        start = time.perf_counter()
        keys = jax.random.split(jax.random.fold_in(key, 10_000 + len(batches)), steps)
        for i, b in enumerate(batches):
            step_state, metrics = jit_step(step_state, b, keys[i])
        jax.block_until_ready((step_state, metrics))
        return time.perf_counter() - start

    # PyTorch: the same network, weights, data, batches, loss and optimiser.
    torch_x = torch.from_numpy(np.ascontiguousarray(x)).reshape(steps, batch, -1)
    criterion = torch.nn.BCEWithLogitsLoss(reduction="sum")
    default_threads = os.cpu_count() or 1

    def torch_runner(threads: int, fused: bool) -> Callable[..., float]:
        net = _torch_autoencoder(params0, torch)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused)

        def run(num_steps: int = steps) -> float:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for i in range(num_steps):
                b = torch_x[i]
                opt.zero_grad(set_to_none=True)
                loss = criterion(net(b), b) / batch
                loss.backward()
                opt.step()
            return time.perf_counter() - start

        return run

    # Same model, same numbers: the first batch's loss agrees between the two frameworks.
    net0 = _torch_autoencoder(params0, torch)
    with torch.no_grad():
        torch_loss = float(criterion(net0(torch_x[0]), torch_x[0]) / batch)
    jax_loss = float(jax.jit(loss_fn)(params0, data[:batch], None))

    # The peak: large float32 matmuls, jitted, in the same interleaved run.
    peak_runners, peak_work = {}, {}
    for size, count in zip(cfg.peak_sizes, cfg.peak_matmuls, strict=True):
        a = jax.random.normal(jax.random.key(size), (size, size), jnp.float32)
        b = jax.random.normal(jax.random.key(size + 1), (size, size), jnp.float32)
        matmul = jax.jit(jnp.matmul)
        matmul(a, b).block_until_ready()
        name = f"jax matmul {size}x{size} float32 (peak)"
        peak_runners[name] = functools.partial(
            lambda m, a, b, c: sum(_timed(lambda: m(a, b)) for _ in range(c)), matmul, a, b, count
        )
        peak_work[name] = count * 2.0 * size**3

    runners = {
        "jaxae.fit steady-state epoch": jaxae_epoch,
        "jaxae jitted step, donated, one call per batch": jaxae_steps,
        f"torch, threads = os.cpu_count() ({default_threads}), Adam fused": torch_runner(
            default_threads, True
        ),
        f"torch, threads = os.cpu_count() ({default_threads}), Adam default": torch_runner(
            default_threads, False
        ),
        "torch, threads = 1, Adam fused": torch_runner(1, True),
        **peak_runners,
    }
    torch_threads_before = torch.get_num_threads()
    for name, run in runners.items():  # compile, allocate, warm up
        if name.startswith("torch"):
            run(1)
        elif name not in peak_runners:
            run()
    seconds = interleaved(runners, cfg)
    torch.set_num_threads(torch_threads_before)

    timings = {
        name: Timing(name, s, peak_work[name], "FLOP")
        if name in peak_work
        else Timing(name, s, float(steps), "steps")
        for name, s in seconds.items()
    }

    # Cross-check, not interleaved: jaxae.fit's own per-epoch wall times.
    result = jaxae.fit(
        jax.tree.map(jnp.copy, params0),
        x,
        loss_fn=loss_fn,
        optimizer=optax.adam(1e-3),
        key=key,
        epochs=cfg.fit_epochs,
        batch_size=batch,
        progress=False,
    )
    fit_timing = Timing(
        "jaxae.fit end-to-end (not interleaved)",
        [row["time_s"] for row in result.history[1:]],
        float(steps),
        "steps",
    )

    names = list(timings)
    epoch_t, step_t = timings[names[0]], timings[names[1]]
    torch_ts = [timings[name] for name in names[2:5]]
    best_torch = max(torch_ts, key=lambda t: t.rate)
    peak = max((timings[name] for name in peak_runners), key=lambda t: t.rate)
    flops = ae_flops_per_step(AE_SIZES, batch)
    cost = jax.jit(step).lower(fresh_state(), batches[0], key).cost_analysis()  # no compile
    if isinstance(cost, list | tuple):  # older jax returned one dict per computation
        cost = cost[0] if cost else None
    xla_flops = float(cost["flops"]) if cost and "flops" in cost else float("nan")
    return {
        "timings": [*timings.values(), fit_timing],
        "jaxae_steps_per_s": epoch_t.rate,
        "jaxae_step_call_steps_per_s": step_t.rate,
        "fit_steps_per_s": fit_timing.rate,
        "torch_steps_per_s": {t.name: t.rate for t in torch_ts},
        "best_peer": best_torch.name,
        "ratio": epoch_t.rate / best_torch.rate,
        "ratio_step_call": step_t.rate / best_torch.rate,
        "ratio_vs_briefed_peer": epoch_t.rate / torch_ts[1].rate,
        "batch": batch,
        "steps": steps,
        "loss_first_batch": {"jaxae": jax_loss, "torch": torch_loss},
        "flops": flops,
        "xla_cost_analysis_flops": xla_flops,
        "peak_flops_per_s": peak.rate,
        "peak_name": peak.name,
        "achieved_flops_per_s": flops["exact"] * epoch_t.rate,
        "fraction_of_peak": flops["exact"] * epoch_t.rate / peak.rate,
        "fraction_of_peak_step_call": flops["exact"] * step_t.rate / peak.rate,
        "fraction_of_peak_approx_flops": flops["approx"] * epoch_t.rate / peak.rate,
    }


# ------------------------------------------------------------------------------------------------
# 4. The contractive penalty.


def _sigmoid_encoder(params, x):
    return jax.nn.sigmoid(x @ params["w"] + params["b"][None, :])


def contractive_penalty_jacfwd(w, b, x):
    """``jaxae.contractive_penalty`` of ``h = sigmoid(x W + b)``: ``‖∂h/∂x‖²_F`` per example from
    the full ``[batch, n_hidden, n_visible]`` Jacobian (``vmap(jacfwd)``). Returns ``[batch]``."""
    return regularizers.contractive_penalty(_sigmoid_encoder, {"w": w, "b": b}, x)


def contractive_penalty_closed_form(w, b, x):
    """``jaxae.sigmoid_contractive_penalty``: the same quantity in closed form,
    ``Σ_j (h_j (1 - h_j))² Σ_i W_ij²`` (Rifai et al. 2011). Returns ``[batch]``."""
    return regularizers.sigmoid_contractive_penalty(_sigmoid_encoder({"w": w, "b": b}, x), w)


def bench_contractive(cfg: Config, x: np.ndarray) -> dict:
    batch, n_hidden = cfg.contractive_batch, cfg.contractive_hidden
    n_visible = x.shape[1]
    w = 0.05 * jax.random.normal(jax.random.key(0), (n_visible, n_hidden), jnp.float32)
    b = jnp.zeros((n_hidden,), jnp.float32)
    xb = jnp.asarray(x[:batch])

    source = (
        "jaxae.regularizers.contractive_penalty (vmap(jacfwd)) against "
        "jaxae.regularizers.sigmoid_contractive_penalty (closed form)"
    )

    fns = {"jacfwd": contractive_penalty_jacfwd, "closed form": contractive_penalty_closed_form}
    runners, memory = {}, {}
    for label, fn in fns.items():
        value = jax.jit(fn)
        grad = jax.jit(jax.grad(lambda w, b, x, fn=fn: jnp.mean(fn(w, b, x)), argnums=(0, 1)))
        for mode, f in (("value", value), ("value+grad", grad)):
            name = f"{label}, {mode}"
            compiled = f.lower(w, b, xb).compile()
            analysis = compiled.memory_analysis()
            memory[name] = None if analysis is None else int(analysis.temp_size_in_bytes)
            jax.block_until_ready(f(w, b, xb))
            runners[name] = functools.partial(_timed, functools.partial(f, w, b, xb))
    seconds = interleaved(runners, cfg)
    timings = [Timing(name, s, 1.0, "calls") for name, s in seconds.items()]
    by_name = {t.name: t for t in timings}
    a = np.asarray(contractive_penalty_jacfwd(w, b, xb))
    c = np.asarray(contractive_penalty_closed_form(w, b, xb))
    return {
        "timings": timings,
        "source": source,
        "batch": batch,
        "n_hidden": n_hidden,
        "n_visible": n_visible,
        "jacobian_bytes": 4 * batch * n_hidden * n_visible,
        "xla_temp_bytes": memory,
        "max_relative_difference": float(np.max(np.abs(a - c) / np.abs(c))),
        "ratio_value": by_name["jacfwd, value"].median / by_name["closed form, value"].median,
        "ratio_grad": by_name["jacfwd, value+grad"].median
        / by_name["closed form, value+grad"].median,
    }


# ------------------------------------------------------------------------------------------------
# 5. jaxae.fit against a plain-JAX lax.scan of the same math, per model family.


def plain_scan_epoch(grad_fn, optimizer, batch_size: int):
    """One epoch in plain JAX: shuffle, then ``lax.scan`` of grad -> ``optimizer.update`` ->
    ``apply_updates`` over the batches, jitted with params and optimizer state donated.

    ``grad_fn(params, batch, key) -> (grads, metrics)``; no finiteness guard, no metrics kept
    beyond the scan's outputs: the floor that ``jaxae.fit`` is measured against.
    """

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, opt_state, data, key):
        shuffle_key, steps_key = jax.random.split(key)
        n = data.shape[0]
        num_batches = n // batch_size
        perm = jax.random.permutation(shuffle_key, n)[: num_batches * batch_size]
        indices = perm.reshape(num_batches, batch_size)
        keys = jax.random.split(steps_key, num_batches)

        def step(carry, inputs):
            params, opt_state = carry
            i, k = inputs
            grads, metrics = grad_fn(params, data[i], k)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), (indices, keys))
        return params, opt_state, metrics

    return epoch


def _loss_grad_fn(loss_fn, has_aux: bool):
    def grad_fn(params, batch, key):
        if has_aux:
            (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, key)
            return grads, {"loss": loss, **metrics}
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        return grads, {"loss": loss}

    return grad_fn


def fit_vs_scan_families(cfg: Config, x: np.ndarray) -> dict:
    """The three families: (params, fit kwargs, plain grad_fn, optimizer factory, batch, n)."""
    spec = rbm.RBMSpec(x.shape[1], cfg.rbm_hidden)
    ae = jaxae.MLPAutoencoder(AE_SIZES)
    vae = jaxae.MLPVAE()

    def ae_loss(params, batch_x, key):
        del key
        logits = ae.reconstruct(params, batch_x, logits=True)
        return jnp.mean(jaxae.sigmoid_cross_entropy(logits, batch_x))

    vae_loss = jaxae.variational_loss(vae)
    rbm_grad = functools.partial(rbm.cd_gradients, spec=spec, k=1)
    return {
        "RBM CD-1 784-1000": dict(
            params=lambda: rbm.init_rbm(jax.random.key(0), spec, visible_data=x),
            fit_kwargs={"grad_fn": rbm_grad},
            grad_fn=rbm_grad,
            optimizer=lambda: rbm_optimizer(
                0.1,
                weight_decay=2e-4,
                momentum_start=0.5,
                momentum_final=0.9,
                momentum_switch_step=5 * (cfg.scan_examples // cfg.rbm_batch),
            ),
            batch=cfg.rbm_batch,
            n=cfg.scan_examples,
        ),
        "deep AE fine-tune 784-1000-500-250-30, Adam": dict(
            params=lambda: ae.init(jax.random.key(0)),
            fit_kwargs={"loss_fn": ae_loss},
            grad_fn=_loss_grad_fn(ae_loss, False),
            optimizer=lambda: optax.adam(1e-3),
            batch=cfg.ae_batch,
            n=cfg.scan_examples // cfg.ae_batch * cfg.ae_batch,
        ),
        "VAE 784-200-200-50 (ELBO), Adam": dict(
            params=lambda: vae.init(jax.random.key(0)),
            fit_kwargs={"loss_fn": vae_loss, "has_aux": True},
            grad_fn=_loss_grad_fn(vae_loss, True),
            optimizer=lambda: optax.adam(1e-3),
            batch=100,
            n=cfg.scan_examples,
        ),
    }


def bench_fit_vs_scan(cfg: Config, x: np.ndarray) -> dict:
    """Per family: ``jaxae.fit``'s steady-state epoch against the plain-JAX scan, interleaved."""
    rows = {}
    for family, f in fit_vs_scan_families(cfg, x).items():
        data_np = x[: f["n"]]
        data = jax.device_put(data_np)
        optimizer = f["optimizer"]()
        epoch_fn = plain_scan_epoch(f["grad_fn"], optimizer, f["batch"])
        fit_params = f["params"]()
        plain = {"params": f["params"]()}
        plain["opt_state"] = optimizer.init(plain["params"])
        counter = {"fit": 0, "plain": 0}

        def fit_runner(f=f, data_np=data_np) -> float:
            nonlocal fit_params
            fit_params, seconds = _fit_steady_epoch(
                fit_params,
                data_np,
                optimizer=f["optimizer"](),
                key=jax.random.fold_in(jax.random.key(1), counter["fit"]),  # noqa: B023
                batch_size=f["batch"],
                **f["fit_kwargs"],
            )
            counter["fit"] += 1  # noqa: B023
            return seconds

        def plain_runner(epoch_fn=epoch_fn, data=data, plain=plain) -> float:
            key = jax.random.fold_in(jax.random.key(2), counter["plain"])  # noqa: B023
            start = time.perf_counter()
            plain["params"], plain["opt_state"], metrics = epoch_fn(
                plain["params"], plain["opt_state"], data, key
            )
            jax.block_until_ready((plain["params"], metrics))
            counter["plain"] += 1  # noqa: B023
            return time.perf_counter() - start

        plain_runner()  # compile and warm up (fit's runner times its second epoch only)
        names = {
            "jaxae.fit steady-state epoch": fit_runner,
            "plain-JAX lax.scan epoch": plain_runner,
        }
        seconds = interleaved({f"{family}: {k}": v for k, v in names.items()}, cfg)
        steps = f["n"] // f["batch"]
        timings = [Timing(name, s, steps * f["batch"], "examples") for name, s in seconds.items()]
        fit_t, plain_t = timings
        rows[family] = {
            "timings": timings,
            "batch": f["batch"],
            "examples": steps * f["batch"],
            "fit_epoch_s": fit_t.median,
            "plain_epoch_s": plain_t.median,
            "ratio": plain_t.median / fit_t.median,
        }
    return rows


def render_fit_vs_scan(results: dict) -> str:
    rows = results["rows"]["fit_vs_scan"]
    m = results["machine"]
    lines = [
        "## jaxae.fit against a plain-JAX lax.scan of the same math",
        "",
        f"Run by `{results['command']}` on {results['date']}; {m['cpu']}, {m['cpu_count']} "
        f"logical cores; load average (1 min) at start / end {results['load'][0]:.2f} / "
        f"{results['load'][1]:.2f}"
        + (
            " — **shared machine, other processes were running**"
            if max(results["load"]) > 0.5 * (m["cpu_count"] or 1)
            else ""
        )
        + (" — **QUICK smoke run: shapes shrunk, do not cite**" if results["quick"] else "")
        + f"; jax.devices(): {', '.join(m['devices'])}; BLAS: "
        + ("; ".join(m["blas"]) or "unknown")
        + f" ({_openblas_note(m)}).",
        "",
        "Same model, same optimizer, same batch size and number of batches, in the same process, "
        "interleaved. jaxae: `jaxae.fit`'s own `time_s` of the second epoch of a 2-epoch fit "
        "(steady state; includes its shuffle, per-step finiteness guard and metrics). Plain JAX: "
        "one jitted function per epoch (donated params and optimizer state): permutation, then "
        "`lax.scan` of gradient -> `optimizer.update` -> `optax.apply_updates`. Ratio = plain "
        "epoch time / fit epoch time (1.0: fit costs nothing extra); goal ≥ 0.95×.",
        "",
        "| family | batch | examples/epoch | fit epoch ms | plain scan epoch ms | ratio | goal ≥ 0.95× |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
    ]
    for family, r in rows.items():
        lines.append(
            f"| {family} | {r['batch']} | {r['examples']:,} | {_fmt(r['fit_epoch_s'] * 1e3)} | "
            f"{_fmt(r['plain_epoch_s'] * 1e3)} | **{r['ratio']:.2f}×** | "
            f"{'yes' if r['ratio'] >= 0.95 else '**no**'} |"
        )
    lines += [
        "",
        "| runner | median ms | min ms | max ms | n | rate |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        lines += _timing_rows(r["timings"], "ex/s")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Machine, report.


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "jax": jax.__version__}
    for module in ("jaxlib", "optax", "numpy", "sklearn", "torch", "threadpoolctl"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
            f"{i.get('architecture', '?')})"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
        "blas": sorted(set(blas)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "openblas_unset": os.environ.get("JAXAE_BENCH_UNSET", ""),
        "openblas_pins_left": ", ".join(
            f"{v}={os.environ[v]}" for v in _OPENBLAS_PINS if v in os.environ
        ),
    }


def _openblas_note(m: dict) -> str:
    if m["openblas_unset"]:
        return f"the benchmark unset {m['openblas_unset']} for itself (the kernel above ran)"
    if m["openblas_pins_left"]:
        return f"pinned by {m['openblas_pins_left']} (imported, not run as a script)"
    return "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE were not set (OpenBLAS chose its kernel)"


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - magnitude, 0)
    return f"{x:,.{decimals}f}"


def _timing_rows(timings: list[Timing], rate_unit: str, scale: float = 1.0) -> list[str]:
    rows = []
    for t in timings:
        rows.append(
            f"| {t.name} | {_fmt(t.median * 1e3)} | {_fmt(min(t.seconds) * 1e3)} | "
            f"{_fmt(max(t.seconds) * 1e3)} | {len(t.seconds)} | {_fmt(t.rate / scale)} "
            f"{rate_unit} |"
        )
    return rows


def render(results: dict) -> str:
    m, r = results["machine"], results["rows"]
    rb, ae, cp = r["rbm"], r["autoencoder"], r["contractive"]
    cfg = results["config"]
    goal = {k: results["ratios"][k] >= v for k, v in GOALS.items()}
    mark = {True: "yes", False: "**no**"}
    mib = 2**20
    lines = [
        "# jaxae benchmarks",
        "",
        f"Generated by `{results['command']}` on {results['date']}"
        + (" — **QUICK smoke run: shapes shrunk, do not cite**" if results["quick"] else "")
        + ".",
        "",
        "Data-parallel scaling over 1, 2, 4 and 8 devices is reported in "
        "[scaling.md](scaling.md) (`python benchmarks/scaling.py`); the CBIR conv autoencoder's "
        "epoch and the LSTM autoencoder's step against PyTorch in [cbir_epoch.md](cbir_epoch.md) "
        "and [lstm_step.md](lstm_step.md) (`python benchmarks/cbir_epoch.py`, `lstm_step.py`).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; {m['cpu_count']} logical cores ({m['affinity']} usable)",
        f"- load average (1 min) at start / end: {results['load'][0]:.2f} / "
        f"{results['load'][1]:.2f}"
        + (
            f" — **shared machine: other processes were using the {m['cpu_count']} cores, so "
            "multi-threaded runs (jaxae's XLA pool, the peers' default settings) lose more "
            "than single-threaded ones; compare only with runs under similar load**"
            if max(results["load"]) > 0.5 * (m["cpu_count"] or 1)
            else ""
        ),
        f"- jax.devices(): {', '.join(m['devices'])}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "- BLAS (numpy/scipy/sklearn): "
        + ("; ".join(m["blas"]) or "unknown")
        + "; "
        + _openblas_note(m),
        f"- XLA_FLAGS: `{m['xla_flags'] or '(unset)'}`; float32 throughout",
        "",
        "## Summary",
        "",
        "Ratios are jaxae over the *faster* peer setting (threads = default or 1); higher is "
        "better for jaxae, except in the contractive row, which is a cost ratio.",
        "",
        "| benchmark | jaxae | peer (best setting) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        f"| 1. CD-1, RBM 784-{cfg['rbm_hidden']}, batch {cfg['rbm_batch']}, "
        f"{rb['steps'] * cfg['rbm_batch']:,} examples/epoch, data: {results['data']['rbm']} | "
        f"{_fmt(rb['jaxae_examples_per_s'])} ex/s | {_fmt(max(rb['sklearn_1_thread_examples_per_s'], rb['sklearn_default_threads_examples_per_s']))}"  # noqa: E501
        f" ex/s ({rb['best_peer']}) | **{rb['ratio']:.2f}×** | ≥ 3× | {mark[goal['rbm_cd1_vs_sklearn']]} |",  # noqa: E501
        f"| 2. Deep-AE fine-tuning step, 784-1000-500-250-30-…-784, batch {ae['batch']}, Adam "
        f"1e-3, data: {results['data']['autoencoder']} | {_fmt(ae['jaxae_steps_per_s'])} steps/s "
        f"= {_fmt(ae['jaxae_steps_per_s'] * ae['batch'])} ex/s | "
        f"{_fmt(max(ae['torch_steps_per_s'].values()))} steps/s = "
        f"{_fmt(max(ae['torch_steps_per_s'].values()) * ae['batch'])} ex/s ({ae['best_peer']}) | "
        f"**{ae['ratio']:.2f}×** | ≥ 1.5× | {mark[goal['ae_finetune_vs_torch']]} |",
        f"| 3. FLOP/s of that step / large-matmul peak | "
        f"{_fmt(ae['achieved_flops_per_s'] / 1e9)} GFLOP/s | {_fmt(ae['peak_flops_per_s'] / 1e9)}"
        f" GFLOP/s ({ae['peak_name']}) | **{ae['fraction_of_peak']:.0%}** | ≥ 85 % | "
        f"{mark[goal['ae_finetune_fraction_of_peak']]} |",
        f"| 4. Contractive penalty, sigmoid encoder 784-{cp['n_hidden']}, batch {cp['batch']}: "
        f"jacfwd / closed form, value (value+grad) | — | — | {_fmt(cp['ratio_value'])}× "
        f"({_fmt(cp['ratio_grad'])}×) slower | — | — |",
        "",
        "Secondary ratios:",
        "",
        f"- 1. against sklearn with its default BLAS threads (the briefed setting): "
        f"{rb['ratio_vs_default_threads']:.2f}×; jaxae.fit end-to-end (not interleaved): "
        f"{_fmt(rb['fit_examples_per_s'])} ex/s.",
        f"- 2. against torch with os.cpu_count() threads and the default (non-fused) Adam "
        f"(the briefed setting): {ae['ratio_vs_briefed_peer']:.2f}×; the bare jitted step "
        f"(donated state, one dispatch per batch) against the best torch: "
        f"{ae['ratio_step_call']:.2f}×; jaxae.fit end-to-end (not interleaved): "
        f"{_fmt(ae['fit_steps_per_s'])} steps/s.",
        f"- 3. the bare jitted step reaches {ae['fraction_of_peak_step_call']:.0%} of peak; "
        f"counting 3 × forward FLOPs instead of the exact count, fit's epoch reaches "
        f"{ae['fraction_of_peak_approx_flops']:.0%}.",
        "",
        "## How each number is measured",
        "",
        f"Every runner repeats {cfg['repeats']} times (fewer once it has used "
        f"{cfg['budget_s']:g} s: at least {cfg['min_repeats']}, or 1 if that one run took "
        "longer than the budget); the runners of a row "
        "take turns and the order rotates each repeat, so background load falls on all of them; "
        "medians are "
        "reported. Warm-up (compilation, first calls) is excluded.",
        "",
        "1. **RBM.** jaxae: `jaxae.fit`'s own steady-state epoch (the second epoch's `time_s` "
        "of a 2-epoch fit, training continued across calls): its jitted `lax.scan` of "
        "`make_train_step(partial(rbm.cd_gradients, spec=spec, k=1), rbm_optimizer(0.1, "
        "weight_decay=2e-4, momentum 0.5→0.9))` over device-resident data, including the "
        "per-step finiteness check and keep-last-good-state guard. scikit-learn: "
        f"`BernoulliRBM(n_components={cfg['rbm_hidden']}, batch_size={cfg['rbm_batch']}, "
        "learning_rate=0.1, n_iter=1).fit(x)` on the same float32 array (`fit` keeps float32; "
        "`partial_fit` casts to float64). sklearn does PCD-1 with sampled visible states and a "
        "plain SGD step; jaxae does CD-1 with mean-field reconstructions plus momentum and "
        "weight decay: both cost five 100×784×1000 GEMMs per step. sklearn's timing includes "
        f"drawing its initial weights ({_fmt(rb['sklearn_init_s'] * 1e3)} ms per fit).",
        "2. **Deep AE.** `MLPAutoencoder((784, 1000, 500, 250, 30))`: logistic hidden units, "
        "linear code, loss `mean(sigmoid_cross_entropy(logits, x))`, `optax.adam(1e-3)`; "
        f"a timed unit is an epoch of {ae['steps']} steps of {ae['batch']}. PyTorch: "
        "`nn.Sequential` of `Linear`+`Sigmoid` with the same initial weights, "
        "`BCEWithLogitsLoss(reduction='sum') / batch`, `torch.optim.Adam` (fused and default), "
        "same batches in the same order. First-batch loss: jaxae "
        f"{ae['loss_first_batch']['jaxae']:.4f}, torch {ae['loss_first_batch']['torch']:.4f}.",
        "3. **FLOP fraction.** FLOPs per step = 2·B·Σ(in·out) for the forward pass, the same "
        "again for the weight gradients, and again less the first layer for the input "
        "gradients (the input's gradient is not computed): "
        f"{_fmt(ae['flops']['exact'] / 1e9)} GFLOP per step at B = {ae['batch']} "
        f"(3 × forward = {_fmt(ae['flops']['approx'] / 1e9)}; XLA's cost analysis of the "
        f"compiled step, elementwise work included: "
        f"{_fmt(ae['xla_cost_analysis_flops'] / 1e9)}). Achieved = FLOPs per step × fit's "
        "steps/s. Peak = the best median of jitted `a @ b` (float32, sizes "
        f"{', '.join(str(s) for s in cfg['peak_sizes'])}) in the same interleaved run.",
        f"4. **Contractive penalty.** {cp['source']}. `jax.vmap(jax.jacfwd(encode_one))` "
        "materialises the [batch, hidden, visible] Jacobian "
        f"({_fmt(cp['jacobian_bytes'] / mib)} MiB here); the closed form "
        "`(h(1-h))² @ Σ_i W_ij²` needs O(batch·hidden + visible·hidden). XLA temp buffers: "
        + ", ".join(
            f"{k} {_fmt(v / mib) if v is not None else 'n/a'} MiB"
            for k, v in cp["xla_temp_bytes"].items()
        )
        + f". Max relative difference between the two: {cp['max_relative_difference']:.1e}.",
        "",
        "## All timings",
        "",
        "| runner | median ms | min ms | max ms | n | rate |",
        "|---|---|---|---|---|---|",
        *_timing_rows(rb["timings"], "ex/s"),
        *_timing_rows(
            [t for t in ae["timings"] if t.unit == "steps"], f"steps/s (× {ae['batch']} ex)"
        ),
        *_timing_rows([t for t in ae["timings"] if t.unit == "FLOP"], "GFLOP/s", 1e9),
        *_timing_rows(cp["timings"], "calls/s"),
        "",
    ]
    return "\n".join(lines)


def _summary(results: dict) -> dict:
    """The JSON-friendly part of the results (Timing objects become plain numbers)."""

    def plain(value):
        if isinstance(value, Timing):
            return {"median_s": value.median, "seconds": value.seconds, "rate": value.rate}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(results)


_FIT_VS_SCAN_BEGIN = "<!-- fit-vs-scan: begin -->\n"
_FIT_VS_SCAN_END = "<!-- fit-vs-scan: end -->\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shrink everything (smoke test)")
    parser.add_argument(
        "--out",
        default=None,
        help="Markdown report (default benchmarks/RESULTS.md, or RESULTS-quick.md with --quick)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="override the repeat count")
    parser.add_argument(
        "--only",
        choices=("all", "fit-vs-scan"),
        default="all",
        help="fit-vs-scan: only the jaxae.fit vs plain lax.scan rows, written into the report's "
        "own section (the rest of an existing report is kept)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Runs every benchmark, writes the Markdown report, returns the results.

    Returns:
      ``{"ratios": {name: float}, "rows": {...}, "machine": {...}, ...}``; ``ratios`` holds
      ``rbm_cd1_vs_sklearn``, ``ae_finetune_vs_torch``, ``ae_finetune_fraction_of_peak`` and
      ``contractive_jacfwd_over_closed_form`` (a cost ratio).
    """
    args = parse_args(argv)
    cfg = QUICK if args.quick else Config()
    if args.repeats is not None:
        if args.repeats < 1:
            raise SystemExit(f"--repeats: expected a positive integer, got {args.repeats}")
        cfg = dataclasses.replace(cfg, repeats=args.repeats)
    out = pathlib.Path(
        args.out or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    ).resolve()
    started = time.perf_counter()
    load_start = os.getloadavg()[0]

    n = max(cfg.rbm_examples, cfg.ae_batch * cfg.ae_steps, cfg.contractive_batch)
    n = max(n, cfg.scan_examples)
    x, source = load_images(n)
    benches = {
        "rbm": lambda: bench_rbm(cfg, x[: cfg.rbm_examples]),
        "autoencoder": lambda: bench_autoencoder(cfg, x),
        "contractive": lambda: bench_contractive(cfg, x),
        "fit_vs_scan": lambda: bench_fit_vs_scan(cfg, x),
    }
    if args.only == "fit-vs-scan":
        benches = {"fit_vs_scan": benches["fit_vs_scan"]}
    rows, section_s = {}, {}
    for name, bench in benches.items():
        start = time.perf_counter()
        rows[name] = bench()
        section_s[name] = time.perf_counter() - start
        print(f"{name}: {section_s[name]:.0f} s", file=sys.stderr)
    ratios = {f"fit_vs_scan {k}": v["ratio"] for k, v in rows["fit_vs_scan"].items()}
    if args.only == "all":
        ratios = {
            "rbm_cd1_vs_sklearn": rows["rbm"]["ratio"],
            "ae_finetune_vs_torch": rows["autoencoder"]["ratio"],
            "ae_finetune_fraction_of_peak": rows["autoencoder"]["fraction_of_peak"],
            "contractive_jacfwd_over_closed_form": rows["contractive"]["ratio_value"],
            **ratios,
        }
    results = {
        "command": shlex.join(
            ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "config": dataclasses.asdict(cfg),
        "machine": machine_info(),
        "data": {
            "rbm": source.replace(f"[:{n}]", f"[:{cfg.rbm_examples}]"),
            "autoencoder": source.replace(f"[:{n}]", f"[:{cfg.ae_batch * cfg.ae_steps}]"),
            "fit_vs_scan": source.replace(f"[:{n}]", f"[:{cfg.scan_examples}]"),
        },
        "load": (load_start, os.getloadavg()[0]),
        "rows": rows,
        "ratios": ratios,
    }
    results["wall_s"] = time.perf_counter() - started
    results["section_s"] = section_s
    sections = ", ".join(f"{k} {v:.0f} s" for k, v in section_s.items())
    footer = f"Total wall time: {results['wall_s']:.0f} s ({sections}).\n"
    section = render_fit_vs_scan(results)
    if args.only == "all":
        report = render(results) + "\n" + _FIT_VS_SCAN_BEGIN + section + _FIT_VS_SCAN_END + footer
    else:  # keep the rest of an existing report, replace (or add) this section
        report = out.read_text() if out.exists() else "# jaxae benchmarks\n\n"
        block = _FIT_VS_SCAN_BEGIN + section + _FIT_VS_SCAN_END
        if _FIT_VS_SCAN_BEGIN in report and _FIT_VS_SCAN_END in report:
            head, rest = report.split(_FIT_VS_SCAN_BEGIN, 1)
            report = head + block + rest.split(_FIT_VS_SCAN_END, 1)[1]
        else:
            report = report.rstrip("\n") + "\n\n" + block
    atomic_write_text(out, report)
    summary = _summary(results)
    summary["out"] = str(out)
    print(f"wrote {out} ({results['wall_s']:.0f} s)")
    for name, value in results["ratios"].items():
        print(f"  {name}: {value:.3g}")
    return summary


if __name__ == "__main__":
    main()
