"""Derivatives of a field with respect to its input coordinates: by autograd for any field, and in
closed form for SIRENs (`siren_derivatives`, faster for losses on derivatives).

Shapes: coordinates `x` `[B, N, D]` with `requires_grad` set before the forward; outputs `y`
`[B, N, C]` computed from `x`. Every operator returns a tensor built with `create_graph=True`, so a
loss on it can be differentiated again (Poisson, eikonal and PDE losses).

Channel semantics:
- `gradient(y, x)` is for scalar fields (`C = 1`) and returns `[B, N, D]`. For `C > 1` it raises
  rather than silently summing channels; use `jacobian` for per-channel gradients, or pass
  `y.sum(-1, keepdim=True)` for the gradient of the channel sum.
- `jacobian(y, x)` returns `[B, N, C, D]`, entry `[b, n, c, d] = dy[b, n, c] / dx[b, n, d]`.
- `divergence(v, x)` needs `C = D` and returns `[B, N, 1] = sum_d dv_d / dx_d`.
- `laplacian(y, x)` acts on each channel: `[B, N, C]`.

All four use one backward pass per output channel (and per coordinate for second derivatives) on
the sum over points. That sum gives each point's own derivative because the output at point `n` of
sample `b` depends only on `x[b, n]`: true of every SIREN, per-sample weights included, and of any
network applied point by point. It is not true of networks that mix query points (attention over
queries, batch statistics); do not use these operators on those.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor

from .closed_form import state_derivatives
from .forward import _check_forward_inputs, layer_scales, siren_forward
from .params import SirenParams


def gradient(y: Tensor, x: Tensor) -> Tensor:
    """Gradient of a scalar field: `y [B, N, 1]`, `x [B, N, D]` -> `[B, N, D]`."""
    _check(y, x, "gradient")
    if y.shape[-1] != 1:
        raise ValueError(
            f"gradient: expected a scalar field y [B, N, 1], got {tuple(y.shape)} with C={y.shape[-1]}; "
            "use jacobian(y, x) for per-channel gradients, or y.sum(-1, keepdim=True) for the channel sum"
        )
    return _grad(y, x)


def jacobian(y: Tensor, x: Tensor) -> Tensor:
    """Per-channel gradients: `y [B, N, C]`, `x [B, N, D]` -> `[B, N, C, D]`."""
    _check(y, x, "jacobian")
    return torch.stack([_grad(y[..., c], x) for c in range(y.shape[-1])], dim=-2)


def divergence(v: Tensor, x: Tensor) -> Tensor:
    """Divergence of a vector field: `v [B, N, D]`, `x [B, N, D]` -> `[B, N, 1]`."""
    _check(v, x, "divergence")
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"divergence: expected a vector field v [B, N, {x.shape[-1]}] matching x {tuple(x.shape)}, "
            f"got {tuple(v.shape)}"
        )
    return _divergence(v, x)


def laplacian(y: Tensor, x: Tensor) -> Tensor:
    """Laplacian of each channel: `y [B, N, C]`, `x [B, N, D]` -> `[B, N, C]`."""
    _check(y, x, "laplacian")
    return torch.cat([_divergence(_grad(y[..., c], x), x) for c in range(y.shape[-1])], dim=-1)


def _grad(y: Tensor, x: Tensor) -> Tensor:
    """d(sum of y)/dx with a graph for further differentiation; zeros where y does not depend on x."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _divergence(v: Tensor, x: Tensor) -> Tensor:
    return sum(_grad(v[..., d], x)[..., d] for d in range(x.shape[-1])).unsqueeze(-1)


def _check(y: Tensor, x: Tensor, name: str) -> None:
    if x.dim() != 3:
        raise ValueError(f"{name}: expected coordinates x [B, N, D], got {tuple(x.shape)}")
    if y.dim() != 3 or y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"{name}: expected y [B, N, C] with B, N = {tuple(x.shape[:2])} to match x, got {tuple(y.shape)}"
        )
    if not x.requires_grad:
        raise ValueError(
            f"{name}: x does not require grad; call x.requires_grad_(True) before computing y from it"
        )
    if not y.requires_grad:
        raise ValueError(f"{name}: y does not require grad, so it was not computed from x with autograd enabled")


# --- closed form, for SIRENs -----------------------------------------------------------------------


