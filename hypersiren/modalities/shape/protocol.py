"""The shape completion protocol: contexts, meshes, distances, baselines and tables.

For each test shape `[P, 6]` and each context size M, `draw_context` takes M of its points with a fixed
seed (a random order per shape, so the 100 points are among the 300 and the 1000). A completion method
makes a field from the context; `extract_mesh` meshes it by marching cubes on a `MESH_RESOLUTION^3` grid
over `[-MESH_BOUND, MESH_BOUND]^3` (the field evaluated at full resolution only near the surface);
`SURFACE_SAMPLES` area-uniform samples of the mesh are compared with all of the shape's points
(`geometry.surface_distance`): Chamfer-L1 (the mean of the two one-sided mean nearest-neighbour
distances), normal consistency and F-score at `FSCORE_FRACTION` of the shape's bounding-box diagonal,
all in the stored unit-sphere coordinates. A method that returns no surface scores Chamfer `inf` and
counts as `failed`.

Point-set baselines reconstruct points, not a field: the context itself, and retrieval (the training
shape nearest to the context by the one-sided Chamfer distance from the context to it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...geometry import Mesh, extract_mesh, sample_surface, surface_distance
from ...prior.modality import Predictor
from ...prior.types import Context
from .completion import Completer, Field

CONTEXT_SIZES = (100, 300, 1000)
MESH_RESOLUTION = 128
MESH_BOUND = 1.1  # the grid's half side. Stored shapes reach radius 1 and completed surfaces pass it a little
# (measured: up to 1.016 on generated shapes), so a [-1, 1]^3 grid would cut holes where they touch its faces
MESH_BAND = 4  # extract_mesh's band: a 32^3 grid first, then full resolution near the surface
SURFACE_SAMPLES = 30_000  # samples of each completed mesh for the distances
FSCORE_FRACTION = 0.01  # F-score threshold, as a fraction of the shape's bounding-box diagonal
CONTEXT_SEED_STRIDE = 1_000_003  # shape i of seed s draws its points with seed s * stride + i

PointMethod = Callable[[Context], tuple[np.ndarray, np.ndarray]]  # context -> points, normals [K, 3]


def draw_context(shape: Tensor, count: int, *, seed: int, index: int, normals: bool = True) -> Context:
    """`count` of a shape's points `[P, 6]` (the first of a random order fixed by `seed` and `index`) as
    the context of one shape: coords `[1, count, 3]`, values 0, normals `[1, count, 3]` or None."""
    if shape.dim() != 2 or shape.shape[-1] != 6:
        raise ValueError(f"draw_context: expected one shape's oriented points [P, 6], got {tuple(shape.shape)}")
    if not 1 <= count <= shape.shape[0]:
        raise ValueError(f"draw_context: {count} context points asked for, but the shape has {shape.shape[0]}")
    generator = torch.Generator().manual_seed(seed * CONTEXT_SEED_STRIDE + index)
    chosen = shape[torch.randperm(shape.shape[0], generator=generator)[:count].to(shape.device)][None]
    return Context(chosen[..., :3], chosen.new_zeros(1, count, 1), torch.ones(1, count, dtype=torch.bool,
                   device=shape.device), chosen[..., 3:] if normals else None)


def predictor_completer(predict: Predictor) -> Completer:
    """A `Predictor` `(context, coords) -> values` as a completion method."""
    return lambda context: (lambda points: predict(context, points.unsqueeze(0))[0, :, 0])


def context_points(context: Context) -> tuple[np.ndarray, np.ndarray]:
    """The context baseline: the points themselves, with their normals (without normals: NaN, so its normal
    consistency reads NaN)."""
    points = context.coords[0, context.mask[0]].cpu().numpy()
    normals = (context.normals[0, context.mask[0]].cpu().numpy() if context.normals is not None
               else np.full_like(points, np.nan))
    return points, normals


def retrieval(train: Tensor) -> PointMethod:
    """The retrieval baseline: the training shape (`[S, P, 6]`) with the smallest mean distance from the
    context points to its points."""
    from scipy.spatial import cKDTree

    shapes = train.cpu().numpy()
    trees = [cKDTree(shape[:, :3]) for shape in shapes]

    def nearest(context: Context) -> tuple[np.ndarray, np.ndarray]:
        points = context.coords[0, context.mask[0]].cpu().numpy()
        best = int(np.argmin([tree.query(points)[0].mean() for tree in trees]))
        return shapes[best, :, :3], shapes[best, :, 3:]

    return nearest


def complete_mesh(completer: Completer, context: Context, *, resolution: int = MESH_RESOLUTION) -> tuple[Mesh, float, float]:
    """The completed surface of one context and the seconds spent completing and meshing."""
    start = time.perf_counter()
    field: Field = completer(context)
    middle = time.perf_counter()
    mesh = extract_mesh(field, resolution=resolution, bound=MESH_BOUND, band=MESH_BAND, device=context.coords.device)
    return mesh, middle - start, time.perf_counter() - middle


def score(points: np.ndarray, normals: np.ndarray, shape: np.ndarray) -> dict[str, float]:
    """Distances of a reconstruction (oriented points) from a shape `[P, 6]`."""
    threshold = FSCORE_FRACTION * float(np.linalg.norm(shape[:, :3].max(0) - shape[:, :3].min(0)))
    d = surface_distance(points, normals, shape[:, :3], shape[:, 3:], threshold=threshold)
    return {"chamfer": d.chamfer, "normal_consistency": d.normal_consistency, "fscore": d.fscore}


FAILED = {"chamfer": float("inf"), "normal_consistency": 0.0, "fscore": 0.0}


def mesh_score(mesh: Mesh, shape: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Distances of a completed mesh from a shape `[P, 6]` (`SURFACE_SAMPLES` samples of the mesh, drawn
    with `seed`); `FAILED` when the mesh is empty."""
    return score(*sample_surface(mesh, SURFACE_SAMPLES, seed=seed), shape) if len(mesh.faces) else FAILED


