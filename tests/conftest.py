"""One torch thread for the whole suite: tiny shapes run faster without thread overhead, and
results do not depend on how many cores the CI machine has."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
