"""The SIREN network: initialisation, the batched functional forward, and the `nn.Module`.

Conventions (the SIREN paper's reference code, which produced its published numbers):

- A sine layer computes `sin(w0 * (W x + b))`: the bias sits inside the product and is scaled by w0.
- `depth` counts linear layers, first and last included; the last layer is linear (no sine).
  The paper's network is `depth=5`: `in -> 256 -> 256 -> 256 -> 256 -> out`.
- `w0_first` is the frequency of the first layer, `w0` that of every other sine layer (30 and 30).
- Weights are uniform: the first layer in `+-1/fan_in` (no square root), every later layer, the last
  linear one included, in `+-sqrt(6/fan_in)/w0`. Biases keep `nn.Linear`'s `+-1/sqrt(fan_in)`.
  With inputs uniform in [-1, 1] this keeps every hidden pre-activation `w0 (W x + b)` close to
  N(0, 1) whatever the depth. Keeping w0 = 30 in hidden layers and dividing the weights by it (rather
  than w0 = 1 with undivided weights) gives the same function at init but the intended gradient scale.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .params import LayerShapes, SirenParams, siren_layer_shapes


def siren_init_bounds(layer_shapes: LayerShapes, *, w0: float = 30.0) -> list[tuple[float, float]]:
    """`(weight_bound, bias_bound)` of the uniform initialisation of each layer, first to last."""
    bounds = []
    for i, (_, fan_in) in enumerate(layer_shapes):
        weight_bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / w0
        bounds.append((weight_bound, 1.0 / math.sqrt(fan_in)))
    return bounds


# On the CPU the forward runs in blocks of about this many hidden activations (2 MiB in float32), so
# that each layer's output is still in cache when its sine is taken and the next layer reads it.
# Blocking changes the speed only, not the result: every point goes through the same operations.
CPU_BLOCK_ELEMENTS = 2**19


def siren_forward(params: SirenParams, coords: Tensor, *, w0_first: float = 30.0, w0: float = 30.0) -> Tensor:
    """Evaluate `B` SIRENs, sample `b` with its own weights, in one batched pass.

    Args:
        params: weights `[B, out, in]` and biases `[B, out]` per layer.
        coords: `[B, N, in_dim]` query coordinates; sample `b`'s points go through SIREN `b`.
    Returns:
        `[B, N, out_dim]`.

    Each layer is one `baddbmm` (bias and w0 included) followed by a sine. Without autograd, w0 is
    applied by the matmul itself and the sine runs in place; with autograd, w0 is folded into the
    (small) weights so that the backward pass has no extra full-size products. On the CPU, large
    inputs run in cache-sized blocks of samples and points (`CPU_BLOCK_ELEMENTS`).
    Set `requires_grad` on `coords` before the call to take derivatives with `hypersiren.diff`.
    """
    _check_forward_inputs(params, coords)
    scales = [w0_first] + [w0] * (params.depth - 2) + [1.0] if params.depth > 1 else [1.0]
    track = torch.is_grad_enabled() and (coords.requires_grad or any(t.requires_grad for t in params.weights + params.biases))
    if track:
        weights = tuple(w * s if s != 1.0 else w for w, s in zip(params.weights, scales))
        biases = tuple(b * s if s != 1.0 else b for b, s in zip(params.biases, scales))
        scales = [1.0] * params.depth
    else:
        weights, biases = params.weights, params.biases
    batch, n = coords.shape[:2]
    group, block = _blocking(batch, n, max(w.shape[-2] for w in weights), coords.device)
    if group >= batch and block >= n:
        return _layers(weights, biases, scales, coords, track)
    groups = zip(zip(*(w.split(group) for w in weights)), zip(*(b.split(group) for b in biases)), coords.split(group))
    return torch.cat([
        torch.cat([_layers(ws, bs, scales, x, track) for x in xs.split(block, dim=1)], dim=1)
        for ws, bs, xs in groups
    ])


def _layers(weights, biases, scales, h: Tensor, track: bool) -> Tensor:
    """`h [B, N, in]` through every layer: `sin(s (h W^T + b))`, the last one linear. -> `[B, N, out]`."""
    last = len(weights) - 1
    for i, (w, b, s) in enumerate(zip(weights, biases, scales)):
        h = torch.baddbmm(b.unsqueeze(1), h, w.mT, beta=s, alpha=s)  # [B, N, out_i]
        if i < last:
            h = torch.sin(h) if track else h.sin_()
    return h


def _blocking(batch: int, n: int, width: int, device: torch.device) -> tuple[int, int]:
    """(samples per group, points per block) so that one block holds about CPU_BLOCK_ELEMENTS activations."""
    if device.type != "cpu":
        return batch, n
    per_sample = n * width
    if per_sample <= CPU_BLOCK_ELEMENTS:
        return max(1, CPU_BLOCK_ELEMENTS // per_sample), n
    return 1, max(1, CPU_BLOCK_ELEMENTS // width)


def _check_forward_inputs(params: SirenParams, coords: Tensor) -> None:
    if not isinstance(params, SirenParams):
        raise TypeError(f"siren_forward: expected params to be a SirenParams, got {type(params).__name__}")
    params.validate("siren_forward")
    if len(params.batch_shape) != 1:
        raise ValueError(
            "siren_forward: expected params with one batch dimension (weights [B, out, in]), "
            f"got weight 0 of shape {tuple(params.weights[0].shape)}"
        )
    batch, in_dim = params.batch_shape[0], params.in_dim
    if coords.dim() != 3 or coords.shape[0] != batch or coords.shape[-1] != in_dim:
        raise ValueError(
            f"siren_forward: expected coords [B, N, {in_dim}] with B={batch} to match params, "
            f"got {tuple(coords.shape)}"
        )
    w = params.weights[0]
    if coords.dtype != w.dtype or coords.device != w.device:
        raise ValueError(
            f"siren_forward: coords are {coords.dtype} on {coords.device} but params are {w.dtype} on "
            f"{w.device}; move one to match the other"
        )


class Siren(nn.Module):
    """A SIREN `in_dim -> hidden_dim x (depth - 1) -> out_dim` (see the module docstring for conventions).

    `forward(coords)` maps `[..., in_dim]` to `[..., out_dim]` through `siren_forward`, the same code
    path as batched per-sample evaluation. Parameters are `layers.{i}.weight` `[out, in]` and
    `layers.{i}.bias` `[out]`, in the order of `SirenParams.flatten`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int = 256,
        depth: int = 5,
        w0_first: float = 30.0,
        w0: float = 30.0,
    ):
        super().__init__()
        for name, value in (("w0_first", w0_first), ("w0", w0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Siren: {name} must be a positive finite number, got {value!r}")
        self.in_dim, self.out_dim, self.hidden_dim, self.depth = in_dim, out_dim, hidden_dim, depth
        self.w0_first, self.w0 = float(w0_first), float(w0)
        shapes = siren_layer_shapes(in_dim, out_dim, hidden_dim=hidden_dim, depth=depth)
        self.layers = nn.ModuleList(nn.Linear(inp, out) for out, inp in shapes)
        self.reset_parameters()

    @property
    def layer_shapes(self) -> LayerShapes:
        return tuple((layer.out_features, layer.in_features) for layer in self.layers)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for layer, (weight_bound, bias_bound) in zip(self.layers, siren_init_bounds(self.layer_shapes, w0=self.w0)):
            layer.weight.uniform_(-weight_bound, weight_bound)
            layer.bias.uniform_(-bias_bound, bias_bound)

    def params(self) -> SirenParams:
        """This module's parameters as a `SirenParams` with `B = 1` (differentiable views)."""
        return SirenParams(
            tuple(layer.weight.unsqueeze(0) for layer in self.layers),
            tuple(layer.bias.unsqueeze(0) for layer in self.layers),
        )

    def forward(self, coords: Tensor) -> Tensor:
        if coords.dim() == 0 or coords.shape[-1] != self.in_dim:
            raise ValueError(f"Siren: expected coords [..., {self.in_dim}], got {tuple(coords.shape)}")
        lead = coords.shape[:-1]
        out = siren_forward(self.params(), coords.reshape(1, -1, self.in_dim), w0_first=self.w0_first, w0=self.w0)
        return out.reshape(*lead, self.out_dim)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, hidden_dim={self.hidden_dim}, depth={self.depth}, "
            f"w0_first={self.w0_first}, w0={self.w0}"
        )
