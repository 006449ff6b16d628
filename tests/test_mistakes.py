"""The next mistakes a researcher makes with an autoencoder library, each failing clearly
(issue 16, item 4).

52 mistakes in all, each tried against the public API:

- 46 are refused with a ``ValueError``/``TypeError`` (or :class:`jaxae.InvalidDataError`) naming
  the argument, what was expected and what came, raised before XLA (eagerly, or while the step
  is traced): ``test_mistake_is_named``. Of these, 17 already failed clearly and are unchanged;
  12 failed clearly but now also say the likely cause and the fix (marked "hint": integer
  labels as data, 8-bit images, a single unbatched example, unflattened images or frames,
  time-major sequences, a missing channel axis, which arrays of a dict differ in length); 17
  were fixed (marked "fixed"): an error from deep inside JAX or Python (a Python list, a
  generator, a loss without ``key``, a Linen loss without ``model_state``, integer parameters,
  a model or an uncalled ``init`` as ``params``, a callback class, ``remainder="keep"`` with a
  batch larger than the data, MLP parameters given to a VAE), a misleading hint (a schedule as
  ``optimizer``, a ConvVAE's missing channel axis, one packed query), or no error at all (a
  VAE's parameters of another size, NaN codes in retrieval, 8-bit images to a dynamically
  binarised VAE loss, PCA inputs of the wrong width).
- 7 are accepted on purpose and must work (``test_accepted`` and two more): a legacy
  ``PRNGKey``, float64 data (trained in float32, JAX's default precision; with
  ``jax_enable_x64`` it stays float64 — converting is what every JAX function does with NumPy's
  default dtype, and a warning would fire on most NumPy-made data), a learning-rate schedule
  inside an optimizer, a mesh of one device, ``checkpoint_dir`` as a ``pathlib.Path``, an
  overcomplete code (wider than the input: the denoising and k-sparse autoencoders use one), and
  NumPy integers as layer sizes (``np.prod(x.shape[1:])``).
Besides (item 2 of the issue, not counted above), NaN and out-of-range values:
  :func:`jaxae.gaussian_log_likelihood`, :func:`jaxae.rbm.free_energy` and
  :func:`jaxae.rbm.hidden_mean` raise eagerly, give NaN (never a wrong finite number) under
  ``jit``, and inside ``fit`` NaN data is refused before training and out-of-range data is an
  ``InvalidDataError`` naming the check.
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import rbm

_KEY = jax.random.key(0)
_MLP = jaxae.MLPAutoencoder((4, 2))
_X = np.random.default_rng(0).uniform(0, 1, (16, 4)).astype(np.float32)


def _bce(model, params, batch, key):
    del key
    return jaxae.sigmoid_cross_entropy(model.reconstruct(params, batch, logits=True), batch).mean()


_LOSS = functools.partial(_bce, _MLP)
_SGD = optax.sgd(0.1)


def _fit(**kwargs):
    args = {
        "params": _MLP.init(_KEY),
        "data": _X,
        "loss_fn": _LOSS,
        "optimizer": _SGD,
        "key": _KEY,
        "epochs": 1,
        "batch_size": 8,
        "progress": False,
        **kwargs,
    }
    return jaxae.fit(args.pop("params"), args.pop("data"), **args)


def _vae():
    return jaxae.MLPVAE((4, 3, 2))


def _lstm():
    model = jaxae.LSTMSequenceModel(input_dim=4, features=(3,), num_input=2, num_future=2)
    return model, model.init(_KEY)


def _conv_vae():
    return jaxae.ConvVAE(latent_size=2, image_shape=(8, 8, 1), features=(4,), hidden=8)


_WORDS = np.arange(6, dtype=np.uint32).reshape(3, 2)  # three packed 64-bit codes


def _conv():
    return jaxae.LinenAutoencoder(
        jaxae.ConvAutoencoder(image_shape=(8, 8, 1), features=(2,), strides=(2,), code_size=2)
    )


def _linen_fit_without_model_state():
    ae = _conv()
    params, _ = ae.init(_KEY, jnp.zeros((2, 8, 8, 1)))
    return _fit(
        params=params,
        data=np.zeros((16, 8, 8, 1), np.float32),
        loss_fn=ae.loss(jaxae.sigmoid_cross_entropy),
    )


_SPEC = rbm.RBMSpec(4, 3)

# (id, call, error type, key words of the message); "fixed" marks the mistakes that did not
# fail clearly before this test was written, "hint" those whose clear error now also names the
# likely cause and the fix.
MISTAKES = [
    # --- data given to fit
    (
        "hint: integer labels passed as data",
        lambda: _fit(data=np.arange(16)),
        ValueError,
        r"x: expected rank 2, got shape \(8,\); integer labels\? x is the data",
    ),
    (
        "hint: uint8 images passed as data",
        lambda: _fit(data=np.full((16, 4), 200, np.uint8)),
        TypeError,
        r"x: expected a floating dtype, got uint8; convert it.*divide 8-bit images by 255",
    ),
    (
        "hint: float images in [0, 255] to a Bernoulli loss inside fit",
        lambda: _fit(data=_X * 255),
        jaxae.InvalidDataError,
        r"targets: expected values in \[0.0, 1.0\].*8-bit images in \[0, 255\]\? divide them",
    ),
    (
        "fixed: data as a Python list",
        lambda: _fit(data=_X.tolist()),
        TypeError,
        r"data\[0\]\[0\]: expected an array .*got a Python list of float.*np\.asarray",
    ),
    (
        "fixed: data as a generator",
        lambda: _fit(data=(row for row in _X)),
        TypeError,
        r"data: expected an array .*got generator",
    ),
    (
        "data with NaN",
        lambda: _fit(data=np.where(_X > 0.9, np.nan, _X)),
        ValueError,
        r"data: expected finite values, found NaN",
    ),
    (
        "an empty dataset",
        lambda: _fit(data=np.zeros((0, 4), np.float32)),
        ValueError,
        "data: expected at least one example, got 0",
    ),
    (
        "hint: a dict of arrays with different leading sizes",
        lambda: _fit(
            data={"x": _X, "y": np.zeros(15)}, loss_fn=lambda p, b, k: _LOSS(p, b["x"], k)
        ),
        ValueError,
        r"one shared leading dimension \(the examples\).*data\['x'\]: 16, data\['y'\]: 15",
    ),
    # --- fit's options
    (
        "a batch_size larger than the dataset",
        lambda: _fit(batch_size=64),
        ValueError,
        "batch_size: 64 is larger than num_examples 16",
    ),
    (
        "fixed: a batch_size larger than the dataset with remainder='keep'",
        lambda: _fit(batch_size=64, remainder="keep"),
        ValueError,
        "batch_size: 64 is larger than num_examples 16; use batch_size <= 16",
    ),
    ("epochs=0", lambda: _fit(epochs=0), ValueError, "epochs: expected a positive integer, got 0"),
    (
        "negative epochs",
        lambda: _fit(epochs=-3),
        ValueError,
        "epochs: expected a positive integer, got -3",
    ),
    (
        "a float batch_size",
        lambda: _fit(batch_size=8.0),
        ValueError,
        "batch_size: expected a positive integer, got 8.0",
    ),
    (
        "more devices than there are",
        lambda: _fit(devices=len(jax.devices()) + 1),
        ValueError,
        "devices: asked for .* devices, but only",
    ),
    (
        "a batch_size the device count does not divide",
        lambda: jaxae.parallel.check_divisible(10, 4),
        ValueError,
        r"batch_size: a global batch of 10 examples cannot be split evenly over 4 devices.*8 or 12",
    ),
    (
        "optax.adam uncalled",
        lambda: _fit(optimizer=optax.adam),
        TypeError,
        "optimizer: expected an optax.GradientTransformation, got the function adam uncalled",
    ),
    (
        "fixed: a learning-rate schedule passed as the optimizer",
        lambda: _fit(optimizer=optax.exponential_decay(0.1, 10, 0.9)),
        TypeError,
        r"got a function made by exponential_decay \(a learning-rate schedule\?\).*optax\.adam",
    ),
    (
        "fixed: callbacks given as a class",
        lambda: _fit(callbacks=[jaxae.EarlyStopping]),
        TypeError,
        r"callbacks: got the class EarlyStopping, not an instance; pass EarlyStopping\(\.\.\.\)",
    ),
    (
        "fixed: a loss_fn without the key argument",
        lambda: _fit(loss_fn=lambda params, batch: _LOSS(params, batch, None)),
        TypeError,
        r"loss_fn: expected a function of \(params, batch, key\), got one of \(params, batch\)$",
    ),
    (
        "fixed: a Linen loss without model_state",
        _linen_fit_without_model_state,
        TypeError,
        r"loss_fn: expected a function of \(params, batch, key\), got one of \(params, "
        r"model_state, batch, key\).*needs model_state=",
    ),
    # --- params
    (
        "fixed: integer parameters",
        lambda: _fit(
            params={"w": jnp.zeros(4, jnp.int32)}, loss_fn=lambda p, b, k: (b @ p["w"]).mean()
        ),
        TypeError,
        r"params\['w'\]: expected a floating dtype \(loss_fn is differentiated",
    ),
    (
        "fixed: the model passed as params",
        lambda: _fit(params=_MLP),
        TypeError,
        r"params: expected a PyTree of arrays, got a MLPAutoencoder \(a model\?\).*model\.init",
    ),
    (
        "fixed: model.init passed uncalled as params",
        lambda: _fit(params=_MLP.init),
        TypeError,
        r"params: expected a PyTree of arrays, got the method init uncalled; call it",
    ),
    (
        "params of another MLP",
        lambda: jaxae.MLPAutoencoder((4, 3)).encode(_MLP.init(_KEY), _X),
        ValueError,
        r"params\['encoder'\]\[0\]\['w'\]: expected shape \(4, 3\).*another model",
    ),
    (
        "fixed: params of another VAE",
        lambda: jaxae.MLPVAE((4, 3, 3)).encode(_vae().init(_KEY), _X),
        ValueError,
        r"params\['decoder'\]\[0\]\['w'\]: expected shape \(3, 3\) for MLPVAE.*another model",
    ),
    (
        "fixed: MLP params given to a VAE",
        lambda: _vae().encode(_MLP.init(_KEY), _X),
        ValueError,
        r"params: expected keys 'decoder', 'encoder', 'log_variance', 'mean' for the "
        r"parameters of MLPVAE.*got keys 'decoder', 'encoder'; were these params made for another",
    ),
    # --- shapes given to the models
    (
        "hint: a single unbatched example to encode",
        lambda: _MLP.encode(_MLP.init(_KEY), _X[0]),
        ValueError,
        r"x: expected rank 2, got shape \(4,\); a single example\? add the batch axis: x\[None\]",
    ),
    (
        "hint: unflattened images to an MLP",
        lambda: _MLP.encode(_MLP.init(_KEY), _X.reshape(16, 2, 2)),
        ValueError,
        r"got shape \(16, 2, 2\); flatten each example: x\.reshape\(len\(x\), -1\)",
    ),
    (
        "channels-first NCHW images to a channels-last conv model",
        lambda: _conv().init(_KEY, jnp.zeros((2, 1, 8, 8))),
        ValueError,
        r"looks channels-first \[batch, C, H, W\].*x\.transpose\(0, 2, 3, 1\)",
    ),
    (
        "an image of the wrong H x W",
        lambda: _conv().init(_KEY, jnp.zeros((2, 6, 6, 1))),
        ValueError,
        r"x: expected images \[batch, 8, 8, 1\] \(channels last\), got shape \(2, 6, 6, 1\)",
    ),
    (
        "hint: grey images without a channel axis",
        lambda: _conv().init(_KEY, jnp.zeros((2, 8, 8))),
        ValueError,
        r"got shape \(2, 8, 8\); no channel axis\? add it: x\[\.\.\., None\]",
    ),
    (
        "fixed: grey images without a channel axis to a ConvVAE (it said: add the batch axis)",
        lambda: _conv_vae().posterior(_conv_vae().init(_KEY), jnp.zeros((2, 8, 8))),
        ValueError,
        r"got shape \(2, 8, 8\); no channel axis\? add it: x\[\.\.\., None\]",
    ),
    (
        "fixed: 8-bit images to a VAE's dynamically binarised loss inside fit (it trained)",
        lambda: _fit(
            params=_vae().init(_KEY),
            data=_X * 255,
            loss_fn=jaxae.variational_loss(_vae()),
            has_aux=True,
        ),
        jaxae.InvalidDataError,
        r"x: expected values in \[0\.0, 1\.0\].*divide them by 255",
    ),
    (
        "fixed: PCA inputs of the wrong width (it broadcast them)",
        lambda: jaxae.pca_encode(jaxae.fit_pca(_X, 2), _X[:, :1]),
        ValueError,
        r"x: expected last dimension 4, got shape \(16, 1\)",
    ),
    (
        "fixed: one packed query to hamming_distance (it said: integer labels)",
        lambda: jaxae.retrieval.hamming_distance(_WORDS[0], _WORDS),
        ValueError,
        r"query_words: expected rank 2.*a single example\? add the batch axis",
    ),
    (
        "hint: a single image to a conv model",
        lambda: _conv().init(_KEY, jnp.zeros((8, 8, 1))),
        ValueError,
        r"got shape \(8, 8, 1\); a single image\? add the batch axis: x\[None\]",
    ),
    (
        "hint: time-major sequences [T, B, D] to an LSTM",
        lambda: _lstm()[0].loss(_lstm()[1], jnp.zeros((4, 5, 4))),
        ValueError,
        r"got shape \(4, 5, 4\); time-major .*x\.transpose\(1, 0, 2\)",
    ),
    (
        "hint: unflattened frames [B, T, H, W] to an LSTM",
        lambda: _lstm()[0].loss(_lstm()[1], jnp.zeros((5, 4, 2, 2))),
        ValueError,
        r"frames are not flattened; use x\.reshape\(len\(x\), 4, 4\)",
    ),
    # --- losses, regularizers, noise, RBMs, VAEs, retrieval, data
    (
        "hint: uint8 images in [0, 255] to a Bernoulli loss",
        lambda: jaxae.sigmoid_cross_entropy(jnp.zeros((2, 4)), np.full((2, 4), 200, np.uint8)),
        ValueError,
        r"targets: expected values in \[0.0, 1.0\], got values in \[200, 200\]; 8-bit images",
    ),
    (
        "hint: images in [0, 255] to a Bernoulli RBM stack",
        lambda: jaxae.pretrain_rbm_stack(_X * 255, (4, 3), key=_KEY, progress=False),
        ValueError,
        r"x: expected values in \[0.0, 1.0\].*divide them by 255",
    ),
    ("k <= 0 in k-sparse", lambda: jaxae.k_sparse(jnp.ones((2, 3)), k=0), ValueError, "k: exp"),
    (
        "a noise rate outside [0, 1]",
        lambda: jaxae.masking_noise(_KEY, _X, rate=1.5),
        ValueError,
        r"rate: expected a value in \[0, 1\], got 1.5",
    ),
    (
        "an IWAE bound with num_samples=0",
        lambda: jaxae.iwae_bound(_vae(), _vae().init(_KEY), _X, _KEY, num_samples=0),
        ValueError,
        "num_samples: expected a positive integer, got 0",
    ),
    (
        "a retrieval query of another dimension than the database",
        lambda: jaxae.retrieval.nearest_neighbors(_X[:2, :3], _X, k=2),
        ValueError,
        "queries and database: expected the same code length, got 3 and 4",
    ),
    (
        "fixed: NaN codes in retrieval",
        lambda: jaxae.retrieval.nearest_neighbors(np.full((2, 4), np.nan, np.float32), _X, k=2),
        ValueError,
        "queries: expected finite values, found 8 NaN/inf entries",
    ),
    (
        "a dataset name in the wrong case",
        lambda: jaxae.data.load("MNIST"),
        ValueError,
        "name: expected one of mnist, .*got 'MNIST'",
    ),
]


@pytest.mark.parametrize(
    "call, error, words", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_mistake_is_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_the_count_in_the_docstring():
    fixed = [m for m in MISTAKES if m[0].startswith("fixed:")]
    hints = [m for m in MISTAKES if m[0].startswith("hint:")]
    assert (len(MISTAKES), len(fixed), len(hints), len(ACCEPTED) + 3) == (46, 17, 12, 7)


ACCEPTED = {
    "a legacy jax.random.PRNGKey": lambda: _fit(key=jax.random.PRNGKey(0)),
    "float64 data": lambda: _fit(data=_X.astype(np.float64)),
    "a learning-rate schedule inside the optimizer": lambda: _fit(
        optimizer=optax.adam(optax.exponential_decay(0.1, 10, 0.9))
    ),
    "a mesh of one device": lambda: _fit(mesh=jaxae.parallel.data_mesh(1)),
}


@pytest.mark.parametrize("call", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_accepted(call):
    result = call()
    assert len(result.history) == 1
    w = result.params["encoder"][0]["w"]
    assert w.dtype == jnp.float32 and np.all(np.isfinite(w))


def test_accepted_pathlib_checkpoint_dir_resumes(tmp_path):
    directory = tmp_path / "ckpt"
    assert isinstance(directory, pathlib.Path)
    _fit(checkpoint_dir=directory, epochs=1)
    resumed = _fit(checkpoint_dir=directory, epochs=2)
    assert len(resumed.history) == 2 and resumed.resumed_epochs == 1


def test_accepted_numpy_integer_sizes():
    n = np.prod(np.zeros((1, 2, 2)).shape[1:])  # np.int64(4), as shapes give sizes
    two = jaxae.TwoStochasticLayerVAE(n, (n,), 3, (n,), 2)
    for model, sizes in (
        (jaxae.MLPAutoencoder((n, 2)), lambda m: m.sizes),
        (jaxae.MLPVAE((n, 3, 2)), lambda m: m.sizes),
        (two, lambda m: (m.input_size, *m.hidden_1, *m.hidden_2)),
    ):
        params = model.init(_KEY)
        assert model.decode(params, model.encode(params, _X)).shape == (16, 4)
        assert all(type(v) is int for v in sizes(model))  # converted: hashable, JSON-able


def test_accepted_overcomplete_code_and_legacy_key_in_init():
    model = jaxae.MLPAutoencoder((4, 8))
    params = model.init(jax.random.PRNGKey(0))
    assert model.encode(params, _X).shape == (16, 8)


# ------------------------------------------------------------------------------------------------
# NaN and out-of-range values: eagerly, under jit, inside fit.


def test_gaussian_log_likelihood_nan_eagerly_under_jit_and_inside_fit():
    ok = jnp.full((2, 3), 0.5)
    x = ok.at[1, 2].set(jnp.nan)
    with pytest.raises(ValueError, match="x: expected finite values, found 1 NaN/inf"):
        jaxae.gaussian_log_likelihood(ok, ok, x)
    with pytest.raises(ValueError, match="mean: expected finite values"):
        jaxae.gaussian_log_likelihood(x, ok, ok)
    out = jax.jit(jaxae.gaussian_log_likelihood)(ok, ok, x)
    assert np.isfinite(out[0]) and np.isnan(out[1])  # only the example with NaN

    def loss(params, batch, key):
        del key
        return -jaxae.gaussian_log_likelihood(batch @ params["w"], batch * 0, batch).mean()

    with pytest.raises(ValueError, match=r"data: expected finite values, found NaN"):
        _fit(params={"w": jnp.eye(4)}, data=np.where(_X > 0.9, np.nan, _X), loss_fn=loss)


@pytest.mark.parametrize("visible", ["bernoulli", "softmax"])
def test_free_energy_out_of_range_or_nan_is_nan_under_jit_never_a_wrong_number(visible):
    spec = rbm.RBMSpec(2, 3, visible=visible)
    params = rbm.init_rbm(_KEY, spec)
    v = jnp.array([[1.0, 0.0], [3.5, 0.0], [0.0, jnp.nan]])
    fe = jax.jit(functools.partial(rbm.free_energy, spec=spec))(params, v)
    assert np.isfinite(fe[0]) and np.isnan(fe[1]) and np.isnan(fe[2])
    with pytest.raises(ValueError, match="v: expected"):
        rbm.free_energy(params, v[1:2], spec=spec)
    with pytest.raises(ValueError, match="v: expected finite values"):
        rbm.free_energy(params, v[2:], spec=spec)
    for fn in (rbm.reconstruction_error, functools.partial(rbm.log_likelihood, log_z=0.0)):
        out = jax.jit(functools.partial(fn, spec=spec))(params, v)
        assert np.isfinite(out[0]) and np.isnan(out[1])
    # The hidden layer of an invalid example: NaN too (it fed a stack's next layer before).
    for h in (
        jax.jit(functools.partial(rbm.hidden_mean, spec=spec))(params, v),
        jax.jit(functools.partial(rbm.sample_hidden, spec=spec))(params, v, _KEY),
    ):
        assert h.shape == (3, 3) and np.all(np.isfinite(h[0])) and np.all(np.isnan(h[1:]))


def test_gaussian_free_energy_nan_is_nan_under_jit():
    spec = rbm.RBMSpec(2, 3, visible="gaussian")
    params = rbm.init_rbm(_KEY, spec)
    v = jnp.array([[3.5, -2.0], [0.0, jnp.nan]])
    fe = jax.jit(functools.partial(rbm.free_energy, spec=spec))(params, v)
    assert np.isfinite(fe[0]) and np.isnan(fe[1])  # any real value is in range


def test_free_energy_loss_in_fit_on_0_255_data_names_the_check():
    params = rbm.init_rbm(_KEY, _SPEC)

    def loss(params, batch, key):
        del key
        return rbm.free_energy(params, batch, spec=_SPEC).mean()

    with pytest.raises(jaxae.InvalidDataError, match=r"v: expected values in \[0, 1\] for a bern"):
        _fit(params=params, data=_X * 255, loss_fn=loss)
