"""The CIFAR-10 reader unpickles only plain arrays, lists, dicts, strings and numbers: a batch
file planted in the data folder cannot run code, and a foreign one is refused in one line."""
import pickle

import numpy as np
import pytest

from bench.data import DataError, clear_cache, load_dataset
from tests.test_data import write_cifar


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def test_planted_cifar_batch_does_not_run(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    marker = tmp_path / "marker"
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": RunsCode(marker)}, protocol=2))
    with pytest.raises(DataError) as exc:
        load_dataset("cifar10", root=tmp_path)
    text = str(exc.value)
    assert "exec, which a CIFAR-10 batch never holds" in text and "\n" not in text
    assert str(folder / "data_batch_3") in text
    assert not marker.exists()


def test_object_arrays_and_foreign_labels_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    data = np.empty((4, 3072), dtype=object)
    data[:] = 0
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({"data": data, "labels": [0, 1, 2, 3]}, f, protocol=2)
    with pytest.raises(DataError, match="data_batch_1 is not a CIFAR-10 batch"):
        load_dataset("cifar10", root=tmp_path)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({"data": np.zeros((4, 3072), np.uint8), "labels": "0123"}, f, protocol=2)
    clear_cache()
    with pytest.raises(DataError, match="labels integers"):
        load_dataset("cifar10", root=tmp_path)


def test_python2_era_batches_still_load(tmp_path):
    """The real files were pickled by numpy 1 under python 2 (`numpy.core.multiarray`)."""
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(folder)
    path = folder / "data_batch_1"
    old = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    path.write_bytes(old)
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.train_labels[:4].tolist() == batches["data_batch_1"][1]
