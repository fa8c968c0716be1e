"""The image modality's adapter for the latent tools: `ImagePrior`, a `HyperSiren` image prior seen
through the `hypersiren.latent.LatentPrior` protocol. Signals are images `[B, H, W, C]` in [0, 1].

The model sees values in [-1, 1]; `render` maps back to [0, 1] units without clamping (a SIREN is
unbounded), `to_images` clamps for display.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...coords import grid, image_to_points, points_to_image
from ...metrics import to_signed, to_unit
from ...params import SirenParams
from ...prior.context import fixed_context
from ...prior.adapter import ModelAdapter
from ...prior.model import HyperSiren
from ...prior.types import Context
from .data import load_images


class ImagePrior(ModelAdapter):
    """A `HyperSiren` image prior as a `LatentPrior` (see the module docstring). `modality` (an
    `ImageModality`) gives the run's own data to `load_signals`; without it a source must be passed."""

    sources = "an image file, an .npz/.npy array, a folder or 'faces'"

    def __init__(self, model: HyperSiren, *, resolution: int, modality=None):
        if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
            raise ValueError(f"ImagePrior: resolution must be a positive int, got {resolution!r}")
        if model.config.coord_dim != 2:
            raise ValueError(f"ImagePrior: expected a prior over 2-D coordinates, got coord_dim="
                             f"{model.config.coord_dim}")
        self.model, self._resolution, self.modality = model, resolution, modality

    def encode(self, signals: Tensor, *, context_size: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        channels = self.model.config.value_dim
        if signals.dim() != 4 or signals.shape[-1] != channels:
            raise ValueError(f"ImagePrior.encode: expected images [B, H, W, {channels}] in [0, 1], "
                             f"got {tuple(signals.shape)}")
        coords, values = image_to_points(to_signed(signals.to(self.device)))  # [B, N, 2], [B, N, C]
        if context_size is None:
            mask = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
            context = Context(coords, values, mask)
        else:
            context = fixed_context(coords, values, context_size, generator=generator)
        return self.model.encode(context)

    def query_coords(self, resolution: int | None = None) -> Tensor:
        side = self._resolution if resolution is None else resolution
        return grid((side, side))  # [side^2, 2], row-major pixels

    def to_signals(self, values: Tensor, *, resolution: int | None = None) -> Tensor:
        side = self._resolution if resolution is None else resolution
        return points_to_image(to_unit(values), side, side)  # [B, side, side, C]

    def render(self, params: SirenParams, *, resolution: int | None = None) -> Tensor:
        if len(params.batch_shape) != 1:
            raise ValueError(f"ImagePrior.render: expected SIRENs with batch shape (B,), got "
                             f"{tuple(params.batch_shape)}")
        weight = params.weights[0]
        coords = self.query_coords(resolution).to(device=weight.device, dtype=weight.dtype)
        values = self.model.render(params, coords.expand(params.batch_shape[0], -1, -1))  # [B, N, C]
        return self.to_signals(values, resolution=resolution)

    def to_images(self, signals: Tensor) -> Tensor:
        return signals.clamp(0, 1)

    def load_signals(self, source: str | None = None, *, split: str | None = None) -> Tensor:
        own = self._signals_of(source, split, "image")
        if own is not None:
            return own
        try:
            return load_images(source, self._resolution, self.model.config.value_dim)
        except ValueError as error:
            raise ValueError(f"ImagePrior.load_signals: {error}") from error
