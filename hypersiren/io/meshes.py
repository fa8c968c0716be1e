"""Shapes on disk: triangle meshes (trimesh: OBJ, PLY, OFF, STL) and oriented point clouds, in and out.

Oriented points are surface points `[P, 3]` with unit normals `[P, 3]`, float32. Meshes become oriented
points by `hypersiren.geometry.sample_surface` (uniform by area, face normals), the one surface sampler.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..geometry.meshing import Mesh
from ..geometry.sampling import sample_surface
from ._files import error_text, existing_file, finite_samples, open_numpy_file, real_numbers

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl")
MESH_SAMPLES = 100_000  # points `load_oriented_points` draws from a mesh
ZERO_NORMAL = 1e-12  # normals shorter than this cannot be normalised: an error


def load_mesh(path: str | os.PathLike) -> Mesh:
    """A triangle mesh file (`.obj/.ply/.off/.stl`) -> `Mesh` (float32 vertices, int64 faces), as stored
    (no merging or repair)."""
    import trimesh

    path = existing_file(path, "load_mesh")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"load_mesh: expected a {'/'.join(MESH_SUFFIXES)} file, got {path}")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
        vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)  # [V, 3]
        faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)  # [F, 3]
    except Exception as error:  # trimesh raises many exception types for malformed files
        raise ValueError(f"load_mesh: cannot read {path} as a mesh ({error_text(error)})") from error
    if len(faces) == 0:
        raise ValueError(f"load_mesh: {path} has no faces")
    finite_samples(vertices, path, "load_mesh")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"load_mesh: faces of {path} index vertices {faces.min()} to {faces.max()}, but it has "
                         f"{len(vertices)} vertices")
    return Mesh(vertices.astype(np.float32), faces)


def load_oriented_points(path: str | os.PathLike, *, samples: int = MESH_SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Surface points and unit normals, float32 `[P, 3]` and `[P, 3]`, from:

    - a mesh (`.obj/.ply/.off/.stl`): `samples` points uniform by area with their face normals
      (`sample_surface`, drawn with `seed`);
    - an `.npz` with arrays `points` and `normals`;
    - a text file (e.g. `.xyz`), one `x y z nx ny nz` per line.

    Normals are normalised to unit length; zero-length normals are an error.
    """
    path = existing_file(path, "load_oriented_points")
    suffix = path.suffix.lower()
    if suffix in MESH_SUFFIXES:
        mesh = load_mesh(path)
        try:
            points, normals = sample_surface(mesh, samples, seed=seed)
        except ValueError as error:  # e.g. faces without area
            raise ValueError(f"load_oriented_points: {path}: {error}") from error
    elif suffix == ".npz":
        with open_numpy_file(path, "load_oriented_points") as archive:
            missing = sorted({"points", "normals"} - set(archive.files))
            if missing:
                raise ValueError(f"load_oriented_points: {path} lacks arrays {missing}; it has {sorted(archive.files)}")
            points, normals = archive["points"], archive["normals"]
        for name, array in (("points", points), ("normals", normals)):
            real_numbers(array, path, "load_oriented_points", name)
    else:
        try:
            with warnings.catch_warnings():  # numpy warns of a file without numbers: refused below
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise ValueError(f"load_oriented_points: cannot parse {path} as numbers ({error_text(error)})") from error
        if table.size == 0:
            raise ValueError(f"load_oriented_points: {path} holds no points (expected lines 'x y z nx ny nz')")
        if table.shape[1] != 6:
            raise ValueError(f"load_oriented_points: expected 6 columns 'x y z nx ny nz' in {path}, "
                             f"got {table.shape[1]} columns")
        points, normals = table[:, :3], table[:, 3:]
    if points.ndim != 2 or points.shape[1] != 3 or normals.shape != points.shape:
        raise ValueError(f"load_oriented_points: expected points [P, 3] and normals [P, 3] in {path}, "
                         f"got {points.shape} and {normals.shape}")
    points, normals = (finite_samples(array, path, "load_oriented_points").astype(np.float64)
                       for array in (points, normals))
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)  # [P, 1]
    if (lengths < ZERO_NORMAL).any():
        raise ValueError(f"load_oriented_points: {int((lengths < ZERO_NORMAL).sum())} zero-length normals in {path}")
    return points.astype(np.float32), (normals / lengths).astype(np.float32)


def normalise_points(points: np.ndarray, *, extent: float = 0.9) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre points `[P, 3]` at their bounding-box centre and scale them uniformly (aspect kept) so that
    the longest half-side is `extent`.

    Returns:
        `(normalised [P, 3] float32, centre [3], scale)` with `normalised = (points - centre) * scale`.
    """
    if np.ndim(points) != 2 or len(points) == 0:
        raise ValueError(f"normalise_points: expected points [P, D] with P >= 1, got shape {np.shape(points)}")
    low, high = points.min(0), points.max(0)
    centre = (low + high) / 2
    half = float((high - low).max()) / 2
    if half <= 0:
        raise ValueError("normalise_points: all points coincide, so there is no extent to scale")
    scale = extent / half
    return ((points - centre) * scale).astype(np.float32), centre, scale


def save_mesh(path: str | os.PathLike, mesh: Mesh) -> Path:
    """Write a triangle mesh (`.ply`, `.obj`, `.off` or `.stl`, by suffix); returns the path."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"save_mesh: expected a {'/'.join(MESH_SUFFIXES)} path, got {path}")
    if len(mesh.faces) == 0:
        raise ValueError(f"save_mesh: the mesh for {path} has no faces")
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, process=False).export(path)
    return path
