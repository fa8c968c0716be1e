"""Units and scores shared by fitting, priors and evaluation.

Signals are stored in [0, 1] ("unit" range: pixels, audio amplitudes mapped to [0, 1]) and models see
them in [-1, 1] ("signed" range, as in the SIREN paper). `to_signed` / `to_unit` convert between the
two; `psnr` and `mse_to_psnr` measure in unit range, so a signed-range MSE is divided by 4 first
(`signed_mse_to_unit`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def to_signed(values: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]: `2 v - 1`."""
    return values * 2 - 1


def to_unit(values: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]: `(v + 1) / 2` (no clamping; a SIREN is unbounded)."""
    return (values + 1) / 2


def signed_mse_to_unit(mse: float) -> float:
    """An MSE measured in [-1, 1] units, in [0, 1] units (the range halves, the squared error quarters)."""
    return mse / 4


def mse_to_psnr(mse: float, *, peak: float = 1.0) -> float:
    """`10 log10(peak^2 / mse)` in dB; infinite for a zero error."""
    if mse < 0 or math.isnan(mse):
        raise ValueError(f"mse_to_psnr: expected a mean squared error >= 0, got {mse!r}")
    return 10 * math.log10(peak * peak / mse) if mse > 0 else float("inf")


def psnr(prediction: Tensor, target: Tensor) -> float:
    """PSNR in dB of signed-range values (prediction clipped to [-1, 1]), measured in [0, 1] units,
    pooled over every element."""
    if prediction.shape != target.shape:
        raise ValueError(f"psnr: expected prediction and target of one shape, got {tuple(prediction.shape)} "
                         f"and {tuple(target.shape)}")
    mse = (to_unit(prediction.clamp(-1, 1)) - to_unit(target)).square().mean().item()
    return mse_to_psnr(max(mse, 1e-20))


def per_signal_psnr(mse: Tensor) -> Tensor:
    """Per-signal PSNR in dB from per-signal MSEs `[B]` in [0, 1] units (floored at 1e-12): `[B]`."""
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))
