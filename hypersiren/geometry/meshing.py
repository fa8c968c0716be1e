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

BAND_MARGIN = 1.0  # coarse cell diagonals around the level evaluated at full resolution (`band`)
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
    band: int | None = None,
) -> Mesh:
    """The `level` set of `field` over `[-bound, bound]^3`, sampled on a `resolution^3` grid.

    Args:
        field: maps points `[N, 3]` to values `[N]` or `[N, 1]` (e.g. a `Siren`).
        chunk: grid planes per slab (memory: `(chunk + 1) * resolution^2` values at once).
        batch_points: points per call of `field`.
        device: where the grid points are made (the field's device); the values come back to the CPU.
        band: for signed distances, evaluate a grid `band` times coarser first and the full grid only
            within `BAND_MARGIN` coarse cell diagonals of the level (elsewhere the coarse values,
            interpolated, stand in: they have the right sign). A 128^3 mesh of a shape then costs a
            fraction of the full grid's evaluations; the whole grid is held at once (`chunk` unused).
    Returns:
        `Mesh(vertices [V, 3], faces [F, 3])` in the field's coordinates, outward normals where the
        field grows outwards (an SDF); empty arrays when the level is not crossed.
    """
    from skimage.measure import marching_cubes

    if resolution < 2 or chunk < 1 or batch_points < 1:
        raise ValueError(f"extract_mesh: expected resolution >= 2, chunk >= 1 and batch_points >= 1, "
                         f"got {resolution}, {chunk} and {batch_points}")
    if band is not None and (band < 2 or resolution // band < 2):
        raise ValueError(f"extract_mesh: expected band >= 2 with resolution // band >= 2, got band={band} at "
                         f"resolution {resolution}")
    axis = torch.linspace(-bound, bound, resolution, device=device)
    step = 2 * bound / (resolution - 1)
    if band is not None:
        values = _banded_grid(field, axis, band, batch_points, level)
        return _mesh(values, marching_cubes, level, step, bound) if values.min() <= level <= values.max() \
            else Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    plane = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)  # [R^2, 2]
    vertices, faces, offset = [], [], 0
    for start in range(0, resolution - 1, chunk):
        stop = min(start + chunk + 1, resolution)  # one plane shared with the next slab
        values = np.empty((stop - start, resolution * resolution), dtype=np.float32)
        for k, x0 in enumerate(axis[start:stop]):
            points = torch.cat([x0.expand(plane.shape[0], 1), plane], dim=1)  # [R^2, 3]
            values[k] = _evaluate(field, points, batch_points).numpy()
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
    return _weld(vertices, faces, step, bound)


def _evaluate(field, points: Tensor, batch_points: int) -> Tensor:
    return torch.cat([field(p).reshape(-1) for p in points.split(batch_points)]).float().cpu()


def _banded_grid(field, axis: Tensor, band: int, batch_points: int, level: float) -> np.ndarray:
    """The field on the full grid `axis^3`, evaluated only near the level (see `extract_mesh`'s `band`)."""
    resolution, bound = len(axis), float(axis[-1])
    coarse_axis = torch.linspace(-bound, bound, resolution // band, device=axis.device)
    coarse = _evaluate(field, _grid(coarse_axis).reshape(-1, 3), batch_points).reshape((len(coarse_axis),) * 3)
    values = torch.nn.functional.interpolate(coarse[None, None], size=(resolution,) * 3, mode="trilinear",
                                             align_corners=True)[0, 0]
    reach = BAND_MARGIN * 3 ** 0.5 * 2 * bound / (len(coarse_axis) - 1)
    near = ((values - level).abs() < reach).nonzero()  # [K, 3] grid indices
    if len(near):
        values[tuple(near.T)] = _evaluate(field, axis[near.to(axis.device)], batch_points)
    return values.numpy()


def _grid(axis: Tensor) -> Tensor:
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def _mesh(values: np.ndarray, marching_cubes, level: float, step: float, bound: float) -> Mesh:
    verts, tris, _, _ = marching_cubes(values, level=level)
    return _weld(verts.astype(np.float64), tris, step, bound)


def _weld(vertices: np.ndarray, faces: np.ndarray, step: float, bound: float) -> Mesh:
    # weld the vertices that neighbouring slabs both made on their shared plane (equal up to round-off)
    unique, inverse = np.unique(np.round(vertices, WELD_DECIMALS), axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return Mesh((unique * step - bound).astype(np.float32), faces[keep].astype(np.int64))
