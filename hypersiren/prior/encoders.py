"""Set encoders: a set of context points -> one latent vector per sample, and the ReLU MLP shared by
the hypernetworks and the CNP baseline."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..siren import Siren
from .types import Context, check_context, masked_mean


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


