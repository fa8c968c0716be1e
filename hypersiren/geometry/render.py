"""Pictures of meshes and point sets without OpenGL: a vectorised z-buffer triangle rasteriser and dots.

Each image is one orthographic panel per azimuth, side by side: `[size, size * len(azimuths), 3]`,
float32 in [0, 1]. The camera looks at the origin and sees the square `[-bound, bound]^2`, so shapes in
the unit sphere fill a panel and panels made with the same arguments line up pixel for pixel.

View coordinates: x to the right, y up, z towards the viewer (larger z is nearer). At azimuth 0 and
elevation 0 the viewer looks along -z with x to the right for `up="y"`, along +y with x to the right
for `up="z"`, and along +z with y to the right for `up="x"`. The azimuth (degrees) turns the viewer
counter-clockwise about the up axis (right-hand rule: azimuth 90 looks from +x for `up="y"`); the
elevation (degrees) raises the viewer, who then looks down. The light comes from the viewer's upper
left, `(-1, 1, 1) / sqrt(3)` in view coordinates; surfaces are lit on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .meshing import Mesh
from .sampling import face_areas_and_normals

AZIMUTHS = (0.0, 90.0, 180.0)
LIGHT = np.array([-1.0, 1.0, 1.0]) / np.sqrt(3.0)  # towards the light, view coordinates
AMBIENT, DIFFUSE = 0.25, 0.75  # shade = AMBIENT + DIFFUSE * max(n . LIGHT, 0), at most 1
DEPTH_CUE = 0.4  # dots at the far end of the view volume are this much darker than at the near end
CHUNK = 1 << 21  # candidate (pixel, face) pairs tested at once: bounds the rasteriser's memory
_AXES = {  # rows: world directions of view x (right), y (up) and z (towards the viewer) at azimuth 0
    "y": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "z": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "x": ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
}


def render_mesh(mesh: Mesh, *, size: int = 128, azimuths: Sequence[float] = AZIMUTHS, elevation: float = 20.0,
                up: str = "y", bound: float = 1.0, colour: Sequence[float] = (0.75, 0.78, 0.85),
                background: float | Sequence[float] = 1.0) -> np.ndarray:
    """Flat-shaded views of a triangle mesh, one panel per azimuth: `[size, size * len(azimuths), 3]`.

    Args:
        mesh: `Mesh(vertices [V, 3], faces [F, 3])`, in the units of `bound`; an empty mesh gives the background.
        colour: RGB of a surface facing the light; background: grey level or RGB, all in [0, 1].
    """
    views = _check_views("render_mesh", size, azimuths, elevation, up, bound)
    vertices = _check_points("render_mesh", "mesh.vertices", mesh.vertices)
    faces = _check_faces(mesh.faces, len(vertices))
    colour, image = _rgb("render_mesh", "colour", colour), _canvas("render_mesh", background, size, len(views))
    normals = face_areas_and_normals(Mesh(vertices, faces))[1]  # [F, 3] world, zero when degenerate
    for k, rotation in enumerate(views):
        uv, depth = _project(vertices, rotation, bound, size)
        face = _rasterise(uv[faces], depth[faces], size)  # [size * size]
        seen = face >= 0
        n = np.einsum("sj,ij->si", normals[face[seen]], rotation)  # [S, 3] view
        n *= np.where(n[:, 2:] < 0, -1.0, 1.0)  # two-sided: turn back faces towards the viewer
        shade = AMBIENT + DIFFUSE * np.clip(n @ LIGHT, 0.0, None)
        row, column = np.divmod(np.flatnonzero(seen), size)
        image[row, k * size + column] = shade[:, None] * colour
    return image


def render_points(points: np.ndarray, *, size: int = 128, azimuths: Sequence[float] = AZIMUTHS,
                  elevation: float = 20.0, up: str = "y", bound: float = 1.0,
                  colour: Sequence[float] = (0.85, 0.2, 0.15), radius: int = 1,
                  background: float | Sequence[float] = 1.0, base: np.ndarray | None = None) -> np.ndarray:
    """Points `[N, 3]` as dots, with the same panels and camera as `render_mesh`.

    Each point covers the pixels within `radius` pixels (a disk) of the pixel it falls in; nearer dots
    hide farther ones and are brighter (a depth cue down to `1 - DEPTH_CUE` of `colour`). Dots are drawn
    over `base`, an image `[size, size * len(azimuths), 3]` (e.g. from `render_mesh` with the same view
    arguments), or over `background` when `base` is None.
    """
    views = _check_views("render_points", size, azimuths, elevation, up, bound)
    points = _check_points("render_points", "points", points)
    colour = _rgb("render_points", "colour", colour)
    if not isinstance(radius, int) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"render_points: radius must be an int >= 0 (pixels), got {radius!r}")
    if base is None:
        image = _canvas("render_points", background, size, len(views))
    else:
        image = _check_base(base, size, len(views))
    dx, dy = np.mgrid[-radius:radius + 1, -radius:radius + 1].reshape(2, -1)
    disk = np.stack([dx, dy], 1)[dx ** 2 + dy ** 2 <= radius ** 2]  # [K, 2] pixel offsets
    for k, rotation in enumerate(views):
        uv, depth = _project(points, rotation, bound, size)
        pixel = (np.floor(uv).astype(np.int64)[:, None] + disk).reshape(-1, 2)  # [N * K, 2] column, row
        depth = np.repeat(depth, len(disk))
        keep = np.all((pixel >= 0) & (pixel < size), axis=1)
        index = pixel[keep, 1] * size + pixel[keep, 0]
        win = _nearest(index, depth[keep])
        shade = 1 - DEPTH_CUE * np.clip((bound - depth[keep][win]) / (2 * bound), 0.0, 1.0)
        row, column = np.divmod(index[win], size)
        image[row, k * size + column] = shade[:, None] * colour
    return image


def _view_rotation(azimuth: float, elevation: float, up: str) -> np.ndarray:
    """World -> view rotation `[3, 3]` (view x right, y up, z towards the viewer); angles in degrees."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ turn @ np.array(_AXES[up], dtype=np.float64)


