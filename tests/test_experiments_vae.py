"""The VAE experiment's quick mode, end to end on real MNIST (what CI runs)."""

import jax
import numpy as np
import pytest
from splits import unsliced

import jaxae
from experiments import vae
from jaxae import results


@pytest.mark.slow
def test_vae_quick_learns_a_density_and_records_the_paper(tmp_path):
    out, results_dir = tmp_path / "out", tmp_path / "results"
    metrics = unsliced(
        vae.main(["--quick", "--no-progress", "--out", str(out), "--results-dir", str(results_dir)])
    )
    # Baseline: independent pixels with the training set's mean grey levels (about 206 nats).
    p = np.clip(jaxae.data.load("mnist", "train[:10000]").flat.mean(axis=0), 1e-3, 1 - 1e-3)
    baseline = -float(np.sum(p * np.log(p) + (1 - p) * np.log(1 - p)))
    # Row names carry the epochs trained (quick: 6 for the VAE; the IWAE 1 of the ELBO, then 2).
    iwae = "IWAE k=5, 2 epochs after 1 ELBO epoch"
    for label in ("VAE k=1, 6 epochs", iwae):
        nll = metrics[f"{label}/NLL, k=100 importance samples (nats)/test"]  # test[:300]
        neg_elbo = metrics[f"{label}/-ELBO (nats)/test"]
        neg_iwae = metrics[f"{label}/-IWAE bound, k=10 (nats)/test"]
        assert np.isfinite(nll) and 60.0 < nll < baseline - 20.0, (label, nll, baseline)
        assert neg_elbo > neg_iwae, (label, neg_elbo, neg_iwae)  # ELBO ≤ IWAE bound
        assert 1 <= metrics[f"{label}/active units (of 50)/test"] <= 50
    for name in ("samples.png", "reconstructions.png", "interpolation.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "latent_2d_manifold.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results.read_results(results_dir / "vae.json")
    paper = {row["model"]: row["paper_value"] for row in rows if row["paper_value"] is not None}
    assert paper == {"VAE k=1, 6 epochs": 86.76, iwae: 85.54}
    assert metrics[f"{iwae}/training wall time, 3 epochs (s)/train"] > 0
    assert {row["mode"] for row in rows} == {"quick"}


def test_optimizer_offset_continues_the_learning_rate_schedule():
    # Adam's first update is -lr · g / (|g| + eps) ≈ -lr for |g| ≫ eps: it reads off the rate.
    config = vae.Config()  # lr 1e-3 decayed to 1e-4 over the steps
    params = {"w": np.zeros(3, np.float32)}
    grads = {"w": np.full(3, 10.0, np.float32)}
    for offset, rate in [(0, 1e-3), (50, 1e-3 * 0.1**0.5), (100, 1e-4)]:
        optimizer = vae.optimizer(config, steps=100, steps_per_epoch=10, offset=offset)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        np.testing.assert_allclose(updates["w"], -rate, rtol=1e-4)


def test_paper_schedule_steps_down_by_a_seventh_decade_after_3_to_the_i_epochs():
    schedule = vae.paper_schedule(1e-3, steps_per_epoch=2)
    # Stage i starts after 1 + 3 + ... + 3^(i-1) epochs: steps 2, 8, 26, ...; 3,280 epochs in all.
    for step, stage in [(0, 0), (1, 0), (2, 1), (7, 1), (8, 2), (25, 2), (26, 3), (6559, 7)]:
        np.testing.assert_allclose(schedule(step), 1e-3 * 10 ** (-stage / 7), rtol=1e-5)
    np.testing.assert_allclose(schedule(10**6), 1e-4, rtol=1e-5)  # the last rate holds


def test_rounded_paper_schedule_has_the_authors_code_rates():
    # github.com/yburda/iwae, experiments.py: 1e-4 · round(10^(1 - (i - 1)/7), 1) for i = 1..8.
    schedule = vae.paper_schedule(1e-3, steps_per_epoch=1, rounded=True)
    rates = [1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4]
    starts = [(3**i - 1) // 2 for i in range(8)]  # epochs 0, 1, 4, 13, 40, 121, 364, 1093
    for start, rate in zip(starts, rates, strict=True):
        np.testing.assert_allclose(schedule(start), rate, rtol=1e-6)
        np.testing.assert_allclose(schedule(start + 3 ** starts.index(start) - 1), rate, rtol=1e-6)
    np.testing.assert_allclose(schedule(10**6), 1e-4, rtol=1e-6)


def test_authors_adam_follows_their_theano_update():
    # github.com/yburda/iwae, optimizers.py (Adam.updatesIgrad_model) in NumPy, the descent
    # direction negated as optax's updates are, and the moments updated before the step (their
    # Theano step reads the previous moments, a one-step delay scale_by_authors_adam leaves out).
    # Their gradient is of the bound summed over the batch (iwae.py), ours of the batch mean.
    lr, b1, b2, eps, batch = 1e-3, 0.99, 0.999, 1e-4, 20
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(5, 4)).astype(np.float32) * np.array([1e-3, 1e-2, 0.1, 1.0])
    m, v, t = np.zeros(4), np.ones(4), 1
    config = vae.Config(adam="authors_code", lr=lr, final_lr=lr, batch_size=batch)
    optimizer = vae.optimizer(config, steps=5, steps_per_epoch=5)
    params = {"w": np.zeros(4, np.float32)}
    state = optimizer.init(params)
    steps = []
    for g in grads:
        m = b1 * m + (1 - b1) * batch * g
        v = b2 * v + (1 - b2) * (batch * g) ** 2
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        expected = -alpha * m / (np.sqrt(v) + eps)
        t += 1
        updates, state = optimizer.update({"w": g}, state, params)
        np.testing.assert_allclose(updates["w"], expected, rtol=2e-5)
        steps.append(np.asarray(updates["w"]))
    # Second moments starting at 1 damp the first step of a summed gradient well under 1 far below
    # optax.adam's (g / (|g| + eps), near lr for |g| ≫ eps).
    plain = vae.optimizer(vae.Config(lr=lr, final_lr=lr), steps=5, steps_per_epoch=5)
    first, _ = plain.update({"w": grads[0]}, plain.init(params), params)
    assert np.all(np.abs(steps[0][:2]) < 0.05 * np.abs(first["w"][:2])), (steps[0], first)


def test_unknown_adam_is_refused_naming_the_choices():
    with pytest.raises(SystemExit, match="authors_code"):
        vae.optimizer(vae.Config(adam="nadam"), steps=10, steps_per_epoch=5)


def test_unknown_schedule_is_refused_naming_the_choices():
    config = vae.Config(schedule="cosine")
    with pytest.raises(SystemExit, match="schedule: expected one of"):
        vae.optimizer(config, steps=10, steps_per_epoch=1)


def test_train_with_checkpoint_dir_resumes_each_stage_to_the_uninterrupted_result(tmp_path):
    x = np.asarray(jaxae.data.load("mnist", "train[:400]").flat)
    config = vae.Config(batch_size=100, checkpoint_every=2, schedule="paper")
    model = jaxae.MLPVAE((784, 16, 4))
    kwargs = dict(objective="iwae", num_samples=2, config=config, progress=False, desc="t")
    key = jax.random.key(0)
    whole = vae.train(model, x, epochs=3, warmup_epochs=2, key=key, **kwargs)
    ckpt = str(tmp_path / "ckpt")
    vae.train(model, x, epochs=1, warmup_epochs=2, key=key, checkpoint_dir=ckpt, **kwargs)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["main", "warmup"]
    resumed = vae.train(model, x, epochs=3, warmup_epochs=2, key=key, checkpoint_dir=ckpt, **kwargs)
    assert (resumed.epochs, resumed.warmup_epochs) == (3, 2)
    # The resumed call restored 2 warm-up and 1 main epochs: their time counts in its seconds.
    assert whole.resumed_seconds == 0.0 and resumed.resumed_seconds > 0.0
    assert resumed.seconds > resumed.resumed_seconds
    jax.tree.map(np.testing.assert_array_equal, whole.params, resumed.params)


def test_output_bias_data_mean_starts_training_from_the_mean_image():
    x = np.asarray(jaxae.data.load("mnist", "train[:400]").flat)
    model = jaxae.MLPVAE((784, 16, 4))
    losses = {}
    for output_bias in vae.OUTPUT_BIASES:
        config = vae.Config(batch_size=100, output_bias=output_bias)
        trained = vae.train(
            model,
            x,
            objective="elbo",
            num_samples=1,
            epochs=1,
            config=config,
            key=jax.random.key(0),
            progress=False,
            desc=output_bias,
        )
        losses[output_bias] = trained.loss
    # Four steps from the mean image stay far below four steps from 0.5 everywhere (-log 0.5
    # per pixel is 543 nats an image).
    assert losses["data_mean"] < losses["zero"] - 50.0, losses


def test_unknown_output_bias_is_refused_before_the_data_loads(monkeypatch, tmp_path):
    def never(*args, **kwargs):
        raise AssertionError("MNIST was read before the settings were checked")

    monkeypatch.setattr(vae, "load_mnist_splits", never)
    argv = ["--quick", "--no-progress", "--set", "output_bias=ones", "--out", str(tmp_path)]
    with pytest.raises(SystemExit, match=r"output_bias: expected one of \('zero', 'data_mean'\)"):
        vae.main([*argv, "--results-dir", str(tmp_path / "results")])
