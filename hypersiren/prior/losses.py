"""Losses of a `HyperSiren` prior: the supervised terms a modality computes with the per-sample predicted
SIRENs, plus the reference's regularisers of the latent and of the predicted weights.

    total = supervised + latent_weight * mean(z^2) + param_weight * mean(params^2)

For value signals (images) the supervised term is the MSE of the predicted values (`value_mse`);
other modalities (shapes: SDF terms with derivatives) bring their own terms through `SupervisedLoss`.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from .types import Prediction


class SupervisedLoss(NamedTuple):
    """What a modality's loss returns: the prediction it made, the weighted sum of its terms and the terms."""

    prediction: Prediction
    total: Tensor
    terms: dict[str, Tensor]  # name -> scalar, e.g. {"mse": ...}


class PriorLoss(NamedTuple):
    total: Tensor  # what is minimised
    terms: dict[str, Tensor]  # the supervised terms, "latent" (mean z^2) and "params" (mean params^2)


def value_mse(pred: Prediction, target: Tensor) -> Tensor:
    """Mean squared error of `pred.values` against `target [B, N, C]` (same units), over all points and channels."""
    if target.shape != pred.values.shape:
        raise ValueError(f"value_mse: expected target {tuple(pred.values.shape)} like the prediction, "
                         f"got {tuple(target.shape)}")
    return (pred.values - target).square().mean()


def prior_loss(supervised: SupervisedLoss, *, latent_weight: float = 0.1, param_weight: float = 100.0) -> PriorLoss:
    """The reference's three-term loss around a modality's supervised loss (see the module docstring)."""
    pred = supervised.prediction
    latent = pred.latent.square().mean()
    params = pred.params.flatten().square().mean()
    total = supervised.total + latent_weight * latent + param_weight * params
    return PriorLoss(total, {**supervised.terms, "latent": latent, "params": params})
