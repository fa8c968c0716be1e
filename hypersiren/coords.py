"""Coordinate grids and conversions between gridded signals and point sets.

Conventions: every axis spans [-1, 1] endpoint-inclusive (`linspace(-1, 1, side)`), so the first and
last samples sit exactly at -1 and +1. Coordinate `d` indexes spatial axis `d` of the signal in array
order: for an image `[H, W, C]`, coordinate 0 is the row (growing downwards) and coordinate 1 the
column. Points are flattened row-major (the last axis varies fastest), as `Tensor.reshape` does.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange
from torch import Tensor


def grid(
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Coordinates of every sample of a grid of this shape: `[prod(shape), len(shape)]`.

    `grid((H, W))[r * W + c] == (-1 + 2 r / (H - 1), -1 + 2 c / (W - 1))`; an axis of size 1 sits at -1.
    """
    shape = tuple(shape)
    if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
        raise ValueError(f"grid: expected a non-empty shape of positive ints, got {shape!r}")
    axes = [torch.linspace(-1.0, 1.0, side, device=device, dtype=dtype) for side in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1).reshape(-1, len(shape))


def signal_to_points(signal: Tensor, *, spatial_dims: int) -> tuple[Tensor, Tensor]:
    """Split a gridded signal `[B, *S, C]` into `(coords [B, N, D], values [B, N, C])`, `N = prod(S)`.

    `D = spatial_dims = len(S)`; the coordinates are `grid(S)` repeated for every sample.
    """
    if signal.dim() != spatial_dims + 2:
        raise ValueError(
            f"signal_to_points: expected a signal [B, {spatial_dims} spatial axes, C] "
            f"({spatial_dims + 2} dims), got {tuple(signal.shape)}"
        )
    batch, spatial, channels = signal.shape[0], tuple(signal.shape[1:-1]), signal.shape[-1]
    coords = grid(spatial, device=signal.device, dtype=_float_dtype(signal))
    values = signal.reshape(batch, -1, channels)
    return coords.expand(batch, -1, -1), values


def points_to_signal(values: Tensor, shape: Sequence[int]) -> Tensor:
    """Inverse of `signal_to_points` for the values: `[B, N, C]` -> `[B, *shape, C]`."""
    shape = tuple(shape)
    n = 1
    for s in shape:
        n *= s
    if values.dim() != 3 or values.shape[1] != n:
        raise ValueError(
            f"points_to_signal: expected values [B, {n}, C] for a grid of shape {shape}, got {tuple(values.shape)}"
        )
    return values.reshape(values.shape[0], *shape, values.shape[-1])


def image_to_points(images: Tensor) -> tuple[Tensor, Tensor]:
    """Images `[B, H, W, C]` -> `(coords [B, H*W, 2], values [B, H*W, C])` (coord 0 = row)."""
    if images.dim() != 4:
        raise ValueError(f"image_to_points: expected images [B, H, W, C], got {tuple(images.shape)}")
    return signal_to_points(images, spatial_dims=2)


def points_to_image(values: Tensor, height: int, width: int) -> Tensor:
    """Values `[B, H*W, C]` in row-major pixel order -> images `[B, H, W, C]`."""
    return points_to_signal(values, (height, width))


def channels_last(images: Tensor) -> Tensor:
    """`[B, C, H, W]` (torchvision layout) -> `[B, H, W, C]`."""
    return rearrange(images, "b c h w -> b h w c")


def channels_first(images: Tensor) -> Tensor:
    """`[B, H, W, C]` -> `[B, C, H, W]` (torchvision layout)."""
    return rearrange(images, "b h w c -> b c h w")


def _float_dtype(t: Tensor) -> torch.dtype:
    return t.dtype if t.is_floating_point() else torch.get_default_dtype()


def grid_index(coords: Tensor, shape: Sequence[int]) -> Tensor:
    """Flat row-major index into `grid(shape)` of coordinates that lie on that grid: `[..., D]` -> `[...]`."""
    shape = tuple(shape)
    if coords.shape[-1] != len(shape):
        raise ValueError(f"grid_index: expected coords [..., {len(shape)}] for a grid of shape {shape}, got {tuple(coords.shape)}")
    index = torch.zeros(coords.shape[:-1], dtype=torch.long, device=coords.device)
    for d, side in enumerate(shape):
        index = index * side + ((coords[..., d] + 1) / 2 * (side - 1)).round().long()
    return index
