"""Weight-space latent exploration: encode a data set, interpolate, sample, sweep principal directions,
find nearest training signals, and show latents in TensorBoard's projector.

Everything here works against the `LatentPrior` protocol (encode / decode / render / to_images), so a
new kind of prior only adds an adapter (see `priors.py`). `evaluate/explore.py` is the command line.
"""

from .priors import (
    IMAGE_FILE_SUFFIXES,
    PRIOR_KINDS,
    ImagePrior,
    LatentPrior,
    decode_and_render,
    load_latent_prior,
)
from .projector import write_projector
from .sets import LATENTS_KIND, LatentSet, encode_dataset, load_latents, save_latents
from .space import (
    SIGMAS,
    GaussianFit,
    Neighbours,
    PCAFit,
    direction_sweep,
    fit_gaussian,
    fit_pca,
    interpolate_latents,
    interpolate_params,
    nearest_neighbours,
)

__all__ = [
    "IMAGE_FILE_SUFFIXES",
    "LATENTS_KIND",
    "PRIOR_KINDS",
    "SIGMAS",
    "GaussianFit",
    "ImagePrior",
    "LatentPrior",
    "LatentSet",
    "Neighbours",
    "PCAFit",
    "decode_and_render",
    "direction_sweep",
    "encode_dataset",
    "fit_gaussian",
    "fit_pca",
    "interpolate_latents",
    "interpolate_params",
    "load_latent_prior",
    "load_latents",
    "nearest_neighbours",
    "save_latents",
    "write_projector",
]
