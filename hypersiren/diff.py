"""Derivatives of a field with respect to its input coordinates, by autograd.

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

import torch
from torch import Tensor


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
