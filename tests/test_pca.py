import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxae


def _data(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.1, d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales @ rotation.T + 1.5).astype(np.float32)


def test_fit_pca_matches_numpy_eigendecomposition():
    x = _data()
    pca = jax.jit(jaxae.fit_pca, static_argnums=1)(x, 4)
    xc = x.astype(np.float64) - x.mean(0)
    evals, evecs = np.linalg.eigh(xc.T @ xc / len(x))
    np.testing.assert_allclose(pca.variances, evals[::-1][:4], rtol=1e-4)
    cos = np.abs(np.sum(np.asarray(pca.components) * evecs[:, ::-1][:, :4].T, axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


def test_pca_reconstruction_error_is_sum_of_discarded_variances():
    x = _data()
    pca = jaxae.fit_pca(x, 5)
    full = jaxae.fit_pca(x, 12)
    recon = jaxae.pca_decode(pca, jaxae.pca_encode(pca, x))
    err = float(jaxae.squared_error(recon, x).mean())
    np.testing.assert_allclose(err, float(full.variances[5:].sum()), rtol=1e-3)


def test_principal_angle_cosines_of_rotated_basis_are_one_and_orthogonal_are_zero():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 3)))
    mixed = basis @ rng.normal(size=(3, 3))
    np.testing.assert_allclose(jaxae.principal_angle_cosines(basis, mixed), 1.0, atol=1e-5)
    q, _ = np.linalg.qr(rng.normal(size=(10, 6)))
    cos = jax.jit(jaxae.principal_angle_cosines)(q[:, :3], q[:, 3:])
    np.testing.assert_allclose(cos, 0.0, atol=1e-5)


def test_principal_angle_of_known_angle():
    theta = 0.3
    a = np.array([[1.0], [0.0]], np.float32)
    b = np.array([[np.cos(theta)], [np.sin(theta)]], np.float32)
    np.testing.assert_allclose(jaxae.principal_angle_cosines(a, b), [np.cos(theta)], rtol=1e-6)


def test_components_recovered_from_any_basis_of_the_principal_subspace():
    x = _data()
    pca = jaxae.fit_pca(x, 4)
    rng = np.random.default_rng(2)
    mixing = rng.normal(size=(4, 4)).astype(np.float32)
    decoder_w = mixing @ np.asarray(pca.components)  # [k, features]: a skewed basis
    recovered = jaxae.principal_components_from_decoder(decoder_w, x)
    np.testing.assert_allclose(recovered.variances, pca.variances, rtol=1e-4)
    cos = np.abs(np.sum(np.asarray(recovered.components) * np.asarray(pca.components), axis=1))
    np.testing.assert_allclose(cos, 1.0, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"n_components: expected at most min\(n, features\) = 3"):
        jaxae.fit_pca(jnp.zeros((3, 5)), 4)
    with pytest.raises(ValueError, match="x: expected finite values"):
        jaxae.fit_pca(jnp.full((3, 5), jnp.nan), 2)
    with pytest.raises(ValueError, match="a and b: expected the same number of rows"):
        jaxae.principal_angle_cosines(jnp.ones((3, 1)), jnp.ones((4, 1)))
    with pytest.raises(ValueError, match="x: expected last dimension 5"):
        jaxae.principal_components_from_decoder(jnp.ones((2, 5)), jnp.ones((10, 6)))


# Logistic PCA


def _logistic_pca_objective(model, codes, x, l2):
    """The fitted objective in float64: summed cross-entropy plus the ridge on every factor."""
    u, v, b = (np.asarray(a, np.float64) for a in (codes, model.components, model.bias))
    theta = u @ v + b
    data = np.sum(np.logaddexp(0.0, theta) - np.asarray(x, np.float64) * theta)
    return data + 0.5 * l2 * (np.sum(u**2) + np.sum(v**2) + np.sum(b**2))


