"""Bad input and faults: a clear error before training, the process exits, checkpoints survive
damage (issue 16)."""

import functools
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae


def _loss(params, batch, key):
    del key
    return jnp.mean((batch @ params["w"] - batch[:, :1]) ** 2)


def _fit(epochs, ckpt=None, *, params=None, optimizer=None, **kwargs):
    x = np.linspace(0, 1, 32 * 3, dtype=np.float32).reshape(32, 3)
    return jaxae.fit(
        {"w": jnp.zeros((3, 1))} if params is None else params,
        x,
        loss_fn=_loss,
        optimizer=optimizer or _SGD,
        key=jax.random.key(0),
        epochs=epochs,
        batch_size=8,
        checkpoint_dir=ckpt,
        progress=False,
        **kwargs,
    )


_SGD = optax.sgd(0.1)

_SCRIPT = """
import sys, jax, jax.numpy as jnp, numpy as np, optax, jaxae
try:
    jaxae.fit({{"w": jnp.zeros(2)}}, np.ones((8, 2), np.float32),
              loss_fn=lambda p, b, k: jnp.sum(p["w"] * b.mean(0)), optimizer=optax.sgd(0.1),
              key=jax.random.key(0), epochs=2, batch_size=4, progress=False,
              checkpoint_dir={path!r}, eval_fn=lambda p: {{"trained": 1.0}})
except ValueError as e:
    print("ERROR:", e)
    sys.exit(3)
print("NO ERROR")
"""


def _bad_dir(kind, tmp_path):
    if kind == "a regular file":
        path = tmp_path / "file"
        path.write_text("x")
        return str(path), "is a regular file"
    if kind == "below a regular file":
        (tmp_path / "file").write_text("x")
        return str(tmp_path / "file" / "ckpt"), "lies below the regular file"
    if os.geteuid() == 0:  # root writes to a read-only directory; nobody creates one in /proc
        return "/proc/jaxae-unwritable-ckpt", "cannot write to"
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o555)
    return str(path), "cannot write to"


@pytest.mark.parametrize("kind", ["a regular file", "below a regular file", "read-only"])
def test_bad_checkpoint_dir_fails_before_training_and_the_process_exits(kind, tmp_path):
    path, words = _bad_dir(kind, tmp_path)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT.format(path=path))],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "ERROR: checkpoint_dir:" in out.stdout and words in out.stdout
    assert path in out.stdout


@pytest.mark.parametrize("value", [0, -1])
def test_max_checkpoints_must_be_positive(value, tmp_path):
    with pytest.raises(ValueError, match="max_checkpoints: expected a positive integer"):
        _fit(1, tmp_path / "c", max_checkpoints=value)
    assert not (tmp_path / "c").exists()


def test_epochs_below_the_saved_count_is_an_error(tmp_path):
    _fit(4, tmp_path / "c")
    with pytest.raises(ValueError, match=r"epochs: 2 asked.*already holds 4 epochs"):
        _fit(2, tmp_path / "c")
    assert len(_fit(4, tmp_path / "c").history) == 4  # the same count: nothing to train


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (
            {"params": {"w": jnp.zeros((3, 2))}},
            r"state\.params\['w'\]: expected \(3, 2\).*found \(3, 1\)",
        ),
        ({"optimizer": optax.adam(1e-2)}, r"state\.opt_state.*expected .*found absent"),
    ],
)
def test_checkpoint_of_another_model_or_optimizer_is_refused(kwargs, words, tmp_path):
    _fit(2, tmp_path / "c")
    with pytest.raises(ValueError, match=r"(?s)another model or optimizer.*" + words):
        _fit(3, tmp_path / "c", **kwargs)


