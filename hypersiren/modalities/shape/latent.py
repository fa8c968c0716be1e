"""The shape modality's adapter for the latent tools: `ShapePrior`, a `HyperSiren` shape prior (coordinates
in `[-1, 1]^3`, one signed distance, negative inside) seen through the `hypersiren.latent.LatentPrior`
protocol. Signals are oriented point clouds `[B, P, 6]`: points in the unit sphere, unit outward normals.

- **Encoding** reads `context_size` random points of each shape with their normals (`Context` values 0,
  normals observed: the posterior's `f = 0`, `grad f = n` rows, or a set encoder's inputs). "All points"
  (`context_size=None`) is capped at `FULL_CONTEXT` points: the same fixed-seed subset of every shape, so
  it stays deterministic; the posterior of thousands of surface points barely moves with more, while its
  memory grows with them (a 10,000-point shape is `[40,000, Z]` observation rows).
- **Rendering** at `resolution` R (native: `RENDER_RESOLUTION`) samples the SIREN on the `R^3` grid over
  `[-1, 1]^3` (`query_coords`, row-major like `coords.grid`); `to_signals` meshes those values by marching
  cubes (`geometry.extract_mesh`) and draws `SURFACE_POINTS` area-uniform points with face normals from
  the mesh (`geometry.sample_surface`, seed 0). `render` does the same, evaluating each SIREN at full
  resolution only near its surface (`extract_mesh`'s band, as the completion protocol does). A field
  with no zero crossing on the grid has no surface: its point cloud is `SURFACE_POINTS` rows of NaN
  (logged), which `to_images` shows as an empty grey panel and `distance` puts infinitely far away, so one
  empty sample does not stop a figure; `encode` refuses it.
- **Pictures** (`to_images`): the points as dots from one view (`figures.VIEW`: azimuth 30, elevation 15,
  y up), nearer dots brighter, `image_size` pixels square (default `IMAGE_SIZE`), RGB in [0, 1]. So in
  `evaluate/explore.py`, `--size` sets the marching-cubes grid of a panel's shape, and the picture is
  resized to the panel (unchanged at the default 64).
- **Distance** (the optional `distance` member the latent tools use for nearest neighbours): the symmetric
  Chamfer-L1 of the protocol (mean of the two one-sided mean nearest-neighbour distances), each cloud
  thinned to `DISTANCE_POINTS` fixed-seed points first.
- **Export extras** (the optional `export_extras` member): next to an exported SIREN, its mesh `FILE.ply`
  by marching cubes at the protocol's `MESH_RESOLUTION` (in the stored unit-sphere coordinates).
- **Data** (`load_signals`): the run's own shapes by split, or every shape of a source (`ShapeData`'s:
  "generated", an `.npz`, a mesh folder) with the run's points per shape and seed, or one mesh file.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...coords import grid, grid_index
from ...geometry import Mesh, extract_mesh, face_areas_and_normals, render_points, sample_surface
from ...io import load_mesh, save_mesh
from ...params import SirenParams
from ...prior.context import fixed_context
from ...prior.adapter import ModelAdapter
from ...prior.model import HyperSiren
from ...prior.types import Context
from .collection import sample_shape, shape_seed
from .data import SHAPE_MESH_SUFFIXES, ShapeData, load_shapes
from .figures import VIEW
from .protocol import MESH_BAND, MESH_RESOLUTION

log = logging.getLogger(__name__)

RENDER_RESOLUTION = 64  # native marching-cubes grid of a rendered shape
SURFACE_POINTS = 2048  # points drawn from each rendered surface
FULL_CONTEXT = 2048  # most points a "full" encoding reads per shape
DISTANCE_POINTS = 2048  # points per cloud in the Chamfer distance
IMAGE_SIZE = 64  # pixels of a picture's side (explore's default panel size)
RENDER_CHUNK = 65536  # grid points per SIREN evaluation
BAND_COARSEST = 8  # `render` evaluates near the surface only when the coarse grid has this many points a side
SUBSET_SEED = 0  # the fixed subsets of FULL_CONTEXT and DISTANCE_POINTS
COLOUR = (0.3, 0.45, 0.75)  # the dots' RGB
EMPTY = 0.85  # grey level of the picture of a shape with no surface


class ShapePrior(ModelAdapter):
    """A `HyperSiren` shape prior as a `LatentPrior` (see the module docstring). `modality` (a
    `ShapeModality`) gives the run's own data to `load_signals`; without it a source must be passed."""

    sources = "'generated', an .npz of points or occupancy grids, a mesh folder or a mesh file"

    distance_name = "chamfer"

    def __init__(self, model: HyperSiren, *, resolution: int = RENDER_RESOLUTION, image_size: int = IMAGE_SIZE,
                 modality=None):
        _check_side(resolution, "ShapePrior", "resolution", 2)
        _check_side(image_size, "ShapePrior", "image_size", 8)
        if model.config.coord_dim != 3 or model.config.value_dim != 1:
            raise ValueError(f"ShapePrior: expected a prior of signed distances over 3-D coordinates (coord_dim 3, "
                             f"value_dim 1), got coord_dim={model.config.coord_dim}, "
                             f"value_dim={model.config.value_dim}")
        self.model, self._resolution, self.image_size, self.modality = model, resolution, image_size, modality

    def encode(self, signals: Tensor, *, context_size: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Oriented point clouds `[B, P, 6]` -> latents `[B, Z]` from `context_size` random points each with
        their normals (None: all points, at most `FULL_CONTEXT` of them, a fixed subset)."""
        _check_shapes(signals, "ShapePrior.encode")
        empty = (~signals.isfinite().all(-1).all(-1)).nonzero()[:, 0].tolist()
        if empty:
            raise ValueError(f"ShapePrior.encode: shapes {empty} hold NaN or inf (a rendered shape with no surface?)")
        signals = signals.to(self.device)
        count = signals.shape[1]
        if context_size is None:
            if count > FULL_CONTEXT:
                signals = signals[:, fixed_subset(count, FULL_CONTEXT).to(self.device)]
            points, normals = signals[..., :3], signals[..., 3:]
            mask = torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
        else:
            if not isinstance(context_size, int) or isinstance(context_size, bool) or not 1 <= context_size <= count:
                raise ValueError(f"ShapePrior.encode: context_size must be an int in 1..{count} (the points per "
                                 f"shape) or None, got {context_size!r}")
            drawn = fixed_context(signals[..., :3], signals[..., 3:], context_size, generator=generator)
            points, normals, mask = drawn.coords, drawn.values, drawn.mask
        return self.model.encode(Context(points, points.new_zeros(*points.shape[:2], 1), mask, normals))

    def query_coords(self, resolution: int | None = None) -> Tensor:
        """The `R^3` grid over `[-1, 1]^3`, row-major (x slowest): `[R^3, 3]`."""
        side = self._side(resolution, "ShapePrior.query_coords")
        return grid((side, side, side))

    def to_signals(self, values: Tensor, *, resolution: int | None = None) -> Tensor:
        """Signed distances `[B, R^3, 1]` at `query_coords(R)` -> oriented point clouds `[B, SURFACE_POINTS, 6]`
        on their zero level sets (NaN rows where there is none)."""
        side = self._side(resolution, "ShapePrior.to_signals")
        if values.dim() != 3 or values.shape[1] != side ** 3 or values.shape[2] != 1:
            raise ValueError(f"ShapePrior.to_signals: expected signed distances [B, {side ** 3}, 1] on the "
                             f"{side}^3 grid, got {tuple(values.shape)}")
        meshes = [extract_mesh(grid_field(field, side), resolution=side, device=values.device)
                  for field in values[..., 0]]
        return point_clouds(meshes, "ShapePrior.to_signals", side).to(device=values.device, dtype=values.dtype)

    @torch.no_grad()
    def render(self, params: SirenParams, *, resolution: int | None = None) -> Tensor:
        """SIRENs (batch `(B,)`) -> oriented point clouds `[B, SURFACE_POINTS, 6]`, one shape at a time.

        The same grid and marching cubes as `to_signals` of the SIRENs' values at `query_coords`, but each
        SIREN is evaluated on the full grid only near its surface (`extract_mesh`'s `band`: a grid
        `MESH_BAND` times coarser first) when that coarse grid has at least `BAND_COARSEST` points a side;
        the meshes agree unless a feature hides between the coarse points."""
        if len(params.batch_shape) != 1:
            raise ValueError(f"ShapePrior.render: expected SIRENs with batch shape (B,), got "
                             f"{tuple(params.batch_shape)}")
        side = self._side(resolution, "ShapePrior.render")
        band = MESH_BAND if side // MESH_BAND >= BAND_COARSEST else None
        meshes = []
        for b in range(params.batch_shape[0]):
            one = params.map(lambda t: t[b : b + 1])
            meshes.append(extract_mesh(lambda points: self.model.render(one, points[None])[0, :, 0], resolution=side,
                                       band=band, batch_points=RENDER_CHUNK, device=params.weights[0].device))
        return point_clouds(meshes, "ShapePrior.render", side).to(params.weights[0])

    def to_images(self, signals: Tensor) -> Tensor:
        """Oriented point clouds `[B, P, 6]` -> pictures `[B, image_size, image_size, 3]` in [0, 1] (dots from
        one view; an empty grey panel for a shape with no surface)."""
        _check_shapes(signals, "ShapePrior.to_images")
        size = self.image_size
        view = {"size": size, "azimuths": VIEW["azimuths"][:1], "elevation": VIEW["elevation"], "up": VIEW["up"]}
        radius = max(1, size // 96)
        pictures = [np.full((size, size, 3), EMPTY, dtype=np.float32) if not np.isfinite(points).all()
                    else render_points(points, radius=radius, colour=COLOUR, **view)
                    for points in signals[..., :3].detach().cpu().numpy()]
        return torch.from_numpy(np.stack(pictures)).to(signals.device)

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        """The symmetric Chamfer-L1 between every cloud of `a` `[Q, P, 6]` and every cloud of `b` `[R, P', 6]`
        (points only; `DISTANCE_POINTS` of each): `[Q, R]` float64 on the CPU; inf next to a cloud with no
        surface."""
        from scipy.spatial import cKDTree

        _check_shapes(a, "ShapePrior.distance")
        _check_shapes(b, "ShapePrior.distance")
        clouds = [[thinned(cloud) for cloud in side[..., :3].detach().cpu().double().numpy()] for side in (a, b)]
        trees = [[None if cloud is None else cKDTree(cloud) for cloud in side] for side in clouds]
        out = torch.full((len(clouds[0]), len(clouds[1])), float("inf"), dtype=torch.float64)
        for i, (p, tree_p) in enumerate(zip(clouds[0], trees[0])):
            for j, (q, tree_q) in enumerate(zip(clouds[1], trees[1])):
                if p is not None and q is not None:
                    out[i, j] = (tree_q.query(p)[0].mean() + tree_p.query(q)[0].mean()) / 2
        return out

    @torch.no_grad()
    def export_extras(self, params: SirenParams, path: str | Path) -> dict[str, str]:
        """The mesh of one exported SIREN (batch shape `(1,)`) next to its file: `FILE.ply`, marching cubes on
        the protocol's `MESH_RESOLUTION^3` grid, unit-sphere coordinates. -> `{"mesh": path}`."""
        if tuple(params.batch_shape) != (1,):
            raise ValueError(f"ShapePrior.export_extras: expected one SIREN (batch shape (1,)), got "
                             f"{tuple(params.batch_shape)}")
        mesh = extract_mesh(lambda points: self.model.render(params, points[None])[0, :, 0],
                            resolution=MESH_RESOLUTION, band=MESH_BAND, device=params.weights[0].device)
        target = Path(path).with_suffix(".ply")
        if len(mesh.faces) == 0:
            raise ValueError(f"ShapePrior.export_extras: the SIREN has no surface (its values do not cross 0 on "
                             f"the {MESH_RESOLUTION}^3 grid over [-1, 1]^3), so there is no mesh to write to {target}")
        return {"mesh": str(save_mesh(target, mesh))}

    def load_signals(self, source: str | None = None, *, split: str | None = None) -> Tensor:
        """The run's own shapes (`split`, default "train") or every shape of `source` `[S, P, 6]`."""
        own = self._signals_of(source, split, "shape")
        if own is not None:
            return own
        data = ShapeData(source=source) if self.modality is None else dataclasses.replace(
            self.modality.data, source=source, holdout=0, limit=None)
        try:
            if Path(source).suffix.lower() in SHAPE_MESH_SUFFIXES and Path(source).is_file():
                shape, _, _ = sample_shape(load_mesh(source), data.points, shape_seed(data.seed, 0), source)
                return torch.from_numpy(shape)[None]  # [1, P, 6]
            return load_shapes(data).shapes
        except ValueError as error:
            raise ValueError(f"ShapePrior.load_signals: {error}") from error

    def _side(self, resolution: int | None, where: str) -> int:
        if resolution is None:
            return self._resolution
        _check_side(resolution, where, "resolution", 2)
        return resolution


def grid_field(values: Tensor, side: int):
    """Values `[side^3]` on `grid((side,) * 3)` as a field on that grid's points (`extract_mesh`'s)."""
    return lambda points: values[grid_index(points, (side, side, side))]


def point_clouds(meshes: list[Mesh], where: str, side: int) -> Tensor:
    """`SURFACE_POINTS` area-uniform points of each mesh with face normals (seed 0) -> `[B, SURFACE_POINTS, 6]`
    float32; NaN rows for a mesh with no area (logged)."""
    clouds, empty = [], []
    for index, mesh in enumerate(meshes):
        if len(mesh.faces) == 0 or not face_areas_and_normals(mesh)[0].sum() > 0:
            clouds.append(np.full((SURFACE_POINTS, 6), np.nan, dtype=np.float32))
            empty.append(index)
        else:
            clouds.append(np.concatenate(sample_surface(mesh, SURFACE_POINTS, seed=0), axis=1))
    if empty:
        log.warning("%s: shapes %s have no surface on the %d^3 grid; their points are NaN", where, empty, side)
    return torch.from_numpy(np.stack(clouds))


def fixed_subset(count: int, size: int) -> Tensor:
    """The first `size` of a fixed random order of `count` indices."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(SUBSET_SEED))[:size]


def thinned(points: np.ndarray) -> np.ndarray | None:
    """Points `[P, 3]` thinned to `DISTANCE_POINTS` (a fixed subset); None when any is not finite."""
    if not np.isfinite(points).all():
        return None
    return points[fixed_subset(len(points), DISTANCE_POINTS).numpy()] if len(points) > DISTANCE_POINTS else points


def _check_shapes(signals: Tensor, where: str) -> None:
    if signals.dim() != 3 or signals.shape[-1] != 6 or signals.shape[0] == 0 or signals.shape[1] == 0:
        raise ValueError(f"{where}: expected oriented point clouds [B, P, 6] (points, unit outward normals) with "
                         f"B, P >= 1, got {tuple(signals.shape)}")


def _check_side(value, where: str, name: str, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{where}: {name} must be an int >= {least}, got {value!r}")
