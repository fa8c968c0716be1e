"""Device names from the command line, checked: `resolve_device("auto")` and friends.

Scripts take `--device` (default "auto") and pass it here once; the library itself never picks a
device: tensors and modules follow their inputs.
"""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """Device types this machine can run on, CPU first: e.g. `["cpu", "cuda"]`."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def default_device() -> torch.device:
    """CUDA where there is a CUDA device, else the CPU (MPS only when asked for by name)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | None) -> torch.device:
    """`torch.device` for a name such as "cpu", "cuda", "cuda:1" or "mps"; None or "auto" -> `default_device()`.

    Raises:
        TypeError: the name is not a string (pass "cuda:1", not 1).
        ValueError: the name is not a device torch knows, or this machine does not have it (for
            "cuda:N", N must be below `torch.cuda.device_count()`).
    """
    if name is None or name == "auto":
        return default_device()
    if not isinstance(name, str):
        raise TypeError(f"resolve_device: expected a device name such as 'cpu' or 'cuda', got {type(name).__name__}")
    available = available_devices()
    hint = f"available here: {', '.join(available + ['auto'])}"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"resolve_device: unknown device {name!r}; {hint}") from error
    if device.type not in available:
        raise ValueError(f"resolve_device: device {name!r} is not available on this machine; {hint}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"resolve_device: device {name!r} is not available on this machine, which has "
            f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})"
        )
    return device
