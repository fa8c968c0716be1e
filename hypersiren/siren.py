"""The SIREN network: conventions, initialisation and the `nn.Module` (its forward is `siren_forward`).

Conventions (the SIREN paper's reference code, which produced its published numbers):

- A sine layer computes `sin(w0 * (W x + b))`: the bias sits inside the product and is scaled by w0.
- `depth` counts linear layers, first and last included; the last layer is linear (no sine).
  The paper's network is `depth=5`: `in -> 256 -> 256 -> 256 -> 256 -> out`.
- `w0_first` is the frequency of the first layer, `w0` that of every other sine layer (30 and 30).
- Weights are uniform: the first layer in `+-1/fan_in` (no square root), every later layer, the last
  linear one included, in `+-sqrt(6/fan_in)/w0`. Biases keep `nn.Linear`'s `+-1/sqrt(fan_in)`.
  With inputs uniform in [-1, 1] this keeps the weight part `w0 W x` of every hidden pre-activation
  N(0, 1) whatever the depth; the bias, scaled by w0 too, adds variance `w0^2 / (3 fan_in)` (1.17 at
  width 256: a pre-activation std of about 1.47), the same at every depth. Keeping w0 = 30 in hidden
  layers and dividing the weights by it (rather than w0 = 1 with undivided weights) gives the same
  function at init but the intended gradient scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from .forward import siren_forward
from .params import LayerShapes, SirenParams, siren_layer_shapes


def siren_init_bounds(layer_shapes: LayerShapes, *, w0: float = 30.0) -> list[tuple[float, float]]:
    """`(weight_bound, bias_bound)` of the uniform initialisation of each layer, first to last."""
    bounds = []
    for i, (_, fan_in) in enumerate(layer_shapes):
        weight_bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / w0
        bounds.append((weight_bound, 1.0 / math.sqrt(fan_in)))
    return bounds


@dataclass(frozen=True)
class SirenConfig:
    """A `Siren`'s constructor arguments: with a `state_dict`, all it takes to rebuild one (`build()`)."""

    in_dim: int
    out_dim: int
    hidden_dim: int = 256  # width of every hidden layer (unused when depth = 1)
    depth: int = 5  # linear layers, first and last included
    w0_first: float = 30.0
    w0: float = 30.0

    def __post_init__(self):
        for name in ("in_dim", "out_dim", "hidden_dim", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SirenConfig: {name} must be a positive int, got {value!r}")
        for name in ("w0_first", "w0"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
                raise ValueError(f"SirenConfig: {name} must be a positive finite number, got {value!r}")

    @property
    def layer_shapes(self) -> LayerShapes:
        return siren_layer_shapes(self.in_dim, self.out_dim, hidden_dim=self.hidden_dim, depth=self.depth)

    def build(self) -> Siren:
        """A freshly initialised `Siren` with these arguments."""
        return Siren(**asdict(self))


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

    @property
    def config(self) -> SirenConfig:
        """The constructor arguments of this module."""
        return SirenConfig(self.in_dim, self.out_dim, hidden_dim=self.hidden_dim, depth=self.depth,
                           w0_first=self.w0_first, w0=self.w0)

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
