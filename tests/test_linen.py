"""A researcher's own Linen module (BatchNorm + Dropout) through jaxae.fit."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae


class Encoder(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = x.reshape(x.shape[0], 8, 8, 1)
        x = nn.Conv(8, (3, 3), strides=(2, 2))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
        x = nn.Dropout(0.2, deterministic=not train)(x)
        return nn.Dense(12)(x.reshape(x.shape[0], -1))


class Decoder(nn.Module):
    @nn.compact
    def __call__(self, z, train: bool):
        z = nn.relu(nn.Dense(4 * 4 * 8)(z)).reshape(z.shape[0], 4, 4, 8)
        z = nn.ConvTranspose(1, (3, 3), strides=(2, 2))(z)
        return z.reshape(z.shape[0], 64)  # logits


AE = jaxae.LinenAutoencoder(encoder=Encoder(), decoder=Decoder())
OPTIMIZER = optax.adam(3e-3)
LOSS = AE.loss(jaxae.sigmoid_cross_entropy)


def _digits():
    return np.asarray(jaxae.data.load("digits", "train").flat)


def _fit(x, epochs, **kwargs):
    params, model_state = AE.init(jax.random.key(0), x[:2])
    return jaxae.fit(
        params,
        x,
        model_state=model_state,
        loss_fn=LOSS,
        optimizer=OPTIMIZER,
        key=jax.random.key(1),
        epochs=epochs,
        batch_size=64,
        progress=False,
        **kwargs,
    )


def test_linen_autoencoder_trains_and_evaluates_with_running_statistics():
    x = _digits()
    params, model_state = AE.init(jax.random.key(0), x[:2])
    assert set(model_state) == {"batch_stats"} and set(params) == {"encoder", "decoder"}
    result = _fit(
        x, 4, eval_fn=lambda p, s: {"eval": AE.reconstruct(p, x[:64], model_state=s).mean()}
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    assert "eval" in result.history[-1]
    stats0 = jax.tree.leaves(model_state)
    stats1 = jax.tree.leaves(result.model_state)
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(stats0, stats1, strict=True)) > 1e-3
    evaluate = jax.jit(lambda p, s, b: AE.reconstruct(p, b, model_state=s, logits=True))
    a = evaluate(result.params, result.model_state, x[:32])
    b = evaluate(result.params, result.model_state, x[:32])
    np.testing.assert_array_equal(a, b)  # eval: deterministic (no dropout)
    # Eval of one example does not depend on the rest of the batch: running statistics.
    np.testing.assert_allclose(
        evaluate(result.params, result.model_state, x[:1])[0], a[0], atol=1e-5
    )
    train, _ = jax.jit(AE.reconstruct_train)(
        result.params, result.model_state, x[:32], jax.random.key(2)
    )
    assert float(jnp.max(jnp.abs(train - a))) > 1e-2  # train mode: batch statistics + dropout
    codes = AE.encode(result.params, x[:5], model_state=result.model_state)
    assert codes.shape == (5, 12)


def test_linen_run_resumed_from_checkpoint_equals_uninterrupted(tmp_path):
    x = _digits()
    uninterrupted = _fit(x, 3)
    _fit(x, 1, checkpoint_dir=tmp_path / "ckpt")
    resumed = _fit(x, 3, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.resumed_epochs == 1  # params and model_state came from the checkpoint
    jax.tree.map(np.testing.assert_array_equal, uninterrupted.params, resumed.params)
    jax.tree.map(np.testing.assert_array_equal, uninterrupted.model_state, resumed.model_state)


def test_loss_objects_are_equal_so_fit_compiles_once():
    assert AE.loss(jaxae.sigmoid_cross_entropy) == LOSS
    assert hash(AE.loss(jaxae.sigmoid_cross_entropy)) == hash(LOSS)


def test_bad_arguments():
    with pytest.raises(ValueError, match="pass module"):
        jaxae.LinenAutoencoder(encoder=Encoder())
    with pytest.raises(ValueError, match="pass module"):  # the decoder would be ignored
        jaxae.LinenAutoencoder(Encoder(), decoder=Decoder())
    with pytest.raises(TypeError, match="module: expected a method encode"):
        jaxae.LinenAutoencoder(Decoder())
    with pytest.raises(ValueError, match="aux and model_state"):
        _fit(_digits(), 1, aux=jnp.zeros(()))


def test_data_parallel_path_threads_and_averages_model_state():
    x = _digits()[:640]
    plain, meshed = _fit(x, 1), _fit(x, 1, devices=1)
    for a, b in ((plain.params, meshed.params), (plain.model_state, meshed.model_state)):
        jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-5), a, b)
