"""How close two oriented point sets are: Chamfer-L1, normal consistency and F-score.

Both sets are usually samples of surfaces (`sample_surface` on a reconstructed mesh, and a reference
scan). Nearest neighbours come from scipy's k-d tree. Distances are in the points' own units.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FSCORE_THRESHOLD = 0.01  # default F-score distance, in the points' units (for shapes normalised into [-1, 1]^3)


class SurfaceDistance(NamedTuple):
    chamfer: float  # Chamfer-L1: mean of the two one-sided mean nearest-neighbour distances
    normal_consistency: float  # mean |cos| between each point's normal and its nearest neighbour's, both ways
    fscore: float  # harmonic mean of precision and recall at `threshold` (0 when both are 0)
    precision: float  # fraction of `points` within `threshold` of the reference
    recall: float  # fraction of the reference within `threshold` of `points`


def surface_distance(points: np.ndarray, normals: np.ndarray, reference_points: np.ndarray,
                     reference_normals: np.ndarray, *, threshold: float = FSCORE_THRESHOLD) -> SurfaceDistance:
    """Chamfer-L1, normal consistency and F-score of oriented points `[P, 3]` against a reference `[Q, 3]`.

    Normals are unit vectors; their sign is ignored (`|cos|`), so inconsistently oriented scans score
    the same. Precision is measured from `points` to the reference, recall from the reference to `points`.
    """
    for name, array in (("points", points), ("normals", normals), ("reference_points", reference_points),
                        ("reference_normals", reference_normals)):
        if np.ndim(array) != 2 or np.shape(array)[1] != 3 or len(array) == 0:
            raise ValueError(f"surface_distance: expected {name} [P, 3] with P >= 1, got shape {np.shape(array)}")
    if len(normals) != len(points) or len(reference_normals) != len(reference_points):
        raise ValueError(f"surface_distance: expected one normal per point, got {len(points)} points with "
                         f"{len(normals)} normals and {len(reference_points)} reference points with "
                         f"{len(reference_normals)} normals")
    if not threshold > 0:
        raise ValueError(f"surface_distance: threshold must be positive, got {threshold!r}")
    from scipy.spatial import cKDTree

    to_reference, nearest_in_reference = cKDTree(reference_points).query(points)  # [P], [P]
    to_points, nearest_in_points = cKDTree(points).query(reference_points)  # [Q], [Q]
    cos_forward = np.abs((normals * reference_normals[nearest_in_reference]).sum(1))
    cos_backward = np.abs((reference_normals * normals[nearest_in_points]).sum(1))
    precision = float((to_reference <= threshold).mean())
    recall = float((to_points <= threshold).mean())
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return SurfaceDistance(chamfer=float((to_reference.mean() + to_points.mean()) / 2),
                           normal_consistency=float((cos_forward.mean() + cos_backward.mean()) / 2),
                           fscore=fscore, precision=precision, recall=recall)


def oriented_point_sdf(points: np.ndarray, normals: np.ndarray, queries: np.ndarray, *, neighbours: int = 8) -> np.ndarray:
    """Approximate signed distances at `queries [Q, 3]` to the surface sampled by `points [P, 3]` with unit
    outward `normals [P, 3]`: the distance to the nearest sample, negative inside. The sign is the
    distance-weighted vote of the `neighbours` nearest samples' `dot(n, q - p)`, which one noisy normal
    cannot flip. The magnitude overestimates the true distance by at most the sampling gap near the
    surface. -> `[Q]`, float64.
    """
    from scipy.spatial import cKDTree

    points, normals, queries = (np.asarray(a, dtype=np.float64) for a in (points, normals, queries))
    for name, array in (("points", points), ("normals", normals), ("queries", queries)):
        if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
            raise ValueError(f"oriented_point_sdf: expected {name} [N, 3] with N >= 1, got {array.shape}")
    if normals.shape != points.shape:
        raise ValueError(f"oriented_point_sdf: expected normals {points.shape} like the points, got {normals.shape}")
    k = min(neighbours, points.shape[0])
    distances, index = cKDTree(points).query(queries, k=k)  # [Q, k]
    distances, index = distances.reshape(len(queries), k), index.reshape(len(queries), k)
    offsets = queries[:, None, :] - points[index]  # [Q, k, 3]
    side = np.einsum("qkd,qkd->qk", offsets, normals[index])  # [Q, k]
    vote = (side / np.maximum(distances, 1e-12)).sum(1) if k > 1 else side[:, 0]
    return np.where(vote < 0, -distances[:, 0], distances[:, 0])
