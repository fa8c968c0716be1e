"""The batched SIREN forward: `B` SIRENs, each with its own weights, in one call.

Three ways through the same arithmetic, chosen from what the caller will differentiate:

- nothing (inference, or `torch.no_grad()`): w0 and the bias go into each layer's `baddbmm`, the
  sine runs in place, nothing is kept;
- the weights only (training a hypernetwork or a SIREN on values): `_FusedSiren`, an autograd
  function that keeps each block's activations and runs a hand-written backward: three matmuls and
  one cosine-product per layer, with w0 applied inside the matmuls and weight gradients accumulated
  in place, so no full-size temporaries or per-op autograd nodes;
- the coordinates (derivative losses via `hypersiren.diff`), second-order use of the weights
  (`higher_order=True`; the fused backward refuses `create_graph=True`), or inside `torch.func` transforms: plain differentiable torch operations,
  w0 folded into the (small) weights, to any order.

On the CPU, large inputs run in blocks of samples and points of about `CPU_BLOCK_ELEMENTS` hidden
activations, so that a layer's output is still in cache when its sine is taken and the next layer
reads it. Blocking changes the speed only, not the result: every point sees the same operations.

Under `torch.autocast` (bf16 / fp16, `hypersiren.devices.autocast`) the matmuls and sines of every path
run in autocast's dtype; the output (a few channels: a cheap cast) comes back in the coordinates' dtype,
so that losses on it compute in float32. The fused backward computes its products in autocast's dtype
too and returns float32 weight gradients, as autocast's own matmul backward does.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import Tensor

from .params import SirenParams

CPU_BLOCK_ELEMENTS = 2**19  # 2 MiB of float32 activations per block


def layer_scales(depth: int, w0_first: float, w0: float) -> tuple[float, ...]:
    """The factor in front of each layer's `W x + b`: w0_first, w0, ..., w0, then 1 for the linear last layer."""
    return tuple(1.0 if i == depth - 1 else (w0_first if i == 0 else w0) for i in range(depth))


def siren_forward(
    params: SirenParams,
    coords: Tensor,
    *,
    w0_first: float = 30.0,
    w0: float = 30.0,
    higher_order: bool = False,
) -> Tensor:
    """Evaluate `B` SIRENs, sample `b` with its own weights, in one batched pass.

    Args:
        params: weights `[B, out, in]` and biases `[B, out]` per layer.
        coords: `[B, N, in_dim]` query coordinates; sample `b`'s points go through SIREN `b`.
            Set `requires_grad` on them before the call to take derivatives with `hypersiren.diff`.
        higher_order: keep a graph that can be differentiated more than once with respect to the
            weights (second-order meta-learning). Derivatives with respect to `coords` are always
            available to any order; without this flag, a second backward through the weights raises.
    Returns:
        `[B, N, out_dim]`: `sin(w0 (W h + b))` per hidden layer (`w0_first` for the first), last linear.
    """
    _check_forward_inputs(params, coords)
    depth = params.depth
    scales = layer_scales(depth, w0_first, w0)
    tensors = params.weights + params.biases
    wants_grad = torch.is_grad_enabled() and (coords.requires_grad or any(t.requires_grad for t in tensors))
    if coords.requires_grad and wants_grad or higher_order or _inside_functorch_transform():
        out = _graph_forward(params, coords, scales)
    elif not wants_grad:
        out = _block_forward(params.weights, params.biases, scales, coords, keep=None)
    else:
        out = _FusedSiren.apply(coords, scales, *tensors)
    return out.to(coords.dtype)  # under autocast: back from its dtype, so that losses compute in float32


