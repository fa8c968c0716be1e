"""Points on a triangle mesh: uniform by area, each with the unit normal of its face."""

from __future__ import annotations

import numpy as np

from .meshing import Mesh


def face_areas_and_normals(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Area `[F]` and unit normal `[F, 3]` (`(b - a) x (c - a)` normalised; zero for a degenerate face)
    of every face, float64."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))  # [F, 3] each
    cross = np.cross(b - a, c - a)  # [F, 3], length = twice the area
    length = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, length[:, None], out=np.zeros_like(cross), where=length[:, None] > 0)
    return length / 2, normals


def sample_surface(mesh: Mesh, count: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` points drawn uniformly by area on a triangle mesh, and the unit normals of their faces.

    Returns:
        points `[count, 3]` and normals `[count, 3]`, float32; the normals follow the faces' winding
        (`(b - a) x (c - a)`), so they point outwards for a mesh from `extract_mesh`.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"sample_surface: count must be a positive int, got {count!r}")
    _check_mesh(mesh)
    area, face_normals = face_areas_and_normals(mesh)
    if not area.sum() > 0:
        raise ValueError(f"sample_surface: the mesh's {len(mesh.faces)} faces have no area")
    rng = np.random.default_rng(seed)
    face = rng.choice(len(area), size=count, p=area / area.sum())  # [count]
    u, v = rng.random((2, count, 1))
    outside = (u + v) > 1  # reflect the far half of the unit square back into the triangle
    u, v = np.where(outside, 1 - u, u), np.where(outside, 1 - v, v)
    a, b, c = (mesh.vertices[mesh.faces[face, i]].astype(np.float64) for i in range(3))  # [count, 3] each
    points = a + u * (b - a) + v * (c - a)
    return points.astype(np.float32), face_normals[face].astype(np.float32)


def _check_mesh(mesh: Mesh) -> None:
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"sample_surface: expected vertices [V, 3] and faces [F, 3], got {vertices.shape} "
                         f"and {faces.shape}")
    if len(faces) == 0:
        raise ValueError("sample_surface: the mesh has no faces")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"sample_surface: face indices must lie in [0, {len(vertices)}), got "
                         f"[{faces.min()}, {faces.max()}]")
