"""How close two oriented point sets are: Chamfer-L1, normal consistency and F-score.

Both sets are usually samples of surfaces (`sample_surface` on a reconstructed mesh, and a reference
scan). Nearest neighbours come from scipy's k-d tree. Distances are in the points' own units.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

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
    outward `normals [P, 3]`: the distance to the nearest sample, negative where the samples' winding
    number (`winding_number`) exceeds 1/2 in magnitude (so a cloud whose normals all point inwards,
    winding number -1 inside, gives the same field). The winding number sums every sample's dipole, so a
    few flipped normals (scans often have some) cannot flip the sign far from them, and the field has no
    spurious sign changes, hence no spurious surfaces when meshed. The magnitude overestimates the true
    distance by at most the sampling gap near the surface. -> `[Q]`, float64.
    """
    points, normals, queries = _check_oriented("oriented_point_sdf", points, normals, queries)
    from scipy.spatial import cKDTree

    distances = cKDTree(points).query(queries)[0]
    inside = np.abs(winding_number(points, normals, queries, neighbours=neighbours)) > 0.5
    return np.where(inside, -distances, distances)


def winding_number(points: np.ndarray, normals: np.ndarray, queries: np.ndarray, *, neighbours: int = 8,
                   chunk: int = 1024) -> np.ndarray:
    """The generalised winding number of an oriented point cloud at `queries [Q, 3]` (Barill et al. 2018):
    `sum_i a_i n_i . (p_i - q) / (4 pi |p_i - q|^3)`, about 1 inside a closed surface and 0 outside.
    Each sample's area `a_i` is `pi r_i^2 / neighbours` with `r_i` the distance to its `neighbours`-th
    nearest sample; the kernel's distance is floored at `r_i` so samples next to a query do not dominate.
    -> `[Q]`, float64 (summed in float32 with torch, `chunk` queries at a time).
    """
    points, normals, queries = _check_oriented("winding_number", points, normals, queries)
    from scipy.spatial import cKDTree

    k = min(neighbours + 1, len(points))  # the first neighbour is the sample itself
    radius = cKDTree(points).query(points, k=k)[0].reshape(len(points), k)[:, -1]
    radius = np.maximum(radius, 1e-6)
    area = torch.as_tensor(np.pi * radius ** 2 / max(k - 1, 1), dtype=torch.float32)
    floor = torch.as_tensor(radius, dtype=torch.float32)
    p = torch.as_tensor(points, dtype=torch.float32)
    n = torch.as_tensor(normals, dtype=torch.float32)
    weight = area / (4 * np.pi)
    along = (p * n).sum(1)  # n_i . p_i
    out = []
    for q in torch.as_tensor(queries, dtype=torch.float32).split(chunk):
        squared = ((q * q).sum(1, keepdim=True) + (p * p).sum(1) - 2 * q @ p.T).clamp_min(0)  # [q, P]
        cube = torch.maximum(squared.sqrt(), floor) ** 3
        out.append(((along - q @ n.T) * weight / cube).sum(1))  # n_i . (p_i - q)
    return torch.cat(out).double().numpy()


def orient_normals(points: np.ndarray, normals: np.ndarray, *, neighbours: int = 10) -> np.ndarray:
    """Unit normals `[P, 3]` of a point cloud made consistent: each flipped or kept so that neighbours agree
    and every connected part of the cloud points outwards. -> `[P, 3]`, float64.

    Mesh files often have faces of mixed winding (about half of some ModelNet40 shapes' normals point
    inwards), which makes signed fields from their normals wrong. The orientation spreads along a minimum
    spanning tree of the `neighbours`-nearest-neighbour graph (Hoppe et al. 1992) whose edge cost,
    `1 - |n_i . n_j| + |n_i . u_ij|` (u_ij the unit step between the points), prefers neighbours on the same
    sheet over neighbours across a thin part; each part (connected component) then faces outwards: its
    `sum_i n_i . (p_i - centroid)`, three times its enclosed volume for a closed surface, is made positive.
    Only the signs change.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
    from scipy.spatial import cKDTree

    points, normals, _ = _check_oriented("orient_normals", points, normals, points[:1])
    count = len(points)
    k = min(neighbours, count - 1)
    if k < 1:
        return normals.copy()
    index = cKDTree(points).query(points, k=k + 1)[1][:, 1:]  # [P, k], the first neighbour is the point itself
    i, j = np.repeat(np.arange(count), k), index.ravel()
    step = points[j] - points[i]
    step /= np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-12)
    cost = 1 - np.abs((normals[i] * normals[j]).sum(1)) + np.abs((normals[i] * step).sum(1)) + 1e-9
    graph = coo_matrix((cost, (i, j)), shape=(count, count)).tocsr()
    tree = minimum_spanning_tree(graph.maximum(graph.T))
    parts, label = connected_components(tree, directed=False)
    oriented = normals.copy()
    for part in range(parts):
        members = np.flatnonzero(label == part)
        order, parent = breadth_first_order(tree, members[0], directed=False, return_predecessors=True)
        for node in order[1:]:  # parents come first in breadth-first order
            if oriented[node] @ oriented[parent[node]] < 0:
                oriented[node] = -oriented[node]
        if (oriented[members] * (points[members] - points[members].mean(0))).sum() < 0:
            oriented[members] = -oriented[members]
    return oriented


def _check_oriented(where: str, points, normals, queries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points, normals, queries = (np.asarray(a, dtype=np.float64) for a in (points, normals, queries))
    for name, array in (("points", points), ("normals", normals), ("queries", queries)):
        if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
            raise ValueError(f"{where}: expected {name} [N, 3] with N >= 1, got {array.shape}")
    if normals.shape != points.shape:
        raise ValueError(f"{where}: expected normals {points.shape} like the points, got {normals.shape}")
    return points, normals, queries