def _inside_functorch_transform() -> bool:
    """True inside `torch.func.vmap`, `grad`, `jacrev`, `hessian`, `jvp` or any other functorch transform.

    Inside a transform `siren_forward` takes the graph path: `_FusedSiren` has no `setup_context`
    or vmap rule, so `torch.autograd.Function.apply` refuses to run there, and the hand-written
    backward could not be differentiated again by `jacrev` or `hessian` anyway.

    torch 2.14 has no public way to ask this. The public `torch.func.debug_unwrap(t) is not t` tells
    only whether one tensor is a wrapper (and is documented for debugging only); it misses calls
    whose inputs are all plain tensors under an active transform, e.g. `vmap(lambda s: s *
    siren_forward(params, coords).sum())` with `params` requiring grad, where `apply` still raises.
    So this helper holds hypersiren's one call of a private torch function (the one
    `torch.autograd.backward` itself uses to refuse running inside a transform); other modules that
    need the answer call the helper.
    tests/test_functional.py::test_functorch_transform_detection_still_exists fails with a clear
    message if a torch release removes it.
    """
    return torch._C._are_functorch_transforms_active()


def _blocks(batch: int, n: int, width: int, device: torch.device) -> Iterator[tuple[slice, slice]]:
    """(samples, points) slices covering `[B, N]` in blocks of about CPU_BLOCK_ELEMENTS activations."""
    if device.type != "cpu":
        group, block = batch, n
    elif n * width <= CPU_BLOCK_ELEMENTS:
        group, block = max(1, CPU_BLOCK_ELEMENTS // (n * width)), n
    else:
        group, block = 1, max(1, CPU_BLOCK_ELEMENTS // width)
    for b0 in range(0, batch, group):
        for n0 in range(0, n, block):
            yield slice(b0, b0 + group), slice(n0, n0 + block)


def _block_forward(weights, biases, scales, coords: Tensor, keep: list | None) -> Tensor:
    """Forward without autograd. With `keep`, appends each block's layer inputs and pre-activations."""
    batch, n = coords.shape[:2]
    blocks = list(_blocks(batch, n, max(w.shape[-2] for w in weights), coords.device))
    with torch.no_grad():
        if len(blocks) == 1:  # small inputs: no slicing, no copy into an output buffer
            return _block_layers(weights, biases, scales, coords, slice(None), keep, blocks[0])
        out = coords.new_empty(batch, n, weights[-1].shape[-2])
        for samples, points in blocks:
            out[samples, points] = _block_layers(
                weights, biases, scales, coords[samples, points], samples, keep, (samples, points))
    return out


def _block_layers(weights, biases, scales, h: Tensor, samples: slice, keep: list | None, block) -> Tensor:
    """One block `h [b, n, in]` through every layer -> `[b, n, out]`; in-place sines unless kept."""
    inputs, preacts, last = [], [], len(weights) - 1
    for i, (w, b, s) in enumerate(zip(weights, biases, scales)):
        z = torch.baddbmm(b[samples].unsqueeze(1), h, w[samples].mT, beta=s, alpha=s)  # [b, n, out_i]
        if keep is not None:
            inputs.append(h)
        if i == last:
            break
        if keep is None:  # nothing is kept, so the buffers of earlier layers are freed and reused
            h = z.sin_()
        else:
            preacts.append(z)
            h = torch.sin(z)
    if keep is not None:
        keep.append((*block, inputs, preacts))
    return z


def _compute_dtype(tensor: Tensor) -> torch.dtype:
    """The dtype the matmuls on a float `tensor` run in: autocast's (bf16 / fp16) inside an autocast region
    of its device type for float32, else its own (autocast leaves float64 alone)."""
    kind = tensor.device.type
    if tensor.dtype == torch.float32 and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return tensor.dtype


class _FusedSiren(torch.autograd.Function):
    """Forward and backward of the whole SIREN for gradients with respect to the weights only."""

    @staticmethod
    def forward(ctx, coords: Tensor, scales: Sequence[float], *tensors: Tensor) -> Tensor:
        depth = len(tensors) // 2
        blocks: list = []
        out = _block_forward(tensors[:depth], tensors[depth:], scales, coords, keep=blocks)
        ctx.save_for_backward(*tensors)  # version-checked: an in-place change before backward raises
        ctx.blocks, ctx.scales, ctx.dtype = blocks, scales, _compute_dtype(coords)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if torch.is_grad_enabled():  # create_graph=True: a derivative of this backward was asked for
            raise RuntimeError(
                "siren_forward: a second derivative through the weights needs the graph path; "
                "call siren_forward(..., higher_order=True) for second-order use of the weights"
            )
        tensors = ctx.saved_tensors
        depth, dtype = len(tensors) // 2, ctx.dtype  # dtype: the forward's matmuls' (autocast's, or the inputs')
        weights = [w.to(dtype) for w in tensors[:depth]]
        grad_w = [torch.zeros_like(w) for w in tensors[:depth]]
        grad_b = [torch.zeros_like(b) for b in tensors[depth:]]
        none = grad_out.new_zeros(1, 1, 1, dtype=dtype)  # baddbmm input ignored with beta=0
        for samples, points, inputs, preacts in ctx.blocks:
            g = grad_out[samples, points].to(dtype)  # dL/d(layer output), [b, n, out_i]
            for i in reversed(range(depth)):
                s = ctx.scales[i]
                if i < depth - 1:
                    g = preacts[i].cos_().mul_(g)  # dL/dz: the pre-activation is not needed again
                if grad_w[i].dtype == dtype:
                    grad_w[i][samples].baddbmm_(g.mT, inputs[i], alpha=s)  # += s g^T h, [b, out_i, in_i]
                    grad_b[i][samples] += s * g.sum(1)
                else:  # autocast: the products in its dtype, summed into float32
                    grad_w[i][samples] += torch.bmm(g.mT, inputs[i].to(dtype)).to(grad_w[i].dtype).mul_(s)
                    grad_b[i][samples] += s * g.sum(1, dtype=grad_b[i].dtype)
                if i > 0:
                    g = torch.baddbmm(none, g, weights[i][samples], beta=0, alpha=s)  # s g W, [b, n, in_i]
        ctx.blocks = None
        needs = ctx.needs_input_grad[2:]
        grads = [g if need else None for g, need in zip(grad_w + grad_b, needs)]
        return (None, None, *grads)


def _graph_forward(params: SirenParams, coords: Tensor, scales) -> Tensor:
    """Differentiable to any order in coords and weights; w0 folded into the weights and biases."""
    weights = tuple(w * s if s != 1.0 else w for w, s in zip(params.weights, scales))
    biases = tuple(b * s if s != 1.0 else b for b, s in zip(params.biases, scales))
    batch, n = coords.shape[:2]
    blocks = list(_blocks(batch, n, max(w.shape[-2] for w in weights), coords.device))
    if len(blocks) == 1:
        return _graph_layers(weights, biases, coords)
    group = blocks[0][0].stop - blocks[0][0].start
    block = blocks[0][1].stop - blocks[0][1].start
    groups = zip(zip(*(w.split(group) for w in weights)), zip(*(b.split(group) for b in biases)), coords.split(group))
    return torch.cat([
        torch.cat([_graph_layers(ws, bs, x) for x in xs.split(block, dim=1)], dim=1)
        for ws, bs, xs in groups
    ])


def _graph_layers(weights, biases, h: Tensor) -> Tensor:
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b.unsqueeze(1), h, w.mT)  # [B, N, out_i]
        if i < last:
            h = torch.sin(h)
    return h


def _check_forward_inputs(params: SirenParams, coords: Tensor, caller: str = "siren_forward") -> None:
    if not isinstance(params, SirenParams):
        raise TypeError(f"{caller}: expected params to be a SirenParams, got {type(params).__name__}")
    params.validate(caller)
    if len(params.batch_shape) != 1:
        raise ValueError(
            f"{caller}: expected params with one batch dimension (weights [B, out, in]), "
            f"got weight 0 of shape {tuple(params.weights[0].shape)}"
        )
    batch, in_dim = params.batch_shape[0], params.in_dim
    if coords.dim() != 3 or coords.shape[0] != batch or coords.shape[-1] != in_dim:
        raise ValueError(
            f"{caller}: expected coords [B, N, {in_dim}] with B={batch} to match params, "
            f"got {tuple(coords.shape)}"
        )
    w = params.weights[0]
    if coords.dtype != w.dtype or coords.device != w.device:
        raise ValueError(
            f"{caller}: coords are {coords.dtype} on {coords.device} but params are {w.dtype} on "
            f"{w.device}; move one to match the other"
        )
