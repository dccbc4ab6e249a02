"""Locating MNIST-format idx files; one-time, atomic decompression of the Debian package's .gz files."""
from __future__ import annotations

import gzip
import os
import shutil
import uuid
import zlib
from pathlib import Path

from .base import DataError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_DIR_ENV = "GANBENCH_FASHION_MNIST_DIR"
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def missing_files(raw_dir: Path) -> list[str]:
    """The uncompressed idx files (torchvision names) not present in ``raw_dir``."""
    return [f for f in IDX_FILES if not (raw_dir / f).is_file()]


def fashion_gz_dir() -> Path:
    """Where the Debian package ``dataset-fashion-mnist`` puts its .gz files ($GANBENCH_FASHION_MNIST_DIR overrides)."""
    return Path(os.environ.get(FASHION_DIR_ENV) or DEBIAN_FASHION_DIR).expanduser()


def _gunzip_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")  # unique; honours umask
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
        os.replace(tmp, dst)  # atomic: readers never see a half-written file
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot decompress {src} into {dst.parent}: {exc}") from exc


def decompress_gz_dir(gz_dir: Path, raw_dir: Path) -> bool:
    """Fill ``raw_dir`` from ``gz_dir/<name>.gz`` (only the files still missing). False if gz files are absent."""
    todo = missing_files(raw_dir)
    if not all((gz_dir / f"{f}.gz").is_file() for f in todo):
        return False
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {raw_dir}: {exc}") from exc
    for f in todo:
        _gunzip_atomic(gz_dir / f"{f}.gz", raw_dir / f)
    return True
