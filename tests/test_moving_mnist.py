"""Moving MNIST generator: geometry, bouncing, determinism, and the checksummed cache."""

import jax
import numpy as np
import pytest

from jaxae.data import DataFileError
from jaxae.data import moving_mnist as mm


def _digits(n=6, size=6, seed=0):
    """Small synthetic digits with values k / 256 and a nonzero border (so edges show)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 256, size=(n, size, size)) / 256).astype(np.float32)


def test_trajectories_stay_in_room_and_bounce(key):
    paths = mm.bouncing_trajectories(key, (200,), num_frames=60, room=10, step_length=0.3)
    top, left = np.asarray(paths.top), np.asarray(paths.left)
    assert top.shape == left.shape == (200, 60) and top.dtype == np.int32
    assert top.min() >= 0 and top.max() <= 10 and left.min() >= 0 and left.max() <= 10
    for v, pos in ((np.asarray(paths.v_y), top), (np.asarray(paths.v_x), left)):
        flips = np.sign(v[:, 1:]) != np.sign(v[:, :-1])
        assert flips.any()  # fast paths in a small room must hit walls
        # a sign flip happens exactly when the digit is at a wall
        at_wall = (pos[:, 1:] == 0) | (pos[:, 1:] == 10)
        assert np.all(at_wall[flips])
        assert np.all(np.abs(v) <= 1.0 + 1e-6)
    # speed is constant: |v| = 1 per path
    speed = np.hypot(np.asarray(paths.v_y), np.asarray(paths.v_x))
    np.testing.assert_allclose(speed, 1.0, rtol=1e-5)


def test_one_digit_frames_hold_the_whole_digit(key):
    digits = _digits(4)
    frames = np.asarray(
        mm.sequences_from_digits(
            key, digits, num_digits=1, num_frames=15, frame_size=12, step_length=0.4
        )
    )
    assert frames.shape == (4, 15, 12, 12) and frames.dtype == np.float32
    # nothing is cut off at a wall: every frame carries all of its digit's ink
    np.testing.assert_allclose(
        frames.sum(axis=(2, 3)), np.repeat(digits.sum((1, 2))[:, None], 15, 1), rtol=1e-5
    )


def test_overlap_is_the_maximum(key):
    ones = np.full((2, 6, 6), 128 / 256, np.float32)
    frames = np.asarray(mm.sequences_from_digits(key, ones, num_frames=30, frame_size=8))
    assert frames.shape == (1, 30, 8, 8)
    assert set(np.unique(frames)) <= {0.0, 0.5}  # a sum would give 1.0 where they overlap


def test_sample_sequences_shape_dtype_range_and_determinism(key):
    digits = _digits(5)
    a = mm.sample_sequences(key, digits, 7, num_frames=6, frame_size=10)
    b = mm.sample_sequences(key, digits, 7, num_frames=6, frame_size=10)
    c = mm.sample_sequences(jax.random.key(1), digits, 7, num_frames=6, frame_size=10)
    assert a.shape == (7, 6, 10, 10) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    # pixel values are the digits' own: each frame's maximum is some digit's maximum
    pool = {int(v) for v in np.rint(digits * 256).ravel()} | {0}
    assert set(np.unique(a).tolist()) <= pool


def test_sample_sequences_rejects_off_grid_digits(key):
    with pytest.raises(ValueError, match="k / 256"):
        mm.sample_sequences(key, np.full((3, 4, 4), 0.3, np.float32), 2, frame_size=8)


def test_sequences_from_digits_checks_the_digit_count(key):
    with pytest.raises(ValueError, match="multiple of num_digits"):
        mm.sequences_from_digits(key, _digits(3), num_digits=2, frame_size=8)


def test_cache_round_trip_and_refuses_corruption(tmp_path, key):
    path = tmp_path / "mm" / "seq.npy"
    calls = []

    def build():
        calls.append(1)
        return mm.sample_sequences(key, _digits(4), 3, num_frames=4, frame_size=8)

    first = mm.cached_sequences(path, build)
    second = mm.cached_sequences(path, build)
    assert len(calls) == 1 and first.tobytes() == second.tobytes()
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="checksum"):
        mm.cached_sequences(path, build)
    assert len(calls) == 1  # refused, not silently rebuilt


def test_cache_killed_between_checksum_and_array_is_built_again(tmp_path, key, monkeypatch):
    path = tmp_path / "mm" / "seq.npy"

    def build():
        return mm.sample_sequences(key, _digits(4), 3, num_frames=4, frame_size=8)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies while the array is being written

    with monkeypatch.context() as patch:
        patch.setattr(mm, "atomic_open", killed)
        with pytest.raises(KeyboardInterrupt):
            mm.cached_sequences(path, build)
    assert not path.exists() and path.with_name("seq.npy.sha256").exists()
    array = mm.cached_sequences(path, build)  # no array: built again, and its checksum matches
    assert mm.cached_sequences(path, build).tobytes() == array.tobytes()


def test_moving_mnist_split_views():
    frames = np.arange(2 * 4 * 3 * 3, dtype=np.uint8).reshape(2, 4, 3, 3)
    ds = mm.MovingMnist(frames=frames, num_input=2, split="test")
    x = ds.sequences()
    assert x.shape == (2, 4, 9) and x.dtype == np.float32
    np.testing.assert_allclose(x * 256, frames.reshape(2, 4, 9))
    with pytest.raises(ValueError, match="num_input"):
        mm.MovingMnist(frames=frames, num_input=4, split="test")


def test_load_rejects_unknown_split():
    with pytest.raises(ValueError, match="split"):
        mm.load("valid")


def test_load_by_name_goes_through_the_registry(monkeypatch):
    from jaxae import data
    from jaxae.data import moving_mnist as mm

    assert "moving_mnist" in data.names()
    calls = []
    monkeypatch.setattr(mm, "load", lambda split, **kw: calls.append((split, kw)) or "sequences")
    assert data.load("moving_mnist", "test[:3]", download=False) == "sequences"
    assert calls == [("test[:3]", {"data_dir": None, "download": False})]


def test_cli_info_prints_the_cached_splits_frames(monkeypatch, capsys):
    from jaxae.data import cli

    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append(split)
        return mm.MovingMnist(np.zeros((3, 20, 64, 64), np.uint8), 10, split)

    monkeypatch.setattr(cli, "load", fake_load)
    assert cli.main(["info", "moving_mnist"]) == 0
    out = capsys.readouterr().out
    assert "test: frames (3, 20, 64, 64) uint8" in out and "first 10 are the input" in out
    assert calls == ["validation", "test"]  # the uncached training split is not generated


def test_load_slices_as_the_other_datasets_do(monkeypatch, tmp_path):
    # Start, stop and negative bounds, as jaxae.data.splits parses them for every dataset.
    from jaxae import data
    from jaxae.data.containers import Dataset

    digits = _digits(n=6, size=6)[..., None]
    fake = Dataset(digits, np.zeros(6, np.int32), "mnist", "train[50000:]")
    monkeypatch.setattr(data, "load", lambda name, split, **kw: fake)
    settings = dict(data_dir=tmp_path, num_sequences=8, frame_size=16, num_frames=4, num_input=2)
    whole = mm.load("validation", **settings).frames
    assert whole.shape == (8, 4, 16, 16)
    cases = {"[:3]": whole[:3], "[5:]": whole[5:], "[-2:]": whole[-2:], "[2:-3]": whole[2:5]}
    for bounds, rows in cases.items():
        split = f"validation{bounds}"
        loaded = mm.load(split, **settings)
        np.testing.assert_array_equal(loaded.frames, rows)
        assert loaded.split == split
    for split in ("validation[:9]", "validation[4:4]"):
        with pytest.raises(ValueError, match="out of range|empty"):
            mm.load(split, **settings)
