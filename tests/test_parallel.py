"""Data-parallel training: ``jaxae.parallel`` and ``jaxae.fit(..., mesh=... / devices=...)``.

Several devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX starts,
and pytest's JAX already runs with one CPU device. So this file is also a script: the tests start
it in subprocesses with ``N`` forced devices (``python tests/test_parallel.py CHECK ARGS_JSON``),
it prints its results as one JSON line, and the tests assert on them. Checks that need one device
run here, in the pytest process.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if __name__ == "__main__" and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jaxae  # noqa: E402
from jaxae import parallel, rbm  # noqa: E402

NUM_EXAMPLES = 1280  # 20 steps of 64 per epoch
BATCH = 64
AE = jaxae.MLPAutoencoder((64, 32, 16, 8))
SPEC = rbm.RBMSpec(64, 32)


def _digits(n: int = NUM_EXAMPLES) -> np.ndarray:
    return np.asarray(jaxae.data.load("digits", "train").flat[:n])


def _ae_loss(params, batch, key):
    del key
    return jaxae.sigmoid_cross_entropy(AE.reconstruct(params, batch, logits=True), batch).mean()


def _fit_ae(x, epochs: int = 1, **kwargs):
    kwargs.setdefault("loss_fn", _ae_loss)
    return jaxae.fit(
        AE.init(jax.random.key(0)),
        x,
        optimizer=optax.adam(1e-3),
        key=jax.random.key(1),
        epochs=epochs,
        batch_size=kwargs.pop("batch_size", BATCH),
        progress=False,
        **kwargs,
    )


def _fit_rbm(x, **kwargs):
    kwargs.setdefault("grad_fn", functools.partial(rbm.cd_gradients, spec=SPEC, k=1))
    return jaxae.fit(
        rbm.init_rbm(jax.random.key(0), SPEC, visible_data=x),
        x,
        optimizer=optax.sgd(0.1, momentum=0.5),
        key=jax.random.key(2),
        epochs=kwargs.pop("epochs", 1),
        batch_size=BATCH,
        progress=False,
        **kwargs,
    )


def _max_diff(a, b) -> float:
    a, b = jax.device_get(a), jax.device_get(b)
    diffs = jax.tree.map(lambda u, v: float(np.max(np.abs(np.asarray(u) - np.asarray(v)))), a, b)
    return max(jax.tree.leaves(diffs))


def _host(tree) -> dict[str, np.ndarray]:
    """Flattened leaves as NumPy, keyed by path (for .npz files)."""
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(tree))
    return {jax.tree_util.keystr(path): np.asarray(x) for path, x in leaves}


def _error_message(fn) -> str:
    try:
        fn()
    except ValueError as error:
        return str(error)
    return "no error"


# ------------------------------------------------------------------------------------------------
# The checks run in subprocesses (their functions return JSON-able dicts).


def check_eight(args: dict) -> dict:
    """Everything that needs 8 devices; saves checkpoints and reference arrays under args["out"]."""
    assert jax.device_count() == 8, jax.devices()
    out = pathlib.Path(args["out"])
    x = _digits()
    res: dict = {"seconds": {}}
    clock = [time.perf_counter()]

    def lap(name):  # wall time per section, to keep this check fast
        now = time.perf_counter()
        res["seconds"][name] = round(now - clock[0], 2)
        clock[0] = now

    # Deep autoencoder, 20 steps: without a mesh, and on 8 devices (checkpointed, resumed by
    # `resume` on 1 and 4 devices); then 2 epochs on 8 devices, the resumed runs' reference.
    traces = []

    def counting_loss(params, batch, key):
        traces.append(1)
        return _ae_loss(params, batch, key)

    plain = _fit_ae(x)
    np.savez(out / "ae_plain.npz", **_host(plain.params))
    res["ae_plain_loss"] = plain.history[0]["loss"]
    # A mesh as users make it: jax.make_mesh (Explicit axis type), any axis name.
    eight = _fit_ae(x, mesh=jax.make_mesh((8,), ("batch",)), checkpoint_dir=out / "ae")
    # loop="scan": "auto" would add one abstract trace on CPU, looking for a convolution.
    reference = _fit_ae(x, epochs=2, devices=8, loss_fn=counting_loss, loop="scan")
    np.savez(out / "ae_reference.npz", **_host(reference.params))
    res["ae"] = {
        "steps": int(eight.state.step),
        "diff_8_vs_plain": _max_diff(eight.params, plain.params),
        "change": _max_diff(plain.params, AE.init(jax.random.key(0))),
        "loss_8": eight.history[0]["loss"],
        "loss_plain": plain.history[0]["loss"],
        "param_sharding": str(jax.tree.leaves(eight.params)[0].sharding.spec),
        "param_devices": len(jax.tree.leaves(eight.params)[0].sharding.device_set),
        "traces_for_2_epochs": len(traces),
    }

    lap("ae")

    # RBM CD-1, 20 steps: per-example keys make 1 and 8 devices draw the same noise.
    ex1, ex8 = _fit_rbm(x, devices=1, example_keys=True), _fit_rbm(x, devices=8, example_keys=True)
    dev8 = _fit_rbm(x, devices=8)
    res["rbm"] = {
        "steps": int(ex8.state.step),
        "example_keys_diff_8_vs_1": _max_diff(ex8.params, ex1.params),
        "device_keys_diff_vs_example_keys": _max_diff(dev8.params, ex8.params),
        "change": _max_diff(ex1.params, rbm.init_rbm(jax.random.key(0), SPEC, visible_data=x)),
        "recon_8": ex8.history[0]["reconstruction_error"],
        "recon_1": ex1.history[0]["reconstruction_error"],
    }

    lap("rbm")

    # Per-device streams: a stateful estimator writes its device's draw into its row of aux.
    def draw(params, aux, batch, key):
        return jax.tree.map(jnp.zeros_like, params), jax.random.uniform(key, aux.shape), {}

    key = jax.random.key(3)
    drawn = jaxae.fit(
        {"w": jnp.zeros(())},
        np.ones((8, 1), np.float32),
        grad_fn=draw,
        aux=jnp.zeros((8, 1)),
        optimizer=optax.sgd(0.1),
        key=key,
        epochs=1,
        batch_size=8,
        progress=False,
        devices=8,
    )
    step_key = jax.random.split(jax.random.split(jax.random.fold_in(key, 0))[1], 1)[0]
    expected = [
        float(jax.random.uniform(jax.random.fold_in(step_key, d), (1, 1))[0, 0]) for d in range(8)
    ]
    res["streams"] = {
        "drawn": np.asarray(drawn.state.aux)[:, 0].tolist(),
        "expected": expected,
        "aux_sharding": str(drawn.state.aux.sharding.spec),
    }

    lap("streams")

    # The same per-device step under jax.shard_map and jax.pmap, 20 steps of CD-1.
    optimizer = optax.sgd(0.1, momentum=0.5)
    grad_fn = functools.partial(rbm.cd_gradients, spec=SPEC, k=1)
    step = parallel.data_parallel_step(optimizer, grad_fn=grad_fn)
    state = jaxae.init_train_state(rbm.init_rbm(jax.random.key(0), SPEC, visible_data=x), optimizer)
    shuffle_key, steps_key = jax.random.split(jax.random.fold_in(jax.random.key(2), 0))
    indices = jaxae.training.batch_indices(shuffle_key, NUM_EXAMPLES, BATCH)
    keys = jax.random.split(steps_key, indices.shape[0])
    by_shard_map = parallel.shard_map_step(step, parallel.data_mesh(8))
    by_pmap = parallel.pmap_step(step)
    s_sm = s_pm = state
    for idx, step_key in zip(indices, keys, strict=True):
        s_sm, m_sm = by_shard_map(s_sm, x[np.asarray(idx)], step_key)
        s_pm, m_pm = by_pmap(s_pm, x[np.asarray(idx)].reshape(8, BATCH // 8, -1), step_key)
    # ...and with per-example keys, under pmap, against fit's 8-device run above.
    step = parallel.data_parallel_step(optimizer, grad_fn=grad_fn, example_keys=True)
    by_pmap = parallel.pmap_step(step, example_keys=True)
    s_ex = state
    for idx, step_key in zip(indices, keys, strict=True):
        per_example = parallel.per_example_keys(step_key, idx).reshape(8, BATCH // 8)
        s_ex, _ = by_pmap(s_ex, x[np.asarray(idx)].reshape(8, BATCH // 8, -1), per_example)
    res["pmap"] = {
        "diff_pmap_example_keys_vs_fit": _max_diff(s_ex.params, ex8.params),
        "diff_pmap_vs_shard_map": _max_diff(s_pm.params, s_sm.params),
        "diff_shard_map_vs_fit": _max_diff(s_sm.params, dev8.params),
        "metric_diff": abs(float(m_sm["reconstruction_error"] - m_pm["reconstruction_error"])),
        "steps": [int(s_sm.step), int(s_pm.step)],
    }

    lap("pmap")

    # Errors a user can make.
    res["errors"] = {
        "batch": _error_message(lambda: _fit_ae(x, devices=8, batch_size=100)),
        "remainder": _error_message(lambda: _fit_ae(_digits(1284), devices=8, remainder="keep")),
        "chains": _error_message(
            lambda: _fit_rbm(
                x,
                devices=8,
                grad_fn=functools.partial(rbm.pcd_gradients, spec=SPEC, k=1),
                aux=jnp.asarray(x[:12]),
            )
        ),
        "mesh": _error_message(lambda: parallel.data_mesh(16)),
    }

    # remainder="keep": 20 full batches, then the last 8 examples split over the 8 devices.
    def linear_loss(params, batch, key):
        del key
        return jnp.mean(jnp.square(batch @ params - batch[:, :1]))

    def fit_linear(**kwargs):
        return jaxae.fit(
            jnp.zeros((64, 1)),
            _digits(1288),
            loss_fn=linear_loss,
            optimizer=optax.sgd(0.01),
            key=jax.random.key(0),
            epochs=1,
            batch_size=BATCH,
            remainder="keep",
            progress=False,
            **kwargs,
        )

    keep8, keep1 = fit_linear(devices=8), fit_linear()
    steps8 = fit_linear(devices=8, loop="steps")  # one dispatch a step, the same 21 steps
    res["keep"] = {
        "diff": _max_diff(keep8.params, keep1.params),
        "steps": int(keep8.state.step),
        "steps_loop_diff": _max_diff(steps8.params, keep8.params),
        "steps_loop_steps": int(steps8.state.step),
    }
    lap("errors+keep")

    # Persistent CD: the chains are split over the devices; checkpointed after one epoch.
    pcd = functools.partial(rbm.pcd_gradients, spec=SPEC, k=1)
    chains = _fit_rbm(
        x, devices=8, grad_fn=pcd, aux=jnp.asarray(x[:64]), checkpoint_dir=out / "pcd"
    )
    np.savez(out / "pcd_saved.npz", **_host(chains.state))
    res["pcd"] = {
        "aux_sharding": str(chains.state.aux.sharding.spec),
        "aux_devices": len(chains.state.aux.sharding.device_set),
        "finite": bool(np.all(np.isfinite(np.asarray(chains.state.aux)))),
        "chains_moved": _max_diff(chains.state.aux, x[:64]),
    }
    # An estimator whose new state does not depend on the old one (chains reset to a constant)
    # hands the scan a device-invariant carry: fit makes it per-device again.
    reset = fit_reset_chains(x[:256], devices=8)
    res["pcd"]["reset_aux"] = float(np.asarray(reset.state.aux).mean())

    lap("pcd")

    # A Linen module with BatchNorm + Dropout: each device's batch_stats are averaged (pmean).
    import test_linen

    linen = test_linen._fit(_digits(640), 2, devices=8)
    stats = jax.tree.leaves(linen.model_state)
    res["linen"] = {
        "replicas_equal": all(
            all(
                np.array_equal(np.asarray(s.data), np.asarray(a.addressable_shards[0].data))
                for s in a.addressable_shards
            )
            for a in stats
        ),
        "devices": len(stats[0].sharding.device_set),
        "finite": all(bool(np.all(np.isfinite(np.asarray(a)))) for a in stats),
        "losses": [row["loss"] for row in linen.history],
    }
    lap("linen")

    if args.get("hinton"):
        from experiments import hinton2006_parallel

        start = time.perf_counter()
        result = hinton2006_parallel.compare_device_counts(hinton2006_parallel.TEST, (1, 8))
        res["hinton"] = {
            "pretrained": result["pretrained_error"],
            "error_1": result["errors"][1],
            "error_8": result["errors"][8],
            "seconds": time.perf_counter() - start,
        }
        lap("hinton")
    return res


def resume(args: dict) -> dict:
    """Resumes the 8-device checkpoints on this process's devices; writes the results."""
    ckpt, work = pathlib.Path(args["ckpt"]), pathlib.Path(args["work"])
    devices = args["devices"]
    for name in ("ae", "pcd"):
        shutil.copytree(ckpt / name, work / name)
    x = _digits()
    resumed = _fit_ae(x, epochs=2, devices=devices, checkpoint_dir=work / "ae")
    pcd = functools.partial(rbm.pcd_gradients, spec=SPEC, k=1)
    kwargs = dict(
        devices=devices, grad_fn=pcd, aux=jnp.asarray(x[:64]), checkpoint_dir=work / "pcd"
    )
    restored = _fit_rbm(x, epochs=1, **kwargs)  # epoch 0 is done: restore only
    if devices > 1:  # one more epoch, the restored chains split over the new device count
        steps = int(_fit_rbm(x, epochs=2, **kwargs).state.step)
    np.savez(work / "ae_resumed.npz", **_host(resumed.params))
    np.savez(work / "pcd_restored.npz", **_host(restored.state))
    return {
        "device_count": jax.device_count(),
        "ae_epochs": [row["epoch"] for row in resumed.history],
        "ae_sharding_devices": len(jax.tree.leaves(resumed.params)[0].sharding.device_set),
        "pcd_aux_devices": len(restored.state.aux.sharding.device_set),
        "pcd_steps": [int(restored.state.step)] + ([steps] if devices > 1 else []),
    }


