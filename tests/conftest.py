"""Session-wide test settings.

- One torch thread: tiny shapes run faster without thread overhead, and results do not depend
  on how many cores the CI machine has.
- A private metrics cache ($GANBENCH_CACHE): tests never read or write the user's cache; the
  digit classifier is trained once per session and shared by every test.
"""
import os

import pytest
import torch


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