def _project(points: np.ndarray, rotation: np.ndarray, bound: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """World points `[N, 3]` -> pixel coordinates `[N, 2]` (column, row; pixel (i, j) spans
    `[i, i + 1) x [j, j + 1)`, row 0 at the top) and depth `[N]` (view z, world units), float64."""
    view = np.einsum("nj,ij->ni", points.astype(np.float64), rotation)  # not @: threaded BLAS is slow for [N, 3]
    scale = size / (2 * bound)
    return np.stack([(view[:, 0] + bound) * scale, (bound - view[:, 1]) * scale], axis=1), view[:, 2]


def _rasterise(corners: np.ndarray, depth: np.ndarray, size: int) -> np.ndarray:
    """Index of the nearest face at each pixel centre, `[size * size]` row-major, -1 where none.

    corners: `[F, 3, 2]` pixel coordinates of each face's vertices; depth: `[F, 3]`.
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]  # [F, 2] each (np.minimum beats .min(axis=1))
    lo = np.clip(np.ceil(np.minimum(np.minimum(a, b), c) - 0.5), 0, size).astype(np.int64)  # [F, 2] first pixel
    hi = np.clip(np.floor(np.maximum(np.maximum(a, b), c) - 0.5), -1, size - 1).astype(np.int64)  # [F, 2] last
    extent = np.maximum(hi - lo + 1, 0)  # [F, 2] columns, rows of candidate pixels
    edges = corners[:, 1:] - corners[:, :1]  # [F, 2, 2]: b - a, c - a
    area = edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]  # twice the signed area
    count = np.where(np.abs(area) > 1e-12, extent[:, 0] * extent[:, 1], 0)  # [F]: skips edge-on faces
    best_depth, best_face = np.full(size * size, -np.inf), np.full(size * size, -1, dtype=np.int64)
    total, start = np.cumsum(count), 0
    while start < len(count):
        stop = max(int(np.searchsorted(total, total[start] - count[start] + CHUNK, side="right")), start + 1)
        first = total[start:stop] - count[start:stop]  # each face's first candidate, counted from face 0
        face = start + np.repeat(np.arange(stop - start), count[start:stop])  # [K] candidate's face
        k = np.arange(len(face)) - np.repeat(first - first[0], count[start:stop])  # [K] its place in the face
        pixel = lo[face] + np.stack([k % extent[face, 0], k // extent[face, 0]], axis=1)  # [K, 2]
        p = pixel + 0.5 - corners[face, 0]  # [K, 2] pixel centre - a
        e1, e2 = edges[face, 0], edges[face, 1]
        w1 = (p[:, 0] * e2[:, 1] - p[:, 1] * e2[:, 0]) / area[face]  # barycentric weight of b
        w2 = (e1[:, 0] * p[:, 1] - e1[:, 1] * p[:, 0]) / area[face]  # ... of c
        inside = (w1 >= -1e-9) & (w2 >= -1e-9) & (w1 + w2 <= 1 + 1e-9)  # edges count: no cracks
        z = (depth[face, 0] + w1 * (depth[face, 1] - depth[face, 0]) + w2 * (depth[face, 2] - depth[face, 0]))[inside]
        index = pixel[inside, 1] * size + pixel[inside, 0]
        win = _nearest(index, z)
        win = win[z[win] > best_depth[index[win]]]  # nearer than what earlier chunks drew there
        best_depth[index[win]], best_face[index[win]] = z[win], face[inside][win]
        start = stop
    return best_face


def _nearest(index: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Positions of the nearest (largest depth) entry among those with each distinct pixel index."""
    order = np.lexsort((-depth, index))
    first = np.ones(len(order), dtype=bool)
    first[1:] = index[order[1:]] != index[order[:-1]]
    return order[first]


def _check_views(caller: str, size, azimuths, elevation, up, bound) -> list[np.ndarray]:
    """The world -> view rotation of each panel, after checking the view arguments."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"{caller}: size must be an int >= 8 (pixels), got {size!r}")
    azimuths = np.asarray(azimuths, dtype=np.float64)
    if azimuths.ndim != 1 or len(azimuths) == 0 or not np.isfinite(azimuths).all():
        raise ValueError(f"{caller}: azimuths must be a non-empty sequence of finite angles, got {azimuths!r}")
    if not np.isfinite(elevation):
        raise ValueError(f"{caller}: elevation must be finite, got {elevation!r}")
    if up not in _AXES:
        raise ValueError(f"{caller}: up must be one of 'x', 'y', 'z', got {up!r}")
    if not (np.isfinite(bound) and bound > 0):
        raise ValueError(f"{caller}: bound must be finite and > 0, got {bound!r}")
    return [_view_rotation(a, elevation, up) for a in azimuths]


def _check_points(caller: str, name: str, points) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{caller}: expected {name} [N, 3], got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{caller}: {name} has {np.sum(~np.isfinite(points))} non-finite values")
    return points


def _check_faces(faces, count: int) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or (len(faces) and faces.dtype.kind not in "iu"):
        raise ValueError(f"render_mesh: expected mesh.faces [F, 3] of integers, got {faces.shape} {faces.dtype}")
    if len(faces) and (faces.min() < 0 or faces.max() >= count):
        raise ValueError(f"render_mesh: mesh.faces must index [0, {count}), got [{faces.min()}, {faces.max()}]")
    return faces.astype(np.int64)


def _rgb(caller: str, name: str, value) -> np.ndarray:
    value = np.asarray(value, dtype=np.float32)
    if value.shape not in ((), (3,)) or not ((value >= 0) & (value <= 1)).all():
        raise ValueError(f"{caller}: {name} must be a grey level or RGB in [0, 1], got {value!r}")
    return np.broadcast_to(value, (3,))


def _canvas(caller: str, background, size: int, panels: int) -> np.ndarray:
    return np.broadcast_to(_rgb(caller, "background", background), (size, size * panels, 3)).copy()


def _check_base(base, size: int, panels: int) -> np.ndarray:
    base = np.asarray(base)
    if base.shape != (size, size * panels, 3):
        raise ValueError(f"render_points: expected base [{size}, {size * panels}, 3] for size {size} and "
                         f"{panels} azimuths, got {base.shape}")
    return base.astype(np.float32)  # a copy: base is left as it was
