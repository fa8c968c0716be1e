"""A loaded shape collection (`ShapeCollection`) and the per-shape steps every source shares: orient a
closed mesh outwards, sample it, and centre and scale the samples into the unit sphere."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ...geometry import Mesh, sample_surface


class ShapeCollection(NamedTuple):
    """S oriented point clouds in the unit sphere, and how to map them back to the source's coordinates."""

    shapes: Tensor  # [S, P, 6] float32: points (unit sphere), unit outward normals
    split: Tensor | None  # [S] int8, 0 train / 1 test, when the source has its own split
    centre: Tensor  # [S, 3] float32: points_input = points * scale + centre
    scale: Tensor  # [S] float32
    names: tuple[str, ...]  # S names


# ---------------------------------------------------------------------------------------------- helpers


def normalise_shape(points: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre points `[P, 3]` at their bounding-box centre and scale them to max radius 1.

    Returns:
        `(points [P, 3] float64, centre [3], scale)` with `points_input = points * scale + centre`.
    """
    points = np.asarray(points, dtype=np.float64)
    centre = (points.min(0) + points.max(0)) / 2  # [3]
    scale = float(np.linalg.norm(points - centre, axis=1).max())
    if not scale > 0:
        raise ValueError(f"{what}: all points coincide, so the shape cannot be scaled to the unit sphere")
    return (points - centre) / scale, centre, scale


def signed_volume(mesh: Mesh) -> float:
    """The volume a closed mesh encloses, positive when its faces wind outwards (`(b - a) x (c - a)` out).

    It equals a third of the surface integral of `dot(normal, point - c)` for any `c`, so its sign is the
    sign of the mean of that dot product over area-uniform surface samples."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))  # [F, 3] each
    return float(np.einsum("fi,fi->", a, np.cross(b, c)) / 6)


def orient_outward(mesh: Mesh) -> Mesh:
    """The closed mesh with its faces' winding reversed when its normals point inwards."""
    if signed_volume(mesh) < 0:
        return Mesh(mesh.vertices, np.ascontiguousarray(mesh.faces[:, ::-1]))
    return mesh


def shape_seed(seed: int, index: int) -> int:
    """An independent surface-sampling seed for shape `index` of a collection drawn with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def sample_shape(mesh: Mesh, points: int, seed: int, what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """`points` area-uniform samples of a mesh with face normals, normalised to the unit sphere.

    Returns:
        `(shape [P, 6] float32, centre [3], scale)`, the mesh's coordinates = points * scale + centre.
    """
    try:
        surface, normals = sample_surface(mesh, points, seed=seed)  # [P, 3], [P, 3]
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error
    unit, centre, scale = normalise_shape(surface, what)
    return np.concatenate([unit, normals], axis=1).astype(np.float32), centre, scale


def collect(rows: list[tuple[np.ndarray, np.ndarray, float]], names: tuple[str, ...],
            split: np.ndarray | None = None) -> ShapeCollection:
    """A `ShapeCollection` from per-shape `(shape [P, 6], centre [3], scale)` rows."""
    return ShapeCollection(
        shapes=torch.from_numpy(np.stack([row[0] for row in rows]).astype(np.float32)),  # [S, P, 6]
        split=None if split is None else torch.from_numpy(np.asarray(split, dtype=np.int8)),
        centre=torch.tensor(np.stack([row[1] for row in rows]), dtype=torch.float32),  # [S, 3]
        scale=torch.tensor([row[2] for row in rows], dtype=torch.float32),  # [S]
        names=tuple(names),
    )
