"""A generated family of watertight shapes with varying proportions, for tests and smoke runs: tori
(major and minor radius), superquadric ellipsoids (three semi-axes and a squareness exponent) and
capsules (radius and length), cycling through the three kinds, each axis-aligned and centred at the
origin before normalisation. Everything is drawn from one `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

import numpy as np

from ...geometry import Mesh
from .collection import ShapeCollection, collect, orient_outward, sample_shape

KINDS = ("torus", "ellipsoid", "capsule")
AROUND = 48  # grid steps around the z axis (and around a torus's tube)
ALONG = 24  # grid steps from pole to pole (rings of a sphere-like surface)


def _quads(rows: int, columns: int, *, wrap_rows: bool) -> np.ndarray:
    """Triangles `[F, 3]` of a grid of `rows x columns` vertices (vertex `row * columns + column`), the
    columns wrapping around (and the rows when `wrap_rows`). The triangles (r, c), (r, c + 1), (r + 1, c)
    and (r, c + 1), (r + 1, c + 1), (r + 1, c) wind so that `d(column) x d(row)` is their normal."""
    row = np.arange(rows if wrap_rows else rows - 1)[:, None]  # [R', 1]
    column = np.arange(columns)[None, :]  # [1, C]
    here = row * columns + column
    right = row * columns + (column + 1) % columns
    up = ((row + 1) % rows) * columns + column
    up_right = ((row + 1) % rows) * columns + (column + 1) % columns
    first = np.stack([here, right, up], axis=-1).reshape(-1, 3)
    second = np.stack([right, up_right, up], axis=-1).reshape(-1, 3)
    return np.concatenate([first, second]).astype(np.int64)


def torus_mesh(major: float, minor: float) -> Mesh:
    """A torus about the z axis: tube centre circle of radius `major`, tube radius `minor` < `major`."""
    u = np.linspace(0, 2 * np.pi, AROUND, endpoint=False)  # around the z axis: columns
    v = np.linspace(0, 2 * np.pi, AROUND // 2, endpoint=False)  # around the tube: rows
    v, u = np.meshgrid(v, u, indexing="ij")  # [rows, columns]
    ring = major + minor * np.cos(v)
    vertices = np.stack([ring * np.cos(u), ring * np.sin(u), minor * np.sin(v)], axis=-1).reshape(-1, 3)
    return orient_outward(Mesh(vertices.astype(np.float32), _quads(*u.shape, wrap_rows=True)))


def _sphere_like(rings: np.ndarray, bottom: np.ndarray, top: np.ndarray) -> Mesh:
    """A closed mesh from rings `[K, C, 3]` (z growing with K, counter-clockwise seen from +z) between a
    bottom and a top pole `[3]`."""
    count, columns = rings.shape[:2]
    vertices = np.concatenate([rings.reshape(-1, 3), bottom[None], top[None]])  # [K * C + 2, 3]
    column = np.arange(columns)
    bottom_fan = np.stack([np.full(columns, count * columns), (column + 1) % columns, column], axis=-1)
    last = (count - 1) * columns
    top_fan = np.stack([np.full(columns, count * columns + 1), last + column, last + (column + 1) % columns], axis=-1)
    faces = np.concatenate([_quads(count, columns, wrap_rows=False), bottom_fan, top_fan]).astype(np.int64)
    return orient_outward(Mesh(vertices.astype(np.float32), faces))


def _signed_power(value: np.ndarray, exponent: float) -> np.ndarray:
    return np.sign(value) * np.abs(value) ** exponent


def ellipsoid_mesh(axes: np.ndarray, exponent: float) -> Mesh:
    """A superquadric ellipsoid with semi-axes `axes` `[3]`; `exponent` 1 is an ellipsoid, below 1 boxier
    (still convex)."""
    u = np.linspace(0, 2 * np.pi, AROUND, endpoint=False)[None, :]  # [1, C]
    v = np.linspace(-np.pi / 2, np.pi / 2, ALONG + 1)[1:-1, None]  # [K, 1] latitudes without the poles
    cos_v, sin_v = _signed_power(np.cos(v), exponent), _signed_power(np.sin(v), exponent)
    rings = np.stack(np.broadcast_arrays(axes[0] * cos_v * _signed_power(np.cos(u), exponent),
                                         axes[1] * cos_v * _signed_power(np.sin(u), exponent),
                                         axes[2] * sin_v), axis=-1)  # [K, C, 3]
    return _sphere_like(rings, np.array([0.0, 0.0, -axes[2]]), np.array([0.0, 0.0, axes[2]]))


def capsule_mesh(radius: float, length: float) -> Mesh:
    """A capsule along z: a cylinder of `radius` and `length` closed by two hemispheres."""
    u = np.linspace(0, 2 * np.pi, AROUND, endpoint=False)[None, :]  # [1, C]
    half = np.linspace(0, np.pi / 2, ALONG // 2, endpoint=False)  # latitudes of one hemisphere, equator first
    latitude = np.concatenate([-half[::-1], half])[:, None]  # [K, 1]: the bottom's rings, then the top's
    shift = np.where(np.arange(len(latitude)) < len(half), -length / 2, length / 2)[:, None]  # [K, 1]
    rings = np.stack(np.broadcast_arrays(radius * np.cos(latitude) * np.cos(u), radius * np.cos(latitude) * np.sin(u),
                                         shift + radius * np.sin(latitude)), axis=-1)  # [K, C, 3]
    tip = length / 2 + radius
    return _sphere_like(rings, np.array([0.0, 0.0, -tip]), np.array([0.0, 0.0, tip]))


def generate_shapes(count: int, points: int, seed: int) -> ShapeCollection:
    """`count` shapes cycling torus, ellipsoid, capsule with proportions drawn from `seed`; `points`
    area-uniform samples each with outward normals, normalised to the unit sphere.

    Returns:
        `ShapeCollection(shapes [count, points, 6], split None, centre [count, 3], scale [count], names)`,
        names `torus_000`, `ellipsoid_001`, `capsule_002`, ...
    """
    for name, value in (("count", count), ("points", points)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"generate_shapes: {name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    rows, names = [], []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        if kind == "torus":
            major = rng.uniform(0.6, 1.0)
            mesh = torus_mesh(major, major * rng.uniform(0.2, 0.6))
        elif kind == "ellipsoid":
            mesh = ellipsoid_mesh(rng.uniform(0.3, 1.0, size=3), rng.uniform(0.5, 1.0))
        else:
            mesh = capsule_mesh(rng.uniform(0.2, 0.5), rng.uniform(0.2, 1.5))
        name = f"{kind}_{index:03d}"
        rows.append(sample_shape(mesh, points, int(rng.integers(2**31)), f"generate_shapes: {name}"))
        names.append(name)
    return collect(rows, tuple(names))
