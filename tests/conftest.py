import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # Tests use tiny tensors: extra intra-op threads only add contention on small machines.
    num = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num)
