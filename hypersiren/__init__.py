"""hypersiren: priors over implicit neural representations.

SIRENs with the paper's exact conventions, evaluated with a separate weight set per sample in one
batched forward; derivative operators that work with per-sample weights; and `HyperSiren`, a set
encoder and hypernetwork that predict a SIREN per signal from a few context points (with a
Conditional Neural Process, `ConditionalNeuralProcess`, as the baseline it is compared with).
"""

from . import cnp, config, data, diff, figures, latent, prior
from .cnp import CNPConfig, ConditionalNeuralProcess
from .coords import (
    channels_first,
    channels_last,
    grid,
    grid_index,
    image_to_points,
    points_to_image,
    points_to_signal,
    signal_to_points,
)
from .export import export_siren, load_exported_siren
from .params import LayerShapes, SirenParams, num_params, siren_layer_shapes, stack_params
from .forward import siren_forward
from .prior import BasisHyperNetwork, Context, HyperSiren, HyperSirenConfig, Prediction, SetEncoder, prior_loss
from .siren import Siren, SirenConfig, siren_init_bounds

__version__ = "0.1.0"

__all__ = [
    "BasisHyperNetwork",
    "CNPConfig",
    "ConditionalNeuralProcess",
    "Context",
    "HyperSiren",
    "HyperSirenConfig",
    "LayerShapes",
    "Prediction",
    "SetEncoder",
    "Siren",
    "SirenConfig",
    "SirenParams",
    "channels_first",
    "channels_last",
    "cnp",
    "config",
    "data",
    "diff",
    "export_siren",
    "figures",
    "grid",
    "grid_index",
    "image_to_points",
    "latent",
    "load_exported_siren",
    "num_params",
    "points_to_image",
    "points_to_signal",
    "prior",
    "prior_loss",
    "siren_forward",
    "siren_init_bounds",
    "siren_layer_shapes",
    "signal_to_points",
    "stack_params",
]
