import pytest

from jaxae.atomic import atomic_open, atomic_write_text


def test_interrupted_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_open(target) as f:
            f.write(b"half of it")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_previous_content(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("new but incomplete")
            raise RuntimeError
    assert target.read_text() == "old"
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
