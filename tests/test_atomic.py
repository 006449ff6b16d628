import os
import stat

import pytest

from jaxae.atomic import atomic_open, atomic_write_bytes, atomic_write_text


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


def test_a_new_file_gets_the_umask_permissions_not_mkstemps_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_symlink_is_written_through_not_replaced(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
