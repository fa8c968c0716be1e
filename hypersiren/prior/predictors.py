"""Trained models as predictors: `(context, query coords [B, N, D]) -> values [B, N, C]` in model units,
the form the evaluation protocols and previews of every modality take."""

from __future__ import annotations

from torch import nn

from ..devices import autocast, check_precision
from .cnp import ConditionalNeuralProcess
from .modality import Predictor
from .model import HyperSiren


def model_predictor(model: nn.Module, *, precision: str = "float32") -> Predictor:
    """A `HyperSiren`'s prediction, or a `ConditionalNeuralProcess`'s predicted mean; sets eval mode.
    `precision`: what the model computes in (`devices.autocast`, on the query coordinates' device); the
    values come back in float32 (float64 models: float64) whatever it is."""
    if not isinstance(model, (HyperSiren, ConditionalNeuralProcess)):
        raise TypeError(f"model_predictor: expected a HyperSiren or a ConditionalNeuralProcess, got {type(model).__name__}")
    check_precision(precision, where="model_predictor")
    model.eval()

    def predict(context, coords):
        with autocast(precision, coords.device):
            values = model(context, coords).values
        return values.to(coords.dtype)

    return predict
