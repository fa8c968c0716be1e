"""Few-shot inpainting figures: context | completion (at any size) | truth [| posterior std], one row per image."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ...coords import grid, image_to_points, points_to_image
from ...figures import save_png, tile, upsample_nearest
from ...metrics import to_signed, to_unit
from ...prior.context import fixed_context, prefix_context
from ...prior.model import HyperSiren
from ...prior.refine import RefineConfig, refined_predictor
from ...prior.types import Context
from .figures import context_image
from .modality import ImageModality

MASKS = ("random", "center", "half")


def mask_context(mask: str, k: int, coords: Tensor, values: Tensor, resolution: int,
                 generator: torch.Generator) -> Context:
    """`random`: `k` random pixels; `half`: the top half; `center`: all but a central square hole of half the side."""
    if mask == "random":
        return fixed_context(coords, values, k, generator=generator)
    if mask == "half":
        return prefix_context(coords, values, coords.shape[1] // 2)
    if mask != "center":
        raise ValueError(f"mask_context: mask must be one of {', '.join(MASKS)}, got {mask!r}")
    rows, cols = grid((resolution, resolution), device=coords.device).unbind(-1)
    keep = ~((rows.abs() < 0.5) & (cols.abs() < 0.5))  # outside the central square of half the side
    return Context(coords[:, keep], values[:, keep],
                   torch.ones(coords.shape[0], int(keep.sum()), dtype=torch.bool, device=coords.device))


def inpaint_figure(model: HyperSiren, modality: ImageModality, images: Tensor, out: str | Path, *,
                   mask: str = "random", context: int = 100, size: int = 128, seed: int = 0,
                   refine: RefineConfig = RefineConfig(), uncertainty: bool = False) -> tuple[Path, str]:
    """Complete `images [K, R, R, C]` (in [0, 1], at the prior's resolution R) from a `mask` context and
    write the figure to `out`; returns the path and a description of the panels."""
    resolution = modality.data.resolution
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"inpaint_figure: size must be a positive int, got {size!r}")
    if images.dim() == 4 and images.shape[0] == 0:
        raise ValueError("inpaint_figure: no images to complete")
    if images.dim() != 4 or images.shape[1:3] != (resolution, resolution):
        raise ValueError(f"inpaint_figure: expected images [K, {resolution}, {resolution}, C], got {tuple(images.shape)}")
    if images.shape[-1] != model.config.value_dim:
        raise ValueError(f"inpaint_figure: the prior predicts {model.config.value_dim} channel(s) but the images "
                         f"have {images.shape[-1]}")
    if mask == "random" and not 1 <= context <= resolution * resolution:
        raise ValueError(f"inpaint_figure: --context {context} must be between 1 and the {resolution * resolution} "
                         "pixels of the image")
    if uncertainty and model.config.encoder != "posterior":
        raise ValueError(f"--uncertainty needs a prior with a posterior over its latent (encoder='posterior', "
                         f"presets faces and celeba32); this one has encoder={model.config.encoder!r}")
    device = next(model.parameters()).device
    images = images.to(device)
    coords, values = image_to_points(to_signed(images))
    known = mask_context(mask, context, coords, values, resolution, torch.Generator().manual_seed(seed))
    fine = grid((size, size), device=device).expand(images.shape[0], -1, -1)
    with torch.no_grad():
        completion = to_unit(refined_predictor(model, refine, modality)(known, fine)).clamp(0, 1)
    panels = [upsample_nearest(context_image(known.coords, known.values, known.mask, resolution, resolution), size),
              points_to_image(completion, size, size), upsample_nearest(images, size)]
    names = f"context | completion ({size}x{size}) | truth"
    if uncertainty:
        with torch.no_grad():
            std = points_to_image(model.uncertainty(known, fine) / 2, size, size)  # [0, 1] units
        top = std.max().item()
        panels.append((std / max(top, 1e-12)).clamp(0, 1))
        names += f" | posterior std (white = {top:.3f} in [0, 1] units)"
    return save_png(out, tile(torch.stack(panels, 1))), names  # one row per image
