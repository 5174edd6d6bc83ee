"""The reference data pipeline (tinytorch.core.data): batching, seeded shuffling, the shipped digits, IDX files."""
import gzip
from pathlib import Path

import numpy as np
import pytest

import tinytorch
from tinytorch import Tensor
from tinytorch.data import DataLoader, TensorDataset, load_digits, load_mnist, read_idx


def dataset(n):
    return TensorDataset(Tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2)), Tensor(np.arange(n)))


@pytest.mark.parametrize("n, b", [(1, 1), (10, 4), (12, 4), (12, 5), (100, 1), (7, 100)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_counts_and_sizes(n, b, drop_last):
    loader = DataLoader(dataset(n), batch_size=b, drop_last=drop_last)
    sizes = [len(y) for _, y in loader]
    expected = [b] * (n // b) + ([] if drop_last or n % b == 0 else [n % b])
    assert sizes == expected and len(loader) == len(expected)


def test_batches_are_tensors_with_dtypes_kept_and_order_unshuffled():
    xs, ys = zip(*DataLoader(dataset(10), batch_size=3))
    assert all(isinstance(x, Tensor) for x in xs)
    assert xs[0].dtype == np.float32 and ys[0].dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([x.data for x in xs]), np.arange(20).reshape(10, 2))
    np.testing.assert_array_equal(np.concatenate([y.data for y in ys]), np.arange(10))


def epoch(loader):
    return np.concatenate([y.data for _, y in loader])


def test_seeded_shuffle_is_reproducible_and_new_each_epoch():
    a, b = (DataLoader(dataset(40), batch_size=6, shuffle=True, seed=9) for _ in range(2))
    a1, a2, a3 = epoch(a), epoch(a), epoch(a)
    assert np.array_equal(a1, epoch(b)) and np.array_equal(a2, epoch(b))
    assert not np.array_equal(a1, a2) and not np.array_equal(a2, a3)
    for e in (a1, a2, a3):  # each sample exactly once per epoch
        assert sorted(e.tolist()) == list(range(40))
    assert not np.array_equal(epoch(DataLoader(dataset(40), batch_size=6, shuffle=True, seed=10)), a1)


def test_unseeded_shuffle_uses_manual_seed():
    tinytorch.manual_seed(123)
    first = epoch(DataLoader(dataset(30), batch_size=7, shuffle=True))
    tinytorch.manual_seed(123)
    again = epoch(DataLoader(dataset(30), batch_size=7, shuffle=True))
    assert np.array_equal(first, again) and sorted(first.tolist()) == list(range(30))


def test_drop_last_with_shuffle_drops_different_samples():
    loader = DataLoader(dataset(10), batch_size=4, shuffle=True, drop_last=True, seed=1)
    e1, e2 = epoch(loader), epoch(loader)
    assert len(e1) == len(e2) == 8 and len(set(e1.tolist())) == 8


@pytest.mark.parametrize("kwargs, exc", [({"batch_size": 0}, ValueError), ({"batch_size": 1.5}, TypeError),
                                         ({"batch_size": True}, TypeError)])
def test_loader_argument_errors(kwargs, exc):
    with pytest.raises(exc, match="batch_size"):
        DataLoader(dataset(3), **kwargs)


def test_tensordataset_errors():
    with pytest.raises(ValueError, match=r"\[3, 2\]"):
        TensorDataset(Tensor(np.zeros((3, 1))), Tensor(np.zeros(2)))
    with pytest.raises(IndexError):
        dataset(3)[3]


def test_load_digits_shapes_dtypes_ranges_and_split():
    (xtr, ytr), (xte, yte) = load_digits()
    assert xtr.shape == (1437, 8, 8) and xte.shape == (360, 8, 8)
    assert len(xtr) + len(xte) == 1797
    assert xtr.dtype == xte.dtype == np.float32 and ytr.dtype == yte.dtype == np.int64
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xte.min() >= 0.0 and xte.max() <= 1.0
    assert np.all(np.isin(xtr * 16, np.arange(17)))  # 4x4 block counts 0..16, scaled by 1/16
    assert set(ytr.tolist()) == set(yte.tolist()) == set(range(10))
    ctr, cte = np.bincount(ytr, minlength=10), np.bincount(yte, minlength=10)
    np.testing.assert_allclose(cte / ctr, 360 / 1437, rtol=0.1)  # stratified: each class split ~ 80/20
    # no image appears in both splits
    train_rows = {r.tobytes() for r in xtr}
    assert sum(r.tobytes() in train_rows for r in xte) <= 5  # the UCI data has a few exact duplicate images


def test_load_digits_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="digits"):
        load_digits()
    (tmp_path / "digits").mkdir()
    x = np.full((2, 8, 8), 16, np.uint8)
    np.savez_compressed(tmp_path / "digits" / "digits.npz", x_train=x, y_train=np.array([1, 2], np.uint8),
                        x_test=x[:1] * 0, y_test=np.array([3], np.uint8))
    (xtr, ytr), (xte, yte) = load_digits()
    assert xtr.shape == (2, 8, 8) and np.all(xtr == 1.0) and np.all(xte == 0.0) and ytr.tolist() == [1, 2]


def idx_bytes(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + np.array(dims, dtype=">u4").tobytes() + payload


def test_read_idx_uint8_and_big_endian_types(tmp_path):
    imgs = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(8, [2, 3, 4], imgs.tobytes()))
    arr, magic = read_idx(tmp_path / "a")
    assert magic == 2051 and arr.dtype == np.uint8 and np.array_equal(arr, imgs)
    vals = np.array([1.0, -2.5, 3e7], dtype=">f8")
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(0x0E, [3], vals.tobytes())))
    arr, magic = read_idx(tmp_path / "b.gz")
    assert arr.dtype == np.float64 and arr.dtype.isnative and arr.tolist() == [1.0, -2.5, 3e7]
    assert magic == 0x0E01


