"""The image modality: collections of images, the inpainting protocol and its baselines, figures,
residual correction and the latent adapter; registered as "image" with its presets."""

from .data import ImageData, load_images, load_split, stream_start
from .figures import completion_grid, context_image
from .latent import ImagePrior
from .modality import ImageModality, ImageTrainingSet
from .presets import IMAGE_PRESETS
from .protocol import (CONTEXT_SIZES, evaluate, interpolation_predictor, make_context, markdown_table,
                       mean_image_predictor, preview_grid)

__all__ = [
    "CONTEXT_SIZES", "IMAGE_PRESETS", "ImageData", "ImageModality", "ImagePrior", "ImageTrainingSet",
    "completion_grid", "context_image", "evaluate", "interpolation_predictor", "load_images", "load_split",
    "make_context", "markdown_table", "mean_image_predictor", "preview_grid", "stream_start",
]
