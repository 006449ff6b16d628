"""Training steps of the composite LSTM autoencoder: jaxae against PyTorch on the CPU.

    python benchmarks/lstm_step.py                    # 20 steps of batch 16 a repeat, 3 repeats
    python benchmarks/lstm_step.py --quick            # smoke run: 3 steps of batch 16, 1 repeat
    python benchmarks/lstm_step.py --features 2048    # the paper's size (--repeats N to change)

The network is :class:`jaxae.models.lstm.LSTMSequenceModel` with ``kind="composite"`` as
``experiments/srivastava2015.py`` trains it on the CPU: 64x64 Moving MNIST frames (4096 inputs),
10 input + 10 future frames, one layer of 256 LSTM units (the paper's 2048 is ``--features
2048``), unconditional decoders, trained on the sum of both decoders' Bernoulli cross-entropy
per sequence (summed over frames and pixels, mean over the batch) with Adam. PyTorch runs the
same computation from the same initial weights (the first batch's loss agrees, printed): an
``nn.LSTM`` encoder whose final ``(h, c)`` starts two ``nn.LSTM`` decoders that read zeros (one
input feature, as jaxae's unconditional decoders read a zero of width 1), each followed by its
own ``nn.Linear`` to logits; the reconstruction targets are the input frames reversed. Both
use the gate order i, f, g, o, project the whole input sequence in one matmul before the time
loop and apply each decoder's output layer to all its steps at once after it. Remaining
differences, the same math done another way: ``nn.LSTM`` adds two bias vectors (``b_ih``, here
zero, and ``b_hh``) where Flax's ``OptimizedLSTMCell`` has one, and Adam updates both; jaxae
skips the (zero) projection of an unconditional decoder's zero input, where PyTorch computes
it (a ``[B, 1] x [1, 4H]`` product a step). The jaxae side is ``jaxae.fit``'s
steady-state epoch (the second of a 2-epoch fit, its ``time_s``) over fixed sequences (the
experiment renders fresh ones every step; here both sides get the same batches). Runners take
turns, the order rotating each repeat; medians are reported, PyTorch with its default thread
count and with one thread, the ratio against the faster. Recorded in ``benchmarks/lstm_step.md``
(2026-12-03, 2 CPU cores): jaxae 67 ms a step against PyTorch's 97 ms with 2 threads, a ratio
of 1.45.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import optax  # noqa: E402

import jaxae  # noqa: E402
from benchmarks.report import JAXAE_RUNNER, compare_with_torch, write_report  # noqa: E402
from jaxae.data import moving_mnist as mm  # noqa: E402
from jaxae.models.lstm import LSTMSequenceModel  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETUP = (
    'The composite LSTM autoencoder (`jaxae.models.lstm.LSTMSequenceModel(kind="composite")`: '
    "one LSTM encoder, unconditional reconstruction and future decoders, Bernoulli logits per "
    "pixel) on Moving MNIST sequences, Adam; PyTorch runs `nn.LSTM` with jaxae's initial "
    "weights (the first batch's loss agrees). jaxae's time is `jaxae.fit`'s steady-state epoch."
)

NUM_INPUT, NUM_FUTURE = 10, 10


def torch_composite(torch, params, num_input: int):
    """The composite LSTM autoencoder in PyTorch, with jaxae's weights ``params`` (one layer):
    ``forward(x) -> (reconstruction, future)`` logits, ``[batch, frames, D]`` each."""
    nn = torch.nn
    p = params["params"]

    def lstm(cell) -> nn.LSTM:
        """``nn.LSTM`` with the weights of one Flax ``OptimizedLSTMCell``: gates i, f, g, o."""
        w_ih = np.concatenate([cell[f"i{g}"]["kernel"] for g in "ifgo"], axis=1).T
        w_hh = np.concatenate([cell[f"h{g}"]["kernel"] for g in "ifgo"], axis=1).T
        b_hh = np.concatenate([cell[f"h{g}"]["bias"] for g in "ifgo"])
        module = nn.LSTM(w_ih.shape[1], w_hh.shape[1], batch_first=True)
        with torch.no_grad():
            module.weight_ih_l0.copy_(torch.from_numpy(np.array(w_ih)))
            module.weight_hh_l0.copy_(torch.from_numpy(np.array(w_hh)))
            module.bias_hh_l0.copy_(torch.from_numpy(np.array(b_hh)))
            module.bias_ih_l0.zero_()  # Flax's cell has one bias
        return module

    def linear(dense) -> nn.Linear:
        module = nn.Linear(*dense["kernel"].shape)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.array(dense["kernel"]).T))
            module.bias.copy_(torch.from_numpy(np.array(dense["bias"])))
        return module

    (encoder_cell,) = p["encoder"].values()
    decoders = {name: p[name]["steps"] for name in ("reconstruction", "future")}

    class Composite(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = lstm(encoder_cell)
            self.decoders = nn.ModuleDict({k: lstm(v["lstm_0"]) for k, v in decoders.items()})
            self.outputs = nn.ModuleDict({k: linear(v["output"]) for k, v in decoders.items()})

        def forward(self, x):
            _, state = self.encoder(x[:, :num_input])
            out = []
            for name, steps in (("reconstruction", num_input), ("future", x.shape[1] - num_input)):
                zeros = x.new_zeros(x.shape[0], steps, 1)  # unconditional: a zero input
                h, _ = self.decoders[name](zeros, state)
                out.append(self.outputs[name](h))
            return tuple(out)

    return Composite()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out",
        default=None,
        help="the markdown report (default benchmarks/lstm_step.md; none with --quick)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--features", type=int, default=256, help="LSTM units (the paper: 2048)")
    parser.add_argument("--frame-size", type=int, default=64, help="frames' side (>= 28)")
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    steps, repeats = (3, 1) if args.quick else (20, 3)
    repeats = args.repeats or repeats
    batch, side, units = args.batch, args.frame_size, args.features
    n = batch * steps
    frames = mm.sample_sequences(
        jax.random.key(0),
        mm.training_digits(),
        n,
        num_frames=NUM_INPUT + NUM_FUTURE,
        frame_size=side,
    )
    x = mm.MovingMnist(frames, NUM_INPUT, "train").sequences()  # [n, 20, side * side]

    model = LSTMSequenceModel(
        input_dim=side * side,
        features=(units,),
        num_input=NUM_INPUT,
        num_future=NUM_FUTURE,
        kind="composite",
    )
    optimizer = optax.adam(1e-3)
    params = model.init(jax.random.key(0))
    data = jax.device_put(x)

    def jaxae_epoch() -> float:
        result = jaxae.fit(
            params, data, loss_fn=model.loss_fn, optimizer=optimizer,
            key=jax.random.key(1), epochs=2, batch_size=batch, progress=False,
        )  # fmt: skip
        return result.history[-1]["time_s"]

    import torch

    torch_x = torch.from_numpy(np.ascontiguousarray(x)).reshape(steps, batch, *x.shape[1:])
    criterion = torch.nn.BCEWithLogitsLoss(reduction="sum")

    def torch_loss(net, b):
        reconstruction, future = net(b)
        targets = torch.flip(b[:, :NUM_INPUT], dims=(1,)), b[:, NUM_INPUT:]
        return (criterion(reconstruction, targets[0]) + criterion(future, targets[1])) / batch

    with torch.no_grad():
        first_loss = {
            "jaxae": float(jax.jit(model.loss_fn)(params, x[:batch], None)),
            "torch": float(torch_loss(torch_composite(torch, params, NUM_INPUT), torch_x[0])),
        }

    def torch_runner(threads: int):
        net = torch_composite(torch, params, NUM_INPUT)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def run(num_steps: int = steps) -> float:
            torch.set_num_threads(threads)
            net.train()
            start = time.perf_counter()
            for i in range(num_steps):
                opt.zero_grad(set_to_none=True)
                torch_loss(net, torch_x[i]).backward()
                opt.step()
            return time.perf_counter() - start

        run(1)  # warm-up: allocations, first-call dispatch
        return run

    threads_before = torch.get_num_threads()
    runners = {
        JAXAE_RUNNER: jaxae_epoch,
        f"torch ({os.cpu_count()} threads)": torch_runner(os.cpu_count() or 1),
        "torch (1 thread)": torch_runner(1),
    }
    medians, ratio = compare_with_torch(runners, repeats)
    torch.set_num_threads(threads_before)
    results = {
        "batch": batch,
        "steps": steps,
        "features": units,
        "frame_size": side,
        "repeats": repeats,
        "first_batch_loss": first_loss,
        "median_s": medians,
        "ratio_torch_over_jaxae": ratio,
    }
    print(
        f"composite LSTM AE, {side}x{side} frames, {NUM_INPUT}+{NUM_FUTURE} frames, {units} "
        f"units, batch {batch}, {steps} steps a repeat, median of {repeats}\n"
        f"first-batch loss: jaxae {first_loss['jaxae']:.4f}, torch {first_loss['torch']:.4f}\n"
    )
    print("| runner | median s | ms/step | sequences/s |\n|---|---:|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.3f} | {1e3 * value / steps:.1f} | {n / value:.1f} |")
    print(f"\nspeed-up over the faster PyTorch setting: {results['ratio_torch_over_jaxae']:.2f}x")
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "lstm_step.md"))
    if out is not None:
        write_report(
            out,
            "Composite LSTM autoencoder: training steps, jaxae against PyTorch (CPU)",
            SETUP,
            results,
            sys.argv[1:] if argv is None else argv,
            load,
        )
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
