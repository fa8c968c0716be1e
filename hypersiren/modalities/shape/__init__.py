"""The shape modality's data layer: oriented point clouds `[S, P, 6]` in the unit sphere from point
files, mesh folders, occupancy grids or a generated family of shapes (not yet registered as a modality)."""

from .collection import ShapeCollection, normalise_shape, orient_outward, signed_volume
from .data import (OCCUPANCY_KEYS, SHAPE_MESH_SUFFIXES, ShapeData, load_mesh_folder, load_occupancy_npz,
                   load_oriented_npz, load_shapes, load_split, occupancy_mesh)
from .generated import capsule_mesh, ellipsoid_mesh, generate_shapes, torus_mesh
from .modality import ShapeBatch, ShapeModality, ShapeTrainingSet

__all__ = [
    "OCCUPANCY_KEYS", "SHAPE_MESH_SUFFIXES", "ShapeBatch", "ShapeCollection", "ShapeData", "ShapeModality",
    "ShapeTrainingSet", "capsule_mesh", "ellipsoid_mesh",
    "generate_shapes", "load_mesh_folder", "load_occupancy_npz", "load_oriented_npz", "load_shapes",
    "load_split", "normalise_shape", "occupancy_mesh", "orient_outward", "signed_volume", "torus_mesh",
]