@pytest.mark.parametrize("content, words", [
    (b"", ["00 00"]),
    (bytes([0, 1, 8, 1, 0, 0, 0, 1, 5]), ["00 00"]),
    (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]), ["0x0A"]),
    (bytes([0, 0, 8, 3, 0, 0, 0]), ["16", "7"]),
    (idx_bytes(8, [4], bytes(3)), ["expected 4", "got 3"]),
    (idx_bytes(8, [2], bytes(3)), ["expected 2", "got 3"]),
])
def test_read_idx_rejects_corrupt_files(tmp_path, content, words):
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_idx(tmp_path / "f")
    for w in words:
        assert w in str(info.value), f"{w!r} not in {info.value}"


def write_mnist(d, kind, n_images, n_labels, gz=False):
    prefix = "train" if kind == "train" else "t10k"
    pix = np.random.default_rng(n_images).integers(0, 256, (n_images, 28, 28)).astype(np.uint8)
    files = {f"{prefix}-images-idx3-ubyte": idx_bytes(8, [n_images, 28, 28], pix.tobytes()),
             f"{prefix}-labels-idx1-ubyte": idx_bytes(8, [n_labels], bytes(range(n_labels)))}
    for name, content in files.items():
        if gz:
            (d / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (d / name).write_bytes(content)
    return pix


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, gz):
    pix = write_mnist(tmp_path, "train", 6, 6, gz)
    x, y = load_mnist(tmp_path)
    assert x.shape == (6, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, pix / 255.0, rtol=1e-6)
    assert y.tolist() == list(range(6))


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, kind="test")
    with pytest.raises(ValueError, match="'val'"):
        load_mnist(tmp_path, kind="val")
    write_mnist(tmp_path, "test", 5, 4)
    with pytest.raises(ValueError, match="5 images and 4 labels"):
        load_mnist(tmp_path, kind="test")


def write_cifar_batch(path, images, labels, protocol=2):
    """A batch in CIFAR-10's python format: a pickled dict with bytes keys, rows of R, G, B planes."""
    import pickle
    batch = {b"batch_label": b"testing batch", b"labels": list(map(int, labels)),
             b"data": images.reshape(len(images), -1), b"filenames": [b"img%d.png" % i for i in range(len(images))]}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def cifar_dir(tmp_path, per_batch=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6 * per_batch, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6 * per_batch)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        part = slice(k * per_batch, (k + 1) * per_batch)
        write_cifar_batch(tmp_path / name, images[part], labels[part], protocol=2 if k % 2 else 4)
    return images, labels


def test_load_cifar10_reads_python_batches_in_nchw(tmp_path):
    from tinytorch.data import CIFAR10_CLASSES, load_cifar10
    images, labels = cifar_dir(tmp_path)
    (X, y), (Xt, yt) = load_cifar10(tmp_path)
    assert X.shape == (15, 3, 32, 32) and Xt.shape == (3, 3, 32, 32)
    assert X.dtype == np.float32 and y.dtype == np.int64 and len(CIFAR10_CLASSES) == 10
    np.testing.assert_array_equal(X, images[:15] / np.float32(255))
    np.testing.assert_array_equal(np.concatenate([y, yt]), labels)
    # the first 1,024 values of a row are the red plane, row-major: pixel (0, 1) of red is value 1
    row = images[0].reshape(-1)
    assert X[0, 0, 0, 1] == row[1] / np.float32(255) and X[0, 2, 31, 31] == row[3071] / np.float32(255)


def test_load_cifar10_errors_name_the_missing_or_bad_file(tmp_path):
    import pickle
    from tinytorch.data import load_cifar10
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")
    cifar_dir(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path)
    cifar_dir(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"test_batch.*\(N, 3072\)"):
        load_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch: expected a CIFAR-10 python batch"):
        load_cifar10(tmp_path)


def test_load_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    import pickle
    from tinytorch.data import load_cifar10

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    cifar_dir(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(ValueError, match="refusing builtins.print"):
        load_cifar10(tmp_path)