def _low_rank_logistic(n=300, d=20, k=2, seed=0):
    """Probabilities sigmoid(U Vᵀ + b) of an exact rank-k logistic model."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, k)) @ (3.0 * rng.normal(size=(k, d))) + rng.normal(size=d)
    return (1.0 / (1.0 + np.exp(-theta))).astype(np.float32)


def _binary_data(n=60, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) < _low_rank_logistic(n, d, 2, seed)).astype(np.float32)
    x[:, 0] = 0.0  # a feature that is never on: only the ridge keeps its bias finite
    x[: n // 2, 1] = 0.5  # soft targets
    return x


def test_logistic_pca_encode_matches_scipy_on_each_examples_convex_problem():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    k, d, l2 = 3, 12, 0.3
    model = jaxae.LogisticPCA(
        components=rng.normal(size=(k, d)).astype(np.float32),
        bias=rng.normal(size=d).astype(np.float32),
    )
    x = _binary_data(n=8, d=d, seed=1)
    encode = jax.jit(lambda m, x: jaxae.logistic_pca_encode(m, x, iterations=30, l2=l2))
    codes = np.asarray(encode(model, x))
    assert codes.shape == (8, k)
    v, b = np.asarray(model.components, np.float64), np.asarray(model.bias, np.float64)
    for row, code in zip(x.astype(np.float64), codes, strict=True):

        def objective(u, row=row):
            theta = u @ v + b
            value = np.sum(np.logaddexp(0.0, theta) - row * theta) + 0.5 * l2 * u @ u
            return value, v @ (1.0 / (1.0 + np.exp(-theta)) - row) + l2 * u

        ref = minimize(objective, np.zeros(k), jac=True, method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(code, ref.x, atol=2e-4)
        assert objective(code.astype(np.float64))[0] <= ref.fun + 1e-4


def test_logistic_pca_encode_never_overshoots_where_plain_newton_diverges():
    # Large loadings, a strongly negative bias and a weak ridge: plain Newton steps from u = 0
    # overshoot and the objective grows a thousandfold; every damped step lowers it.
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    k, d, l2 = 3, 12, 0.01
    v = 5.0 * rng.normal(size=(k, d))
    model = jaxae.LogisticPCA(v.astype(np.float32), np.full(d, -6.0, np.float32))
    x = _binary_data(n=20, d=d, seed=1).astype(np.float64)

    def objective(u, x=x):  # [n] one value per example: u [n, k], x [n, d]
        theta = u @ v - 6.0
        return np.sum(np.logaddexp(0.0, theta) - x * theta, axis=-1) + 0.5 * l2 * np.sum(u**2, -1)

    values = [
        objective(np.asarray(jaxae.logistic_pca_encode(model, x, iterations=i, l2=l2), np.float64))
        for i in range(0, 41, 4)
    ]
    for before, after in zip(values, values[1:], strict=False):
        assert np.all(after <= before + 1e-4 * np.abs(before)), (before, after)
    best = [minimize(objective, np.zeros(k), args=(row,)).fun for row in x]
    np.testing.assert_allclose(values[-1], best, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(60, 12), (8, 12)])  # the PCA start from either Gram matrix
def test_logistic_pca_objective_falls_below_the_start_and_with_more_iterations(shape):
    x = _binary_data(*shape)
    losses = []
    for iterations in (0, 1, 5, 30):
        model, codes = jaxae.fit_logistic_pca(x, 3, iterations=iterations, l2=0.1)
        assert model.components.shape == (3, shape[1]) and model.bias.shape == (shape[1],)
        assert codes.shape == (shape[0], 3)
        losses.append(_logistic_pca_objective(model, codes, x, 0.1))
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.7 * losses[0], losses
    assert np.isfinite(float(model.bias[0])) and float(model.bias[0]) < -3.0  # never-on feature
    fit = jax.jit(jaxae.fit_logistic_pca, static_argnames=("n_components", "iterations", "l2"))
    jitted, jitted_codes = fit(x, n_components=3, iterations=30, l2=0.1)
    np.testing.assert_allclose(_logistic_pca_objective(jitted, jitted_codes, x, 0.1), losses[-1])


def test_fitted_logistic_pca_is_a_stationary_point_of_its_objective():
    x = _binary_data()
    l2 = 0.1
    model, codes = jaxae.fit_logistic_pca(x, 3, iterations=100, l2=l2)

    def objective(params):
        u, v, b = params
        theta = u @ v + b[None, :]
        ridge = 0.5 * l2 * (jnp.sum(u**2) + jnp.sum(v**2) + jnp.sum(b**2))
        return jnp.sum(jax.nn.softplus(theta) - x * theta) + ridge

    grads = jax.grad(objective)((codes, model.components, model.bias))
    start, start_codes = jaxae.fit_logistic_pca(x, 3, iterations=0, l2=l2)
    start_grads = jax.grad(objective)((start_codes, start.components, start.bias))
    norm = lambda tree: float(jnp.sqrt(sum(jnp.sum(g**2) for g in tree)))  # noqa: E731
    assert norm(grads) < 1e-3 * norm(start_grads), (norm(grads), norm(start_grads))


def test_logistic_pca_recovers_a_rank_k_logistic_model_that_pca_cannot():
    probs = _low_rank_logistic(n=300, d=20, k=2)
    model, codes = jaxae.fit_logistic_pca(probs, 2, iterations=100, l2=1e-3)
    recon = jaxae.logistic_pca_decode(model, codes)
    logistic_err = float(jaxae.squared_error(recon, probs).mean())
    pca = jaxae.fit_pca(probs, 2)
    pca_err = float(
        jaxae.squared_error(jaxae.pca_decode(pca, jaxae.pca_encode(pca, probs)), probs).mean()
    )
    assert logistic_err < 0.05 * pca_err, (logistic_err, pca_err)
    # New data from the same model is encoded as well as the training data was fitted.
    fresh = _low_rank_logistic(n=300, d=20, k=2, seed=0)[:50]
    encoded = jaxae.logistic_pca_encode(model, fresh, iterations=50, l2=1e-3)
    fresh_err = float(jaxae.squared_error(jaxae.logistic_pca_decode(model, encoded), fresh).mean())
    assert fresh_err < 0.05 * pca_err, (fresh_err, pca_err)


def test_logistic_pca_decode_is_the_sigmoid_of_the_logits():
    rng = np.random.default_rng(3)
    model = jaxae.LogisticPCA(
        rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    )
    codes = rng.normal(size=(4, 2)).astype(np.float32)
    logits = jax.jit(lambda m, c: jaxae.logistic_pca_decode(m, c, logits=True))(model, codes)
    np.testing.assert_allclose(logits, codes @ model.components + model.bias, rtol=1e-5)
    probs = jax.jit(jaxae.logistic_pca_decode)(model, codes)
    np.testing.assert_allclose(probs, 1.0 / (1.0 + np.exp(-np.asarray(logits))), rtol=1e-5)


def test_logistic_pca_bad_inputs():
    x = _binary_data(n=10, d=6)
    with pytest.raises(ValueError, match="x: expected finite values"):
        jaxae.fit_logistic_pca(np.where(x > 0, np.nan, x), 2)
    with pytest.raises(ValueError, match=r"x: expected values in \[0.0, 1.0\].*divide them by 255"):
        jaxae.fit_logistic_pca(x * 255, 2)
    with pytest.raises(ValueError, match=r"x: expected values in \[0.0, 1.0\], got values in \[-1"):
        jaxae.fit_logistic_pca(x - 1, 2)
    with pytest.raises(ValueError, match="x: expected rank 2, got shape"):
        jaxae.fit_logistic_pca(x.reshape(10, 2, 3), 2)
    with pytest.raises(TypeError, match="x: expected a floating dtype"):
        jaxae.fit_logistic_pca(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match=r"n_components: expected at most min\(n, features\) = 6"):
        jaxae.fit_logistic_pca(x, 7)
    with pytest.raises(ValueError, match="n_components: expected a positive integer, got 0"):
        jaxae.fit_logistic_pca(x, 0)
    with pytest.raises(ValueError, match="iterations: expected a non-negative integer, got -1"):
        jaxae.fit_logistic_pca(x, 2, iterations=-1)
    with pytest.raises(ValueError, match="iterations: expected a non-negative integer, got 2.5"):
        jaxae.fit_logistic_pca(x, 2, iterations=2.5)
    with pytest.raises(ValueError, match="l2: expected a positive finite number, got 0.0"):
        jaxae.fit_logistic_pca(x, 2, l2=0.0)
    model, _ = jaxae.fit_logistic_pca(x, 2, iterations=1)
    with pytest.raises(ValueError, match="x: expected last dimension 6, got shape"):
        jaxae.logistic_pca_encode(model, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"x: expected values in \[0.0, 1.0\]"):
        jaxae.logistic_pca_encode(model, x + 1.0)
    with pytest.raises(ValueError, match="l2: expected a positive finite number, got -1"):
        jaxae.logistic_pca_encode(model, x, l2=-1)
    with pytest.raises(
        TypeError, match="model: expected a LogisticPCA from fit_logistic_pca, got PCA"
    ):
        jaxae.logistic_pca_encode(jaxae.fit_pca(x, 2), x)
    with pytest.raises(ValueError, match="codes: expected last dimension 2, got shape"):
        jaxae.logistic_pca_decode(model, np.zeros((3, 4), np.float32))


def _largest_entry_signs(components):
    components = np.asarray(components)
    return np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])


def test_components_have_a_fixed_sign_their_largest_entry_positive():
    """The documented sign convention, so two fits (or a fit and a recovery from a decoder with
    either orientation) give the same vectors, not the same vectors up to sign."""
    x = _data()
    pca = jaxae.fit_pca(x, 4)
    np.testing.assert_array_equal(_largest_entry_signs(pca.components), 1.0)
    np.testing.assert_array_equal(_largest_entry_signs(jaxae.fit_pca(-x, 4).components), 1.0)
    rng = np.random.default_rng(5)
    for mixing in (rng.normal(size=(4, 4)), -rng.normal(size=(4, 4))):
        decoder_w = mixing.astype(np.float32) @ np.asarray(pca.components)
        recovered = jaxae.principal_components_from_decoder(decoder_w, x)
        np.testing.assert_array_equal(_largest_entry_signs(recovered.components), 1.0)
        np.testing.assert_allclose(recovered.components, pca.components, atol=1e-4)
