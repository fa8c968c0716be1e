"""Kinds of signal, each a `hypersiren.prior.Modality` registered by name when its package is imported.

A new modality is a new subpackage here (data, protocol, figures, latent adapter, presets) imported
below; nothing in `hypersiren.prior` or `hypersiren.latent` changes (docs/architecture.md).
"""

from . import image, shape
from .image import ImageData, ImageModality, ImagePrior
from .shape import ShapeData, ShapeModality, ShapePrior

__all__ = ["ImageData", "ImageModality", "ImagePrior", "ShapeData", "ShapeModality", "ShapePrior", "image", "shape"]
