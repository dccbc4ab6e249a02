"""MNIST, Fashion-MNIST and CIFAR-10 from local files (torchvision layout); download only on request."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .base import DataError, Dataset
from .idx_files import decompress_gz_dir, fashion_gz_dir, missing_files
from .ops import resize, uint8_to_unit

_MNIST_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILES = ("test_batch",)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _download(name: str, root: Path, fetch) -> None:
    try:
        fetch()
    except Exception as exc:  # network errors come in many types; report them on one line
        raise DataError(f"downloading {name} into {root} failed: {_short(exc)}") from exc


def _dataset(name, images_tr, labels_tr, images_te, labels_te, resolution) -> Dataset:
    train = resize(uint8_to_unit(images_tr), resolution)
    test = resize(uint8_to_unit(images_te), resolution)
    return Dataset(
        name=name,
        kind="image",
        shape=tuple(train.shape[1:]),
        train=train,
        test=test,
        train_labels=labels_tr.long().contiguous(),
        test_labels=labels_te.long().contiguous(),
        num_classes=10,
        num_modes=10,
    )


def load_mnist_like(name: str, root: Path, resolution: int, download: bool) -> Dataset:
    """``name`` is 'mnist' or 'fashion-mnist'; files are read from ``root/<Class>/raw`` via torchvision."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, _MNIST_CLASSES[name])
    raw = root / cls.__name__ / "raw"
    if missing_files(raw) and name == "fashion-mnist":
        decompress_gz_dir(fashion_gz_dir(), raw)
    if missing_files(raw) and download:
        _download(name, root, lambda: cls(str(root), train=False, download=True))
    if missing_files(raw):
        hint = "install the Debian package dataset-fashion-mnist, " if name == "fashion-mnist" else ""
        raise DataError(f"{name} files not found in {raw}; {hint}copy the four idx files there, or pass --download")
    try:
        tr = cls(str(root), train=True, download=False)
        te = cls(str(root), train=False, download=False)
    except Exception as exc:  # torchvision raises AssertionError/ValueError/RuntimeError on bad files
        raise DataError(f"cannot read {name} files in {raw}: {_short(exc)}") from exc
    return _dataset(name, tr.data.unsqueeze(1), tr.targets, te.data.unsqueeze(1), te.targets, resolution)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers, strings, numbers and numpy arrays, nothing else: a batch
    file planted in the data folder cannot make the suite call arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how protocol 2 spells bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 batch "
                                         f"never holds; not loaded")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    try:
        with open(path, "rb") as fh:
            entry = _ArraysOnly(fh, encoding="latin1").load()  # python-2 pickles of numpy arrays
    except Exception as exc:  # truncated, foreign or hostile pickles
        raise DataError(f"cannot read cifar10 batch {path}: {_short(exc)}") from None
    if not isinstance(entry, dict) or "data" not in entry:
        raise DataError(f"{path} is not a CIFAR-10 batch (no 'data' entry)")
    data = entry["data"]
    labels = entry.get("labels", entry.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.dtype == object or not isinstance(labels, list) \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise DataError(f"{path} is not a CIFAR-10 batch (data must be an array, labels integers)")
    return data, labels


def _read_cifar(folder: Path, files) -> tuple[torch.Tensor, torch.Tensor]:
    data, labels = [], []
    for f in files:
        x, y = _read_batch(folder / f)
        data.append(np.asarray(x, dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(y)
    return torch.from_numpy(np.concatenate(data)), torch.as_tensor(labels, dtype=torch.int64)


def load_cifar10(root: Path, resolution: int, download: bool) -> Dataset:
    """Reads the python pickles directly (torchvision's reader md5-checks every file and needs batches.meta)."""
    folder = root / CIFAR_FOLDER
    files = CIFAR_TRAIN_FILES + CIFAR_TEST_FILES
    if not all((folder / f).is_file() for f in files) and download:
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive

        def fetch() -> None:
            download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)

        _download("cifar10", root, fetch)
    if not all((folder / f).is_file() for f in files):
        raise DataError(f"cifar10 files not found in {folder}; copy the python-version batches there, or pass --download")
    try:
        x_tr, y_tr = _read_cifar(folder, CIFAR_TRAIN_FILES)
        x_te, y_te = _read_cifar(folder, CIFAR_TEST_FILES)
    except DataError:
        raise
    except Exception as exc:  # truncated/foreign pickles
        raise DataError(f"cannot read cifar10 files in {folder}: {_short(exc)}") from exc
    return _dataset("cifar10", x_tr, y_tr, x_te, y_te, resolution)
