"""Numerics on shapes: the SIREN paper's SDF loss for batches of per-sample SIRENs (`sdf`), meshes by
chunked marching cubes (`meshing`), area-uniform surface sampling (`sampling`) and distances between
oriented point sets (`distances`: Chamfer-L1, normal consistency, F-score, and signed distances from
oriented points, the targets a shape prior's start fits) and pictures without OpenGL (`render`: shaded
orthographic views of meshes by a z-buffer rasteriser, and point sets as dots over them).

Arrays and tensors in, arrays and tensors out; reading and writing files is `hypersiren.io`'s.
"""

from .distances import (FSCORE_THRESHOLD, SurfaceDistance, orient_normals, oriented_point_sdf, surface_distance,
                        winding_number)
from .meshing import Mesh, extract_mesh
from .render import render_mesh, render_points
from .sampling import face_areas_and_normals, sample_surface
from .sdf import SdfBatch, SdfLoss, SdfLossConfig, sdf_loss, sdf_loss_terms

__all__ = [
    "FSCORE_THRESHOLD",
    "Mesh",
    "SdfBatch",
    "SdfLoss",
    "SdfLossConfig",
    "SurfaceDistance",
    "extract_mesh",
    "face_areas_and_normals",
    "orient_normals",
    "oriented_point_sdf",
    "render_mesh",
    "render_points",
    "sample_surface",
    "sdf_loss",
    "sdf_loss_terms",
    "surface_distance",
    "winding_number",
]
