"""Kinds of signal, each a `hypersiren.prior.Modality` registered by name when its package is imported.

A new modality is a new subpackage here (data, protocol, figures, latent adapter, presets) imported
below; nothing in `hypersiren.prior` or `hypersiren.latent` changes (docs/architecture.md).
"""

from . import image
from .image import ImageData, ImageModality, ImagePrior

__all__ = ["ImageData", "ImageModality", "ImagePrior", "image"]
