import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import rbm
from jaxae.recipes import RBMConfig, rbm_optimizer


def test_rbm_optimizer_decays_weights_only_and_switches_momentum():
    params = rbm.RBMParams(jnp.ones((2, 2)), jnp.ones(2), jnp.ones(2))
    zero = jax.tree.map(jnp.zeros_like, params)
    opt = rbm_optimizer(
        0.1, weight_decay=0.5, momentum_start=0.5, momentum_final=0.9, momentum_switch_step=2
    )
    state = opt.init(params)
    updates, state = opt.update(zero, state, params)
    np.testing.assert_allclose(updates.w, -0.1 * 0.5)  # lr * weight_decay * w
    np.testing.assert_array_equal(updates.b_visible, 0.0)
    np.testing.assert_array_equal(updates.b_hidden, 0.0)
    momenta = [float(state[1].hyperparams["momentum"])]
    for _ in range(3):
        _, state = opt.update(zero, state, params)
        momenta.append(float(state[1].hyperparams["momentum"]))
    # The first two updates (steps 0 and 1) use the starting momentum, later ones the final one.
    np.testing.assert_allclose(momenta, [0.5, 0.5, 0.9, 0.9], rtol=1e-5)


def test_greedy_pretraining_on_digits_learns_every_layer():
    x = jaxae.data.load("digits", "train").flat
    config = jaxae.RBMConfig(epochs=10, batch_size=50)
    stack = jaxae.pretrain_rbm_stack(
        x, (64, 32, 8), key=jax.random.key(0), configs=config, progress=False
    )
    assert [layer.spec for layer in stack] == [
        rbm.RBMSpec(64, 32),
        rbm.RBMSpec(32, 8, hidden="gaussian"),
    ]
    bottom, top = ([row["reconstruction_error"] for row in layer.history] for layer in stack)
    assert len(bottom) == len(top) == 10
    assert bottom[-1] < 0.8 * bottom[0]
    assert top[-1] < top[0]  # the linear layer learns slowly at the paper's rate of 0.001
    recon_error = float(rbm.reconstruction_error(stack[0].params, x, spec=stack[0].spec).mean())
    mean_error = float(jaxae.squared_error(np.broadcast_to(x.mean(0), x.shape), x).mean())
    assert recon_error < 0.5 * mean_error  # the bottom RBM models the digits, not their mean
    hidden = jaxae.encode_layers(stack[:1], x)
    assert hidden.shape == (len(x), 32) and 0 <= hidden.min() and hidden.max() <= 1


def test_persistent_pretraining_runs_through_the_same_loop():
    x = jaxae.data.load("digits", "train").flat
    config = jaxae.RBMConfig(epochs=2, batch_size=50, persistent=True)
    (layer,) = jaxae.pretrain_rbm_stack(
        x, (64, 16), key=jax.random.key(0), configs=config, top_hidden="bernoulli", progress=False
    )
    assert np.all(np.isfinite(layer.params.w)) and len(layer.history) == 2


@pytest.mark.parametrize(
    "x, match",
    [
        (np.full((10, 4), 2.0, np.float32), r"x: expected values in \[0.0, 1.0\]"),
        (np.full((10, 4), np.nan, np.float32), "x: expected finite values"),
        (np.zeros((10, 5), np.float32), "x: expected last dimension 4"),
    ],
)
def test_pretrain_rbm_stack_rejects_bad_data(x, match):
    with pytest.raises(ValueError, match=match):
        jaxae.pretrain_rbm_stack(x, (4, 2), key=jax.random.key(0), progress=False)


def test_optax_sgd_with_rbm_gradients_matches_the_recipe_update():
    """One step of the optimizer equals Hinton & Salakhutdinov's hand-written update."""
    key = jax.random.key(0)
    spec = rbm.RBMSpec(6, 4)
    params = rbm.init_rbm(key, spec, scale=0.1)
    v = (jax.random.uniform(jax.random.key(1), (5, 6)) > 0.5).astype(jnp.float32)
    grads, _ = rbm.cd_gradients(params, v, jax.random.key(2), spec=spec)
    opt = rbm_optimizer(
        0.1, weight_decay=2e-4, momentum_start=0.5, momentum_final=0.9, momentum_switch_step=5
    )
    updates, _ = opt.update(grads, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new.w, params.w - 0.1 * (grads.w + 2e-4 * params.w), rtol=1e-6)
    np.testing.assert_allclose(new.b_hidden, params.b_hidden - 0.1 * grads.b_hidden, rtol=1e-6)


