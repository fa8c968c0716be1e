"""Triangle meshes, and meshes from scalar fields by chunked marching cubes.

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

WELD_DECIMALS = 6  # vertices equal to this many decimals (in grid units) are one vertex after welding


class Mesh(NamedTuple):
    """A triangle mesh; faces wind counter-clockwise seen from outside, so `(b - a) x (c - a)` points out."""

    vertices: np.ndarray  # [V, 3] float32
    faces: np.ndarray  # [F, 3] int64 indices into vertices


@torch.no_grad()
def extract_mesh(
    field: Callable[[Tensor], Tensor],
    *,
    resolution: int = 256,
    bound: float = 1.0,
    chunk: int = 32,
    batch_points: int = 65536,
    level: float = 0.0,
    device: torch.device | str = "cpu",
) -> Mesh:
    """The `level` set of `field` over `[-bound, bound]^3`, sampled on a `resolution^3` grid.

    Args:
        field: maps points `[N, 3]` to values `[N]` or `[N, 1]` (e.g. a `Siren`).
        chunk: grid planes per slab (memory: `(chunk + 1) * resolution^2` values at once).
        batch_points: points per call of `field`.
        device: where the grid points are made (the field's device); the values come back to the CPU.
    Returns:
        `Mesh(vertices [V, 3], faces [F, 3])` in the field's coordinates, outward normals where the
        field grows outwards (an SDF); empty arrays when the level is not crossed.
    """
    from skimage.measure import marching_cubes

    if resolution < 2 or chunk < 1 or batch_points < 1:
        raise ValueError(f"extract_mesh: expected resolution >= 2, chunk >= 1 and batch_points >= 1, "
                         f"got {resolution}, {chunk} and {batch_points}")
    axis = torch.linspace(-bound, bound, resolution, device=device)
    step = 2 * bound / (resolution - 1)
    plane = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)  # [R^2, 2]
    vertices, faces, offset = [], [], 0
    for start in range(0, resolution - 1, chunk):
        stop = min(start + chunk + 1, resolution)  # one plane shared with the next slab
        values = np.empty((stop - start, resolution * resolution), dtype=np.float32)
        for k, x0 in enumerate(axis[start:stop]):
            points = torch.cat([x0.expand(plane.shape[0], 1), plane], dim=1)  # [R^2, 3]
            values[k] = torch.cat([field(p).reshape(-1) for p in points.split(batch_points)]).float().cpu().numpy()
        values = values.reshape(stop - start, resolution, resolution)
        if not (values.min() <= level <= values.max()):
            continue
        # scikit-image winds each face so that (b - a) x (c - a) points towards increasing values:
        # outwards for an SDF (tests/test_geometry.py checks it on a sphere)
        verts, tris, _, _ = marching_cubes(values, level=level)  # vertices in grid-index units
        verts = verts.astype(np.float64)
        verts[:, 0] += start
        vertices.append(verts)
        faces.append(tris + offset)
        offset += len(verts)
    if not vertices:
        return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    vertices, faces = np.concatenate(vertices), np.concatenate(faces)
    # weld the vertices that neighbouring slabs both made on their shared plane (equal up to round-off)
    unique, inverse = np.unique(np.round(vertices, WELD_DECIMALS), axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return Mesh((unique * step - bound).astype(np.float32), faces[keep].astype(np.int64))
