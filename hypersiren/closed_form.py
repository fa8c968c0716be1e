"""A SIREN's derivatives with respect to its input, carried through the layers in closed form.

The state of a point at each layer has `R` rows: the value, the `D` first-derivative directions, and
0, 1 (Laplacian) or `D` (per-axis second derivatives) second-derivative rows. Through a sine layer
`h' = sin(z)`, `z = s (W h + b)` (`s` = w0; the bias moves the value row only):

    value:   sin(z_v)
    first:   cos(z_v) z_d
    second:  cos(z_v) z_dd - sin(z_v) z_d^2        (the Laplacian row sums z_d^2 over d)

and the last layer is linear. `forward_derivatives` runs this with plain differentiable ops (any
order, coordinates included); `_FusedDerivatives` runs the same arithmetic in blocks of points with a
hand-written backward for the weights, the path of derivative-loss training.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .forward import CPU_BLOCK_ELEMENTS, _inside_functorch_transform
from .params import SirenParams


def initial_state(coords: Tensor, second_rows: int) -> Tensor:
    """`[B, R, N, D]`: the coordinates, the identity directions, zero second derivatives."""
    batch, n, dim = coords.shape
    eye = torch.eye(dim, dtype=coords.dtype, device=coords.device)
    return torch.cat([coords.unsqueeze(1), eye.view(1, dim, 1, dim).expand(batch, dim, n, dim),
                      coords.new_zeros(batch, second_rows, n, dim)], dim=1)


def state_derivatives(params: SirenParams, coords: Tensor, scales: Sequence[float], second: str | None) -> Tensor:
    """The final state `[B, R, N, C]`; fused with a hand-written backward when only weights need gradients."""
    tensors = params.weights + params.biases
    wants_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if coords.requires_grad or _inside_functorch_transform():
        return _graph_state(params.weights, params.biases, coords, scales, second)
    if not wants_grad:
        with torch.no_grad():
            return _FusedDerivatives.run(params.weights, params.biases, coords, scales, second, keep=None)
    return _FusedDerivatives.apply(coords, tuple(scales), second, *tensors)


def _second_rows(second: str | None, dim: int) -> int:
    return {None: 0, "laplacian": 1, "diagonal": dim}[second]


def _graph_state(weights, biases, coords: Tensor, scales, second: str | None) -> Tensor:
    batch, n, dim = coords.shape
    state = initial_state(coords, _second_rows(second, dim))
    rows = state.shape[1]
    for i, (w, b) in enumerate(zip(weights, biases)):
        s = scales[i]
        z = torch.bmm(state.reshape(batch, rows * n, -1), (s * w).mT).view(batch, rows, n, -1)
        value = z[:, :1] + (s * b).view(batch, 1, 1, -1)
        if i == len(weights) - 1:
            return torch.cat([value, z[:, 1:]], dim=1)
        sin, cos = torch.sin(value), torch.cos(value)
        jac = z[:, 1 : 1 + dim]
        parts = [sin, cos * jac]
        if second == "laplacian":
            parts.append(cos * z[:, 1 + dim :] - sin * jac.square().sum(1, keepdim=True))
        elif second == "diagonal":
            parts.append(cos * z[:, 1 + dim :] - sin * jac.square())
        state = torch.cat(parts, dim=1)
    return state


class _FusedDerivatives(torch.autograd.Function):
    """The closed-form state in blocks of points, with a hand-written backward to the weights."""

    @staticmethod
    def run(weights, biases, coords: Tensor, scales, second: str | None, keep: list | None) -> Tensor:
        batch, n, dim = coords.shape
        rows = 1 + dim + _second_rows(second, dim)
        width = max(w.shape[-2] for w in weights)
        block = n if coords.device.type != "cpu" else max(1, CPU_BLOCK_ELEMENTS // (rows * width))
        out = coords.new_empty(batch, rows, n, weights[-1].shape[-2])
        for b in range(batch):
            for p0 in range(0, n, block):
                points = slice(p0, p0 + block)
                state = initial_state(coords[b : b + 1, points], rows - 1 - dim)
                kept = []
                for i, (w, bias) in enumerate(zip(weights, biases)):
                    state, z = _layer(state, w[b : b + 1], bias[b : b + 1], scales[i], dim, second,
                                      last=i == len(weights) - 1)
                    kept.append(z)
                out[b : b + 1, :, points] = state
                if keep is not None:
                    keep.append((b, points, kept))
        return out

    @staticmethod
    def forward(ctx, coords: Tensor, scales: Sequence[float], second: str | None, *tensors: Tensor) -> Tensor:
        depth = len(tensors) // 2
        blocks: list = []
        out = _FusedDerivatives.run(tensors[:depth], tensors[depth:], coords, scales, second, keep=blocks)
        ctx.save_for_backward(coords, *tensors)
        ctx.blocks, ctx.scales, ctx.second = blocks, scales, second
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if torch.is_grad_enabled():
            raise RuntimeError("siren_derivatives: a second derivative through the weights of these derivatives is "
                               "not supported; set coords.requires_grad_(True) to use the differentiable path")
        coords, *tensors = ctx.saved_tensors
        depth = len(tensors) // 2
        weights, dim, second = tensors[:depth], coords.shape[-1], ctx.second
        grad_w = [torch.zeros_like(w) for w in weights]
        grad_b = [torch.zeros_like(b) for b in tensors[depth:]]
        for b, points, kept in ctx.blocks:
            g = grad_out[b : b + 1, :, points]  # [1, R, n, out]
            inputs = [initial_state(coords[b : b + 1, points], g.shape[1] - 1 - dim)]
            for i in range(depth - 1):
                inputs.append(_activate(kept[i], dim, second))  # layer inputs, recomputed from the kept z
            for i in reversed(range(depth)):
                s, x = ctx.scales[i], inputs[i]
                if i < depth - 1:
                    g = _activation_backward(kept[i], g, dim, second)  # dL/dz
                rows, n = g.shape[1], g.shape[2]
                g2 = g.reshape(rows * n, -1)
                grad_w[i][b].addmm_(g2.mT, x.reshape(rows * n, -1), alpha=s)
                grad_b[i][b] += s * g[0, 0].sum(0)
                if i > 0:
                    g = (g2 @ weights[i][b]).mul_(s).view(1, rows, n, -1)
        ctx.blocks = None
        needs = ctx.needs_input_grad[3:]
        return (None, None, None, *[g if need else None for g, need in zip(grad_w + grad_b, needs)])


def _layer(state: Tensor, w: Tensor, b: Tensor, s: float, dim: int, second: str | None, *, last: bool):
    """One layer on a block: state `[1, R, n, in]` -> (next state, the layer's `z` `[1, R, n, out]`)."""
    rows, n = state.shape[1], state.shape[2]
    z = torch.mm(state.reshape(rows * n, -1), w[0].mT).mul_(s).view(1, rows, n, -1)
    z[:, 0] += s * b
    return (z, z) if last else (_activate(z, dim, second), z)


def _activate(z: Tensor, dim: int, second: str | None) -> Tensor:
    """The sine layer's output rows from its `z` rows (see the module docstring)."""
    sin, cos = torch.sin(z[:, :1]), torch.cos(z[:, :1])
    jac = z[:, 1 : 1 + dim]
    out = torch.empty_like(z)
    out[:, :1] = sin
    torch.mul(cos, jac, out=out[:, 1 : 1 + dim])
    if second is not None:
        square = jac.square()
        if second == "laplacian":
            square = square.sum(1, keepdim=True)
        torch.mul(cos, z[:, 1 + dim :], out=out[:, 1 + dim :])
        out[:, 1 + dim :] -= sin * square
    return out


def _activation_backward(z: Tensor, g: Tensor, dim: int, second: str | None) -> Tensor:
    """dL/dz from dL/d(output rows) `g`, both `[1, R, n, H]`."""
    sin, cos = torch.sin(z[:, :1]), torch.cos(z[:, :1])
    jac, g_jac = z[:, 1 : 1 + dim], g[:, 1 : 1 + dim]
    out = torch.empty_like(z)
    out[:, 1 : 1 + dim] = cos * g_jac
    mixed = (jac * g_jac).sum(1, keepdim=True)  # sum_d z_d g_d
    g_value = cos * g[:, :1]
    if second is not None:
        g_second, z_second = g[:, 1 + dim :], z[:, 1 + dim :]
        torch.mul(cos, g_second, out=out[:, 1 + dim :])
        out[:, 1 : 1 + dim] -= 2 * sin * jac * g_second  # g_second broadcasts over d for the Laplacian
        mixed += (z_second * g_second).sum(1, keepdim=True)
        g_value -= cos * (jac.square() * g_second).sum(1, keepdim=True)
    out[:, :1] = g_value - sin * mixed
    return out
