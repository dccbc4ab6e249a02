"""bench.data: synthetic mixtures, digits, stacked sets, and file-based loaders on tiny FAKE files."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data import (
    DataError,
    Dataset,
    clear_cache,
    dataset_kind,
    dataset_names,
    default_data_root,
    load_dataset,
    mode_ids,
)
from bench.data import stacked, synthetic
from bench.data.digits import SPLIT_SEED, load_digits16, stratified_split
from bench.data.idx_files import FASHION_DIR_ENV, IDX_FILES

ALL = ["cifar10", "digits", "fashion-mnist", "grid25", "grid25-pacgan", "mnist", "ring8", "ring8-pacgan",
       "stacked-digits", "stacked-mnist"]


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


# ---------------------------------------------------------------- registry, options


def test_names_and_kinds_without_loading():
    assert dataset_names() == ALL
    assert [dataset_kind(n) for n in ALL] == ["image"] * 3 + ["2d", "2d", "image", "2d", "2d",
                                                               "image", "image"]
    with pytest.raises(DataError):
        dataset_kind("nope")


def test_unknown_name_suggests_closest():
    with pytest.raises(DataError) as e:
        load_dataset("ring")
    msg = one_line_error(e)
    assert "unknown dataset 'ring'" in msg and "did you mean 'ring8'" in msg and "stacked-mnist" in msg
    with pytest.raises(DataError, match="fashion-mnist"):
        dataset_kind("fashion")


@pytest.mark.parametrize(
    "name, res, allowed",
    [("mnist", 32, "28, 16"), ("cifar10", 28, "32, 16"), ("digits", 28, "16"), ("stacked-digits", 8, "16")],
)
def test_bad_resolution_names_allowed_values(name, res, allowed):
    with pytest.raises(DataError) as e:
        load_dataset(name, resolution=res, root="/nonexistent")
    assert f"allowed: {allowed}" in one_line_error(e)


def test_2d_rejects_resolution_and_bad_seed():
    with pytest.raises(DataError, match="2-D"):
        load_dataset("ring8", resolution=16)
    with pytest.raises(DataError, match="seed"):
        load_dataset("ring8", seed=-1)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("GANBENCH_DATA")
    assert default_data_root() == Path.home() / ".cache" / "ganbench" / "data"


# ---------------------------------------------------------------- 2-D mixtures


@pytest.mark.parametrize("name, k, sigma", [("ring8", 8, 0.01), ("grid25", 25, 0.05 / 4)])
def test_mixture(name, k, sigma):
    ds = load_dataset(name, seed=3)
    assert isinstance(ds, Dataset) and ds.kind == "2d" and ds.shape == (2,)
    assert ds.train.shape == (50_000, 2) and ds.test.shape == (2_500, 2)
    assert ds.train.dtype == ds.test.dtype == ds.centers.dtype == torch.float32
    assert ds.num_modes == k and ds.centers.shape == (k, 2) and ds.sigma == pytest.approx(sigma)
    assert ds.train_labels is None and ds.num_classes is None
    c = ds.centers.double()
    if name == "ring8":
        assert torch.allclose(c.norm(dim=1), torch.ones(8, dtype=torch.float64))
    else:
        assert sorted(set(c[:, 0].tolist())) == pytest.approx([-1, -0.5, 0, 0.5, 1])
    assert c.abs().max() <= 1.0
    for x in (ds.train, ds.test):
        dist = torch.cdist(x.double(), c)
        nearest_d, nearest = dist.min(dim=1)
        assert nearest_d.max() < 6 * sigma  # every sample belongs clearly to one mode
        counts = torch.bincount(nearest, minlength=k).double()
        assert counts.min() > 0.8 * len(x) / k and counts.max() < 1.2 * len(x) / k  # ~uniform modes
        assert x.abs().max() <= 1 + 6 * sigma
    resid = ds.train.double() - c[torch.cdist(ds.train.double(), c).argmin(dim=1)]
    assert resid.std().item() == pytest.approx(sigma, rel=0.05)


def test_mixture_determinism_and_cache():
    a, b = synthetic.load_mixture("ring8", 7), synthetic.load_mixture("ring8", 7)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    c = synthetic.load_mixture("ring8", 8)
    assert not torch.equal(a.train, c.train)
    assert not torch.equal(a.train[:2500], a.test)  # test is a different stream
    assert load_dataset("ring8", seed=7) is load_dataset("ring8", seed=7)
    assert torch.equal(load_dataset("ring8", seed=7).train, a.train)
    assert "tensor" not in repr(a)  # short repr


def test_loading_leaves_global_rng_untouched():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    load_dataset("grid25", seed=11)
    synthetic.load_mixture("ring8", 12)
    load_dataset("stacked-digits", seed=0)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(u, v) for u, v in zip(np.random.get_state(), np_state))


# ---------------------------------------------------------------- digits, stacked-digits


def test_digits():
    ds = load_dataset("digits")
    assert ds.shape == (1, 16, 16) and ds.train.shape[1:] == (1, 16, 16) and ds.kind == "image"
    assert len(ds.train) + len(ds.test) == 1797 and 0.18 < len(ds.test) / 1797 < 0.22
    for x in (ds.train, ds.test):
        assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() == 1
    assert set(ds.train_labels.tolist()) == set(range(10)) == set(ds.test_labels.tolist())
    assert ds.train_labels.dtype == torch.int64 and ds.num_classes == 10 and ds.num_modes == 10
    # split is fixed (independent of seed) and reproducible
    assert load_dataset("digits", seed=5) is ds
    again = load_digits16()
    assert torch.equal(again.train, ds.train) and torch.equal(again.test_labels, ds.test_labels)


def test_digits_split_disjoint_and_stratified():
    labels = np.repeat(np.arange(10), 180)[np.random.default_rng(0).permutation(1800)]
    tr, te = stratified_split(labels, 0.2, SPLIT_SEED)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 1800
    assert np.bincount(labels[te]).tolist() == [36] * 10
    ds = load_dataset("digits")
    total = torch.bincount(ds.train_labels, minlength=10) + torch.bincount(ds.test_labels, minlength=10)
    frac = torch.bincount(ds.test_labels, minlength=10) / total
    assert frac.min() > 0.18 and frac.max() < 0.22


def test_stacked_digits():
    ds = load_dataset("stacked-digits", seed=0)
    base = load_dataset("digits")
    assert ds.shape == (3, 16, 16) and ds.train.shape == (50_000, 3, 16, 16) and ds.test.shape == (10_000, 3, 16, 16)
    assert ds.train_labels.shape == (50_000, 3) and ds.num_modes == 1000 and ds.num_classes == 10
    for x, y, src, src_y in ((ds.train, ds.train_labels, base.train, base.train_labels),
                             (ds.test, ds.test_labels, base.test, base.test_labels)):
        lookup = {}
        for img, lab in zip(src[:, 0], src_y.tolist()):
            lookup.setdefault(img.numpy().tobytes(), set()).add(lab)
        for i in range(0, len(x), 997):
            for ch in range(3):  # every channel is bit-identical to a source image of the stated class
                assert y[i, ch].item() in lookup[x[i, ch].numpy().tobytes()]
    ids = mode_ids(ds.train_labels)
    assert ids.dtype == torch.int64 and ids.unique().numel() > 950
    assert mode_ids(ds.test_labels).unique().numel() > 900


def test_stacked_determinism_and_mode_ids():
    base = load_dataset("digits")
    a, b, c = (stacked.make_stacked("stacked-digits", base, s) for s in (1, 1, 2))
    assert torch.equal(a.train, b.train) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train_labels, c.train_labels)
    assert mode_ids(torch.tensor([[1, 2, 3], [9, 0, 9]])).tolist() == [123, 909]
    assert mode_ids(torch.tensor([4, 7])).tolist() == [4, 7]


# ---------------------------------------------------------------- file-based sets on fake files


def idx_bytes(arr: np.ndarray) -> bytes:
    if arr.ndim == 3:  # images: magic 2051, big-endian n, rows, cols
        return struct.pack(">iiii", 2051, *arr.shape) + arr.astype(np.uint8).tobytes()
    return struct.pack(">ii", 2049, len(arr)) + arr.astype(np.uint8).tobytes()  # labels: magic 2049


def fake_mnist(seed: int, n_train=30, n_test=12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        IDX_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: np.arange(n_train) % 10,
        IDX_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: (np.arange(n_test) * 3) % 10,
    }


def write_idx(folder: Path, files: dict, gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in files.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(idx_bytes(arr))
        else:
            (folder / name).write_bytes(idx_bytes(arr))


def check_idx_set(ds: Dataset, files: dict) -> None:
    assert ds.shape == (1, 28, 28) and ds.kind == "image" and ds.num_classes == 10
    expect = torch.from_numpy(files[IDX_FILES[0]]).float().unsqueeze(1) / 127.5 - 1
    assert torch.allclose(ds.train, expect, atol=1e-6) and ds.train.dtype == torch.float32
    assert ds.train_labels.tolist() == files[IDX_FILES[1]].tolist()
    assert ds.test.shape == (12, 1, 28, 28) and ds.test_labels.tolist() == files[IDX_FILES[3]].tolist()


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Point the Fashion-MNIST .gz lookup at an empty folder (the real package may be installed)."""
    empty = tmp_path / "no-debian"
    empty.mkdir()
    monkeypatch.setenv(FASHION_DIR_ENV, str(empty))
    return empty


