"""Reading and writing signals: image collections and files (more formats join as modalities need them), and
the safe readers of array and tensor files that refuse pickled Python objects."""

from .images import (
    IMAGE_SUFFIXES,
    collection_rows,
    load_celeba,
    load_collection,
    load_image_array,
    load_image_folder,
    load_packaged_faces,
    square_resize,
    stream_collection,
)
from ._files import load_torch_file, open_numpy_file
from .audio import load_audio, save_audio
from .examples import moving_crop_video, packaged_image, tone_sequence, torus_points
from .images import load_image, read_pixels, save_image, unit_image
from .meshes import MESH_SUFFIXES, load_mesh, load_oriented_points, normalise_points, save_mesh
from .video import load_video, save_video

__all__ = [
    "IMAGE_SUFFIXES",
    "collection_rows",
    "load_celeba",
    "load_collection",
    "load_image_array",
    "load_image_folder",
    "load_packaged_faces",
    "square_resize",
    "stream_collection",
    # single signals and shapes
    "MESH_SUFFIXES",
    "load_audio",
    "load_image",
    "read_pixels",
    "load_mesh",
    "load_oriented_points",
    "load_video",
    "moving_crop_video",
    "normalise_points",
    "packaged_image",
    "save_audio",
    "save_image",
    "save_mesh",
    "save_video",
    "tone_sequence",
    "torus_points",
    "unit_image",
    # array and tensor files without pickled objects
    "load_torch_file",
    "open_numpy_file",
]
