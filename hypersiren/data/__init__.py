"""Data for priors: image collections and context sampling."""

from .context import fixed_context, prefix_context, sample_context
from .images import (
    load_celeba,
    load_collection,
    load_image_array,
    load_image_folder,
    load_packaged_faces,
    square_resize,
)

__all__ = [
    "fixed_context",
    "load_celeba",
    "load_collection",
    "load_image_array",
    "load_image_folder",
    "load_packaged_faces",
    "prefix_context",
    "sample_context",
    "square_resize",
]
