"""A prior over SIRENs: set encoder -> latent -> hypernetwork -> per-sample SIREN weights.

`HyperSiren` reads a set of context points (coordinates and values, with a mask for padding),
pools them into one latent vector per sample, and predicts from it the full weights of a SIREN,
which is then evaluated at any query coordinates with the batched `siren_forward`.

Two hypernetwork designs:
- `heads="per_tensor"`: the reference architecture, one ReLU MLP head per SIREN tensor (10 heads for
  5 layers); for the paper's image SIREN that is about 52 M parameters.
- `heads="low_rank"`: a learned base SIREN (initialised as a SIREN) plus a latent-dependent offset
  in a learned basis of `rank` directions of weight space: `params = base + coeffs(z) @ basis`. The
  basis is the only tensor of size `rank x P`, so it is several times smaller at the same latent size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .forward import siren_forward
from .params import SirenParams, siren_layer_shapes
from .siren import Siren, SirenConfig, siren_init_bounds


class Context(NamedTuple):
    """A set of known points per sample; `mask[b, m]` is False for padding."""

    coords: Tensor  # [B, M, D]
    values: Tensor  # [B, M, C]
    mask: Tensor  # [B, M] bool


class Prediction(NamedTuple):
    values: Tensor  # [B, N, C]
    params: SirenParams  # per-sample SIREN weights
    latent: Tensor  # [B, Z]


@dataclass(frozen=True)
class HyperSirenConfig:
    coord_dim: int = 2
    value_dim: int = 3
    latent_dim: int = 256
    encoder_hidden: int = 256
    encoder_depth: int = 4  # linear layers of the per-point encoder MLP, each followed by a sine
    siren_hidden: int = 256
    siren_depth: int = 5
    w0_first: float = 30.0
    w0: float = 30.0
    heads: str = "per_tensor"  # "per_tensor" (reference) or "low_rank"
    head_hidden: int = 256  # width of the hypernetwork's hidden ReLU layers
    head_depth: int = 3  # linear layers per head (per_tensor) or in the coefficient MLP (low_rank)
    rank: int = 256  # low_rank only: number of weight-space directions

    def __post_init__(self):
        for name in ("coord_dim", "value_dim", "latent_dim", "encoder_hidden", "encoder_depth", "siren_hidden",
                     "siren_depth", "head_hidden", "head_depth", "rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HyperSirenConfig: {name} must be a positive int, got {value!r}")
        if self.heads not in ("per_tensor", "low_rank"):
            raise ValueError(f"HyperSirenConfig: heads must be 'per_tensor' or 'low_rank', got {self.heads!r}")
        for name in ("w0_first", "w0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HyperSirenConfig: {name} must be positive, got {getattr(self, name)!r}")

    @property
    def layer_shapes(self):
        return siren_layer_shapes(self.coord_dim, self.value_dim, hidden_dim=self.siren_hidden, depth=self.siren_depth)

    @property
    def siren(self) -> SirenConfig:
        """The architecture of every predicted SIREN: what rebuilds one as a plain `Siren` (export)."""
        return SirenConfig(self.coord_dim, self.value_dim, hidden_dim=self.siren_hidden, depth=self.siren_depth,
                           w0_first=self.w0_first, w0=self.w0)


class SetEncoder(nn.Module):
    """Per-point sine MLP on `concat(coords, values)`, then a masked mean: `[B, M, D + C]` -> `[B, Z]`.

    Every layer, the last included, is `sin(w0 (W x + b))` with SIREN initialisation. The mean over
    valid points makes the latent invariant to the order of the points and to masked padding.
    """

    def __init__(self, in_dim: int, latent_dim: int, *, hidden_dim: int = 256, depth: int = 4, w0: float = 30.0):
        super().__init__()
        self.mlp = Siren(in_dim, latent_dim, hidden_dim=hidden_dim, depth=depth, w0_first=w0, w0=w0)
        self.w0 = w0

    def forward(self, context: Context) -> Tensor:
        check_context(context, "SetEncoder")
        features = torch.sin(self.w0 * self.mlp(torch.cat([context.coords, context.values], dim=-1)))  # [B, M, Z]
        return masked_mean(features, context.mask)


def check_context(context: Context, where: str) -> None:
    """Raise unless `context` is coords `[B, M, D]`, values `[B, M, C]` and a bool mask `[B, M]` with a
    valid point in every sample; `where` names the caller in the message."""
    coords, values, mask = context
    if coords.dim() != 3 or values.dim() != 3 or coords.shape[:2] != values.shape[:2]:
        raise ValueError(
            f"{where}: expected context coords [B, M, D] and values [B, M, C] with the same B, M, "
            f"got {tuple(coords.shape)} and {tuple(values.shape)}"
        )
    if mask.shape != coords.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"{where}: expected a bool mask {tuple(coords.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    if not mask.any(1).all():
        empty = (~mask.any(1)).nonzero()[:, 0].tolist()
        raise ValueError(f"{where}: samples {empty} have no valid context point (mask all False)")


def masked_mean(features: Tensor, mask: Tensor) -> Tensor:
    """Mean of `features [B, M, F]` over the points where `mask [B, M]` is True -> `[B, F]`."""
    weights = mask.unsqueeze(-1).to(features.dtype)  # [B, M, 1]
    return (features * weights).sum(1) / weights.sum(1)


def relu_mlp(in_dim: int, hidden: int, out_dim: int, depth: int) -> nn.Sequential:
    """`depth` linear layers with ReLUs between them; Kaiming-normal init (fan_in, ReLU)."""
    dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(dims[i], dims[i + 1])
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()] if i < depth - 1 else [linear]
    return nn.Sequential(*layers)


class PerTensorHyperNetwork(nn.Module):
    """The reference hypernetwork: one ReLU MLP head per SIREN tensor, `[B, Z]` -> `[B, P]`.

    Last layer of each head: Kaiming weights divided by 100; bias uniform in `+-1/fan_in` of the target
    SIREN layer (weight heads) or `+-1/head_hidden` (bias heads), so the predicted SIREN starts near a
    SIREN initialisation.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        heads = []
        for out, inp in self.layer_shapes:
            for numel, bias_bound in ((out * inp, 1.0 / inp), (out, 1.0 / hidden)):
                head = relu_mlp(latent_dim, hidden, numel, depth)
                with torch.no_grad():
                    head[-1].weight.div_(100.0)
                    head[-1].bias.uniform_(-bias_bound, bias_bound)
                heads.append(head)
        self.heads = nn.ModuleList(heads)  # weight 0, bias 0, weight 1, ...: the flat layout's order

    def forward(self, latent: Tensor) -> Tensor:
        return torch.cat([head(latent) for head in self.heads], dim=-1)


