"""hypersiren: priors over implicit neural representations.

SIRENs with the paper's exact conventions, evaluated with a separate weight set per sample in one
batched forward, and derivative operators that work with per-sample weights.
"""

from . import diff
from .coords import (
    channels_first,
    channels_last,
    grid,
    image_to_points,
    points_to_image,
    points_to_signal,
    signal_to_points,
)
from .params import LayerShapes, SirenParams, num_params, siren_layer_shapes, stack_params
from .forward import siren_forward
from .siren import Siren, siren_init_bounds

__version__ = "0.1.0"

__all__ = [
    "LayerShapes",
    "Siren",
    "SirenParams",
    "channels_first",
    "channels_last",
    "diff",
    "grid",
    "image_to_points",
    "num_params",
    "points_to_image",
    "points_to_signal",
    "siren_forward",
    "siren_init_bounds",
    "siren_layer_shapes",
    "signal_to_points",
    "stack_params",
]
