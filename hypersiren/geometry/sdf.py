"""The SIREN paper's signed-distance loss, for a batch of `B` per-sample SIRENs.

A SIREN `f` is fitted to a surface given by oriented points (`M` surface points with unit normals per
shape) and `K` off-surface points (the paper: uniform in `[-1, 1]^3`). Per shape, each term is a mean
over the points it concerns, times its weight in `SdfLossConfig`:

    surface       |f(x)|                        on the surface points
    off_surface   exp(-sharpness |f(x)|)        on the off-surface points (no spurious zero crossings)
    normal        1 - cos(grad f(x), n(x))      on the surface points
    eikonal       | |grad f(x)| - 1 |           on all M + K points

`sdf_loss` evaluates the SIRENs and their gradients (`hypersiren.diff.siren_derivatives`, or autograd)
at all points in one call; `sdf_loss_terms` is the loss on given values and gradients, for any field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor

from ..diff import gradient, siren_derivatives
from ..forward import siren_forward
from ..params import SirenParams

DERIVATIVES = ("closed_form", "autograd")


@dataclass(frozen=True)
class SdfLossConfig:
    """Weights of the SDF loss terms; the defaults are the SIREN paper's (its reference code's values)."""

    surface_weight: float = 3e3  # |f| on the surface
    off_surface_weight: float = 1e2  # exp(-off_surface_sharpness |f|) off the surface
    normal_weight: float = 1e2  # 1 - cos(grad f, n) on the surface
    eikonal_weight: float = 5e1  # | |grad f| - 1 | everywhere
    off_surface_sharpness: float = 100.0  # how fast the off-surface penalty decays with |f|

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if not value >= 0:
                raise ValueError(f"SdfLossConfig: {field.name} must be >= 0, got {value!r}")
        if not self.off_surface_sharpness > 0:
            raise ValueError(f"SdfLossConfig: off_surface_sharpness must be positive, got {self.off_surface_sharpness!r}")


class SdfBatch(NamedTuple):
    """The points one loss evaluation sees, per shape."""

    surface: Tensor  # [B, M, 3] points on the surface
    normals: Tensor  # [B, M, 3] unit outward normals at them
    off_surface: Tensor  # [B, K, 3] points anywhere in the domain


class SdfLoss(NamedTuple):
    """Weighted loss terms per shape, each `[B]`; `total` is their sum."""

    total: Tensor
    surface: Tensor
    off_surface: Tensor
    normal: Tensor
    eikonal: Tensor


def sdf_loss_terms(values: Tensor, gradients: Tensor, normals: Tensor, config: SdfLossConfig = SdfLossConfig()) -> SdfLoss:
    """The SDF loss of a field given its values and gradients at `M` surface points followed by `K`
    off-surface points.

    Args:
        values: `[B, M + K]` field values.
        gradients: `[B, M + K, 3]` their gradients with respect to the points.
        normals: `[B, M, 3]` unit normals at the `M` surface points (the first `M` rows).
    Returns:
        `SdfLoss`, each term `[B]`.
    """
    if values.dim() != 2 or gradients.shape != (*values.shape, 3):
        raise ValueError(f"sdf_loss_terms: expected values [B, N] and gradients [B, N, 3] of the same B, N, got "
                         f"{tuple(values.shape)} and {tuple(gradients.shape)}")
    m = normals.shape[1] if normals.dim() == 3 else -1
    if normals.dim() != 3 or normals.shape[0] != values.shape[0] or normals.shape[2] != 3 or not 0 < m < values.shape[1]:
        raise ValueError(f"sdf_loss_terms: expected normals [B, M, 3] with B = {values.shape[0]} and "
                         f"0 < M < N = {values.shape[1]} (surface points first, then off-surface ones), "
                         f"got {tuple(normals.shape)}")
    c = config
    cosine = torch.nn.functional.cosine_similarity(gradients[:, :m], normals, dim=-1)  # [B, M]
    surface = c.surface_weight * values[:, :m].abs().mean(1)
    off_surface = c.off_surface_weight * torch.exp(-c.off_surface_sharpness * values[:, m:].abs()).mean(1)
    normal = c.normal_weight * (1 - cosine).mean(1)
    eikonal = c.eikonal_weight * (gradients.norm(dim=-1) - 1).abs().mean(1)
    return SdfLoss(surface + off_surface + normal + eikonal, surface, off_surface, normal, eikonal)


def sdf_loss(params: SirenParams, batch: SdfBatch, *, w0_first: float, w0: float,
             config: SdfLossConfig = SdfLossConfig(), derivatives: str = "closed_form") -> SdfLoss:
    """The SDF loss of `B` per-sample SIRENs (`params` with batch shape `(B,)`, `3 -> 1`) on their shapes' points.

    `derivatives`: `"closed_form"` (`hypersiren.diff.siren_derivatives`) or `"autograd"` (`siren_forward`
    and a backward pass with `create_graph=True`); the two agree to round-off. Returns `SdfLoss`, each
    term `[B]`; differentiable in `params`.
    """
    if derivatives not in DERIVATIVES:
        raise ValueError(f"sdf_loss: derivatives must be one of {DERIVATIVES}, got {derivatives!r}")
    if params.in_dim != 3 or params.out_dim != 1:
        raise ValueError(f"sdf_loss: expected SIRENs 3 -> 1, got {params.in_dim} -> {params.out_dim}")
    surface, normals, off_surface = batch
    batch_size = params.batch_shape[0] if len(params.batch_shape) == 1 else None
    expected = f"[{batch_size}, M, 3]"
    for name, points in (("surface", surface), ("normals", normals), ("off_surface", off_surface)):
        if points.dim() != 3 or points.shape[0] != batch_size or points.shape[2] != 3 or points.shape[1] == 0:
            raise ValueError(f"sdf_loss: expected {name} {expected} with at least one point per shape "
                             f"(params have batch shape {tuple(params.batch_shape)}), got {tuple(points.shape)}")
    if normals.shape != surface.shape:
        raise ValueError(f"sdf_loss: expected one normal per surface point, got normals {tuple(normals.shape)} "
                         f"for surface {tuple(surface.shape)}")
    coords = torch.cat([surface, off_surface], dim=1)  # [B, M + K, 3]
    if derivatives == "closed_form":
        out = siren_derivatives(params, coords, w0_first=w0_first, w0=w0, laplacian=False)
        values, grads = out.values[..., 0], out.jacobian[..., 0, :]  # [B, M + K], [B, M + K, 3]
    else:
        with torch.enable_grad():
            x = coords.detach().requires_grad_(True)
            y = siren_forward(params, x, w0_first=w0_first, w0=w0)  # [B, M + K, 1]
            values, grads = y[..., 0], gradient(y, x)
    return sdf_loss_terms(values, grads, normals, config)
