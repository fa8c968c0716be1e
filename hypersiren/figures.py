"""Pictures from image batches, for every modality's figures: upsampling for display, tiling into a
grid, grey to RGB, writing a PNG.

Images are channels last, `[..., H, W, C]` with C = 1 or 3, values in [0, 1] (clamped on writing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch import Tensor



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
