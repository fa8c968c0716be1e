"""Image-modality figures: a context set drawn as an image (known pixels, the rest mid grey) and the
context / prediction / truth grid of TensorBoard previews and `evaluate/inpaint.py`."""

from __future__ import annotations

import torch
from torch import Tensor

from ...coords import grid_index, points_to_image
from ...figures import as_rgb, tile
from ...metrics import to_unit


def context_image(coords: Tensor, values: Tensor, mask: Tensor, height: int, width: int) -> Tensor:
    """Context points on a `height x width` pixel grid -> images `[B, H, W, C]` in [0, 1].

    `coords [B, M, 2]` are pixel centres of that grid, `values [B, M, C]` in [-1, 1], `mask [B, M]`
    marks the valid points; every other pixel is mid grey (0.5).
    """
    if coords.dim() != 3 or values.shape[:2] != coords.shape[:2] or mask.shape != coords.shape[:2]:
        raise ValueError(f"context_image: expected coords [B, M, 2], values [B, M, C] and mask [B, M], got "
                         f"{tuple(coords.shape)}, {tuple(values.shape)} and {tuple(mask.shape)}")
    batch, channels = values.shape[0], values.shape[-1]
    index = grid_index(coords, (height, width))  # [B, M]
    index = torch.where(mask, index, height * width)  # padding goes to a spare slot, dropped below
    shown = values.new_zeros(batch, height * width + 1, channels)
    shown.scatter_(1, index.unsqueeze(-1).expand(-1, -1, channels), values)
    return points_to_image(to_unit(shown[:, :-1]), height, width)


def completion_grid(known: Tensor, prediction: Tensor, truth: Tensor, *, scale: int = 1, pad: int = 1) -> Tensor:
    """Three rows, context / prediction / truth, one column per image: images `[K, H, W, C]` each in
    [0, 1] -> one RGB image `[3 (sH + pad) - pad, K (sW + pad) - pad, 3]`, each panel upsampled `scale` times."""
    if not known.shape == prediction.shape == truth.shape or known.dim() != 4:
        raise ValueError(f"completion_grid: expected three image batches [K, H, W, C] of one shape, got "
                         f"{tuple(known.shape)}, {tuple(prediction.shape)} and {tuple(truth.shape)}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"completion_grid: expected an integer scale >= 1, got {scale!r}")
    rows = torch.stack([as_rgb(images) for images in (known, prediction, truth)])  # [3, K, H, W, 3]
    if scale > 1:
        rows = rows.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)  # nearest upsampling
    return tile(rows.clamp(0, 1), pad=pad)
