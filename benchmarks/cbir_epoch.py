"""One training epoch of the CBIR convolutional autoencoder: jaxae against PyTorch on the CPU.

    python benchmarks/cbir_epoch.py              # 60 steps of batch 128 a repeat, 3 repeats
    python benchmarks/cbir_epoch.py --quick      # smoke run: 5 steps of batch 32, 1 repeat
    python benchmarks/cbir_epoch.py --steps 20   # shorter repeats (--repeats N to change)

The network is :class:`jaxae.models.conv.CBIRAutoencoder` at its defaults (32x32x1 inputs,
two encoders of four 3x3 convolutions 32-64-128-256 with strides 2-2-2-1, BatchNorm and ReLU,
16-d codes, one shared transposed-convolution decoder) trained on
:class:`jaxae.models.conv.TwoCodeLoss` (three reconstructions a step) with Adam. PyTorch runs
the same layers, loss and optimiser (its own initial weights: the timing, not the numbers, is
compared; torch's ``padding=1`` aligns stride-2 windows one pixel differently from Flax's
``"SAME"``, the same work). The jaxae side is ``jaxae.fit``'s steady-state epoch (the second of
a 2-epoch fit, its ``time_s``). Runners take turns, the order rotating each repeat; medians are
reported, PyTorch with its default thread count and with one thread, the ratio against the
faster. Recorded in ``benchmarks/cbir_epoch.md`` (2026-12-03, 2 CPU cores, ``--steps 20``): jaxae
0.80 s a step against PyTorch's 0.29 s with 2 threads, a ratio of 0.37: XLA's CPU convolutions
are the cost (the same step in a ``lax.scan`` is slower still, see ``jaxae.fit``'s ``loop``).
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
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import jaxae  # noqa: E402
from benchmarks.report import JAXAE_RUNNER, compare_with_torch, write_report  # noqa: E402
from jaxae.models.conv import CBIRAutoencoder, TwoCodeLoss  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETUP = (
    "The textbook's CBIR autoencoder (`jaxae.models.conv.CBIRAutoencoder` at its defaults: "
    "32x32x1 MNIST images, two encoders of four 3x3 convolutions 32-64-128-256 with BatchNorm "
    "and ReLU, 16-d codes, a shared transposed-convolution decoder) on `TwoCodeLoss` with Adam; "
    "PyTorch runs the same layers, loss and optimiser. jaxae's time is `jaxae.fit`'s "
    'steady-state epoch (`loop="auto"`: on CPU one jitted step at a time).'
)


def torch_cbir(torch, features=(32, 64, 128, 256), strides=(2, 2, 2, 1), code=16, side=32):
    """The CBIR autoencoder in PyTorch: ``forward(x) -> [3, batch, 1, side, side]`` logits."""
    nn = torch.nn
    bottom = side // int(np.prod(strides))

    def encoder(linear_code: bool):
        layers, c_in = [], 1
        for f, s in zip(features, strides, strict=True):
            layers += [nn.Conv2d(c_in, f, 3, stride=s, padding=1), nn.BatchNorm2d(f), nn.ReLU()]
            c_in = f
        layers += [nn.Flatten(), nn.Linear(bottom * bottom * features[-1], code)]
        return nn.Sequential(*layers) if linear_code else nn.Sequential(*layers, nn.ReLU())

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Sequential(
                nn.Linear(code, bottom * bottom * features[-1]),
            )
            self.bn = nn.BatchNorm2d(features[-1])
            layers, outputs = [], (*features[:-1][::-1], 1)
            c_in = features[-1]
            for i, (f, s) in enumerate(zip(outputs, strides[::-1], strict=True)):
                layers.append(
                    nn.ConvTranspose2d(c_in, f, 3, stride=s, padding=1, output_padding=s - 1)
                )
                if i < len(outputs) - 1:
                    layers += [nn.BatchNorm2d(f), nn.ReLU()]
                c_in = f
            self.convs = nn.Sequential(*layers)

        def forward(self, z):
            x = self.dense(z).reshape(z.shape[0], features[-1], bottom, bottom)
            return self.convs(torch.relu(self.bn(x)))

    class CBIR(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1, self.e2, self.decoder = encoder(False), encoder(True), Decoder()

        def forward(self, x):
            z1, z2 = self.e1(x), self.e2(x)
            out = self.decoder(torch.cat([z1, z2, 0.5 * (z1 + z2)]))
            return out.reshape(3, *x.shape)

    return CBIR()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="steps a repeat (default 60)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument(
        "--out",
        default=None,
        help="the markdown report (default benchmarks/cbir_epoch.md; none with --quick)",
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()
    batch, steps, repeats = (32, 5, 1) if args.quick else (128, 60, 3)
    steps, repeats = args.steps or steps, args.repeats or repeats
    n = batch * steps
    x = np.asarray(jaxae.data.load("mnist", "train").flat[:n], np.float32).reshape(-1, 28, 28, 1)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))

    ae = jaxae.LinenAutoencoder(CBIRAutoencoder())
    loss = TwoCodeLoss(ae, jaxae.sigmoid_cross_entropy)
    optimizer = optax.adam(1e-3)
    params, state = ae.init(jax.random.key(0), x[:2])
    data = jax.device_put(jnp.asarray(x))

    def jaxae_epoch() -> float:
        result = jaxae.fit(
            params, data, loss_fn=loss, model_state=state, optimizer=optimizer,
            key=jax.random.key(1), epochs=2, batch_size=batch, progress=False,
        )  # fmt: skip
        return result.history[-1]["time_s"]

    import torch

    torch_x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    torch_x = torch_x.reshape(steps, batch, 1, 32, 32)
    criterion = torch.nn.BCEWithLogitsLoss(reduction="sum")

    def torch_runner(threads: int):
        net = torch_cbir(torch)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def run(num_steps: int = steps) -> float:
            torch.set_num_threads(threads)
            net.train()
            start = time.perf_counter()
            for i in range(num_steps):
                b = torch_x[i]
                opt.zero_grad(set_to_none=True)
                logits = net(b)
                value = sum(criterion(logits[j], b) for j in range(3)) / (3 * batch)
                value.backward()
                opt.step()
            return time.perf_counter() - start

        run(1)  # warm-up, as jaxae's first (compiling) epoch is not timed either
        return run

    runners = {
        JAXAE_RUNNER: jaxae_epoch,
        f"torch ({os.cpu_count()} threads)": torch_runner(os.cpu_count() or 1),
        "torch (1 thread)": torch_runner(1),
    }
    medians, ratio = compare_with_torch(runners, repeats)
    results = {
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "median_s": medians,
        "ratio_torch_over_jaxae": ratio,
    }
    for name, value in medians.items():
        print(f"{name:28s} {value:8.3f} s  ({steps * batch / value:8.1f} images/s)")
    print(f"speed-up over the faster PyTorch setting: {results['ratio_torch_over_jaxae']:.2f}x")
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "cbir_epoch.md"))
    if out is not None:
        write_report(
            out,
            "CBIR autoencoder: one training epoch, jaxae against PyTorch (CPU)",
            SETUP,
            results,
            sys.argv[1:] if argv is None else argv,
            load,
        )
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
