"""Shape collections as a modality's data: the typed configuration and its loading.

Stored units: a collection of S shapes is a float32 tensor `[S, P, 6]`, columns 0-2 surface points and
3-5 unit outward normals, every shape centred and scaled into the unit sphere (max point radius 1; the
convention of the ModelNet40 `person` file). Sources in other coordinates (meshes, occupancy grids,
generated shapes, point files beyond the unit sphere) keep each shape's transform, centre `[3]` and
scale, so `points_input = points_stored * scale + centre` writes a mesh back in the input's coordinates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...geometry import Mesh, orient_normals
from ...io import load_mesh, open_numpy_file
from ...prior.modality import SPLITS, DataConfig, split_signals
from .collection import (ShapeCollection, collect, normalise_shape, orient_outward, sample_shape,
                         shape_seed)
from .generated import generate_shapes

SHAPE_MESH_SUFFIXES = (".obj", ".ply", ".off")  # the files `load_mesh_folder` reads
OCCUPANCY_KEYS = ("occ64", "occ128_packed")  # occupancy arrays `load_occupancy_npz` reads
UNIT_RADIUS_TOLERANCE = 1.01  # points within this radius are taken as already in the unit sphere
ZERO_NORMAL = 1e-12  # normals shorter than this cannot be normalised: an error
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the stored shapes are float32


@dataclass(frozen=True)
class ShapeData(DataConfig):
    """A shape collection: `source` is `generated` (tori, superquadric ellipsoids and capsules), an `.npz`
    of oriented points (`points`, `normals` `[S, P, 3]`), an `.npz` of occupancy grids (`occ64` or
    `occ128_packed`) or a folder of `.obj/.ply/.off` meshes. With `orient`, the normals of point files and
    meshes are made consistent (mixed windings are common in mesh collections)."""

    source: str = "generated"
    points: int = 10_000  # points per shape: a random subset of a larger point file; meshes sample exactly this
    seed: int = 0  # subsets and surface samples
    count: int = 64  # shapes of the generated collection (ignored for files)
    orient: bool = True  # make point files' and meshes' normals consistent (`geometry.orient_normals`)

    def __post_init__(self):
        super().__post_init__()
        for name in ("points", "count"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ShapeData: {name} must be a positive int, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"ShapeData: seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.orient, bool):
            raise ValueError(f"ShapeData: orient must be true or false, got {self.orient!r}")


def _existing_file(path: str | os.PathLike, caller: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: no file at {path}")
    return path


def _array(archive, key: str, path: Path, caller: str) -> np.ndarray:
    if key not in archive.files:
        raise ValueError(f"{caller}: {path} has no array {key!r}; it has {sorted(archive.files)}")
    return archive[key]


def _real(array: np.ndarray, key: str, path: Path, caller: str) -> np.ndarray:
    """`array` as float64; ValueError naming `key` and `path` unless it holds real numbers."""
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: expected real numbers in {key} of {path}, got dtype {array.dtype}")
    return array.astype(np.float64)


def _count(shapes: int, limit: int | None) -> int:
    return shapes if limit is None else min(shapes, limit)


def _orient(row: tuple[np.ndarray, np.ndarray, float], orient: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """A collection row `(shape [P, 6], centre, scale)` with its normals made consistent when `orient`."""
    shape, centre, scale = row
    if not orient:
        return row
    return np.concatenate([shape[:, :3], orient_normals(shape[:, :3], shape[:, 3:])], axis=1), centre, scale


# ------------------------------------------------------------------------------------------ the sources


def load_oriented_npz(path: str | os.PathLike, *, points: int, seed: int, limit: int | None = None,
                      orient: bool = True) -> ShapeCollection:
    """Oriented point clouds from an `.npz` with `points` and `normals` `[S, P, 3]`, optional `split` `[S]`
    (0 train / 1 test) and `names` `[S]`. Each shape keeps a random subset of `points` of its P points
    (all, in order, when P == `points`); normals are renormalised and, with `orient`, made consistent
    (`geometry.orient_normals`); shapes beyond radius 1.01 are centred and scaled to the unit sphere (transform
    recorded), the others keep centre 0 and scale 1."""
    caller = "load_oriented_npz"
    path = _existing_file(path, caller)
    with open_numpy_file(path, caller) as archive:
        cloud = _real(_array(archive, "points", path, caller), "points", path, caller)
        normals = _real(_array(archive, "normals", path, caller), "normals", path, caller)
        split = archive["split"] if "split" in archive.files else None
        names = archive["names"] if "names" in archive.files else None
    if cloud.ndim != 3 or cloud.shape[-1] != 3 or normals.shape != cloud.shape:
        raise ValueError(f"{caller}: expected points and normals [S, P, 3] of one shape in {path}, got points "
                         f"{cloud.shape} and normals {normals.shape}")
    if cloud.shape[0] == 0:
        raise ValueError(f"{caller}: {path} holds no shapes (points {cloud.shape})")
    count, size = cloud.shape[0], cloud.shape[1]
    for key, extra in (("split", split), ("names", names)):
        if extra is not None and extra.shape != (count,):
            raise ValueError(f"{caller}: expected {key} [S] with S={count} in {path}, got {extra.shape}")
    if split is not None and split.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: split in {path} must hold 0 (train) or 1 (test), got dtype {split.dtype}")
    if split is not None and not np.isin(split, (0, 1)).all():
        raise ValueError(f"{caller}: split in {path} must hold 0 (train) or 1 (test), got values "
                         f"{sorted(set(np.unique(split).tolist()) - {0, 1})}")
    if size < points:
        raise ValueError(f"{caller}: {path} has {size} points per shape, fewer than points={points}")
    for key, array in (("points", cloud), ("normals", normals)):
        bad = np.flatnonzero(~(np.abs(array) <= FLOAT32_MAX).all(axis=(1, 2)))  # NaN fails the comparison too
        if len(bad):
            raise ValueError(f"{caller}: {key} of shape {bad[0]} in {path} contain NaN or inf, or values "
                             f"beyond float32's range ({len(bad)} shape(s) affected)")
    lengths = np.linalg.norm(normals, axis=-1, keepdims=True)  # [S, P, 1]
    zero = np.flatnonzero((lengths < ZERO_NORMAL).any(axis=(1, 2)))
    if len(zero):
        raise ValueError(f"{caller}: shape {zero[0]} in {path} has {int((lengths[zero[0]] < ZERO_NORMAL).sum())} "
                         f"zero-length normals ({len(zero)} shape(s) affected)")
    normals = normals / lengths
    count = _count(count, limit)
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        centre, scale = np.zeros(3), 1.0
        if np.linalg.norm(cloud[index], axis=1).max() > UNIT_RADIUS_TOLERANCE:
            _, centre, scale = normalise_shape(cloud[index], f"{caller}: shape {index} in {path}")
        keep = rng.permutation(size)[:points] if size > points else np.arange(size)  # [points]
        unit = (cloud[index, keep] - centre) / scale
        rows.append(_orient((np.concatenate([unit, normals[index, keep]], axis=1), centre, scale), orient))
    names = tuple(str(name) for name in names[:count]) if names is not None else tuple(
        f"shape_{index:03d}" for index in range(count))
    return collect(rows, names, None if split is None else split[:count])


def load_mesh_folder(path: str | os.PathLike, *, points: int, seed: int, limit: int | None = None,
                     orient: bool = True) -> ShapeCollection:
    """Every `.obj/.ply/.off` mesh of a folder (sorted by name), `points` area-uniform samples each with
    face normals (no watertightness or consistent winding needed: with `orient` the normals are made
    consistent, `geometry.orient_normals`), normalised to the unit sphere; names are the file stems."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"load_mesh_folder: no folder at {path}")
    files = sorted(file for file in path.iterdir() if file.suffix.lower() in SHAPE_MESH_SUFFIXES and file.is_file())
    if not files:
        raise ValueError(f"load_mesh_folder: empty mesh folder {path} (no {'/'.join(SHAPE_MESH_SUFFIXES)} files)")
    files = files[: _count(len(files), limit)]
    rows = [_orient(sample_shape(load_mesh(file), points, shape_seed(seed, index), f"load_mesh_folder: {file}"),
                    orient) for index, file in enumerate(files)]  # load_mesh's errors name the file
    return collect(rows, tuple(file.stem for file in files))