def test_fashion_from_gz_dir_decompresses_once(monkeypatch, tmp_path):
    files = fake_mnist(1)
    write_idx(tmp_path / "deb", files, gz=True)
    monkeypatch.setenv(FASHION_DIR_ENV, str(tmp_path / "deb"))
    root = tmp_path / "root"
    ds = load_dataset("fashion-mnist", root=root)
    check_idx_set(ds, files)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # no temp files left behind
    inodes = {p.name: p.stat().st_ino for p in raw.iterdir()}
    clear_cache()

    def boom(*a, **k):
        raise AssertionError("decompressed twice")

    monkeypatch.setattr(gzip, "open", boom)
    again = load_dataset("fashion-mnist", root=root)
    assert again is not ds and torch.equal(again.train, ds.train)
    assert {p.name: p.stat().st_ino for p in raw.iterdir()} == inodes
    small = load_dataset("fashion-mnist", root=root, resolution=16)
    assert small.train.shape == (30, 1, 16, 16) and small.train.min() >= -1 and small.train.max() <= 1


def test_fashion_prefers_root_raw(monkeypatch, tmp_path):
    write_idx(tmp_path / "deb", fake_mnist(2), gz=True)
    monkeypatch.setenv(FASHION_DIR_ENV, str(tmp_path / "deb"))
    files = fake_mnist(3)
    write_idx(tmp_path / "FashionMNIST" / "raw", files)
    check_idx_set(load_dataset("fashion-mnist", root=tmp_path), files)


