"""hypersiren: priors over implicit neural representations.

SIRENs with the paper's exact conventions, evaluated with a separate weight set per sample in one
batched forward; derivative operators that work with per-sample weights; `HyperSiren`, a set encoder
and hypernetwork that predict a SIREN per signal from a few context points, trained and evaluated by
machinery generic over kinds of signal (`hypersiren.prior`, with modalities in `hypersiren.modalities`);
latent-space tools (`hypersiren.latent`) and single-signal fitting (`hypersiren.fitting`).
The layers and what each may import are in docs/architecture.md.
"""

from . import config, diff, figures, io, metrics, prior
from . import modalities  # registers the modalities and their presets
from . import latent
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
from .devices import resolve_device
from .export import export_siren, load_exported_siren
from .forward import siren_forward
from .params import LayerShapes, SirenParams, num_params, siren_layer_shapes, stack_params
from .prior import (
    BasisHyperNetwork,
    CNPConfig,
    ConditionalNeuralProcess,
    Context,
    DataConfig,
    HyperSiren,
    HyperSirenConfig,
    Modality,
    Prediction,
    SetEncoder,
    TrainConfig,
    load_prior,
    prior_loss,
    register_modality,
)
from .siren import Siren, SirenConfig, siren_init_bounds

__version__ = "0.2.0"

__all__ = [
    "BasisHyperNetwork",
    "CNPConfig",
    "ConditionalNeuralProcess",
    "Context",
    "DataConfig",
    "HyperSiren",
    "HyperSirenConfig",
    "LayerShapes",
    "Modality",
    "Prediction",
    "SetEncoder",
    "Siren",
    "SirenConfig",
    "SirenParams",
    "TrainConfig",
    "channels_first",
    "channels_last",
    "config",
    "diff",
    "export_siren",
    "figures",
    "grid",
    "grid_index",
    "image_to_points",
    "io",
    "latent",
    "load_exported_siren",
    "load_prior",
    "metrics",
    "modalities",
    "num_params",
    "points_to_image",
    "points_to_signal",
    "prior",
    "prior_loss",
    "register_modality",
    "resolve_device",
    "siren_forward",
    "siren_init_bounds",
    "siren_layer_shapes",
    "signal_to_points",
    "stack_params",
]
