import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae


def _digits():
    return jaxae.data.load("digits", "train").flat


def _linear_loss(model, params, batch, key):
    del key
    return jaxae.squared_error(model.reconstruct(params, batch), batch).mean()


def _fit(x, epochs, **kwargs):
    model = jaxae.MLPAutoencoder((64, 8), activation="linear", output_activation="linear")
    kwargs.setdefault("key", jax.random.key(1))
    return jaxae.fit(
        model.init(jax.random.key(0)),
        x,
        loss_fn=functools.partial(_linear_loss, model),
        optimizer=optax.adam(1e-2),
        epochs=epochs,
        batch_size=64,
        progress=False,
        **kwargs,
    )


def test_fit_reduces_loss_and_returns_history():
    x = _digits()
    result = _fit(x, 5, eval_fn=lambda p: {"eval": 1.0})
    losses = [row["loss"] for row in result.history]
    assert len(result.history) == 5 and losses[-1] < 0.5 * losses[0]
    assert int(result.state.step) == 5 * (len(x) // 64)
    assert all(row["eval"] == 1.0 for row in result.history)


def test_same_key_same_result_and_other_key_differs():
    x = _digits()
    a, b = _fit(x, 2), _fit(x, 2)
    c = _fit(x, 2, key=jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    assert not np.allclose(a.params["encoder"][0]["w"], c.params["encoder"][0]["w"])


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    x = _digits()
    uninterrupted = _fit(x, 4)
    _fit(x, 2, checkpoint_dir=tmp_path / "ckpt")  # stops after epoch index 1
    resumed = _fit(x, 4, checkpoint_dir=tmp_path / "ckpt")
    jax.tree.map(np.testing.assert_array_equal, uninterrupted.params, resumed.params)
    jax.tree.map(
        np.testing.assert_array_equal, uninterrupted.state.opt_state, resumed.state.opt_state
    )
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2, 3]
    # Two epochs came from the checkpoint: their time is the earlier call's, kept in the history.
    assert (uninterrupted.resumed_epochs, resumed.resumed_epochs) == (0, 2)
    assert uninterrupted.resumed_time_s == 0.0
    earlier = [row["time_s"] for row in resumed.history[:2]]
    assert resumed.resumed_time_s == pytest.approx(sum(earlier)) and min(earlier) > 0


def _saved_epochs(directory):
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def test_checkpoint_every_saves_every_nth_epoch_and_the_last(tmp_path):
    x = _digits()
    _fit(x, 5, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=2, max_checkpoints=10)
    assert _saved_epochs(tmp_path / "ckpt") == [1, 3, 4]


def test_checkpoint_every_saves_where_a_callback_stops_and_resumes_from_there(tmp_path):
    x = _digits()
    ckpt = tmp_path / "ckpt"

    def stop_after_epoch_2(epoch, row, state):
        return "stop" if epoch == 2 else None

    stopped = _fit(
        x,
        6,
        checkpoint_dir=ckpt,
        checkpoint_every=4,
        max_checkpoints=10,
        callbacks=[stop_after_epoch_2],
    )
    assert stopped.stopped_early == "stop" and _saved_epochs(ckpt) == [2]
    resumed = _fit(x, 6, checkpoint_dir=ckpt, checkpoint_every=4, max_checkpoints=10)
    assert [row["epoch"] for row in resumed.history] == list(range(6))
    assert _saved_epochs(ckpt) == [2, 3, 5]
    uninterrupted = _fit(x, 6)
    jax.tree.map(np.testing.assert_array_equal, uninterrupted.params, resumed.params)


def test_rerun_of_an_early_stopped_run_stays_stopped(tmp_path):
    x = _digits()
    ckpt = tmp_path / "ckpt"

    def run():
        return _fit(
            x,
            10,
            checkpoint_dir=ckpt,
            eval_fn=lambda params: {"v": 1.0},  # never improves: stops after epoch 1
            callbacks=[jaxae.EarlyStopping("v", patience=0)],
        )

    first = run()
    assert len(first.history) == 2 and first.stopped_early.startswith("early stopping")
    again = run()  # the same command once more: nothing further to train
    assert len(again.history) == 2 and again.resumed_epochs == 2
    assert "already reached before this call" in again.stopped_early
    jax.tree.map(np.testing.assert_array_equal, first.params, again.params)
    # A larger patience is a new question: training goes on from the checkpoint.
    longer = _fit(
        x, 10, checkpoint_dir=ckpt, eval_fn=lambda params: {"v": 1.0},
        callbacks=[jaxae.EarlyStopping("v", patience=2)],
    )  # fmt: skip
    assert len(longer.history) == 4 and longer.stopped_early.startswith("early stopping")


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_checkpoint_every_must_be_a_positive_int(value, tmp_path):
    with pytest.raises((ValueError, TypeError), match="checkpoint_every"):
        _fit(_digits(), 1, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=value)


KILLED_RUN = textwrap.dedent(
    """
    import functools, os, signal, sys
    import jax, optax
    sys.path.insert(0, {tests!r})
    import jaxae, test_train

    x = test_train._digits()
    model = jaxae.MLPAutoencoder((64, 8), activation="linear", output_activation="linear")
    calls = []

    def die_at_third_epoch(params):
        calls.append(1)
        if len(calls) == 3:  # epochs 0 and 1 are checkpointed; die inside epoch 2
            os.kill(os.getpid(), signal.SIGKILL)
        return {{}}

    loss_fn = functools.partial(test_train._linear_loss, model)
    jaxae.fit(model.init(jax.random.key(0)), x, loss_fn=loss_fn,
              optimizer=optax.adam(1e-2), epochs=4, batch_size=64, progress=False,
              key=jax.random.key(1), checkpoint_dir={ckpt!r}, eval_fn=die_at_third_epoch)
    """
)


def test_killed_run_resumes_to_the_uninterrupted_parameters(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    script = KILLED_RUN.format(tests=os.path.dirname(__file__), ckpt=ckpt)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    x = _digits()
    resumed = _fit(x, 4, checkpoint_dir=ckpt)
    assert resumed.resumed_epochs == 2  # the killed run's checkpoint of epochs 0-1 was read
    uninterrupted = _fit(x, 4)
    jax.tree.map(np.testing.assert_array_equal, uninterrupted.params, resumed.params)


@pytest.mark.parametrize("loop", ["scan", "steps"])
def test_non_finite_loss_stops_with_last_good_state(loop):
    x = jnp.ones((32, 1))

    def loss_fn(params, batch, key):
        del key
        loss = jnp.mean(jnp.square(params["w"] - 10.0) * batch[:, 0])
        return jnp.where(params["w"] > 5.0, jnp.nan, loss)

    with pytest.raises(
        jaxae.NonFiniteError, match=r"non-finite loss, gradient or parameters at step 5 \(epoch 0\)"
    ) as info:
        jaxae.fit(
            {"w": jnp.array(0.0)},
            x,
            loss_fn=loss_fn,
            optimizer=optax.sgd(0.1),
            key=jax.random.key(0),
            epochs=3,
            batch_size=4,
            progress=False,
            loop=loop,
        )
    state = info.value.state
    # w: 0 -> 2 -> 3.6 -> 4.88 -> 5.904; the loss at 5.904 is NaN: that state is the last good one.
    np.testing.assert_allclose(state.params["w"], 5.904, rtol=1e-5)
    assert int(state.step) == 4
    assert info.value.epoch == 0


@pytest.mark.parametrize("remainder", ["drop", "keep"])
def test_step_by_step_loop_runs_the_same_steps_as_the_scan(remainder):
    x = _digits()[:700]
    scan = _fit(x, 2, loop="scan", remainder=remainder)
    steps = _fit(x, 2, loop="steps", remainder=remainder)
    assert int(steps.state.step) == int(scan.state.step) == 2 * (11 if remainder == "keep" else 10)
    jax.tree.map(
        functools.partial(np.testing.assert_allclose, atol=1e-6), steps.params, scan.params
    )
    for a, b in zip(steps.history, scan.history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)


def _conv_loss(params, batch, key):
    del key
    y = jax.lax.conv_general_dilated(
        batch, params["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jnp.mean(jnp.square(y - batch))


def test_auto_loop_dispatches_steps_for_convolutions_on_cpu():
    from jaxae.training.epoch import resolve_loop, uses_convolution

    params = {"w": jnp.zeros((3, 3, 1, 1))}
    batch = jax.ShapeDtypeStruct((4, 8, 8, 1), jnp.float32)
    key = jax.random.key(0)
    inside = jax.jit(lambda p, b, k: jax.grad(_conv_loss)(p, b, k)["w"].sum())  # nested jit
    assert uses_convolution(_conv_loss, params, batch, key)
    assert uses_convolution(inside, params, batch, key)
    assert not uses_convolution(lambda p, b, k: jnp.sum(b), params, batch, key)
    pick = functools.partial(resolve_loop, step_fn=_conv_loss, example_args=(params, batch, key))
    assert pick("auto", platform="cpu") == "steps"
    assert pick("auto", platform="gpu") == "scan" and pick("scan", platform="cpu") == "scan"
    dense = resolve_loop(
        "auto",
        platform="cpu",
        step_fn=lambda p, b, k: jnp.sum(b),
        example_args=(params, batch, key),
    )
    assert dense == "scan"
    with pytest.raises(
        ValueError, match=r"loop: expected one of \('auto', 'scan', 'steps'\), got 'python'"
    ):
        pick("python", platform="cpu")
    x = np.random.default_rng(0).random((20, 8, 8, 1), np.float32)
    kwargs = dict(
        loss_fn=_conv_loss,
        optimizer=optax.sgd(0.1),
        key=key,
        epochs=2,
        batch_size=5,
        progress=False,
    )
    auto = jaxae.fit(params, x, **kwargs)
    scan = jaxae.fit(params, x, loop="scan", **kwargs)
    jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6), auto.params, scan.params)
    assert float(jnp.abs(auto.params["w"]).sum()) > 0


def test_training_step_compiles_once():
    x = _digits()
    traces = []

    def loss_fn(params, batch, key):
        traces.append(1)
        return jnp.mean(jnp.sum((batch @ params["w"]) ** 2, axis=1))

    kwargs = dict(
        loss_fn=loss_fn,
        optimizer=optax.sgd(1e-3),
        key=jax.random.key(0),
        epochs=3,
        batch_size=100,
        progress=False,
    )
    jaxae.fit({"w": jnp.zeros((64, 2))}, x, loop="scan", **kwargs)
    assert len(traces) == 1  # one trace of the step for all epochs
    traces.clear()
    jaxae.fit({"w": jnp.zeros((64, 2))}, x, remainder="keep", loop="scan", **kwargs)
    assert len(traces) == 1  # the full batches' epoch is cached: one trace for the last batch
    traces.clear()
    jaxae.fit({"w": jnp.zeros((64, 2))}, x, loop="auto", **kwargs)
    assert len(traces) == 1  # on CPU "auto" looks for a convolution: one abstract trace ...
    traces.clear()
    jaxae.fit({"w": jnp.zeros((64, 2))}, x, loop="auto", **kwargs)
    assert len(traces) == 0  # ... cached by function and shapes


def test_remainder_keep_sees_every_example_once_per_epoch():
    seen = []
    x = jnp.arange(10.0)[:, None]

    def grad_fn(params, batch, key):
        jax.debug.callback(lambda b: seen.append(np.asarray(b)), batch[:, 0])
        return jax.tree.map(jnp.zeros_like, params), {}

    jaxae.fit(
        {"w": jnp.zeros(())},
        x,
        grad_fn=grad_fn,
        optimizer=optax.sgd(0.1),
        epochs=1,
        batch_size=4,
        remainder="keep",
        key=jax.random.key(0),
        progress=False,
    )
    assert sorted(np.concatenate(seen).tolist()) == list(range(10))
    assert [len(b) for b in seen] == [4, 4, 2]


def test_stateful_gradient_estimator_threads_aux():
    def grad_fn(params, aux, batch, key):
        return jax.tree.map(jnp.zeros_like, params), aux + batch.shape[0], {"aux": aux}

    result = jaxae.fit(
        {"w": jnp.zeros(())},
        jnp.ones((12, 1)),
        grad_fn=grad_fn,
        aux=jnp.array(0),
        optimizer=optax.sgd(0.1),
        epochs=2,
        batch_size=4,
        key=jax.random.key(0),
        progress=False,
    )
    assert int(result.state.aux) == 24
    assert result.history[1]["aux"] == pytest.approx(16.0)  # mean of 12, 16, 20


@pytest.mark.parametrize(
    "data, kwargs, error, match",
    [
        (
            np.ones((10, 2), np.float32),
            {"grad_fn": lambda p, b, k: (p, {})},
            ValueError,
            "exactly one of",
        ),
        (np.ones((0, 2), np.float32), {}, ValueError, "expected at least one example, got 0"),
        ({"x": np.ones((10, 2)), "y": np.ones(9)}, {}, ValueError, "one shared leading dimension"),
        (np.full((10, 2), np.nan, np.float32), {}, ValueError, "data: expected finite values"),
        (np.ones((10, 2), np.float32), {"batch_size": 11}, ValueError, "batch_size"),
        (
            np.ones((10, 2), np.float32),
            {"epochs": 0},
            ValueError,
            "epochs: expected a positive integer",
        ),
    ],
)
def test_bad_inputs(data, kwargs, error, match):
    kwargs = {"loss_fn": lambda p, b, k: jnp.sum(p), "batch_size": 5, "epochs": 1, **kwargs}
    with pytest.raises(error, match=match):
        jaxae.fit(
            jnp.zeros(()),
            data,
            optimizer=optax.sgd(0.1),
            key=jax.random.key(0),
            progress=False,
            **kwargs,
        )


def test_inf_parameters_are_never_returned():
    # The gradient is finite, the update overflows float32: the state keeps the last finite w.
    def loss_fn(params, batch, key):
        del key
        return -1e30 * jnp.sum(params["w"]) * jnp.mean(batch[:, 0])

    with pytest.raises(jaxae.NonFiniteError, match="at step 1 ") as info:
        jaxae.fit(
            {"w": jnp.zeros(2)},
            jnp.ones((8, 1)),
            loss_fn=loss_fn,
            optimizer=optax.sgd(1e10),
            key=jax.random.key(0),
            epochs=1,
            batch_size=4,
            progress=False,
        )
    np.testing.assert_array_equal(info.value.state.params["w"], [0.0, 0.0])
    assert int(info.value.state.step) == 0


def test_same_loss_and_optimizer_compile_once_across_fit_calls():
    x = _digits()
    traces = []

    def loss_fn(params, batch, key):
        traces.append(1)
        return jnp.mean(jnp.sum((batch @ params["w"]) ** 2, axis=1))

    optimizer = optax.sgd(1e-3)
    kwargs = dict(loss_fn=loss_fn, optimizer=optimizer, epochs=1, batch_size=100, progress=False)
    kwargs.update(loop="scan")  # "auto" adds one (cached) abstract trace: see the test above
    first = jaxae.fit({"w": jnp.ones((64, 2))}, x, key=jax.random.key(0), **kwargs)
    second = jaxae.fit({"w": jnp.zeros((64, 2))}, x[::-1], key=jax.random.key(1), **kwargs)
    assert len(traces) == 1  # one trace across both calls: other params, data and key
    assert not np.allclose(first.params["w"], second.params["w"])
    jaxae.fit(
        {"w": jnp.ones((64, 2))},
        x,
        key=jax.random.key(0),
        **{**kwargs, "optimizer": optax.sgd(1e-3)},
    )
    assert len(traces) == 2  # another optimizer object: another compilation


def _fit_linear_callbacks(x, callbacks, epochs=6, **kwargs):
    return _fit(x, epochs, callbacks=callbacks, **kwargs)


def test_early_stopping_stops_when_the_monitored_value_stalls():
    x = _digits()
    stop = jaxae.EarlyStopping("score", patience=1, mode="max")
    scores = iter([1.0, 2.0, 1.5, 1.9, 3.0, 4.0])
    result = _fit(x, 6, callbacks=[stop], eval_fn=lambda p: {"score": next(scores)})
    assert [r["epoch"] for r in result.history] == [0, 1, 2, 3]
    assert "score did not improve" in result.stopped_early and "epoch 1" in result.stopped_early
    assert _fit(x, 2).stopped_early is None
    with pytest.raises(ValueError, match="mode: expected 'min' or 'max'"):
        jaxae.EarlyStopping(mode="lowest")


def test_wall_time_limit_stops_after_the_epoch_that_crosses_it():
    x = _digits()
    result = _fit(x, 5, callbacks=[jaxae.WallTimeLimit(1e-6)])
    assert len(result.history) == 1 and "wall-time limit" in result.stopped_early
    with pytest.raises(ValueError, match="seconds: expected a positive number"):
        jaxae.WallTimeLimit(0)


def test_function_callbacks_see_every_epoch_row_and_state():
    seen = []
    _fit(
        _digits(),
        3,
        callbacks=[lambda e, row, state: seen.append((e, row["loss"], int(state.step)))],
    )
    assert [e for e, _, _ in seen] == [0, 1, 2] and seen[-1][2] == 3 * (1437 // 64)
    with pytest.raises(TypeError, match="callbacks: expected"):
        _fit(_digits(), 1, callbacks=[3])


def test_csv_logger_writes_every_row_and_rewrites_on_resume(tmp_path):
    import csv

    x = _digits()
    path = tmp_path / "log" / "history.csv"
    _fit(x, 2, callbacks=[jaxae.CSVLogger(path)], checkpoint_dir=tmp_path / "ckpt")
    _fit(x, 3, callbacks=[jaxae.CSVLogger(path)], checkpoint_dir=tmp_path / "ckpt")
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"loss", "time_s"} <= set(rows[0])
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_tensorboard_logger_writes_scalars(tmp_path):
    pytest.importorskip("tensorboardX")
    import struct

    from tensorboardX.proto import event_pb2

    _fit(_digits(), 2, callbacks=[jaxae.TensorBoardLogger(tmp_path / "tb")])
    (events,) = list((tmp_path / "tb").iterdir())
    raw, tags = events.read_bytes(), []
    while raw:  # TFRecord: length, crc, payload, crc
        (length,) = struct.unpack("<Q", raw[:8])
        event = event_pb2.Event.FromString(raw[12 : 12 + length])
        tags += [(v.tag, event.step) for v in event.summary.value]
        raw = raw[16 + length :]
    assert ("loss", 0) in tags and ("loss", 1) in tags and ("time_s", 1) in tags


# --------------------------------------------------------------------------- misuse, named


def _linear_fit(x, **kwargs):
    kwargs.setdefault("loss_fn", lambda p, b, k: jnp.mean((b.astype(jnp.float32) @ p["w"]) ** 2))
    kwargs.setdefault("epochs", 2)
    return jaxae.fit(
        {"w": jnp.zeros(x.shape[1])}, x, optimizer=optax.sgd(1e-2), key=jax.random.key(0),
        batch_size=16, progress=False, **kwargs,
    )  # fmt: skip


def test_eval_names_that_would_overwrite_the_training_row_are_refused():
    x = np.ones((64, 4), np.float32)
    with pytest.raises(ValueError, match=r"eval_fn: the names \['loss'\] are taken.*val_loss"):
        _linear_fit(x, eval_fn=lambda p: {"loss": 1.0})
    with pytest.raises(ValueError, match=r"eval_fn: the names \['epoch', 'time_s'\] are taken"):
        _linear_fit(x, eval_fn=lambda p: {"epoch": 1.0, "time_s": 2.0})
    history = _linear_fit(x, eval_fn=lambda p: {"val_loss": 1.0}).history
    assert [sorted(row) for row in history] == [["epoch", "loss", "time_s", "val_loss"]] * 2


def test_a_callback_returning_true_stops_with_a_named_reason_and_junk_is_refused():
    x = np.ones((64, 4), np.float32)

    def small_loss(epoch, row, state):
        return row["loss"] < 10

    result = _linear_fit(x, epochs=5, callbacks=[small_loss])
    assert (
        len(result.history) == 1 and result.stopped_early == "the callback small_loss asked to stop"
    )
    with pytest.raises(TypeError, match="on_epoch_end returned int 1; expected a reason"):
        _linear_fit(x, callbacks=[lambda epoch, row, state: 1])


def test_early_stopping_never_takes_a_nan_as_its_best():
    x = np.ones((64, 4), np.float32)
    values = iter([float("nan"), 5.0, 4.0, 3.0, 2.0, 1.0])
    result = _linear_fit(
        x, epochs=6, eval_fn=lambda p: {"val": next(values)},
        callbacks=[jaxae.training.EarlyStopping("val", patience=1)],
    )  # fmt: skip
    assert result.stopped_early is None and len(result.history) == 6
    stop = jaxae.training.EarlyStopping("val", patience=0)
    assert "no value yet, only NaN" in stop.on_epoch_end(0, {"val": float("nan")}, None)


def test_state_arguments_that_the_loss_would_never_see_are_refused():
    x = np.ones((64, 4), np.float32)
    with pytest.raises(ValueError, match="aux: the state of a grad_fn estimator.*model_state="):
        _linear_fit(x, aux=jnp.ones(3))

    def grads(p, batch, key):
        return {"w": jnp.zeros(4)}, {}

    with pytest.raises(ValueError, match="has_aux: only for a loss_fn"):
        _linear_fit(x, loss_fn=None, grad_fn=grads, has_aux=True)

    def loss_with_state(p, state, batch, key):  # metrics not a (state, metrics) pair
        loss = jnp.mean((batch @ p["w"]) ** 2)
        return loss, (state, loss)

    with pytest.raises(TypeError, match="loss_fn: expected metrics as a dict, got"):
        _linear_fit(x, loss_fn=loss_with_state, has_aux=True, model_state={"m": jnp.zeros(())})


def test_the_kept_remainder_batch_draws_from_its_own_key():
    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)  # 16 + 16 + 8
    keys = []

    def loss_fn(p, batch, key):
        jax.debug.callback(lambda k: keys.append(np.asarray(k).tobytes()), jax.random.key_data(key))
        return jnp.mean((batch @ p["w"]) ** 2)

    _linear_fit(x, loss_fn=loss_fn, epochs=1, remainder="keep")
    assert len(keys) == 3
    step_one = jax.random.wrap_key_data(np.frombuffer(keys[1], np.uint32))
    drawn_by_step_one = {
        np.asarray(jax.random.key_data(k)).tobytes() for k in jax.random.split(step_one)
    }
    assert keys[2] not in drawn_by_step_one and len(set(keys)) == 3


def test_bfloat16_data_is_floating_and_its_nan_is_refused_before_training():
    x = np.ones((64, 4), jnp.bfloat16)
    assert np.isfinite(jaxae.squared_error(jnp.asarray(x), jnp.asarray(x))).all()
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"data: expected finite values"):
        _linear_fit(x)
