"""LSTM sequence autoencoders: shapes, targets, decoder conditioning, the step-by-step math,
the parameter layout, training through fit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae.models.lstm import LSTMSequenceModel, future_targets, reconstruction_targets

D = 6


def _x(key, batch=3, frames=5):
    return jax.random.uniform(key, (batch, frames, D))


@pytest.mark.parametrize(
    "kind, keys",
    [
        ("autoencoder", {"reconstruction"}),
        ("future", {"future"}),
        ("composite", {"reconstruction", "future"}),
    ],
)
def test_shapes_of_each_kind(key, kind, keys):
    model = LSTMSequenceModel(input_dim=D, features=(5, 4), num_input=3, num_future=2, kind=kind)
    params = model.init(key)
    x = _x(key, frames=model.num_frames)
    out = jax.jit(model.apply)(params, x)
    assert set(out) == keys
    if "reconstruction" in out:
        assert out["reconstruction"].shape == (3, 3, D)
    if "future" in out:
        assert out["future"].shape == (3, 2, D)
    per_sequence = jax.jit(model.loss)(params, x)
    assert per_sequence.shape == (3,)
    assert set(jax.tree.leaves(jax.tree.map(lambda a: a.ndim, params)))  # non-empty tree


def test_targets_reverse_the_input_and_take_the_future():
    x = jnp.arange(2 * 5 * 1, dtype=jnp.float32).reshape(2, 5, 1)
    np.testing.assert_array_equal(reconstruction_targets(x, 3)[0, :, 0], [2.0, 1.0, 0.0])
    np.testing.assert_array_equal(future_targets(x, 3)[0, :, 0], [3.0, 4.0])


def test_loss_is_cross_entropy_against_the_reversed_input(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=4, kind="autoencoder")
    params = model.init(key)
    x = _x(key, frames=4)
    logits = model.apply(params, x)["reconstruction"]
    # independent reference: a NumPy loop over frames, target frame t is input frame T-1-t
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    xn = np.asarray(x, np.float64)
    want = np.zeros(3)
    for t in range(4):
        tgt = xn[:, 3 - t]
        want -= (tgt * np.log(p[:, t]) + (1 - tgt) * np.log(1 - p[:, t])).sum(-1)
    np.testing.assert_allclose(model.losses(params, x)["reconstruction"], want, rtol=1e-5)
    # reconstruct() gives the frames back in input order
    np.testing.assert_allclose(model.reconstruct(params, x)[:, 0], p[:, 3], rtol=1e-5)


def test_unconditional_decoder_ignores_the_targets(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3, kind="future")
    params = model.init(key)
    x = _x(key)
    y = x.at[:, 2:].set(0.0)  # change only the future frames
    chex.assert_trees_all_close(
        model.apply(params, x, train=True), model.apply(params, y, train=True)
    )


def test_conditional_decoders_read_the_previous_frame(key):
    model = LSTMSequenceModel(
        input_dim=D,
        features=(4,),
        num_input=2,
        num_future=3,
        kind="composite",
        conditional_reconstruction=True,
        conditional_future=True,
    )
    params = model.init(key)
    x = _x(key)
    y = x.at[:, 3].set(0.0)  # the second future frame: read by future step 2 while training
    a, b = model.apply(params, x, train=True), model.apply(params, y, train=True)
    np.testing.assert_allclose(a["future"][:, :2], b["future"][:, :2], rtol=1e-6)
    assert not np.allclose(a["future"][:, 2], b["future"][:, 2])
    # at test time it reads its own predictions, so the true future frames do not matter
    chex.assert_trees_all_close(model.apply(params, x)["future"], model.apply(params, y)["future"])
    # the conditional reconstruction decoder reads input frame 0 at its last step only
    z = x.at[:, 0].set(0.0)
    c = model.apply(params, z)["reconstruction"]
    r = model.apply(params, x)["reconstruction"]
    assert not np.allclose(c[:, 1], r[:, 1])
    # an unconditional model with the same shapes gives different outputs (it reads zeros)
    plain = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3)
    assert not np.allclose(plain.apply(plain.init(key), x)["future"], a["future"])


def _reference_cell(p, carry, x):
    """``nn.OptimizedLSTMCell``'s step written out gate by gate from its parameters."""
    c, h = carry
    z = {
        g: x @ p[f"i{g}"]["kernel"] + h @ p[f"h{g}"]["kernel"] + p[f"h{g}"]["bias"][None]
        for g in "ifgo"
    }
    c = jax.nn.sigmoid(z["f"]) * c + jax.nn.sigmoid(z["i"]) * jnp.tanh(z["g"])
    return c, jax.nn.sigmoid(z["o"]) * jnp.tanh(c)