def test_fashion_missing_is_one_line_error(no_debian, tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", root=tmp_path / "r")
    msg = one_line_error(e)
    assert str(tmp_path / "r" / "FashionMNIST" / "raw") in msg and "dataset-fashion-mnist" in msg and "--download" in msg


def test_corrupt_gz_and_idx_are_data_errors(monkeypatch, tmp_path):
    deb = tmp_path / "deb"
    deb.mkdir()
    for name in IDX_FILES:
        (deb / f"{name}.gz").write_bytes(b"not gzip")
    monkeypatch.setenv(FASHION_DIR_ENV, str(deb))
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", root=tmp_path / "a")
    assert "decompress" in one_line_error(e)
    assert not any((tmp_path / "a" / "FashionMNIST" / "raw").iterdir())  # temp file removed
    raw = tmp_path / "b" / "MNIST" / "raw"
    write_idx(raw, fake_mnist(4))
    (raw / IDX_FILES[0]).write_bytes(struct.pack(">i", 12345) + b"junk")
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path / "b")
    assert "cannot read mnist" in one_line_error(e)


def test_mnist_and_stacked_mnist(monkeypatch, tmp_path):
    files = fake_mnist(5)
    write_idx(tmp_path / "MNIST" / "raw", files)
    ds = load_dataset("mnist", root=tmp_path)
    check_idx_set(ds, files)
    monkeypatch.setattr(stacked, "TRAIN_SIZE", 600)
    monkeypatch.setattr(stacked, "TEST_SIZE", 200)
    st = load_dataset("stacked-mnist", root=tmp_path, resolution=16, seed=1)
    base16 = load_dataset("mnist", root=tmp_path, resolution=16)
    assert st.shape == (3, 16, 16) and st.train.shape == (600, 3, 16, 16) and st.num_modes == 1000
    assert st.test_labels.shape == (200, 3)
    for i in (0, 17, 599):
        for ch in range(3):
            j = torch.nonzero((base16.train[:, 0] == st.train[i, ch]).all(-1).all(-1))[0, 0]
            assert base16.train_labels[j] == st.train_labels[i, ch]


def test_mnist_missing_and_failed_download(monkeypatch, tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "MNIST" / "raw") in msg and "--download" in msg
    import torchvision.datasets as tvd

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://x/, got:\nno network\n")

    monkeypatch.setattr(tvd.MNIST, "download", offline)  # never touch the network in tests
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root=tmp_path, download=True)
    assert "downloading mnist" in one_line_error(e)


def write_cifar(folder: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(6)
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = 4 if name != "test_batch" else 3
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B values
        labels = [(i + j) % 10 for j in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels, "filenames": []}, f, protocol=2)
        out[name] = (data, labels)
    return out


def test_cifar10_fake_pickles(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", root=tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "--download" in msg
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.shape == (3, 32, 32) and ds.train.shape == (20, 3, 32, 32) and ds.test.shape == (3, 3, 32, 32)
    data, labels = batches["data_batch_2"]
    expect = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 127.5 - 1
    assert torch.allclose(ds.train[4:8], expect, atol=1e-6)
    assert ds.train_labels[4:8].tolist() == labels and ds.test_labels.tolist() == batches["test_batch"][1]
    small = load_dataset("cifar10", root=tmp_path, resolution=16)
    assert small.train.shape == (20, 3, 16, 16)
    assert torch.allclose(small.train[0, :, 0, 0], ds.train[0, :, :2, :2].mean(dim=(1, 2)), atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Debian package not installed")
def test_real_debian_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv(FASHION_DIR_ENV, raising=False)
    ds = load_dataset("fashion-mnist", root=tmp_path)
    assert ds.train.shape == (60_000, 1, 28, 28) and ds.test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(ds.train_labels).tolist() == [6000] * 10
