"""A Conditional Neural Process (Garnelo et al. 2018), the paper's comparison row for image completion.

Each context point `concat(coords, values)` goes through a ReLU MLP; a masked mean over the valid
points gives one representation `r` per sample (invariant to point order and to masked padding).
A second ReLU MLP reads `concat(r, query coords)` and predicts, per query point and channel, a mean
and a standard deviation bounded below as `0.1 + 0.9 softplus(raw)` (the authors' code). Training
minimises the Gaussian negative log-likelihood of the target values; as a predictor for the
evaluation protocol the CNP returns its mean.

Sizes for image completion as in the authors' code: encoder of 4 linear layers (three hidden layers
of 128, r of 128), decoder of 5 linear layers of 128. Values are in [-1, 1] here (the authors used
[0, 1]), so the standard-deviation floor of 0.1 is 0.05 in [0, 1] units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoders import relu_mlp
from .types import Context, check_context, masked_mean


@dataclass(frozen=True)
class CNPConfig:
    coord_dim: int = 2
    value_dim: int = 3
    hidden: int = 128  # width of every hidden layer, encoder and decoder
    representation_dim: int = 128  # r
    encoder_depth: int = 4  # linear layers of the per-point encoder (ReLU between them)
    decoder_depth: int = 5  # linear layers of the decoder; the last outputs mean and raw std per channel
    min_std: float = 0.1  # std = min_std + (1 - min_std) * softplus(raw), in [-1, 1] units

    def __post_init__(self):
        for name in ("coord_dim", "value_dim", "hidden", "representation_dim", "encoder_depth", "decoder_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"CNPConfig: {name} must be a positive int, got {value!r}")
        if not 0 < self.min_std < 1:
            raise ValueError(f"CNPConfig: min_std must be in (0, 1), got {self.min_std!r}")


class CNPPrediction(NamedTuple):
    values: Tensor  # [B, N, C] predicted mean
    std: Tensor  # [B, N, C] predicted standard deviation, >= min_std
    representation: Tensor  # [B, R]


class ConditionalNeuralProcess(nn.Module):
    """Context set -> representation `[B, R]` -> per-point Gaussian at the query coordinates."""

    def __init__(self, config: CNPConfig = CNPConfig()):
        super().__init__()
        self.config = c = config
        self.encoder = relu_mlp(c.coord_dim + c.value_dim, c.hidden, c.representation_dim, c.encoder_depth)
        self.decoder = relu_mlp(c.representation_dim + c.coord_dim, c.hidden, 2 * c.value_dim, c.decoder_depth)

    def encode(self, context: Context) -> Tensor:
        """Context points `[B, M, D]`, `[B, M, C]`, mask `[B, M]` -> representation `[B, R]`."""
        check_context(context, "ConditionalNeuralProcess")
        c = self.config
        if context.coords.shape[-1] != c.coord_dim or context.values.shape[-1] != c.value_dim:
            raise ValueError(
                f"ConditionalNeuralProcess: expected context coords [B, M, {c.coord_dim}] and values "
                f"[B, M, {c.value_dim}], got {tuple(context.coords.shape)} and {tuple(context.values.shape)}"
            )
        features = self.encoder(torch.cat([context.coords, context.values], dim=-1))  # [B, M, R]
        return masked_mean(features, context.mask)

    def decode(self, representation: Tensor, coords: Tensor) -> CNPPrediction:
        """Representation `[B, R]` and query coords `[B, N, D]` -> mean and std `[B, N, C]`."""
        c = self.config
        if coords.dim() != 3 or coords.shape[-1] != c.coord_dim or coords.shape[0] != representation.shape[0]:
            raise ValueError(
                f"ConditionalNeuralProcess.decode: expected query coords [B, N, {c.coord_dim}] with "
                f"B={representation.shape[0]}, got {tuple(coords.shape)}"
            )
        r = representation.unsqueeze(1).expand(-1, coords.shape[1], -1)  # [B, N, R]
        # under autocast the decoder's dtype (bf16 / fp16); back in the coordinates', so the loss computes in float32
        out = self.decoder(torch.cat([r, coords], dim=-1)).to(coords.dtype)  # [B, N, 2C]
        mean, raw = out.chunk(2, dim=-1)
        std = c.min_std + (1 - c.min_std) * F.softplus(raw)
        return CNPPrediction(mean, std, representation)

    def forward(self, context: Context, coords: Tensor) -> CNPPrediction:
        return self.decode(self.encode(context), coords)


class CNPLoss(NamedTuple):
    total: Tensor  # what is minimised: the negative log-likelihood
    # "nll": per query point, summed over channels, averaged over points and samples; "mse": of the mean,
    # over all query points and channels (as the image prior's); "std": mean predicted standard deviation
    terms: dict[str, Tensor]


def cnp_loss(pred: CNPPrediction, target: Tensor) -> CNPLoss:
    """Gaussian negative log-likelihood of `target [B, N, C]` under the prediction (the authors' loss)."""
    if target.shape != pred.values.shape:
        raise ValueError(f"cnp_loss: expected target {tuple(pred.values.shape)} like the prediction, "
                         f"got {tuple(target.shape)}")
    error = target - pred.values
    log_prob = -0.5 * (error / pred.std).square() - pred.std.log() - 0.5 * math.log(2 * math.pi)  # [B, N, C]
    nll = -log_prob.sum(-1).mean()
    return CNPLoss(nll, {"nll": nll, "mse": error.square().mean(), "std": pred.std.mean()})