def _reference_apply(model, params, x, train):
    """The model one time step and one layer at a time, in Python loops (no scan, no hoisting)."""
    p = params["params"]
    layers = range(len(model.features))
    batch = x.shape[0]
    cells = [(jnp.zeros((batch, u)),) * 2 for u in model.features]
    for t in range(model.num_input):
        h = x[:, t]
        for i in layers:
            cells[i] = _reference_cell(p["encoder"][f"OptimizedLSTMCell_{i}"], cells[i], h)
            h = cells[i][1]
    decoders = {
        "reconstruction": (reconstruction_targets(x, model.num_input), False),
        "future": (future_targets(x, model.num_input), not train),
    }
    conditional = {
        "reconstruction": model.conditional_reconstruction,
        "future": model.conditional_future,
    }
    out = {}
    for name in ("reconstruction", "future"):
        if name not in p:
            continue
        d, (targets, generate) = p[name]["steps"], decoders[name]
        state, previous, logits = list(cells), jnp.zeros_like(targets[:, 0]), []
        for t in range(targets.shape[1]):
            if not conditional[name]:
                h = jnp.zeros((batch, 1))
            elif generate:
                h = previous
            else:
                h = targets[:, t - 1] if t > 0 else jnp.zeros_like(targets[:, 0])
            for i in layers:
                state[i] = _reference_cell(d[f"lstm_{i}"], state[i], h)
                h = state[i][1]
            logits.append(h @ d["output"]["kernel"] + d["output"]["bias"][None])
            previous = jax.nn.sigmoid(logits[-1])
        out[name] = jnp.stack(logits, axis=1)
    return out


