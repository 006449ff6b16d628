"""experiments.runner: --set overrides parsed by each config field's type."""

import dataclasses

import pytest

from experiments.runner import apply_overrides


@dataclasses.dataclass(frozen=True)
class _Config:
    epochs: int = 10
    lr: float = 1e-3
    tied: bool = False
    models: str = "ae,cae"
    sizes: tuple[int, ...] = (784, 1000)
    address_sizes: tuple[int, ...] | None = None
    limit: int | None = None
    noise: float | None = None


def test_overrides_parse_by_field_type():
    config = apply_overrides(
        _Config(),
        ["epochs=3", "lr=0.5", "tied=true", "models=cae", "sizes=784,500,30", "limit=100"],
    )
    assert config == _Config(
        epochs=3, lr=0.5, tied=True, models="cae", sizes=(784, 500, 30), limit=100
    )


def test_optional_fields_take_values_of_their_annotated_type_and_none():
    config = apply_overrides(_Config(), ["address_sizes=2000,500,20", "noise=4", "limit=none"])
    assert config.address_sizes == (2000, 500, 20)
    assert config.noise == 4.0 and isinstance(config.noise, float)
    assert config.limit is None
    assert apply_overrides(config, ["address_sizes=None"]).address_sizes is None


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("nope=1", "expected NAME=VALUE"),
        ("epochs", "expected NAME=VALUE"),
        ("tied=yes", "true or false"),
    ],
)
def test_bad_overrides_name_the_assignment(assignment, message):
    with pytest.raises(SystemExit, match=message):
        apply_overrides(_Config(), [assignment])
