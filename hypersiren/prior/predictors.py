"""Trained models as predictors: `(context, query coords [B, N, D]) -> values [B, N, C]` in model units,
the form the evaluation protocols and previews of every modality take."""

from __future__ import annotations

from torch import nn

from .cnp import ConditionalNeuralProcess
from .modality import Predictor
from .model import HyperSiren


def model_predictor(model: nn.Module) -> Predictor:
    """A `HyperSiren`'s prediction, or a `ConditionalNeuralProcess`'s predicted mean; sets eval mode."""
    if not isinstance(model, (HyperSiren, ConditionalNeuralProcess)):
        raise TypeError(f"model_predictor: expected a HyperSiren or a ConditionalNeuralProcess, got {type(model).__name__}")
    model.eval()
    return lambda context, coords: model(context, coords).values
