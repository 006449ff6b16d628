import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae.recipes import (
    AutoencoderConfig,
    RBMConfig,
    classification_error,
    encode_layers,
    finetune_classifier,
    layer_autoencoder,
    pretrain_stack,
    rbm_optimizer,
    reconstruct_layer,
    regularized_loss,
    stack_encoders,
)


@pytest.fixture(scope="module")
def digits():
    train = jaxae.data.load("digits", "train")
    test = jaxae.data.load("digits", "test")
    return train.flat[:600], train.labels[:600], test.flat, test.labels


# One stack with every kind of layer, bottom to top: the kinds are the regularizers switched on,
# and one layer may combine several (sigmoid codes in [0, 1] feed the cross-entropy layers; the
# k-sparse layer's linear codes go last).
KINDS = {
    # 600 examples / 100 a batch: 6 steps an epoch, the momentum switches after 5 epochs.
    "rbm": RBMConfig(
        epochs=20, optimizer=rbm_optimizer(0.1, weight_decay=0.0, momentum_switch_step=30)
    ),
    "denoising + sparse": AutoencoderConfig(
        corruption="masking",
        corruption_level=0.25,
        sparsity_target=0.05,
        sparsity_weight=0.1,
        epochs=3,
        optimizer=optax.adam(3e-3),
    ),
    "contractive + L1": AutoencoderConfig(
        contractive_weight=0.1,
        l1_weight=1e-3,
        weight_decay=1e-4,
        epochs=3,
        optimizer=optax.adam(3e-3),
    ),
    "k-sparse": AutoencoderConfig(
        activation="linear",
        loss="squared_error",
        k=4,
        k_initial=12,
        k_anneal_epochs=1,
        k_alpha=2.0,
        epochs=2,
    ),
}
SIZES = (64, 40, 32, 24, 16)


@pytest.fixture(scope="module")
def stack(digits):
    x = digits[0]
    return pretrain_stack(x, SIZES, list(KINDS.values()), key=jax.random.key(0), progress=False)


def test_greedy_stack_of_every_kind_has_the_documented_shapes(digits, stack):
    x = digits[0]
    assert [layer.config for layer in stack] == list(KINDS.values())
    assert [layer.encoder["w"].shape for layer in stack] == list(
        zip(SIZES[:-1], SIZES[1:], strict=False)
    )
    assert [layer.encoder["b"].shape for layer in stack] == [(n,) for n in SIZES[1:]]
    assert isinstance(stack[0].params, jaxae.rbm.RBMParams)  # trained by CD-1
    codes = encode_layers(stack, x[:7])
    assert codes.shape == (7, 16)
    assert np.all(np.count_nonzero(codes, axis=1) == 8)  # the α·k rule: 2 × 4 units kept
    model, params = stack_encoders(stack, n_classes=10)
    assert model.sizes == SIZES + (10,)
    assert model.activations == ("sigmoid",) * 3 + ("linear",)
    assert model.ks == (None,) * 3 + (4,)
    assert jax.jit(model.logits)(params, x[:5]).shape == (5, 10)
    assert model.features(params, x[:5]).shape == (5, 16)
    np.testing.assert_allclose(model.features(params, x[:7]), codes, rtol=1e-5, atol=1e-6)
    fresh = model.init(jax.random.key(1))
    assert jax.tree.map(jnp.shape, fresh) == jax.tree.map(jnp.shape, params)


def test_layers_learn_from_the_codes_below(digits, stack):
    """The 3rd layer was trained on the 2nd layer's codes: its loss on them beats a fresh layer's,
    and its training loss fell."""
    codes = encode_layers(stack[:2], digits[0])
    config, key = KINDS["contractive + L1"], jax.random.key(2)
    model = layer_autoencoder(config, 32, 24)
    trained = float(regularized_loss(model, config, stack[2].params, codes, key))
    fresh = float(regularized_loss(model, config, model.init(key), codes, key))
    assert trained < fresh
    assert stack[2].history[-1]["loss"] < stack[2].history[0]["loss"]


def test_finetune_trains_everything_and_beats_chance(digits, stack, key):
    x, y, x_test, y_test = digits
    model, params = stack_encoders(stack[:2], n_classes=10)
    before = classification_error(model, params, x_test, y_test)
    tuned, history = finetune_classifier(
        model, params, x, y, key=key, epochs=15, optimizer=optax.adam(1e-2), progress=False
    )
    after = classification_error(model, tuned, x_test, y_test)
    assert before > 0.8  # zero classifier weights: every example gets class 0
    assert after < 0.2, after
    assert history[-1]["loss"] < history[0]["loss"]
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), params, tuned)
    assert all(jax.tree.leaves(changed)), "fine-tuning updates every encoder and the classifier"
    with pytest.raises(ValueError, match="y: expected labels in \\[0, 9\\]"):
        finetune_classifier(model, params, x, y + 5, key=key, epochs=1, progress=False)


