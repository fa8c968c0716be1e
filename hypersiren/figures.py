"""Figures from image batches: upsampling for display, tiling into a grid, writing a PNG, and
drawing a context set as an image (known pixels, the rest mid grey).

Images are channels last, `[..., H, W, C]` with C = 1 or 3, values in [0, 1] (clamped on writing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .coords import grid_index, points_to_image


def upsample_nearest(images: Tensor, size: int) -> Tensor:
    """`[B, H, W, C]` -> `[B, size, size, C]`, nearest neighbour (shows the pixels as they are)."""
    if images.dim() != 4:
        raise ValueError(f"upsample_nearest: expected images [B, H, W, C], got {tuple(images.shape)}")
    if images.shape[1:3] == (size, size):
        return images
    return F.interpolate(images.permute(0, 3, 1, 2), size=(size, size), mode="nearest").permute(0, 2, 3, 1)


def tile(images: Tensor, *, pad: int = 0) -> Tensor:
    """A grid of images `[R, K, H, W, C]` (R rows of K) -> one image `[R*(H+pad)-pad, K*(W+pad)-pad, C]`.

    The `pad` pixels between panels are white.
    """
    if images.dim() != 5:
        raise ValueError(f"tile: expected images [rows, cols, H, W, C], got {tuple(images.shape)}")
    if pad:
        images = F.pad(images, (0, 0, 0, pad, 0, pad), value=1.0)  # [R, K, H+pad, W+pad, C]
    rows, cols, h, w, c = images.shape
    out = images.permute(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    return out[: out.shape[0] - pad, : out.shape[1] - pad]


def save_png(path: str | os.PathLike, image: Tensor) -> Path:
    """Write one image `[H, W, C]` (C = 1 or 3, values in [0, 1], clamped) as an 8-bit PNG."""
    from PIL import Image

    if image.dim() != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"save_png: expected an image [H, W, C] with C = 1 or 3, got {tuple(image.shape)}")
    pixels = (image.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def as_rgb(images: Tensor) -> Tensor:
    """`[..., C]` with C = 1 or 3 -> `[..., 3]` (grey repeated)."""
    if images.shape[-1] not in (1, 3):
        raise ValueError(f"as_rgb: expected 1 or 3 channels last, got {tuple(images.shape)}")
    return images.expand(*images.shape[:-1], 3) if images.shape[-1] == 1 else images



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
    return points_to_image((shown[:, :-1] + 1) / 2, height, width)


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
