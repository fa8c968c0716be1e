"""Device names from the command line, checked: `resolve_device("auto")` and friends; and the
arithmetic precision a device computes in (`autocast`, `grad_scaler`).

Scripts take `--device` (default "auto") and pass it here once; the library itself never picks a
device: tensors and modules follow their inputs.

Precision (`--precision`, `TrainConfig.precision`, `FitConfig.precision`): "float32" (the default) computes
everything in float32; "bf16" runs forwards under `torch.autocast` in bfloat16 (matmuls and convolutions in
bfloat16, reductions and the ops autocast lists as unsafe in float32) on any device; "fp16" runs them in
float16 with a gradient scaler against underflow, on CUDA only. Parameters, gradients, optimiser states and
logged losses stay float32 in all three; the backward runs outside autocast, as torch recommends.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Iterable

import torch


def adam(parameters: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam over `parameters` with torch's fused kernel (one pass over all the parameters per step instead of
    a dozen: 3.5 ms -> 0.5 ms for 600k parameters on one CPU thread) where every parameter is a floating-point
    tensor on the CPU or CUDA; elsewhere torch's default implementation. Both compute the same update up to
    float rounding, and their checkpoints load into each other."""
    params = list(parameters)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None)


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


PRECISIONS = ("float32", "bf16", "fp16")  # the first is the default
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device | str | None = None, *, where: str = "precision") -> None:
    """ValueError unless `precision` is one of `PRECISIONS` and, when `device` is given, runs there: "fp16"
    needs CUDA, "bf16" a CUDA device that has bfloat16 (compute capability 8.0 or newer) when on CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f"{where}: unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device is None:
        return
    device = torch.device(device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"{where}: precision 'fp16' needs a CUDA device, got {device}: float16 autocast on "
                         f"{device.type} is slow or unsupported for training and its gradient scaler is CUDA's; "
                         "use 'bf16' (or 'float32') there")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{where}: precision 'bf16' needs a CUDA device with bfloat16 (compute capability 8.0 or "
                         f"newer), and {device} has none; use 'fp16' there")


def autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """A fresh context that runs the forwards inside it in `precision` on `device`'s type: `torch.autocast`
    for "bf16" / "fp16", nothing for "float32". Checked as `check_precision`."""
    check_precision(precision, device, where="autocast")
    if precision == "float32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_AUTOCAST_DTYPES[precision])


def full_precision(device: torch.device | str) -> AbstractContextManager:
    """A context in which autocast is off on `device`'s type, for the float32 islands inside an autocast
    region (Cholesky factors and solves); its inputs must be cast to float32 by the caller."""
    return torch.autocast(torch.device(device).type, enabled=False)


def grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """The gradient scaler `precision` needs: a CUDA `GradScaler` for "fp16" (float16 gradients underflow
    without it), None otherwise. Use: `scaler.scale(loss).backward()`, `scaler.unscale_(optimizer)` before
    clipping, `scaler.step(optimizer)` (skipped when a gradient is not finite), `scaler.update()`."""
    check_precision(precision, device, where="grad_scaler")
    return torch.amp.GradScaler("cuda") if precision == "fp16" else None
