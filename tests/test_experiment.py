"""jaxae.experiment: --set overrides parsed by each config field's type (simple_parsing),
the opening of every main(argv), and the run record."""

import dataclasses
import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxae
from jaxae import experiment, results
from jaxae.experiment import apply_overrides


@dataclasses.dataclass(frozen=True)
class _Config:
    epochs: int = 10
    lr: float = 1e-3
    tied: bool = False
    models: tuple[str, ...] = ("ae", "cae")
    name: str = "a,b"
    sizes: tuple[int, ...] = (784, 1000)
    address_sizes: tuple[int, ...] | None = None
    limit: int | None = None
    noise: float | None = None


def test_overrides_parse_by_field_type():
    config = apply_overrides(
        _Config(),
        [
            "epochs=3",
            "lr=0.5",
            "tied=true",
            "models=cae,dae",
            "sizes=784,500,30",
            "name=x,y",
            "limit=100",
        ],
    )
    assert config == _Config(
        epochs=3,
        lr=0.5,
        tied=True,
        models=("cae", "dae"),
        sizes=(784, 500, 30),
        limit=100,
        name="x,y",
    )


def test_optional_fields_take_values_of_their_annotated_type_and_none():
    config = apply_overrides(_Config(), ["address_sizes=2000,500,20", "noise=4", "limit=none"])
    assert config.address_sizes == (2000, 500, 20)
    assert config.noise == 4.0 and isinstance(config.noise, float)
    assert config.limit is None
    assert apply_overrides(config, ["address_sizes=None"]).address_sizes is None
    assert apply_overrides(config, ["models="]).models == ()


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("nope=1", "expected NAME=VALUE"),
        ("epochs", "expected NAME=VALUE"),
        ("tied=maybe", r"--set 'tied=maybe'.*Boolean value expected"),
        ("epochs=2.5", r"--set 'epochs=2.5'.*invalid int value"),
        ("sizes=784,x", r"--set 'sizes=784,x'.*invalid int value"),
    ],
)
def test_bad_overrides_name_the_assignment(assignment, message):
    with pytest.raises(SystemExit, match=message):
        apply_overrides(_Config(), [assignment])


QUICK = _Config(epochs=1)


def test_parse_picks_the_quick_config_then_applies_overrides(tmp_path):
    script = str(tmp_path / "paper.py")
    args, config = experiment.parse(
        script, "Paper (2006).\n\nMore.", ["--quick", "--set", "lr=0.1"], config=_Config(),
        quick=QUICK,
    )  # fmt: skip
    assert config == _Config(epochs=1, lr=0.1)
    assert args.results_dir == str(tmp_path / "results") and not hasattr(args, "validation")
    args, config = experiment.parse(
        script, None, ["--validation"], config=_Config(), validation=True
    )
    assert args.validation and config == _Config()