def occupancy_grids(path: Path, key: str, count: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The first `count` boolean grids `[S, R, R, R]` ([x][y][z]) of `key` in an occupancy `.npz`, and its
    `model_id` `[S]` when present."""
    caller = "load_occupancy_npz"
    if key not in OCCUPANCY_KEYS:
        raise ValueError(f"{caller}: key must be one of {', '.join(OCCUPANCY_KEYS)}, got {key!r}")
    with open_numpy_file(path, caller) as archive:
        grids = _array(archive, key, path, caller)
        model_id = archive["model_id"] if "model_id" in archive.files else None
    if key == "occ128_packed":
        if grids.ndim != 2 or grids.dtype != np.uint8 or grids.shape[1] * 8 != 128**3:
            raise ValueError(f"{caller}: expected occ128_packed [S, {128**3 // 8}] uint8 in {path}, "
                             f"got {grids.shape} {grids.dtype}")
        grids = np.unpackbits(grids[:count], axis=1).reshape(-1, 128, 128, 128)
    if grids.ndim != 4 or not grids.shape[1] == grids.shape[2] == grids.shape[3]:
        raise ValueError(f"{caller}: expected {key} [S, R, R, R] in {path}, got {grids.shape}")
    if grids.dtype.kind not in "biuf":
        raise ValueError(f"{caller}: expected {key} of booleans or 0 / 1 numbers in {path}, got dtype {grids.dtype}")
    if model_id is not None and (model_id.ndim != 1 or len(model_id) < len(grids[:count])):
        raise ValueError(f"{caller}: expected model_id [S] with a name per grid in {path}, got {model_id.shape}")
    grids = grids[:count]
    if len(grids) == 0:
        raise ValueError(f"{caller}: {path} holds no grids in {key}")
    return grids.astype(bool), model_id


def occupancy_mesh(grid: np.ndarray) -> Mesh:
    """The closed boundary of a solid occupancy grid `[R, R, R]` (zero-padded, marching cubes at 0.5),
    outward winding, in voxel-index units (voxel (i, j, k) at (i, j, k))."""
    from skimage.measure import marching_cubes

    padded = np.pad(grid.astype(np.float32), 1)  # [R + 2, R + 2, R + 2], empty border: a closed surface
    vertices, faces, _, _ = marching_cubes(padded, level=0.5)
    return orient_outward(Mesh((vertices - 1).astype(np.float32), faces.astype(np.int64)))


def load_occupancy_npz(path: str | os.PathLike, *, points: int, seed: int, key: str = "occ64",
                       limit: int | None = None) -> ShapeCollection:
    """Solid occupancy grids (ShapeNet style: `occ64` `[S, 64, 64, 64]` bool or `occ128_packed`, [x][y][z])
    -> their surfaces, `points` area-uniform samples each with outward face normals, normalised to the unit
    sphere; the transform maps back to voxel-index units. Names: `model_id` when present."""
    path = _existing_file(path, "load_occupancy_npz")
    grids, model_id = occupancy_grids(path, key, limit)
    rows = []
    for index, grid in enumerate(grids):
        what = f"load_occupancy_npz: shape {index} of {key} in {path}"
        if not grid.any():
            raise ValueError(f"{what} has no occupied voxel")
        rows.append(sample_shape(occupancy_mesh(grid), points, shape_seed(seed, index), what))
    names = (tuple(str(name) for name in model_id[: len(rows)]) if model_id is not None
             else tuple(f"shape_{index:03d}" for index in range(len(rows))))
    return collect(rows, names)


def load_shapes(data: ShapeData) -> ShapeCollection:
    """The configured collection (its first `data.limit` shapes), `shapes` `[S, P, 6]` with P = `data.points`."""

    if data.source == "generated":
        return generate_shapes(_count(data.count, data.limit), data.points, data.seed)
    path = Path(data.source)
    options = dict(points=data.points, seed=data.seed, limit=data.limit)
    if path.is_dir():
        return load_mesh_folder(path, orient=data.orient, **options)
    accepted = ("'generated', an .npz with points/normals or occupancy grids (occ64, occ128_packed), or a folder "
                "of .obj/.ply/.off meshes")
    if not path.exists():
        raise FileNotFoundError(f"load_shapes: no file or folder at {path}; a shape source is {accepted}")
    if path.suffix.lower() == ".npz":
        with open_numpy_file(path, "load_shapes") as archive:
            keys = set(archive.files)
        if "points" in keys:
            return load_oriented_npz(path, orient=data.orient, **options)
        for key in OCCUPANCY_KEYS:
            if key in keys:
                return load_occupancy_npz(path, key=key, **options)
        raise ValueError(f"load_shapes: {path} has none of the arrays points, {', '.join(OCCUPANCY_KEYS)}; "
                         f"it has {sorted(keys)}")
    raise ValueError(f"load_shapes: cannot read {path}; a shape source is {accepted}")


def load_split(data: ShapeData, split: str) -> Tensor:
    """The `train`, `heldout` or `all` shapes `[S, P, 6]` of a configured collection: the source's own
    split when it has one (0 train, 1 heldout; `holdout` must then be 0), else the last `holdout` shapes."""
    collection, index = load_collection(data, split)
    return collection.shapes[index]


def load_collection(data: ShapeData, split: str) -> tuple[ShapeCollection, Tensor]:
    """The whole collection (with each shape's centre and scale, to write meshes back in the input's
    coordinates) and the indices `[K]` of its `train`, `heldout` or `all` shapes (see `load_split`)."""
    if split not in SPLITS:
        raise ValueError(f"load_split: split must be one of {', '.join(SPLITS)}, got {split!r}")
    collection = load_shapes(data)
    everything = torch.arange(collection.shapes.shape[0])
    if collection.split is None:
        return collection, split_signals(everything, data.holdout, split)
    if data.holdout:
        raise ValueError(f"load_split: {data.source} has its own split (0 train / 1 test), so holdout must be 0, "
                         f"got holdout={data.holdout}")
    if split == "all":
        return collection, everything
    chosen = collection.split == (0 if split == "train" else 1)  # [S]
    if not chosen.any():
        raise ValueError(f"load_split: no {split} shapes among the {len(chosen)} loaded from {data.source} "
                         f"(limit={data.limit})")
    return collection, everything[chosen]
