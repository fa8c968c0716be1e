"""resolve_device: the --device names scripts accept, and the errors for those this machine lacks."""

import pytest
import torch

from hypersiren.devices import available_devices, default_device, resolve_device

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()


@pytest.mark.parametrize("name", [None, "auto"])
def test_auto_is_cuda_where_there_is_one_else_cpu(name):
    expected = torch.device("cuda") if HAS_CUDA else torch.device("cpu")
    assert resolve_device(name) == expected == default_device()


@pytest.mark.parametrize("name", ["cpu", "cpu:0"])
def test_the_cpu_is_always_available(name):
    assert resolve_device(name) == torch.device(name)
    assert available_devices()[0] == "cpu"


@pytest.mark.parametrize("name", ["foo", "", "CPU", "cuda:x"])
def test_unknown_names_are_rejected_with_what_is_available(name):
    expected = rf"resolve_device: unknown device '{name}'; available here: cpu(, \w+)*, auto$"
    with pytest.raises(ValueError, match=expected):
        resolve_device(name)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_rejected(name):
    with pytest.raises(ValueError, match=rf"device '{name}' is not available on this machine; available here: cpu, "):
        resolve_device(name)


@pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")
def test_mps_without_mps_is_rejected():
    with pytest.raises(ValueError, match="device 'mps' is not available on this machine; available here: cpu"):
        resolve_device("mps")


@pytest.mark.cuda
def test_cuda_index_beyond_the_devices_is_rejected():
    count = torch.cuda.device_count()
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=rf"'cuda:{count}' is not available .* has {count} CUDA device\(s\)"):
        resolve_device(f"cuda:{count}")


def test_a_number_is_not_a_device_name():
    with pytest.raises(TypeError, match="expected a device name such as 'cpu' or 'cuda', got int"):
        resolve_device(0)