def test_checkpoint_of_an_optimizer_with_the_same_arrays_is_refused_and_kept(tmp_path):
    # optax.adam and optax.adamw hold the same arrays (their extra states are empty nodes): the
    # checkpoint is refused by its tree's structure, not taken for damage and moved aside.
    _fit(2, tmp_path / "c", optimizer=optax.adam(1e-2))
    with pytest.raises(ValueError, match=r"(?s)another model or optimizer: the same arrays"):
        _fit(3, tmp_path / "c", optimizer=optax.adamw(1e-2))
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["0", "1"]
    assert len(_fit(3, tmp_path / "c", optimizer=optax.adam(1e-2)).history) == 3  # resumes
    # A checkpoint saved before structures were recorded: Orbax's check refuses it, still kept.
    for step in (tmp_path / "c").iterdir():
        digest = step / "digest" / "metadata"
        saved = json.loads(digest.read_text())
        del saved["structure"]
        digest.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"another model or optimizer \(Orbax: "):
        _fit(4, tmp_path / "c", optimizer=optax.adamw(1e-2))
    assert not any(p.name.startswith("damaged") for p in (tmp_path / "c").iterdir())


def _damage(step_dir, how):
    files = sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(step_dir)
        for f in names
        if "state" in root
        and os.path.getsize(os.path.join(root, f)) > 0
        and "/d/" in os.path.join(root, f)
    )
    if how == "flip":
        target = max(files, key=os.path.getsize)
        data = bytearray(open(target, "rb").read())
        for i in range(len(data) // 2, len(data)):
            data[i] ^= 0xFF
        open(target, "wb").write(bytes(data))
    elif how == "truncate":
        target = max(files, key=os.path.getsize)
        open(target, "r+b").truncate(3)
    elif how == "delete":
        for f in files:
            os.remove(f)
    elif how == "bad json":
        with open(os.path.join(step_dir, "history", "metadata"), "w") as f:
            f.write("{not json")
    elif how == "bad digest":
        path = os.path.join(step_dir, "digest", "metadata")
        with open(path) as f:
            digest = json.load(f)
        with open(path, "w") as f:
            json.dump({**digest, "sha256": "0" * 64}, f)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete", "bad json", "bad digest"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(how, tmp_path):
    ckpt = tmp_path / "c"
    uninterrupted = _fit(3)
    _fit(3, ckpt)  # keeps epochs 1 and 2
    _damage(ckpt / "2", how)
    with pytest.warns(RuntimeWarning, match=r"checkpoint of epoch 2 at .*/c/2.* is damaged"):
        resumed = _fit(3, ckpt)
    assert (ckpt / "damaged_epoch_2").is_dir()
    np.testing.assert_array_equal(resumed.params["w"], uninterrupted.params["w"])
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2]
    if how == "flip":  # damaged again: moved beside the first one, not left in place
        _damage(ckpt / "2", how)
        with pytest.warns(RuntimeWarning, match=r"moved aside to .*damaged_epoch_2\.1"):
            again = _fit(3, ckpt)
        assert (ckpt / "damaged_epoch_2").is_dir() and (ckpt / "damaged_epoch_2.1").is_dir()
        np.testing.assert_array_equal(again.params["w"], uninterrupted.params["w"])


def test_no_intact_checkpoint_is_refused_naming_each(tmp_path):
    ckpt = tmp_path / "c"
    _fit(2, ckpt)
    _damage(ckpt / "0", "bad json")
    _damage(ckpt / "1", "truncate")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError) as info:
        _fit(3, ckpt)
    message = str(info.value)
    assert "checkpoint_dir: no intact checkpoint" in message and "Fix: delete" in message
    assert str(ckpt / "0") in message and str(ckpt / "1") in message


def test_nonfinite_error_state_never_holds_inf_params():
    with pytest.raises(jaxae.NonFiniteError) as info:
        jaxae.fit(
            {"w": jnp.zeros(2)},
            jnp.ones((8, 1)),
            loss_fn=lambda p, b, k: -1e30 * jnp.sum(p["w"]) * jnp.mean(b),
            optimizer=optax.sgd(1e10),
            key=jax.random.key(0),
            epochs=1,
            batch_size=4,
            progress=False,
        )
    assert np.all(np.isfinite(info.value.state.params["w"]))


# ------------------------------------------------------------------------------------------------
# Value checks that hold inside fit and under jit.


def _mlp_fit(x, loss, **kwargs):
    model = jaxae.MLPAutoencoder((4, 2))
    return jaxae.fit(
        model.init(jax.random.key(0)),
        x,
        loss_fn=functools.partial(loss, model),
        optimizer=optax.sgd(0.1),
        key=jax.random.key(0),
        epochs=2,
        batch_size=8,
        progress=False,
        **kwargs,
    )