def multihost(args: dict) -> dict:
    """One of two processes: jax.distributed on 127.0.0.1, each loading only its own rows."""
    port, pid = args["port"], args["pid"]
    t0 = time.perf_counter()
    started = parallel.initialize_distributed(
        f"127.0.0.1:{port}",
        2,
        pid,
        coordinator_bind_address=f"127.0.0.1:{port}",
        initialization_timeout=40,
    )
    t_init = time.perf_counter() - t0
    mesh = parallel.data_mesh()
    rows = parallel.process_slice(NUM_EXAMPLES)
    x_global = parallel.global_data(_digits()[rows], mesh)
    local_rows = sorted({(s.index[0].start, s.index[0].stop) for s in x_global.addressable_shards})
    t_data = time.perf_counter() - t0
    result = _fit_ae(x_global, mesh=mesh)
    t_fit = time.perf_counter() - t0
    params = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), result.params)
    if pid == 0:
        np.savez(pathlib.Path(args["out"]) / "multihost.npz", **_host(params))
    return {
        "started": started,
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "rows": [rows.start, rows.stop],
        "local_shard_rows": local_rows,
        "loss": result.history[0]["loss"],
        "steps": int(result.state.step.addressable_data(0)),
        "seconds": [t_init, t_data, t_fit],
    }


