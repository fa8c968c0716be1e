"""Inference with a prior beyond one encoder pass: test-time refinement against the context points,
and a residual correction that makes the prediction pass through them.

- **Refinement.** The encoder's latent (or, for the `low_rank` hypernetwork, the rank coefficients it
  maps to) is the start of `steps` Adam steps on the squared error at the context points, each
  sample on its own, with an optional pull `anchor * |code - code_0|^2` towards the encoder's code.
  The hypernetwork and SIREN stay as trained; only the per-image code moves.
- **Residual correction.** The prediction's errors at the context points are spread over the query
  points by the modality (`Modality.residual_correction`; images interpolate them linearly inside the
  context's convex hull, nearest outside) and added, so the corrected prediction equals the context
  values at the context points and keeps the prior's detail between them.

`refined_predictor(model, RefineConfig(...), modality)` is a predictor for `Modality.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..devices import adam, autocast, check_precision
from ..params import SirenParams
from .modality import Modality, Predictor
from .model import HyperSiren
from .types import Context


@dataclass(frozen=True)
class RefineConfig:
    steps: int = 0  # Adam steps per signal on the context points; 0: the encoder's code as it is
    lr: float = 1e-2
    code: str = "coeffs"  # "coeffs" (low_rank only: the rank coefficients) or "latent"
    anchor: float = 0.0  # weight of |code - code_0|^2 per sample
    residual: bool = False  # add the context residuals, spread by the modality

    def __post_init__(self):
        if self.steps < 0 or not self.lr > 0 or self.anchor < 0:
            raise ValueError(f"RefineConfig: expected steps >= 0, lr > 0, anchor >= 0, got {self}")
        if self.code not in ("coeffs", "latent"):
            raise ValueError(f"RefineConfig: code must be 'coeffs' or 'latent', got {self.code!r}")


def _code_and_decoder(model: HyperSiren, context: Context, code: str):
    latent = model.encode(context)
    if code == "latent":
        return latent, model.decode
    if model.config.heads != "low_rank":
        raise ValueError(f"refine: code='coeffs' needs a low_rank hypernetwork, this prior has heads={model.config.heads!r}")
    net = model.hypernet

    def decode(coeffs: Tensor) -> SirenParams:
        return SirenParams.unflatten(net.from_coeffs(coeffs), model.config.layer_shapes)

    return net.coeffs(latent), decode


def refine(model: HyperSiren, context: Context, config: RefineConfig) -> SirenParams:
    """Per-sample SIREN weights after `config.steps` refinement steps (see the module docstring)."""
    if config.steps == 0:  # the amortised prediction, whatever the code kind
        with torch.no_grad():
            return model.decode(model.encode(context))
    with torch.no_grad():
        code0, decode = _code_and_decoder(model, context, config.code)
    code = code0.clone().requires_grad_(True)
    optimizer = adam([code], lr=config.lr)
    mask = context.mask.to(code.dtype)  # [B, M]
    counts = mask.sum(1)
    with torch.enable_grad():
        for _ in range(config.steps):
            pred = model.render(decode(code), context.coords)  # [B, M, C]
            error = ((pred - context.values).square().mean(-1) * mask).sum(1) / counts  # [B]
            loss = error.sum() + config.anchor * (code - code0).square().sum()
            (code.grad,) = torch.autograd.grad(loss, [code])
            optimizer.step()
    with torch.no_grad():
        return decode(code)


def refined_predictor(model: HyperSiren, config: RefineConfig, modality: Modality | None = None, *,
                      precision: str = "float32") -> Predictor:
    """A predictor `(context, coords) -> values [B, N, C]` with refinement and, when `config.residual`, the
    modality's residual correction (which needs `modality`). `precision`: what the model computes in, the
    refinement steps included (`devices.autocast`); its renders come back in the coordinates' dtype
    before the residual correction, which computes in that dtype."""
    if config.residual and modality is None:
        raise ValueError("refined_predictor: residual=True needs the modality that spreads the residuals")
    check_precision(precision, where="refined_predictor")
    model.eval()

    def predict(context: Context, coords: Tensor) -> Tensor:
        with autocast(precision, coords.device):
            params = refine(model, context, config)
            with torch.no_grad():
                values = model.render(params, coords).to(coords.dtype)
                fitted = model.render(params, context.coords).to(coords.dtype) if config.residual else None
        if config.residual:
            with torch.no_grad():
                residuals = (context.values - fitted) * context.mask.unsqueeze(-1)
                values = values + modality.residual_correction(context, residuals, coords)
        return values

    return predict
