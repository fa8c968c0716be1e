"""Shape-modality figures: rows of context points | completed surface | truth, rendered without OpenGL
(`geometry.render_mesh` / `render_points`), for TensorBoard previews, `evaluate/complete_shape.py` and
the README. Every panel uses the same orthographic camera, so the columns line up."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...geometry import Mesh, render_mesh, render_points

VIEW = {"azimuths": (30.0,), "elevation": 15.0, "up": "y"}  # one view per panel unless a figure asks for more


def completion_row(context: np.ndarray, mesh: Mesh, truth: np.ndarray, *, size: int = 128,
                   azimuths=VIEW["azimuths"], up: str = VIEW["up"]) -> np.ndarray:
    """Context points `[M, 3]`, the completed mesh and the true points `[P, 3]`, side by side (each with
    one panel per azimuth): `[size, 3 * size * len(azimuths), 3]` in [0, 1]."""
    view = {"size": size, "azimuths": tuple(azimuths), "elevation": VIEW["elevation"], "up": up}
    panels = [render_points(context, radius=max(1, size // 96), **view), render_mesh(mesh, **view),
              render_points(truth, radius=0, colour=(0.35, 0.38, 0.45), **view)]
    return np.concatenate(panels, axis=1)


def completion_figure(rows: list[np.ndarray], *, pad: int = 2) -> Tensor:
    """Rows from `completion_row` stacked with white gaps -> an image `[H, W, 3]` in [0, 1]."""
    if not rows:
        raise ValueError("completion_figure: no rows to draw")
    gap = np.ones((pad, rows[0].shape[1], 3), dtype=np.float32)
    stacked = [part for row in rows for part in (row, gap)][:-1]
    return torch.from_numpy(np.concatenate(stacked, axis=0).astype(np.float32))
