"""resolve_device: the --device names scripts accept, and the errors for those this machine lacks; adam: the
fused optimizer where torch has one, the same steps as torch's default Adam."""

import pytest
import torch

from hypersiren.devices import adam, available_devices, default_device, resolve_device

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


def _adam_run(make, steps: int, state=None):
    """`steps` Adam steps on a fixed quadratic from fixed parameters -> (parameters, optimizer)."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(*shape, generator=generator, dtype=torch.float64))
              for shape in [(64, 3), (64,), (1, 64)]]
    targets = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in params]
    optimizer = make(params)
    if state is not None:
        optimizer.load_state_dict(state)
    for _ in range(steps):
        optimizer.zero_grad()
        sum(((p - t) ** 2 * (i + 1)).sum() for i, (p, t) in enumerate(zip(params, targets))).backward()
        optimizer.step()
    return params, optimizer


def test_adam_is_fused_on_the_cpu_and_steps_as_torch_default_adam():
    fused, optimizer = _adam_run(lambda params: adam(params, lr=1e-2), 50)
    assert optimizer.defaults["fused"] is True
    reference, default = _adam_run(lambda params: torch.optim.Adam(params, lr=1e-2), 50)
    assert not default.defaults["fused"]
    start, _ = _adam_run(lambda params: adam(params, lr=1e-2), 0)
    for a, b, s in zip(fused, reference, start):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(a, s)  # the steps moved the parameters


def test_adam_resumes_from_a_default_adam_state_and_back():
    """A checkpoint written before the fused optimizer (torch's default Adam) resumes into it, and back."""
    _, default = _adam_run(lambda params: torch.optim.Adam(params, lr=1e-2), 20)
    resumed, _ = _adam_run(lambda params: adam(params, lr=1e-2), 10, default.state_dict())
    _, fused = _adam_run(lambda params: adam(params, lr=1e-2), 20)
    back, _ = _adam_run(lambda params: torch.optim.Adam(params, lr=1e-2), 10, fused.state_dict())
    straight, _ = _adam_run(lambda params: torch.optim.Adam(params, lr=1e-2), 10)  # no state: a different run
    for a, b, c in zip(resumed, back, straight):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(a, c)