def _perturbed(params, key, scale=0.3):
    """Parameters with every leaf moved off its initial value (the biases start at zero)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    moved = [a + scale * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, moved)


@pytest.mark.parametrize("features", [(5,), (5, 4)])
@pytest.mark.parametrize("conditional", [(False, False), (True, True), (True, False)])
@pytest.mark.parametrize("kind", ["autoencoder", "future", "composite"])
def test_apply_matches_a_step_by_step_reference(key, kind, conditional, features):
    model = LSTMSequenceModel(
        input_dim=D,
        features=features,
        num_input=3,
        num_future=4,
        kind=kind,
        conditional_reconstruction=conditional[0],
        conditional_future=conditional[1],
        output_bias=-1.0,
    )
    params = _perturbed(model.init(key), jax.random.key(1))
    x = _x(jax.random.key(2), frames=model.num_frames)
    apply = jax.jit(model.apply, static_argnames="train")
    for train in (True, False):
        got, want = apply(params, x, train=train), _reference_apply(model, params, x, train)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("conditional", [False, True])
def test_gradients_match_the_step_by_step_reference(key, conditional):
    model = LSTMSequenceModel(
        input_dim=D,
        features=(5, 4),
        num_input=3,
        num_future=2,
        conditional_reconstruction=conditional,
        conditional_future=conditional,
    )
    params = _perturbed(model.init(key), jax.random.key(1))
    x = _x(jax.random.key(2), frames=model.num_frames)

    def reference_loss(params):
        logits = _reference_apply(model, params, x, train=True)
        targets = {
            "reconstruction": reconstruction_targets(x, model.num_input),
            "future": future_targets(x, model.num_input),
        }
        bce = optax.sigmoid_binary_cross_entropy
        return sum(bce(v, targets[k]).sum() for k, v in logits.items()) / x.shape[0]

    got = jax.jit(jax.grad(model.loss_fn))(params, x, None)
    want = jax.grad(reference_loss)(params)
    chex.assert_trees_all_close(got, want, rtol=1e-4, atol=1e-5)
    if not conditional:  # a zero input: its kernels get no gradient
        for g in "ifgo":
            assert not np.any(got["params"]["future"]["steps"]["lstm_0"][f"i{g}"]["kernel"])


def test_parameters_are_laid_out_and_initialised_as_flax_lstm_cells(key):
    n_in, units = 64, 32
    model = LSTMSequenceModel(input_dim=n_in, features=(units, 16), output_bias=-2.0)
    p = model.init(key)["params"]
    cell = {f"i{g}": {"kernel"} for g in "ifgo"} | {f"h{g}": {"kernel", "bias"} for g in "ifgo"}
    layers = {"encoder": ["OptimizedLSTMCell_0", "OptimizedLSTMCell_1"]}
    layers |= {name: ["lstm_0", "lstm_1"] for name in ("reconstruction", "future")}
    assert set(p) == set(layers)
    for name, cells in layers.items():
        params = p[name] if name == "encoder" else p[name]["steps"]
        assert set(params) == set(cells) | ({"output"} if name != "encoder" else set())
        for c in cells:
            assert {k: set(v) for k, v in params[c].items()} == cell
    enc = p["encoder"]["OptimizedLSTMCell_0"]
    for g in "ifgo":
        # input kernels lecun-normal (std sqrt(1 / fan_in)); recurrent kernels orthogonal
        assert enc[f"i{g}"]["kernel"].shape == (n_in, units)
        assert float(enc[f"i{g}"]["kernel"].std()) == pytest.approx(n_in**-0.5, rel=0.1)
        w = enc[f"h{g}"]["kernel"]
        np.testing.assert_allclose(w.T @ w, np.eye(units), atol=1e-5)
        np.testing.assert_array_equal(enc[f"h{g}"]["bias"], 0.0)
    unconditional = p["future"]["steps"]["lstm_0"]["ii"]["kernel"]
    assert unconditional.shape == (1, units)  # a zero input of width 1
    output = p["future"]["steps"]["output"]
    assert output["kernel"].shape == (16, n_in)
    np.testing.assert_array_equal(output["bias"], -2.0)


def test_bad_input_shape_is_named(key):
    model = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3)
    params = model.init(key)
    with pytest.raises(ValueError, match=r"x: expected \[batch, 5, 6\]"):
        model.apply(params, jnp.zeros((2, 4, D)))
    with pytest.raises(ValueError, match="kind"):
        LSTMSequenceModel(input_dim=D, kind="forecast")
    with pytest.raises(ValueError, match=r"features: expected .* got \(4, 0\)"):
        LSTMSequenceModel(input_dim=D, features=(4, 0))
    widths = LSTMSequenceModel(input_dim=D, features=np.array([4, 4])).features
    assert widths == (4, 4) and type(widths[0]) is int  # NumPy integers accepted
    future = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, num_future=3, kind="future")
    with pytest.raises(ValueError, match="reconstruct: a kind='future' model has no reconstr"):
        future.reconstruct(future.init(key), jnp.zeros((1, 5, D)))
    auto = LSTMSequenceModel(input_dim=D, features=(4,), num_input=2, kind="autoencoder")
    with pytest.raises(ValueError, match="predict: a kind='autoencoder' model has no future"):
        auto.predict(auto.init(key), jnp.zeros((1, 2, D)))


def test_tiny_composite_learns_through_fit(key):
    # a dot moving one step right per frame on a 6-pixel line: the future is predictable
    starts = np.arange(40) % 2
    frames = np.zeros((40, 4, D), np.float32)
    for i, s in enumerate(starts):
        for t in range(4):
            frames[i, t, s + t] = 1.0
    model = LSTMSequenceModel(input_dim=D, features=(16,), num_input=2, num_future=2)
    params = model.init(key)
    before = float(model.loss(params, frames, train=False).mean())
    result = jaxae.fit(
        params,
        frames,
        loss_fn=model.loss_fn,
        optimizer=optax.adam(3e-2),
        key=key,
        epochs=30,
        batch_size=20,
        progress=False,
    )
    after = float(model.loss(result.params, frames, train=False).mean())
    assert after < 0.5 * before
