"""Shapes as a modality (registered as "shape"): oriented point clouds `[S, P, 6]` in the unit sphere from
point files, mesh folders, occupancy grids or a generated family of shapes; signed-distance priors
trained with the SIREN paper's SDF loss; completion from a few surface points, scored by Chamfer-L1,
normal consistency and F-score; rendered pictures; the latent tools' adapter `ShapePrior`; presets
`shapes_paper`, `shapes`, `shapes_tiny`."""

from .collection import ShapeCollection, normalise_shape, orient_outward, signed_volume
from .data import (OCCUPANCY_KEYS, SHAPE_MESH_SUFFIXES, ShapeData, load_mesh_folder, load_occupancy_npz,
                   load_collection, load_oriented_npz, load_shapes, load_split, occupancy_mesh)
from .generated import capsule_mesh, ellipsoid_mesh, generate_shapes, torus_mesh
from .completion import CompletionConfig, corrected_field, prior_completer
from .latent import ShapePrior
from .modality import ShapeBatch, ShapeModality, ShapeTrainingSet
from .presets import SHAPE_PRESETS
from .protocol import CONTEXT_SIZES, draw_context, evaluate_shapes, markdown_tables

__all__ = [
    "CONTEXT_SIZES", "CompletionConfig", "OCCUPANCY_KEYS", "SHAPE_MESH_SUFFIXES", "SHAPE_PRESETS", "ShapeBatch", "ShapeCollection", "ShapeData", "ShapeModality", "ShapePrior",
    "ShapeTrainingSet", "capsule_mesh", "corrected_field", "draw_context", "ellipsoid_mesh", "evaluate_shapes",
    "generate_shapes", "load_collection", "load_mesh_folder", "load_occupancy_npz", "load_oriented_npz", "load_shapes",
    "load_split", "markdown_tables", "normalise_shape", "occupancy_mesh", "orient_outward", "prior_completer", "signed_volume", "torus_mesh",
]