def evaluate_shapes(shapes: Tensor, *, fields: dict[str, Completer] | None = None,
                    points: dict[str, PointMethod] | None = None, sizes=CONTEXT_SIZES, seed: int = 0,
                    normals: bool = True, resolution: int = MESH_RESOLUTION,
                    on_mesh: Callable[[str, int, int, Mesh], None] | None = None) -> dict[str, dict]:
    """Score completion methods on shapes `[S, P, 6]`: `fields` are meshed, `points` compared as they are.

    Returns `{method: {str(M): {"chamfer", "normal_consistency", "fscore", "failed", "complete_s",
    "mesh_s", "per_shape": {"chamfer": [S], ...}}}}`; seconds are per shape (0 for point methods).
    `on_mesh(method, M, index, mesh)` sees every mesh (to write them)."""
    methods = {**{name: ("field", f) for name, f in (fields or {}).items()},
               **{name: ("points", f) for name, f in (points or {}).items()}}
    if not methods:
        raise ValueError("evaluate_shapes: no methods to score")
    if shapes.dim() != 3 or shapes.shape[-1] != 6 or shapes.shape[0] == 0:
        raise ValueError(f"evaluate_shapes: expected shapes [S, P, 6], got {tuple(shapes.shape)}")
    references = shapes.cpu().numpy()
    results: dict[str, dict] = {name: {} for name in methods}
    for m in sizes:
        rows = {name: [] for name in methods}
        for index, shape in enumerate(shapes):
            context = draw_context(shape, int(m), seed=seed, index=index, normals=normals)
            for name, (kind, method) in methods.items():
                seconds = (0.0, 0.0)
                if kind == "points":
                    found = score(*method(context), references[index])
                else:
                    mesh, *seconds = complete_mesh(method, context, resolution=resolution)
                    if on_mesh is not None:
                        on_mesh(name, int(m), index, mesh)
                    found = mesh_score(mesh, references[index], seed=index)
                rows[name].append({**found, "complete_s": seconds[0], "mesh_s": seconds[1]})
        for name, row in rows.items():
            results[name][str(m)] = summarise(row)
    return results


def summarise(rows: list[dict[str, float]]) -> dict:
    keys = ("chamfer", "normal_consistency", "fscore", "complete_s", "mesh_s")
    summary = {key: float(np.mean([r[key] for r in rows])) for key in keys}
    summary["failed"] = sum(r["chamfer"] == float("inf") for r in rows)
    summary["per_shape"] = {key: [r[key] for r in rows] for key in ("chamfer", "normal_consistency", "fscore")}
    return summary


def markdown_tables(results: dict[str, dict]) -> str:
    """One table per context size: a row per method."""
    sizes = list(next(iter(results.values())))
    tables = []
    for m in sizes:
        lines = [f"M = {m} context points", "",
                 "| method | Chamfer-L1 | normal consistency | F-score@1% | failed | complete s/shape | mesh s/shape |",
                 "|---|---|---|---|---|---|---|"]
        for name, result in results.items():
            r = result[m]
            lines.append(f"| {name} | {r['chamfer']:.4f} | {r['normal_consistency']:.3f} | {r['fscore']:.3f} | "
                         f"{r['failed']} | {r['complete_s']:.2f} | {r['mesh_s']:.2f} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def write_mesh_to_input(path: Path, mesh: Mesh, centre: Tensor, scale: Tensor) -> Path:
    """Write a mesh in the stored unit-sphere coordinates back in the input's: `v * scale + centre`."""
    from ...io import save_mesh

    vertices = mesh.vertices.astype(np.float64) * float(scale) + centre.double().cpu().numpy()
    return save_mesh(path, Mesh(vertices.astype(np.float32), mesh.faces))