def test_rbm_optimizer_gives_the_hidden_biases_their_own_rate():
    params = rbm.RBMParams(jnp.ones((2, 3)), jnp.ones(2), jnp.ones(3))
    grads = rbm.RBMParams(jnp.full((2, 3), 2.0), jnp.full(2, 3.0), jnp.full(3, 4.0))
    opt = rbm_optimizer(
        0.1,
        weight_decay=0.5,
        momentum_start=0.5,
        momentum_final=0.9,
        momentum_switch_step=2,
        hidden_bias_learning_rate=1e-3,
    )
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    np.testing.assert_allclose(updates.w, -0.1 * (2.0 + 0.5 * 1.0), rtol=1e-6)
    np.testing.assert_allclose(updates.b_visible, -0.1 * 3.0, rtol=1e-6)
    np.testing.assert_allclose(updates.b_hidden, -1e-3 * 4.0, rtol=1e-6)  # no weight decay
    updates, _ = opt.update(grads, state, params)
    np.testing.assert_allclose(updates.b_hidden, -1e-3 * (4.0 + 0.5 * 4.0), rtol=1e-6)
    with pytest.raises(ValueError, match="hidden_bias_learning_rate: expected > 0 or None"):
        rbm_optimizer(
            0.1,
            weight_decay=0.0,
            momentum_start=0.5,
            momentum_final=0.9,
            momentum_switch_step=2,
            hidden_bias_learning_rate=0.0,
        )


def test_pretrain_rbm_stack_uses_the_softmax_hidden_bias_rate():
    counts = jax.random.poisson(jax.random.key(5), 2.0, (40, 12)).astype(jnp.float32)
    moved = []
    for rate in (None, 1e-9):
        optimizer = rbm_optimizer(0.1, momentum_switch_step=20, hidden_bias_learning_rate=rate)
        config = jaxae.RBMConfig(epochs=2, batch_size=10, optimizer=optimizer)
        (layer,) = jaxae.pretrain_rbm_stack(
            counts, (12, 5), key=jax.random.key(6), configs=config, visible="softmax",
            top_hidden="bernoulli", progress=False,
        )  # fmt: skip
        moved.append(float(jnp.abs(layer.params.b_hidden).max()))  # they start at 0
    assert moved[0] > 1e-3 and moved[1] < 1e-6


def test_pretrain_rbm_stack_checkpoints_each_layer_in_its_own_directory(tmp_path):
    x = jaxae.data.load("digits", "train").flat[:200]
    config = RBMConfig(epochs=2, batch_size=50)
    kwargs = dict(key=jax.random.key(0), configs=config, progress=False)
    stack = jaxae.pretrain_rbm_stack(x, (64, 16, 4), checkpoint_dir=tmp_path, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer_0", "layer_1"]
    # A rerun finds both layers finished and restores them: the same parameters.
    again = jaxae.pretrain_rbm_stack(x, (64, 16, 4), checkpoint_dir=tmp_path, **kwargs)
    for a, b in zip(stack, again, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    # Another CD-k or other hidden units would restore those layers under the new recipe.
    with pytest.raises(ValueError, match=r"layer_0'.*other settings \(k: 1 then, 5 now\)"):
        other = dict(kwargs, configs=RBMConfig(epochs=2, batch_size=50, k=5))
        jaxae.pretrain_rbm_stack(x, (64, 16, 4), checkpoint_dir=tmp_path, **other)
    with pytest.raises(ValueError, match=r"layer_1'.*spec: .*hidden='gaussian'.* then"):
        jaxae.pretrain_rbm_stack(
            x, (64, 16, 4), checkpoint_dir=tmp_path, top_hidden="bernoulli", **kwargs
        )
    with pytest.raises(TypeError, match="optimizer: set by the recipe"):
        jaxae.pretrain_rbm_stack(x, (64, 4), optimizer=rbm_optimizer(), **kwargs)


def test_the_default_recipe_is_one_cached_optimizer_per_layer_kind():
    spec = rbm.RBMSpec(6, 4)
    assert jaxae.recipes.hinton_rbm_optimizer(spec, 10) is jaxae.recipes.hinton_rbm_optimizer(
        spec, 10
    )
    cd = jaxae.recipes.ContrastiveDivergence(spec, 1)
    assert cd == jaxae.recipes.ContrastiveDivergence(spec, 1) and hash(cd)  # jit cache key


def test_rbm_optimizer_handles_learned_visible_variances():
    """Weight decay on w only and the shared rate for log_var, as for the other biases."""
    spec = rbm.RBMSpec(4, 3, visible="gaussian_learned_var", hidden="nrelu")
    params = rbm.init_rbm(jax.random.key(0), spec)
    ones = jax.tree.map(jnp.ones_like, params)
    opt = rbm_optimizer(0.1, weight_decay=0.5, hidden_bias_learning_rate=0.01)
    updates, _ = jax.jit(opt.update)(ones, opt.init(params), params)
    np.testing.assert_allclose(updates.log_var, -0.1 * np.ones(4), rtol=1e-6)
    np.testing.assert_allclose(updates.b_hidden, -0.01 * np.ones(3), rtol=1e-6)
    np.testing.assert_allclose(updates.w, -0.1 * (1 + 0.5 * params.w), rtol=1e-5)