class LowRankHyperNetwork(nn.Module):
    """`params = base + coeffs(z) @ basis`: a learned base SIREN and `rank` learned weight-space directions.

    The base starts as a SIREN initialisation; the basis rows start small and random, so at init every
    latent decodes to (nearly) the base SIREN, at SIREN-init scale.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3, rank: int = 256,
                 w0: float = 30.0):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        base, scale = [], []
        for (out, inp), (weight_bound, bias_bound) in zip(self.layer_shapes, siren_init_bounds(self.layer_shapes, w0=w0)):
            base += [torch.empty(out * inp).uniform_(-weight_bound, weight_bound),
                     torch.empty(out).uniform_(-bias_bound, bias_bound)]
            scale += [torch.full((out * inp,), weight_bound), torch.full((out,), bias_bound)]
        self.base = nn.Parameter(torch.cat(base))  # [P], in the flat layout
        # each entry of a direction is scaled like the SIREN init of its tensor
        self.register_buffer("scale", torch.cat(scale), persistent=False)
        self.basis = nn.Parameter(torch.randn(rank, self.base.numel()) / math.sqrt(rank))  # [rank, P]
        self.coeffs = relu_mlp(latent_dim, hidden, rank, depth)
        with torch.no_grad():
            self.coeffs[-1].weight.div_(10.0)

    def forward(self, latent: Tensor) -> Tensor:
        return self.base + (self.coeffs(latent) @ self.basis) * self.scale  # [B, P]


class HyperSiren(nn.Module):
    """Set encoder + hypernetwork -> a SIREN per sample. See the module docstring."""

    def __init__(self, config: HyperSirenConfig = HyperSirenConfig()):
        super().__init__()
        self.config = config
        c = config
        self.encoder = SetEncoder(c.coord_dim + c.value_dim, c.latent_dim, hidden_dim=c.encoder_hidden,
                                  depth=c.encoder_depth, w0=c.w0)
        if c.heads == "per_tensor":
            self.hypernet = PerTensorHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden, depth=c.head_depth)
        else:
            self.hypernet = LowRankHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden,
                                                depth=c.head_depth, rank=c.rank, w0=c.w0)

    def encode(self, context: Context) -> Tensor:
        """Context points -> latent `[B, Z]`."""
        return self.encoder(context)

    def decode(self, latent: Tensor) -> SirenParams:
        """Latent `[B, Z]` -> per-sample SIREN weights."""
        if latent.dim() != 2 or latent.shape[-1] != self.config.latent_dim:
            raise ValueError(f"HyperSiren.decode: expected latent [B, {self.config.latent_dim}], got {tuple(latent.shape)}")
        return SirenParams.unflatten(self.hypernet(latent), self.config.layer_shapes)

    def render(self, params: SirenParams, coords: Tensor) -> Tensor:
        """Evaluate predicted SIRENs at query coordinates `[B, N, D]` -> `[B, N, C]`."""
        return siren_forward(params, coords, w0_first=self.config.w0_first, w0=self.config.w0)

    def forward(self, context: Context, coords: Tensor) -> Prediction:
        latent = self.encode(context)
        params = self.decode(latent)
        return Prediction(self.render(params, coords), params, latent)


class PriorLoss(NamedTuple):
    total: Tensor
    mse: Tensor  # mean squared error over all query points and channels
    latent: Tensor  # mean(z^2)
    params: Tensor  # mean(predicted SIREN params^2)


def prior_loss(pred: Prediction, target: Tensor, *, latent_weight: float = 0.1, param_weight: float = 100.0) -> PriorLoss:
    """The reference three-term loss: `mse + latent_weight * mean(z^2) + param_weight * mean(params^2)`.

    `target [B, N, C]` in the units of `pred.values` (the reference trains in [-1, 1]).
    """
    if target.shape != pred.values.shape:
        raise ValueError(f"prior_loss: expected target {tuple(pred.values.shape)} like the prediction, got {tuple(target.shape)}")
    mse = (pred.values - target).square().mean()
    latent = pred.latent.square().mean()
    params = pred.params.flatten().square().mean()
    return PriorLoss(mse + latent_weight * latent + param_weight * params, mse, latent, params)