def _bce(model, params, batch, key):
    del key
    return jaxae.sigmoid_cross_entropy(model.reconstruct(params, batch, logits=True), batch).mean()


def _vae_loss(model, params, batch, key):
    return -jaxae.elbo(model, params, batch, key).mean()


def test_sigmoid_cross_entropy_in_fit_on_0_255_data_names_the_check():
    x = np.random.default_rng(0).integers(0, 256, (32, 4)).astype(np.float32)
    with pytest.raises(jaxae.InvalidDataError, match=r"step 1 .*targets: expected values in \[0"):
        _mlp_fit(x, _bce)


def test_a_later_out_of_range_batch_is_caught_too():
    x = np.full((32, 4), 0.5, np.float32)
    x[-1] = 255.0  # in one batch only: a check of the first batch would miss it
    with pytest.raises(jaxae.InvalidDataError, match="targets: expected values in") as info:
        _mlp_fit(x, _bce, remainder="error")
    assert np.all(np.isfinite(info.value.state.params["encoder"][0]["w"]))


def test_vae_in_fit_on_0_255_data_names_the_check():
    model = jaxae.MLPVAE((4, 3, 2))
    x = np.random.default_rng(0).integers(0, 256, (32, 4)).astype(np.float32)
    with pytest.raises(jaxae.InvalidDataError, match=r"x: expected values in \[0"):
        jaxae.fit(
            model.init(jax.random.key(0)),
            x,
            loss_fn=functools.partial(_vae_loss, model),
            optimizer=optax.adam(1e-3),
            key=jax.random.key(0),
            epochs=1,
            batch_size=8,
            progress=False,
        )


def test_cd_gradients_in_fit_on_bernoulli_data_in_0_2_names_the_check():
    spec = jaxae.rbm.RBMSpec(4, 3)
    params = jaxae.rbm.init_rbm(jax.random.key(0), spec)
    x = np.random.default_rng(0).uniform(0, 2, (32, 4)).astype(np.float32)
    with pytest.raises(jaxae.InvalidDataError, match=r"v: expected values in \[0, 1\] for a bern"):
        jaxae.fit(
            params,
            x,
            grad_fn=functools.partial(jaxae.rbm.cd_gradients, spec=spec),
            optimizer=optax.sgd(0.1),
            key=jax.random.key(0),
            epochs=1,
            batch_size=8,
            progress=False,
        )


@pytest.mark.parametrize("bad", [-1.0, 0.5])
def test_pretrain_rbm_stack_softmax_refuses_negative_or_fractional_counts(bad):
    x = np.ones((16, 5), np.float32)
    x[3, 2] = bad
    with pytest.raises(ValueError, match=f"x: expected non-negative integer word counts.*{bad:g}"):
        jaxae.pretrain_rbm_stack(
            x, (5, 3), key=jax.random.key(0), visible="softmax", progress=False
        )


def test_losses_under_jit_give_nan_for_out_of_range_targets():
    logits = jnp.zeros((3, 2))
    targets = jnp.array([[0.0, 1.0], [0.5, 255.0], [1.0, -1.0]])
    loss = jax.jit(jaxae.sigmoid_cross_entropy)(logits, targets)
    assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(loss[2])
    with pytest.raises(ValueError, match=r"targets: expected values in \[0.0, 1.0\]"):
        jaxae.sigmoid_cross_entropy(logits, targets)
    counts = jnp.array([[1.0, 2.0], [-1.0, 0.0]])
    loss = jax.jit(jaxae.softmax_cross_entropy)(logits[:2], counts)
    assert np.isfinite(loss[0]) and np.isnan(loss[1])


@pytest.mark.parametrize("k, finite", [(3, True), (5, False), (0, False)])
def test_k_sparse_with_a_traced_k_outside_the_layer_is_nan_not_clamped(k, finite):
    h = jnp.arange(6.0).reshape(2, 3)
    out = jax.jit(lambda h, k: jaxae.k_sparse(h, k=k))(h, jnp.int32(k))
    assert bool(np.all(np.isfinite(out))) == finite


# ------------------------------------------------------------------------------------------------
# Daily mistakes: an error naming the argument, raised at trace time (before XLA).


