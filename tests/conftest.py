"""Session-wide test settings.

- One torch thread: tiny shapes run faster without thread overhead, and results do not depend
  on how many cores the CI machine has.
- A private metrics cache ($GANBENCH_CACHE): tests never read or write the user's cache; the
  digit classifier is trained once per session and shared by every test.
- Device mode: $GANBENCH_TEST_DEVICE (cpu by default; cuda on a GPU box) is where `tiny.py`
  trainers and the `device` fixture train. Tests marked `cuda` need a CUDA device and are
  skipped, with the reason, where none is visible.
"""
import os

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is visible (run on a GPU box, "
                                   "e.g. with GANBENCH_TEST_DEVICE=cuda)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def device():
    """The device under test ($GANBENCH_TEST_DEVICE, default cpu); skips when it is absent."""
    from tests.tiny import device_under_test

    return device_under_test()


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "ganbench-metrics-cache")


@pytest.fixture(autouse=True, scope="session")
def _private_metrics_cache(cache_dir):
    before = os.environ.get("GANBENCH_CACHE")
    os.environ["GANBENCH_CACHE"] = cache_dir
    yield
    if before is None:
        os.environ.pop("GANBENCH_CACHE", None)
    else:
        os.environ["GANBENCH_CACHE"] = before