class SirenDerivatives(NamedTuple):
    """A SIREN's output and its derivatives with respect to its input coordinates."""

    values: Tensor  # [B, N, C]
    jacobian: Tensor  # [B, N, C, D]: d values[..., c] / d coords[..., d]
    laplacian: Tensor | None  # [B, N, C], or None when not asked for
    hessian_diagonal: Tensor | None = None  # [B, N, C, D]: d^2 values[..., c] / d coords[..., d]^2, if asked for


def siren_derivatives(params: SirenParams, coords: Tensor, *, w0_first: float = 30.0, w0: float = 30.0,
                      laplacian: bool = True, hessian_diagonal: bool = False) -> SirenDerivatives:
    """Values, Jacobian and (optionally) Laplacian or per-axis second derivatives of `B` SIRENs, in
    closed form.

    Args:
        params: weights `[B, out, in]` and biases `[B, out]` per layer, as for `siren_forward`.
        coords: `[B, N, D]`; they need not require grad.
        laplacian: also return the Laplacian `[B, N, C]`.
        hessian_diagonal: also return `d^2 y_c / d x_d^2` for each axis `[B, N, C, D]` (PDEs whose
            operator weighs the axes differently: wave equations, absorbing layers); implies `laplacian`.
    Returns:
        `SirenDerivatives(values, jacobian, laplacian or None, hessian_diagonal or None)`.

    Second derivatives are carried forward through the layers. For a sine layer `h' = sin(z)`,
    `z = w0 (W h + b)`: `dz = w0 W dh`, `dh' = cos(z) dz` and `d_dd h' = cos(z) d_dd z - sin(z) (d_d z)^2`;
    the last layer is linear. The value, the `D` first-derivative rows and the second-derivative rows
    go through each layer's weights in one batched matmul, so a loss on them needs one ordinary
    backward pass instead of autograd's double backward.

    First derivatives alone (`laplacian=False`) with `C <= D` are computed in reverse mode instead
    (autograd's, with `create_graph=True`: `C` backward rows are cheaper than `D` forward rows, and
    measured faster than a hand-written reverse pass).

    Same numbers as `jacobian` / `laplacian` on `siren_forward`, to round-off; differentiable in
    `params` (and `coords`).
    """
    _check_forward_inputs(params, coords, "siren_derivatives")
    if hessian_diagonal:
        laplacian = True
    if not laplacian and params.out_dim <= coords.shape[-1]:
        found = _reverse_jacobian(params, coords, w0_first, w0)
    else:
        found = _forward_derivatives(params, coords, w0_first, w0, second=("diagonal" if hessian_diagonal else
                                                                            "laplacian" if laplacian else None))
    # under autocast (bf16 / fp16) the matmuls above ran in its dtype, and the derivatives have its
    # precision; they come back in the coordinates' dtype, so that losses on them compute in float32
    return SirenDerivatives(*(None if t is None else t.to(coords.dtype) for t in found))


def _forward_derivatives(params: SirenParams, coords: Tensor, w0_first: float, w0: float,
                         second: str | None) -> SirenDerivatives:
    dim = coords.shape[-1]
    state = state_derivatives(params, coords, layer_scales(params.depth, w0_first, w0), second)  # [B, R, N, C]
    values = state[:, 0]  # [B, N, C]
    jac = rearrange(state[:, 1 : 1 + dim], "b d n c -> b n c d")
    if second == "diagonal":
        diagonal = rearrange(state[:, 1 + dim :], "b d n c -> b n c d")
        return SirenDerivatives(values, jac, diagonal.sum(-1), diagonal)
    return SirenDerivatives(values, jac, state[:, 1 + dim] if second else None)


def _reverse_jacobian(params: SirenParams, coords: Tensor, w0_first: float, w0: float) -> SirenDerivatives:
    """Values and Jacobian by reverse mode: autograd's, on the graph path of `siren_forward`.

    A hand-written reverse pass in plain ops measured slower than this (0.81x per gradient-loss
    training step at 256x256, BENCHMARKS.md), and autograd's step is within 1.12x of the bare matmuls
    it needs, so there is no closed-form gain to take for first derivatives."""
    x = coords if coords.requires_grad else coords.detach().requires_grad_(True)
    with torch.enable_grad():
        y = siren_forward(params, x, w0_first=w0_first, w0=w0, higher_order=True)
        jac = torch.stack([_grad(y[..., c], x) for c in range(y.shape[-1])], dim=-2)  # [B, N, C, D]
    return SirenDerivatives(y, jac, None)