CHECKS = {"eight": check_eight, "resume": resume, "multihost": multihost}


def _run(check: str, args: dict, *, devices: int, timeout: float) -> dict:
    """Runs ``check`` in a fresh interpreter with ``devices`` forced CPU devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, __file__, check, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# 8 forced devices (one subprocess for all the checks below).


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    out = tmp_path_factory.mktemp("eight")
    res = _run("eight", {"out": str(out), "hinton": True}, devices=8, timeout=600)
    res["out"] = out
    return res


def test_deep_autoencoder_on_8_devices_matches_1_device(eight):
    ae = eight["ae"]
    assert ae["steps"] == 20
    assert ae["change"] > 1e-3  # 20 steps moved the parameters...
    assert ae["diff_8_vs_plain"] < 1e-5  # ...the same way on 8 devices as on 1, without a mesh
    assert ae["loss_8"] == pytest.approx(ae["loss_plain"], rel=1e-5)
    assert ae["param_sharding"] == "P()" and ae["param_devices"] == 8
    assert ae["traces_for_2_epochs"] == 1  # the step compiles once for all epochs


def test_rbm_cd1_with_per_example_keys_matches_across_device_counts(eight):
    r = eight["rbm"]
    assert r["steps"] == 20 and r["change"] > 1e-2
    assert r["example_keys_diff_8_vs_1"] < 1e-5
    assert r["recon_8"] == pytest.approx(r["recon_1"], rel=1e-5)
    # Other noise (per-device streams) moves the parameters by far more: the match is not vacuous.
    assert r["device_keys_diff_vs_example_keys"] > 1e-4  # 10x the tolerance above


def test_each_device_draws_from_fold_in_of_its_index(eight):
    s = eight["streams"]
    np.testing.assert_allclose(s["drawn"], s["expected"], rtol=1e-6)
    assert len(set(s["drawn"])) == 8
    assert s["aux_sharding"] == "P('data',)"


def test_pmap_and_shard_map_run_the_same_step(eight):
    p = eight["pmap"]
    assert p["steps"] == [20, 20]
    assert p["diff_pmap_vs_shard_map"] < 1e-6
    assert p["diff_shard_map_vs_fit"] < 1e-6
    assert p["metric_diff"] < 1e-5
    assert p["diff_pmap_example_keys_vs_fit"] < 1e-6


def test_errors_name_the_numbers(eight):
    e = eight["errors"]
    assert (
        "batch_size: a global batch of 100 examples cannot be split evenly over 8 devices"
        in (e["batch"])
    )
    assert "e.g. 96 or 104" in e["batch"]
    assert (
        "last batch: a global batch of 4 examples cannot be split evenly over 8" in e["remainder"]
    )
    assert "aux: expected a leading axis" in e["chains"] and "(12, 64)" in e["chains"]
    assert "asked for 16 devices, but only 8" in e["mesh"]


def test_remainder_keep_on_8_devices(eight):
    assert eight["keep"]["steps"] == 21 and eight["keep"]["diff"] < 1e-5
    assert eight["keep"]["steps_loop_steps"] == 21 and eight["keep"]["steps_loop_diff"] < 1e-6


def test_linen_model_state_stays_equal_on_8_devices(eight):
    linen = eight["linen"]
    assert linen["replicas_equal"] and linen["devices"] == 8 and linen["finite"]
    assert linen["losses"][1] < linen["losses"][0]


def test_pcd_chains_are_split_over_devices(eight):
    p = eight["pcd"]
    assert p["aux_sharding"] == "P('data',)" and p["aux_devices"] == 8
    assert p["finite"] and p["chains_moved"] > 0.1
    assert 0.2 < p["reset_aux"] < 0.8  # redrawn chains, trained through on 8 devices


@pytest.mark.parametrize("devices", [1, 4])
def test_checkpoint_saved_on_8_devices_resumes_on(devices, eight, tmp_path):
    args = {"ckpt": str(eight["out"]), "work": str(tmp_path), "devices": devices}
    if devices == 1:
        res = resume(args)  # this process has one device
    else:
        res = _run("resume", args, devices=devices, timeout=300)
    assert res["device_count"] == devices and res["ae_sharding_devices"] == devices
    assert res["ae_epochs"] == [0, 1]  # epoch 0 restored, epoch 1 trained here
    reference = np.load(eight["out"] / "ae_reference.npz")
    resumed = np.load(tmp_path / "ae_resumed.npz")
    assert set(reference) == set(resumed)
    for name in reference:
        np.testing.assert_allclose(resumed[name], reference[name], atol=1e-5, err_msg=name)
    saved, restored = (
        np.load(eight["out"] / "pcd_saved.npz"),
        np.load(tmp_path / "pcd_restored.npz"),
    )
    assert set(saved) == set(restored)
    for name in saved:  # params, momentum, step and the sharded chains, exactly
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)
    assert res["pcd_aux_devices"] == devices
    assert res["pcd_steps"] == ([20, 40] if devices > 1 else [20])


def test_hinton2006_fine_tuning_on_8_devices_matches_1_device(eight):
    h = eight["hinton"]
    assert h["error_8"] < h["pretrained"] - 1.0  # fine-tuning did something
    assert abs(h["error_8"] - h["error_1"]) <= 0.01 * h["error_1"]


# ------------------------------------------------------------------------------------------------
# Two processes through jax.distributed on 127.0.0.1, 2 CPU devices each.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost_train_like_one(eight, tmp_path):
    port = _free_port()
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "multihost",
                json.dumps(dict(port=port, pid=pid, out=str(tmp_path))),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for pid in (0, 1)
    ]
    outputs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=90)
            assert proc.returncode == 0, stderr[-4000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for pid, res in enumerate(outputs):
        assert res["started"] and res["process_count"] == 2
        assert res["device_count"] == 4 and res["local_device_count"] == 2
        assert res["rows"] == [pid * 640, (pid + 1) * 640]
        # Each process holds only its own rows of the global array.
        assert res["local_shard_rows"] == [
            [pid * 640, pid * 640 + 320],
            [pid * 640 + 320, (pid + 1) * 640],
        ]
        assert res["steps"] == 20
    # The same 20 steps as one process on one device (without a mesh, from the 8-device check).
    assert outputs[0]["loss"] == pytest.approx(eight["ae_plain_loss"], rel=1e-5)
    single, got = np.load(eight["out"] / "ae_plain.npz"), np.load(tmp_path / "multihost.npz")
    assert set(single) == set(got)
    for name in single:
        np.testing.assert_allclose(got[name], single[name], atol=1e-5, err_msg=name)


# ------------------------------------------------------------------------------------------------
# One device (this process).


def _denoising_loss(params, batch, key):
    keep = jax.random.bernoulli(key, 0.8, batch.shape)
    logits = AE.reconstruct(params, jnp.where(keep, batch, 0.0), logits=True)
    return jaxae.sigmoid_cross_entropy(logits, batch).mean()


def fit_reset_chains(x, **kwargs):
    """A stateful ``grad_fn`` whose new ``aux`` ignores the old one: redrawn from the key."""

    def redraw(params, chains, batch, key):
        chains = jax.random.bernoulli(key, 0.5, chains.shape).astype(jnp.float32)
        return {"w": batch.mean(0) - chains.mean(0)}, chains, {}

    return jaxae.fit(
        {"w": jnp.zeros(x.shape[1])}, x, grad_fn=redraw, aux=jnp.zeros((8, x.shape[1])),
        optimizer=optax.sgd(0.1), key=jax.random.key(0), epochs=1, batch_size=BATCH,
        progress=False, **kwargs,
    )  # fmt: skip


def test_an_aux_redrawn_from_the_key_trains_on_a_one_device_mesh_as_without_one():
    x = _digits(256)
    plain, meshed = fit_reset_chains(x), fit_reset_chains(x, devices=1)
    assert _max_diff(meshed.params, plain.params) == 0.0
    assert _max_diff(meshed.state.aux, plain.state.aux) == 0.0


def test_one_device_mesh_reproduces_plain_fit_with_noise():
    x = _digits(640)
    kwargs = dict(loss_fn=_denoising_loss, optimizer=optax.adam(1e-3), epochs=1, batch_size=BATCH)
    kwargs.update(key=jax.random.key(4), progress=False)
    plain = jaxae.fit(AE.init(jax.random.key(0)), x, **kwargs)
    meshed = jaxae.fit(AE.init(jax.random.key(0)), x, mesh=parallel.data_mesh(), **kwargs)
    assert _max_diff(meshed.params, plain.params) < 1e-6
    assert [r["loss"] for r in meshed.history] == pytest.approx([r["loss"] for r in plain.history])


def test_non_finite_step_stops_the_data_parallel_run_with_the_last_good_state():
    def loss_fn(params, batch, key):
        del key
        loss = jnp.mean(jnp.square(params["w"] - 10.0) * batch[:, 0])
        return jnp.where(params["w"] > 5.0, jnp.nan, loss)

    with pytest.raises(jaxae.NonFiniteError, match=r"at step 5 \(epoch 0\)") as info:
        jaxae.fit(
            {"w": jnp.array(0.0)},
            jnp.ones((32, 1)),
            loss_fn=loss_fn,
            optimizer=optax.sgd(0.1),
            key=jax.random.key(0),
            epochs=3,
            batch_size=4,
            progress=False,
            devices=1,
        )
    np.testing.assert_allclose(info.value.state.params["w"], 5.904, rtol=1e-5)
    assert int(info.value.state.step) == 4


def test_per_example_keys_fold_in_the_example_index():
    key = jax.random.key(5)
    got = jax.jit(parallel.per_example_keys)(key, jnp.array([3, 0, 7]))
    want = [jax.random.fold_in(key, i) for i in (3, 0, 7)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(jax.random.key_data(g), jax.random.key_data(w))


def test_per_example_loss_is_the_batch_mean_for_deterministic_losses():
    x = jnp.asarray(_digits(16))
    params = AE.init(jax.random.key(0))
    keys = parallel.per_example_keys(jax.random.key(0), jnp.arange(16))
    got = jax.jit(parallel.per_example_loss(_ae_loss))(params, x, keys)
    np.testing.assert_allclose(got, _ae_loss(params, x, None), rtol=1e-6)


def test_bad_arguments():
    x = _digits(128)
    with pytest.raises(ValueError, match="asked for 8 devices, but only 1 cpu device"):
        parallel.data_mesh(8)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count=8"):
        parallel.data_mesh(8)
    with pytest.raises(ValueError, match="pass at most one of them"):
        _fit_ae(x, mesh=parallel.data_mesh(), devices=1)
    mesh_2d = jax.make_mesh((1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="expected a 1-D data mesh"):
        _fit_ae(x, mesh=mesh_2d)
    with pytest.raises(ValueError, match="example_keys: per-example keys need a stateless"):
        _fit_rbm(
            x,
            grad_fn=functools.partial(rbm.pcd_gradients, spec=SPEC),
            aux=jnp.asarray(x[:8]),
            example_keys=True,
        )
    with pytest.raises(ValueError, match="100 examples cannot be split evenly over 8 devices"):
        parallel.check_divisible(100, 8)


def test_initialize_distributed_is_a_no_op_for_one_process():
    assert parallel.initialize_distributed() is False
    assert parallel.initialize_distributed(num_processes=1) is False
    with pytest.raises(ValueError, match=r"process_id: expected an int in \[0, 2\)"):
        parallel.initialize_distributed("127.0.0.1:1234", 2, 5)
    with pytest.raises(ValueError, match="coordinator_address: required"):
        parallel.initialize_distributed(num_processes=2, process_id=0)
    assert not jax.distributed.is_initialized()


def test_process_slice_on_one_process():
    assert parallel.process_slice(1437) == slice(0, 1437)
    assert parallel.process_slice(1437, multiple_of=8) == slice(0, 1432)
    with pytest.raises(ValueError, match="num_examples"):
        parallel.process_slice(5, multiple_of=8)


if __name__ == "__main__":
    jax.config.update("jax_numpy_rank_promotion", "raise")  # as tests/conftest.py does
    check, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(CHECKS[check](arguments)))