def test_image_rows_figure_value_range_fixes_the_grey_scale():
    images = np.full((2, 16), 0.25)
    fixed = experiment.image_rows_figure({"p": images}, side=4, value_range=(0.0, 1.0))
    scaled = experiment.image_rows_figure({"p": images}, side=4)
    norm = fixed.axes[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (0.0, 1.0)
    assert scaled.axes[0].images[0].norm.vmax == 0.25  # autoscaled to the image's own values
    experiment.pyplot().close(fixed)
    experiment.pyplot().close(scaled)


def test_run_writes_rows_metrics_and_log(tmp_path):
    args, config = experiment.parse(
        str(tmp_path / "paper.py"), "Paper.", ["--quick", "--out", str(tmp_path / "out")],
        config=_Config(), quick=QUICK,
    )  # fmt: skip
    run = experiment.Run("paper", args, config)
    run.record("model", "error", 1.5, paper_value=1.0, paper_source="Paper 2006")
    fig = experiment.image_rows_figure({"digits": np.zeros((3, 784))})
    assert run.save_figure(fig, "digits.png").read_bytes()[:4] == b"\x89PNG"
    path = run.finish()
    assert path == tmp_path / "results" / "paper.json"
    (row,) = results.read_results(path)
    assert (row["model"], row["value"], row["paper_value"], row["mode"]) == (
        "model", 1.5, 1.0, "quick"
    )  # fmt: skip
    assert run.metrics == {"model/error/test": 1.5}
    assert (tmp_path / "out" / "metrics.json").exists() and (tmp_path / "out" / "log.txt").exists()


def test_a_run_made_in_pieces_records_the_earlier_pieces_training_time(tmp_path):
    ckpt = tmp_path / "ckpt"
    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    model = jaxae.MLPAutoencoder((6, 3))

    def loss_fn(params, batch, key):
        del key
        return jaxae.squared_error(model.reconstruct(params, batch), batch).mean()

    fit = functools.partial(
        jaxae.fit, loss_fn=loss_fn, optimizer=optax.sgd(0.1), key=jax.random.key(0),
        batch_size=16, progress=False,
    )  # fmt: skip
    # Two fits of one command, in nested folders, cut short by an earlier process.
    pieces = [
        fit(model.init(jax.random.key(1)), x, epochs=2, checkpoint_dir=str(ckpt / "a")),
        fit(model.init(jax.random.key(2)), x, epochs=3, checkpoint_dir=str(ckpt / "b" / "main")),
    ]
    earlier = sum(row["time_s"] for piece in pieces for row in piece.history)
    assert jaxae.training.checkpoint.saved_training_seconds(ckpt) == pytest.approx(earlier)
    assert jaxae.training.checkpoint.saved_training_seconds(tmp_path / "none") == 0.0
    args, config = experiment.parse(
        str(tmp_path / "paper.py"), "Paper.",
        ["--quick", "--out", str(tmp_path / "out"), "--set", f"checkpoint_dir={ckpt}"],
        config=_CheckpointedConfig(), quick=_CheckpointedConfig(),
    )  # fmt: skip
    run = experiment.Run("paper", args, config)
    run.record("model", "error", 1.5)
    (row,) = results.read_results(run.finish())
    assert earlier - 0.1 <= row["wall_time_s"] < earlier + run.elapsed + 1.0  # 0.1 s rounding
    log = (tmp_path / "out" / "log.txt").read_text()
    assert f"{earlier:.1f} s of it in earlier processes" in log
    # Without a checkpoint_dir nothing is added.
    plain = _run_for(tmp_path)
    plain.record("model", "error", 1.5)
    (row,) = results.read_results(plain.finish())
    assert row["wall_time_s"] < plain.elapsed + 1.0


@dataclasses.dataclass(frozen=True)
class _CheckpointedConfig:
    checkpoint_dir: str | None = None


def test_checkpoint_subdir_joins_names_and_is_none_without_a_checkpoint_dir(tmp_path):
    assert experiment.checkpoint_subdir(None, "vae", "main") is None
    assert experiment.checkpoint_subdir(tmp_path, "vae", "main") == str(tmp_path / "vae" / "main")
    assert experiment.checkpoint_subdir(str(tmp_path), "mlp") == str(tmp_path / "mlp")
    for names in [(), ("",), ("vae", None)]:
        with pytest.raises(ValueError, match="names: expected one or more non-empty strings"):
            experiment.checkpoint_subdir(tmp_path, *names)


def _run_for(tmp_path):
    args, config = experiment.parse(
        str(tmp_path / "paper.py"), "Paper.", ["--quick", "--out", str(tmp_path / "out")],
        config=_Config(), quick=QUICK,
    )  # fmt: skip
    return experiment.Run("paper", args, config)


def test_rows_record_the_arguments_main_was_given_not_the_callers(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["pytest", "-k", "something"])  # the calling process
    run = _run_for(tmp_path)
    run.record("model", "error", 1.5)
    (row,) = results.read_results(run.finish())
    script = os.path.relpath(tmp_path / "paper.py")
    assert row["command"] == f"python {script} --quick --out {tmp_path / 'out'}"


def test_record_best_epoch_records_the_first_lowest_epoch_on_validation_only(tmp_path):
    run = _run_for(tmp_path)
    assert experiment.record_best_epoch(run, "m", [5.0, 3.0, 3.0, 4.0], split="validation") == 2
    assert run.metrics == {"m/best fine-tuning epoch (lowest error)/validation": 2.0}
    assert experiment.record_best_epoch(run, "m", [5.0, 3.0], split="test") is None
    assert experiment.record_best_epoch(run, "c", [1.0], split="validation", stage="classifier")
    assert list(run.metrics) == [
        "m/best fine-tuning epoch (lowest error)/validation",
        "c/best classifier epoch (lowest error)/validation",
    ]  # nothing from the test split
    with pytest.raises(ValueError, match="curve: expected one value per epoch, got none"):
        experiment.record_best_epoch(run, "m", [], split="validation")


def test_error_curves_figure_draws_a_line_per_model_and_dashed_paper_numbers():
    curves = {"SAE": [3.0, 2.0, 1.5], "DBN": [4.0, 2.5, 2.0]}
    fig = experiment.error_curves_figure(curves, split="validation", paper_values={"DBN": 1.24})
    (ax,) = fig.axes
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    (dashed,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in solid] == [[1, 2, 3], [1, 2, 3]]
    assert [list(line.get_ydata()) for line in solid] == list(curves.values())
    assert list(dashed.get_ydata()) == [1.24, 1.24]
    assert dashed.get_color() == solid[1].get_color()  # the DBN's colour
    assert "validation" in ax.get_ylabel() and ax.get_xlabel() == "fine-tuning epoch"
    experiment.pyplot().close(fig)


@pytest.mark.parametrize("name", experiment.OPTIMIZERS)
def test_cosine_optimizer_starts_at_the_rate_and_decays_to_zero(name):
    import optax

    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    optimizer = experiment.cosine_optimizer(name, 0.1, steps=4, momentum=0.0)
    state = optimizer.init(params)
    sizes = []
    for _ in range(5):
        updates, state = optimizer.update(grads, state, params)
        sizes.append(float(jnp.abs(updates["w"]).max()))
    if name == "sgd":  # plain SGD: the update is -rate * gradient
        first, _ = optax.sgd(0.1).update(grads, optax.sgd(0.1).init(params), params)
        np.testing.assert_allclose(sizes[0], float(jnp.abs(first["w"]).max()), rtol=1e-6)
    else:  # Adam's first step moves each weight by the rate
        np.testing.assert_allclose(sizes[0], 0.1, rtol=1e-4)
    assert sizes[1] < sizes[0] and sizes[4] == 0.0  # cosine decay to 0 after `steps`


@pytest.mark.parametrize("name", experiment.OPTIMIZERS)
def test_weight_decay_shrinks_the_weight_matrices_and_leaves_the_biases(name):
    params = {"w": jnp.full((2, 3), 2.0), "b": jnp.full(3, 2.0)}
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    optimizer = experiment.named_optimizer(name, 0.1, momentum=0.0, weight_decay=0.5)
    updates, _ = optimizer.update(zero_grads, optimizer.init(params), params)
    # With a zero gradient only the decay moves anything: rate * decay * w for both (AdamW's
    # decoupled decay; SGD's L2 term 0.5 * w in the gradient, times the rate).
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(updates["b"], 0.0)
    plain = experiment.named_optimizer(name, 0.1, momentum=0.0)
    updates, _ = plain.update(zero_grads, plain.init(params), params)
    np.testing.assert_array_equal(updates["w"], 0.0)  # the default decays nothing


def test_weight_decay_must_not_be_negative():
    with pytest.raises(ValueError, match="finetune_optimizer: weight_decay ≥ 0 expected, got -1"):
        experiment.cosine_optimizer("adam", 0.1, 10, weight_decay=-1, setting="finetune_optimizer")


def test_cosine_optimizer_rejects_an_unknown_name():
    with pytest.raises(ValueError, match=r"expected one of \('adam', 'sgd'\), got 'rmsprop'"):
        experiment.cosine_optimizer("rmsprop", 0.1, steps=10)


@dataclasses.dataclass(frozen=True)
class _StringAnnotated:  # as a script with `from __future__ import annotations` declares it
    epochs: "int" = 10
    models: "tuple[str, ...]" = ("vae",)
    address_sizes: "tuple[int, ...] | None" = (2000, 20)
    limit: "int | None" = None


def test_overrides_of_a_config_with_string_annotations():
    # simple_parsing cannot read "tuple[int, ...] | None" as a string: setting any field of such
    # a config used to raise NotImplementedError(Ellipsis) (semantic_hashing's Config).
    config = apply_overrides(
        _StringAnnotated(), ["epochs=3", "models=a,b", "address_sizes=2000,500,20", "limit=7"]
    )
    assert config == _StringAnnotated(3, ("a", "b"), (2000, 500, 20), 7)
    assert apply_overrides(config, ["address_sizes=none"]).address_sizes is None
    with pytest.raises(SystemExit, match=r"--set 'epochs=x'.*invalid int value"):
        apply_overrides(config, ["epochs=x"])


def test_every_experiment_config_takes_an_override_of_each_field():
    import importlib

    for script in sorted((pathlib.Path(__file__).parents[1] / "experiments").glob("*.py")):
        if script.stem.startswith("_"):
            continue
        module = importlib.import_module(f"experiments.{script.stem}")
        config = getattr(module, "Config", None)
        if config is None:
            continue
        default = config()
        for field in dataclasses.fields(default):
            value = getattr(default, field.name)
            if value is None or value == ():
                continue
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            assert apply_overrides(default, [f"{field.name}={text}"]) == default, (
                script.stem,
                field.name,
            )


def test_a_subset_of_a_split_is_named_as_one():
    assert experiment.sliced_split_name("test", 10_000, None) == "test"
    assert experiment.sliced_split_name("test", 10_000, 10_000) == "test"
    assert experiment.sliced_split_name("test", 10_000, 1000) == "test[:1000]"
    assert experiment.sliced_split_name("test[:5000]", 5000, 1000) == "test[:1000]"
    data = experiment.load_mnist_splits(True, 100, 50)  # validation: train[50000:]'s first 50
    assert data.name == "validation[:50]" and data.x_eval.shape == (50, 784)
    assert experiment.load_mnist_splits(False, 100, None).name == "test"


def test_a_non_finite_value_is_refused_when_recorded_not_at_the_end(tmp_path):
    run = _run_for(tmp_path)
    with pytest.raises(ValueError, match=r"value: expected a finite number for m/error/test, got"):
        run.record("m", "error", float("nan"))
    assert run.rows == [] and run.metrics == {}
    run.record("m", "best epoch", 2, split="validation[:50]")  # a named subset is a split
    assert experiment.record_best_epoch(run, "m", [2.0, 1.0], split="validation[:50]") == 2


def test_model_names_and_retrieval_sizes_are_refused_before_any_training():
    assert experiment.model_names(["cae", "ae"], ["ae", "cae"]) == ["cae", "ae"]
    with pytest.raises(
        SystemExit, match=r"distinct names from \['ae', 'cae'\], got \['ae', 'ae'\]"
    ):
        experiment.model_names(["ae", "ae"], ["ae", "cae"])
    with pytest.raises(SystemExit, match="one or more distinct names"):
        experiment.model_names([], ["ae"])
    assert experiment.model_names([], ["ae"], allow_empty=True) == []
    sizes = dict(largest_k=1000, timed_k=100, timed_queries=200, figure_queries=3)
    experiment.check_retrieval_sizes(5000, 500, shortlist=300, **sizes)
    with pytest.raises(
        SystemExit, match=r"precision@1000 needs .* got 900.*shortlist: .* got 2000"
    ):
        experiment.check_retrieval_sizes(900, 500, shortlist=2000, **sizes)
    with pytest.raises(SystemExit, match=r"figure_queries: expected at most .* = 2, got 3"):
        experiment.check_retrieval_sizes(5000, 2, **sizes)
