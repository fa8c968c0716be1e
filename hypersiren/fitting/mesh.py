"""Meshes from signed distance fields, and how close a mesh is to a point cloud.

`extract_mesh` runs marching cubes (scikit-image) slab by slab: the field is evaluated for `chunk`
planes of the grid at a time (plus one shared plane), so a 512^3 grid never holds more than
`(chunk + 1) x 512^2` values; the slabs' vertices on the shared planes are welded afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class Mesh(NamedTuple):
    vertices: np.ndarray  # [V, 3] float32, in the field's coordinates
    faces: np.ndarray  # [F, 3] int64


@torch.no_grad()
def extract_mesh(
    field: Callable[[Tensor], Tensor],
    *,
    resolution: int = 256,
    bound: float = 1.0,
    chunk: int = 32,
    batch_points: int = 65536,
    level: float = 0.0,
) -> Mesh:
    """The `level` set of `field` over `[-bound, bound]^3`, sampled on a `resolution^3` grid.

    Args:
        field: maps points `[N, 3]` to values `[N]` or `[N, 1]`.
        chunk: grid planes per slab (memory: `(chunk + 1) * resolution^2` values at once).
        batch_points: points per call of `field`.
    Returns:
        `Mesh(vertices [V, 3], faces [F, 3])`; empty arrays when the level is not crossed.
    """
    from skimage.measure import marching_cubes

    if resolution < 2 or chunk < 1:
        raise ValueError(f"extract_mesh: expected resolution >= 2 and chunk >= 1, got {resolution} and {chunk}")
    axis = torch.linspace(-bound, bound, resolution)
    step = 2 * bound / (resolution - 1)
    plane = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)  # [R^2, 2]
    vertices, faces, offset = [], [], 0
    for start in range(0, resolution - 1, chunk):
        stop = min(start + chunk + 1, resolution)  # one plane shared with the next slab
        values = np.empty((stop - start, resolution * resolution), dtype=np.float32)
        for k, x0 in enumerate(axis[start:stop]):
            points = torch.cat([x0.expand(plane.shape[0], 1), plane], dim=1)
            values[k] = torch.cat([field(p).reshape(-1) for p in points.split(batch_points)]).float().numpy()
        values = values.reshape(stop - start, resolution, resolution)
        if not (values.min() <= level <= values.max()):
            continue
        verts, tris, _, _ = marching_cubes(values, level=level)  # in grid-index units
        verts = verts.astype(np.float64)
        verts[:, 0] += start
        vertices.append(verts)
        faces.append(tris + offset)
        offset += len(verts)
    if not vertices:
        return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    vertices, faces = np.concatenate(vertices), np.concatenate(faces)
    # weld the vertices that neighbouring slabs both made on their shared plane (equal up to round-off)
    unique, inverse = np.unique(np.round(vertices, 6), axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return Mesh((unique * step - bound).astype(np.float32), faces[keep].astype(np.int64))


def sample_mesh_surface(mesh: Mesh, count: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` points uniform by area on a mesh, and the unit normals of their faces."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    if area.sum() <= 0:
        raise ValueError("sample_mesh_surface: the mesh has no area")
    rng = np.random.default_rng(seed)
    face = rng.choice(len(area), size=count, p=area / area.sum())
    u, v = rng.random((2, count, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    points = a[face] + u * (b[face] - a[face]) + v * (c[face] - a[face])
    normals = cross[face] / np.maximum(area[face, None], 1e-30)
    return points.astype(np.float32), normals.astype(np.float32)


class SurfaceDistance(NamedTuple):
    chamfer: float  # symmetric Chamfer-L1: mean of the two directions' mean nearest-point distances
    normal_consistency: float  # mean |cos| between each point's normal and its nearest neighbour's, both ways


def surface_distance(points_a: np.ndarray, normals_a: np.ndarray, points_b: np.ndarray,
                     normals_b: np.ndarray) -> SurfaceDistance:
    """Chamfer-L1 distance and normal consistency between two oriented point sets `[P, 3]`."""
    from scipy.spatial import cKDTree

    dist_ab, index_ab = cKDTree(points_b).query(points_a)
    dist_ba, index_ba = cKDTree(points_a).query(points_b)
    cos_ab = np.abs((normals_a * normals_b[index_ab]).sum(1))
    cos_ba = np.abs((normals_b * normals_a[index_ba]).sum(1))
    return SurfaceDistance(float((dist_ab.mean() + dist_ba.mean()) / 2), float((cos_ab.mean() + cos_ba.mean()) / 2))