def _fit_tiny(**kwargs):
    kwargs = {
        "loss_fn": lambda p, b, k: jnp.mean(b @ p["w"]),
        "optimizer": optax.sgd(0.1),
        "key": jax.random.key(0),
        "epochs": 1,
        "batch_size": 4,
        "progress": False,
        **kwargs,
    }
    return jaxae.fit({"w": jnp.zeros(2)}, jnp.ones((8, 2)), **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (
            {"loss_fn": lambda p, b, k: b @ p["w"]},
            ValueError,
            r"loss_fn: expected a scalar loss, "
            r"got shape \(4,\); reduce",
        ),
        (
            {"loss_fn": lambda p, b, k: (jnp.mean(b @ p["w"]), {})},
            TypeError,
            "loss_fn: expected a scalar loss, got a tuple; a .loss, metrics. pair needs has_aux",
        ),
        (
            {"loss_fn": lambda p, b, k: jnp.mean(b @ p["w"]), "has_aux": True},
            TypeError,
            r"loss_fn: expected \(loss, metrics\) \(has_aux=True\), got shape \(\)",
        ),
        (
            {"optimizer": "adam"},
            TypeError,
            "optimizer: expected an optax.GradientTransformation, "
            "got the string 'adam'; pass optax.adam",
        ),
        ({"optimizer": optax.adam}, TypeError, "got the function adam uncalled; call it"),
        ({"key": 0}, TypeError, "key: expected a PRNG key, e.g. jax.random.key.0., got int 0"),
        ({"key": jnp.zeros(3, jnp.uint32)}, TypeError, r"key: expected a PRNG key.*shape \(3,\)"),
        (
            {"loss_fn": None, "grad_fn": lambda p, b, k: p},
            TypeError,
            r"grad_fn: expected \(grads, metrics\), got dict",
        ),
        (
            {"loss_fn": None, "grad_fn": lambda p, b, k: ({"w": jnp.zeros(3)}, {})},
            ValueError,
            r"grad_fn: grads\['w'\]: expected the shape of params, \(2,\), got \(3,\)",
        ),
        ({"eval_fn": lambda p: p["w"]}, TypeError, r"eval_fn: expected a dict \{name: scalar\}"),
        (
            {"eval_fn": lambda p: {"e": p["w"]}},
            ValueError,
            r"eval_fn: 'e': expected a scalar, got shape \(2,\)",
        ),
        ({"loss_fn": "mse"}, TypeError, "loss_fn: expected a function, got str"),
    ],
)
def test_daily_mistakes_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        _fit_tiny(**kwargs)


def test_a_legacy_uint32_key_is_accepted():
    assert len(_fit_tiny(key=jax.random.PRNGKey(0)).history) == 1


def test_rbm_config_batch_size_zero():
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        jaxae.RBMConfig(batch_size=0)


def test_params_of_another_mlp_are_refused_naming_the_shapes():
    params = jaxae.MLPAutoencoder((4, 2)).init(jax.random.key(0))
    with pytest.raises(
        ValueError,
        match=r"params\['encoder'\]\[0\]\['w'\]: expected shape "
        r"\(4, 3\) for sizes \(4, 3\), found \(4, 2\)",
    ):
        jaxae.MLPAutoencoder((4, 3)).encode(params, jnp.ones((8, 4)))


def _data_dir(kind, tmp_path):
    (tmp_path / "file").write_text("x")
    if kind == "below a regular file":
        return tmp_path / "file" / "cache"
    if os.geteuid() == 0:  # root writes to a read-only directory; nobody creates one in /proc
        return pathlib.Path("/proc/jaxae-unwritable-cache")
    (tmp_path / "ro").mkdir(mode=0o555)
    return tmp_path / "ro"


@pytest.mark.parametrize("kind", ["below a regular file", "read-only"])
def test_an_unwritable_data_dir_with_the_file_missing_is_named(kind, tmp_path):
    from jaxae.data import cache

    path = _data_dir(kind, tmp_path) / "train.bin"
    with pytest.raises(cache.DataFileError, match="train.bin is missing; fetch it"):
        cache.verify(path, "0" * 64, if_missing="fetch it", if_corrupted="refetch")
    with pytest.raises(cache.DataFileError, match=r"cannot be written .*must be a writable dir"):
        cache.write_verified(path, [b"abc"], "0" * 64, "test")
