"""Weight-space latent exploration: encode a data set, interpolate, sample, sweep principal directions,
find nearest training signals, and show latents in TensorBoard's projector.

Everything here works against the `LatentPrior` protocol (encode / decode / render / to_images), so a
new modality only adds an adapter (`Modality.latent_prior`, see `protocol.py`). `evaluate/explore.py` is the command line.
"""

from .protocol import (PICTURE_DISTANCE, LatentPrior, SignalDistances, decode_and_render, export_extras,
                       load_latent_prior, signal_distances)
from .projector import write_projector
from .sets import LATENTS_KIND, LatentSet, encode_dataset, load_latents, save_latents
from .space import (
    SIGMAS,
    GaussianFit,
    Neighbours,
    PCAFit,
    direction_sweep,
    euclidean_distances,
    fit_gaussian,
    fit_pca,
    interpolate_latents,
    interpolate_params,
    nearest,
    nearest_neighbours,
)

__all__ = [
    "LATENTS_KIND",
    "PICTURE_DISTANCE",
    "SIGMAS",
    "GaussianFit",
    "LatentPrior",
    "LatentSet",
    "Neighbours",
    "PCAFit",
    "SignalDistances",
    "decode_and_render",
    "direction_sweep",
    "encode_dataset",
    "euclidean_distances",
    "export_extras",
    "fit_gaussian",
    "fit_pca",
    "interpolate_latents",
    "interpolate_params",
    "load_latent_prior",
    "load_latents",
    "nearest",
    "nearest_neighbours",
    "save_latents",
    "signal_distances",
    "write_projector",
]