def test_finetune_with_frozen_encoders_trains_only_the_classifier(digits, stack, key):
    x, y, x_test, y_test = digits
    model, params = stack_encoders(stack[:1], n_classes=10)
    tuned, _ = finetune_classifier(
        model,
        params,
        x,
        y,
        key=key,
        epochs=10,
        optimizer=optax.adam(3e-2),
        train_encoders=False,
        progress=False,
    )
    for before, after in zip(params["layers"], tuned["layers"], strict=True):
        np.testing.assert_array_equal(before["w"], after["w"])
        np.testing.assert_array_equal(before["b"], after["b"])
    assert not np.array_equal(params["classifier"]["w"], tuned["classifier"]["w"])
    assert classification_error(model, tuned, x_test, y_test) < 0.35
    # An eval_fn written for the model's parameters works with frozen encoders too.
    _, history = finetune_classifier(
        model, params, x, y, key=key, epochs=2, train_encoders=False, progress=False,
        eval_fn=lambda p: {"test_error": classification_error(model, p, x_test, y_test)},
    )  # fmt: skip
    assert [0.0 <= row["test_error"] <= 1.0 for row in history] == [True, True]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: AutoencoderConfig(corruption="masking", corruption_level=1.5), "corruption_level"),
        (lambda: AutoencoderConfig(corruption="blur"), "corruption: expected None or one of"),
        (
            lambda: AutoencoderConfig(sparsity_target=1.0),
            "sparsity_target: expected a value in \\(0",
        ),
        (lambda: AutoencoderConfig(k=0), "k: expected a positive integer"),
        (lambda: AutoencoderConfig(k=3), "activation: a k-sparse layer \\(k=3\\) expects one of"),
        (  # the anneal would end after training did: the weights never see the k they encode
            lambda: AutoencoderConfig(
                activation="linear", k=2, k_initial=4, k_anneal_epochs=5, epochs=1
            ),
            "k_anneal_epochs: expected at most epochs = 1",
        ),
        (  # a k_initial without epochs to anneal over would be ignored
            lambda: AutoencoderConfig(activation="linear", k=2, k_initial=4),
            "k_initial and k_anneal_epochs: set both",
        ),
    ],
)
def test_bad_configs(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_relu_k_sparse_layer_takes_its_top_k_of_the_rectified_units(digits, key):
    x = digits[0][:200]
    configs = {
        name: AutoencoderConfig(
            activation=name, loss="squared_error", output_activation="linear", k=3, k_alpha=2.0,
            epochs=1, optimizer=optax.sgd(1e-3),
        )
        for name in ("linear", "relu")
    }  # fmt: skip
    layers = {
        name: pretrain_stack(x, (64, 10), config, key=key, progress=False)[0]
        for name, config in configs.items()
    }
    # The same start (same key): a bias pushed negative makes the two differ.
    encoder = dict(layers["linear"].encoder, b=layers["linear"].encoder["b"] - 100.0)
    pre = x @ encoder["w"] + encoder["b"][None, :]
    assert np.all(pre < 0)  # every unit negative: linear keeps 6 negative values, relu none
    for name, expected_nonzero in (("linear", 6), ("relu", 0)):
        layer = layers[name]._replace(params={"encoder": [encoder], "decoder": []})
        assert layer.activation == name
        codes = encode_layers([layer], x)
        assert np.all(np.count_nonzero(codes, axis=1) == expected_nonzero), name
    # Training sees the rectified units too: from the same parameters, the relu layer decodes
    # zeros where the linear one decodes its 3 largest (negative) units.
    linear_model = layer_autoencoder(configs["linear"], 64, 10)
    relu_model = layer_autoencoder(configs["relu"], 64, 10)
    params = dict(layers["linear"].params, encoder=[encoder])  # every unit negative
    assert relu_model.code_activation == "relu"
    linear_loss = regularized_loss(linear_model, configs["linear"], params, x, key)
    relu_loss = regularized_loss(relu_model, configs["relu"], params, x, key)
    assert float(linear_loss) != float(relu_loss)


def test_optimizers_are_optax_transformations_not_strings():
    with pytest.raises(TypeError, match="optimizer: expected an optax.GradientTransformation"):
        AutoencoderConfig(optimizer="adam")
    with pytest.raises(TypeError, match="optimizer: expected an optax.GradientTransformation"):
        RBMConfig(optimizer="sgd")
    with pytest.raises(TypeError, match="optimizer: set by the recipe"):
        x, config = np.zeros((4, 3), np.float32), AutoencoderConfig()
        pretrain_stack(x, (3, 2), config, key=jax.random.key(0), optimizer=optax.sgd(0.1))


def test_bad_stacking_inputs(digits, key):
    x = digits[0]
    with pytest.raises(ValueError, match="config.k: expected at most the layer's 5 units, got 9"):
        pretrain_stack(x, (64, 5), AutoencoderConfig(k=9, activation="linear"), key=key)
    with pytest.raises(ValueError, match="x: expected finite"):
        pretrain_stack(
            np.where(np.eye(64, dtype=bool), np.nan, 0.5).astype(np.float32),
            (64, 5),
            AutoencoderConfig(epochs=1),
            key=key,
        )
    with pytest.raises(ValueError, match=r"configs: expected one config or 2 \(one per layer\)"):
        pretrain_stack(x, (64, 5, 3), [AutoencoderConfig()], key=key)
    with pytest.raises(ValueError, match="layers: expected at least one"):
        stack_encoders([], n_classes=10)
    tanh_codes = np.tanh(np.random.default_rng(0).standard_normal((50, 6))).astype(np.float32)
    salt_and_pepper = AutoencoderConfig(
        activation="tanh", loss="squared_error", output_activation="tanh",
        corruption="salt_and_pepper", corruption_level=0.2, epochs=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"salt-and-pepper sets inputs to 0 and 1.*lie in \[-"):
        pretrain_stack(tanh_codes, (6, 3), salt_and_pepper, key=key)
    sparse = AutoencoderConfig(sparsity_target=0.05, sparsity_weight=0.1, epochs=1)
    with pytest.raises(ValueError, match="example_keys: the KL sparsity penalty needs the batch"):
        pretrain_stack(x, (64, 5), sparse, key=key, example_keys=True)
    annealed = AutoencoderConfig(activation="linear", k=2, k_initial=4, k_anneal_epochs=1, epochs=1)
    with pytest.raises(ValueError, match="mesh/devices: an annealed k"):
        pretrain_stack(x, (64, 5), annealed, key=key, devices=1)


def test_reconstruct_layer_shows_the_corrupted_input(digits, stack):
    x = digits[0][:20]
    codes = encode_layers(stack[:1], x)
    corrupted, recon = reconstruct_layer(stack[1], codes, key=jax.random.key(3))
    assert corrupted.shape == recon.shape == (20, 40)
    zeroed = np.mean(np.asarray(corrupted) == 0)
    assert 0.1 < zeroed < 0.4  # masking noise at ν = 25 %
    with pytest.raises(ValueError, match="expected an autoencoder layer"):
        reconstruct_layer(stack[0], x, key=jax.random.key(3))


def test_a_stack_resumes_its_own_checkpoints_and_refuses_another_s(digits, key, tmp_path):
    """fit restores any checkpoint of the right shapes; the layer's facts (layer.json) stop a
    rerun with another activation, other data or another key from getting the old layer back
    under the new config."""
    x = digits[0][:200]
    config = AutoencoderConfig(epochs=1, batch_size=50)
    first = pretrain_stack(x, (64, 8, 4), config, key=key, checkpoint_dir=tmp_path, progress=False)
    again = pretrain_stack(x, (64, 8, 4), config, key=key, checkpoint_dir=tmp_path, progress=False)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.params["encoder"][0]["w"], b.params["encoder"][0]["w"])
    tanh = dataclasses.replace(config, activation="tanh")
    for stack_x, layer_config, layer_key, message in (
        (x, tanh, key, r"activation: 'sigmoid' then, 'tanh' now"),
        (1.0 - x, config, key, r"data: .* then, .* now \(the data summary"),
        (x, config, jax.random.key(9), r"key: \[.*\] then, \[.*\] now"),
    ):
        with pytest.raises(ValueError, match=r"layer_0'.*other settings \(" + message):
            pretrain_stack(
                stack_x, (64, 8, 4), layer_config, key=layer_key, checkpoint_dir=tmp_path,
                progress=False,
            )  # fmt: skip
