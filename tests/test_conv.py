"""Convolutional autoencoders (jaxae.models.conv) through LinenAutoencoder and jaxae.fit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae.models.contract import Autoencoder
from jaxae.models.conv import (
    CBIRAutoencoder,
    ConvAutoencoder,
    ConvDecoder,
    ConvEncoder,
    TwoCodeLoss,
    check_conv_shapes,
)

SHAPES = [
    # image_shape, features, strides, downsample, upsample
    ((28, 28, 1), (4, 8), (2, 2), "stride", "transpose"),
    ((16, 24, 3), (4, 8, 8), (2, 1, 2), "pool", "resize"),
    ((12, 8, 2), (4,), (4,), "pool", "transpose"),
    ((8, 8, 1), (4, 4), (1, 1), "stride", "resize"),
]


@pytest.mark.parametrize("image_shape,features,strides,down,up", SHAPES)
def test_shapes_and_logits(image_shape, features, strides, down, up):
    module = ConvAutoencoder(
        image_shape=image_shape, features=features, strides=strides, code_size=5,
        downsample=down, upsample=up, dropout=0.1,
    )  # fmt: skip
    ae = jaxae.LinenAutoencoder(module)
    x = jax.random.uniform(jax.random.key(1), (3, *image_shape))
    params, state = ae.init(jax.random.key(0), x[:2])
    code = jax.jit(lambda p, s, x: ae.encode(p, x, model_state=s))(params, state, x)
    assert code.shape == (3, 5)
    logits = jax.jit(lambda p, s, z: ae.decode(p, z, model_state=s, logits=True))(
        params, state, code
    )
    mean = jax.jit(lambda p, s, z: ae.decode(p, z, model_state=s))(params, state, code)
    assert logits.shape == mean.shape == x.shape
    np.testing.assert_allclose(jax.nn.sigmoid(logits), mean, rtol=1e-5, atol=1e-6)
    recon = jax.jit(lambda p, s, x: ae.reconstruct(p, x, model_state=s))(params, state, x)
    np.testing.assert_allclose(recon, mean, rtol=1e-5, atol=1e-6)
    out, new_state = jax.jit(ae.reconstruct_train)(params, state, x, jax.random.key(2))
    assert out.shape == x.shape and jax.tree.structure(new_state) == jax.tree.structure(state)


def test_the_cbir_architecture_has_a_4x4x256_bottom_and_16_d_codes():
    ae = jaxae.LinenAutoencoder(CBIRAutoencoder())
    x = jnp.zeros((2, 32, 32, 1))
    params, state = jax.eval_shape(ae.init, jax.random.key(0), x)  # shapes only: no compile
    for name in ("encoder1", "encoder2"):
        convs = [k for k in params[name] if k.startswith("Conv_")]
        assert len(convs) == 4
        assert all(params[name][k]["kernel"].shape[:2] == (3, 3) for k in convs)
        assert params[name]["Dense_0"]["kernel"].shape == (4 * 4 * 256, 16)
        assert len([k for k in state["batch_stats"][name] if k.startswith("BatchNorm")]) == 4
    code = jax.eval_shape(lambda p, s: ae.encode(p, x, model_state=s), params, state)
    assert code.shape == (2, 16)
    assert check_conv_shapes((32, 32, 1), (32, 64, 128, 256), (2, 2, 2, 1)) == (4, 4, 256)


def test_cbir_codes_z1_is_relu_z2_linear_and_encode_is_their_mean():
    x = jax.random.uniform(jax.random.key(1), (4, 16, 16, 1))
    kwargs = dict(image_shape=(16, 16, 1), features=(4, 8), strides=(2, 2), code_size=6)
    modules = {c: CBIRAutoencoder(code=c, **kwargs) for c in ("z1", "z2", "mean")}
    aes = {c: jaxae.LinenAutoencoder(m) for c, m in modules.items()}
    params, state = aes["mean"].init(jax.random.key(0), x[:2])
    z = {c: aes[c].encode(params, x, model_state=state) for c in aes}
    z1, z2 = aes["mean"].module.apply({"params": params, **state}, x, method=CBIRAutoencoder.codes)
    np.testing.assert_allclose(z["z1"], z1, atol=1e-6)
    np.testing.assert_allclose(z["z2"], z2, atol=1e-6)
    np.testing.assert_allclose(z["mean"], 0.5 * (z1 + z2), atol=1e-6)
    assert float(jnp.min(z1)) >= 0.0 and float(jnp.min(z2)) < 0.0


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"H=28 and W=28 must both be divisible by the total"):
        ConvAutoencoder(image_shape=(28, 28, 1), features=(4, 8, 8), strides=(2, 2, 2))
    total = r"stride 8 \(the product of strides \(2, 2, 2, 1\)\).*32 x 32"
    with pytest.raises(ValueError, match=total):
        CBIRAutoencoder(image_shape=(28, 28, 1), strides=(2, 2, 2, 1))
    with pytest.raises(ValueError, match="strides: expected 2 positive ints"):
        ConvAutoencoder(features=(4, 8), strides=(2,))
    with pytest.raises(ValueError, match="image_shape: expected channels-last"):
        ConvAutoencoder(image_shape=(28, 28))
    with pytest.raises(ValueError, match=r"strides: expected .*positive ints.*got \(2.0,\)"):
        ConvAutoencoder(features=(4,), strides=(2.0,))
    with pytest.raises(ValueError, match=r"features: expected .*got \(True,\)"):
        ConvAutoencoder(features=(True,), strides=(2,))
    # NumPy integers (an image's x.shape[1:], np.arange) are integers: accepted, stored as int.
    numpy_sized = ConvAutoencoder(
        image_shape=np.array([28, 28, 1]), features=np.array([4, 8]), strides=(np.int64(2), 2)
    )
    assert numpy_sized.features == (4, 8) and type(numpy_sized.image_shape[0]) is int
    with pytest.raises(ValueError, match="code_size: expected a positive integer, got 0"):
        ConvEncoder(image_shape=(28, 28, 1), code_size=0)
    with pytest.raises(ValueError, match="kernel_size: expected a positive integer, got 0"):
        ConvDecoder(image_shape=(28, 28, 1), kernel_size=0)
    with pytest.raises(ValueError, match=r"momentum: expected a value in \[0, 1\), got 1.5"):
        ConvEncoder(image_shape=(28, 28, 1), momentum=1.5)
    with pytest.raises(ValueError, match="downsample: expected one of stride, pool"):
        jaxae.LinenAutoencoder(ConvAutoencoder(downsample="avg")).init(
            jax.random.key(0), jnp.zeros((1, 28, 28, 1))
        )
    with pytest.raises(ValueError, match="code: expected one of"):
        CBIRAutoencoder(code="concat")
    ae = jaxae.LinenAutoencoder(ConvAutoencoder(features=(4,), strides=(2,)))
    params, state = ae.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"looks channels-first.*transpose\(0, 2, 3, 1\)"):
        ae.encode(params, jnp.zeros((2, 1, 28, 28)), model_state=state)
    with pytest.raises(ValueError, match=r"got shape \(2, 784\); reshape flat images"):
        ae.encode(params, jnp.zeros((2, 784)), model_state=state)
    with pytest.raises(ValueError, match=r"expected images \[batch, 28, 28, 1\]"):
        ae.encode(params, jnp.zeros((2, 32, 32, 1)), model_state=state)
    with pytest.raises(ValueError, match=r"z: expected codes \[batch, 16\]"):
        ae.decode(params, jnp.zeros((2, 15)), model_state=state)


def test_satisfies_the_model_contract():
    ae = jaxae.LinenAutoencoder(ConvAutoencoder(image_shape=(8, 8, 1), features=(4,), strides=(2,)))
    assert isinstance(ae, Autoencoder)
    hash(ae)  # a static argument of jit
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1))
    params, state = ae.init(jax.random.key(0), x)  # Linen: init(key, example)
    bind = functools.partial
    code = jax.jit(bind(ae.encode, model_state=state))(params, x)
    assert code.ndim == 2 and code.shape[0] == 3
    mean = jax.jit(bind(ae.decode, model_state=state))(params, code)
    logits = jax.jit(bind(ae.reconstruct, model_state=state, logits=True))(params, x)
    recon = jax.jit(bind(ae.reconstruct, model_state=state))(params, x)
    assert mean.shape == logits.shape == recon.shape == x.shape
    np.testing.assert_allclose(jax.nn.sigmoid(logits), recon, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(recon, mean, rtol=1e-5, atol=1e-6)
    assert float(jnp.min(recon)) >= 0.0 and float(jnp.max(recon)) <= 1.0
    code_logits = jax.jit(bind(ae.encode, model_state=state, logits=True))(params, x)
    assert code_logits.shape == code.shape


def _digits(n=768):
    return np.asarray(jaxae.data.load("digits", "train").flat[:n]).reshape(-1, 8, 8, 1)


def _fit(ae, loss, x, epochs=4):
    params, state = ae.init(jax.random.key(0), x[:2])
    result = jaxae.fit(
        params, x, model_state=state, loss_fn=loss, optimizer=optax.adam(3e-3),
        key=jax.random.key(1), epochs=epochs, batch_size=64, progress=False,
    )  # fmt: skip
    return state, result


def test_trains_through_fit_and_evaluates_with_running_statistics():
    x = _digits()
    ae = jaxae.LinenAutoencoder(
        ConvAutoencoder(image_shape=(8, 8, 1), features=(8, 16), strides=(2, 2), dropout=0.1)
    )
    state0, result = _fit(ae, ae.loss(jaxae.sigmoid_cross_entropy), x)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    moved = [
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(state0), jax.tree.leaves(result.model_state), strict=True)
    ]
    assert min(moved) > 1e-4  # every BatchNorm's running statistics were updated
    evaluate = jax.jit(lambda p, s, b: ae.reconstruct(p, b, model_state=s, logits=True))
    a = evaluate(result.params, result.model_state, x[:32])
    np.testing.assert_array_equal(a, evaluate(result.params, result.model_state, x[:32]))
    # Eval of one image does not depend on the rest of the batch: running statistics.
    np.testing.assert_allclose(
        evaluate(result.params, result.model_state, x[:1])[0], a[0], atol=1e-4
    )
    train, _ = jax.jit(ae.reconstruct_train)(
        result.params, result.model_state, x[:32], jax.random.key(2)
    )
    assert float(jnp.max(jnp.abs(train - a))) > 1e-2  # train mode: batch statistics, dropout


def test_cbir_and_its_denoising_variant_train_through_fit():
    x = np.pad(_digits(), ((0, 0), (4, 4), (4, 4), (0, 0)))  # 16 x 16
    ae = jaxae.LinenAutoencoder(
        CBIRAutoencoder(image_shape=(16, 16, 1), features=(4, 8, 8, 8), code_size=6)
    )
    plain = TwoCodeLoss(ae, jaxae.sigmoid_cross_entropy)
    noisy = TwoCodeLoss(ae, jaxae.sigmoid_cross_entropy, jaxae.masking_noise, (("rate", 0.25),))
    for loss in (plain, noisy):
        _, result = _fit(ae, loss, x, epochs=3)
        losses = [row["loss"] for row in result.history]
        assert losses[-1] < 0.8 * losses[0]
    assert TwoCodeLoss(ae, jaxae.sigmoid_cross_entropy) == plain  # fit compiles once


def test_denoising_loss_corrupts_the_input_and_keeps_the_clean_target():
    x = jnp.asarray(_digits()[:16])
    ae = jaxae.LinenAutoencoder(
        ConvAutoencoder(image_shape=(8, 8, 1), features=(4,), strides=(2,), batch_norm=False)
    )
    params, state = ae.init(jax.random.key(0), x[:2])
    loss = ae.denoising_loss(jaxae.sigmoid_cross_entropy, jaxae.masking_noise, rate=0.5)
    assert loss == ae.denoising_loss(jaxae.sigmoid_cross_entropy, jaxae.masking_noise, rate=0.5)
    key = jax.random.key(3)
    value, _ = jax.jit(loss)(params, state, x, key)
    # Reference: the same noise key, corrupted input, clean target.
    noise_key, model_key = jax.random.split(key)
    corrupted = jaxae.masking_noise(noise_key, x, rate=0.5)
    logits, _ = ae.reconstruct_train(params, state, corrupted, model_key)
    np.testing.assert_allclose(value, jnp.mean(jaxae.sigmoid_cross_entropy(logits, x)), rtol=1e-5)
    clean, _ = jax.jit(ae.loss(jaxae.sigmoid_cross_entropy))(params, state, x, key)
    assert abs(float(value) - float(clean)) > 1e-3
