"""Priors seen through their latent space: the `LatentPrior` protocol, the image adapter, loading by kind.

The latent tools (`hypersiren.latent.sets`, `.space`, `.projector`) only ever call the members of
`LatentPrior`. A new kind of prior (3-D shapes come next) plugs in with its own adapter class, which
says how to encode its signals, decode and render a SIREN and show a signal as an image, and one
entry in `PRIOR_KINDS` (checkpoint "kind" -> loader); the latent tools stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from ..coords import grid, image_to_points, points_to_image
from ..data import fixed_context, load_collection, square_resize
from ..export import SIREN_KIND
from ..params import SirenParams
from ..prior import Context, HyperSiren
from ..runs import load_checkpoint, read_json
from ..siren import SirenConfig
from ..training import load_prior, run_images

IMAGE_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@runtime_checkable
class LatentPrior(Protocol):
    """What the latent tools need from a prior. Signals are batch first; their layout is the prior's own."""

    @property
    def latent_dim(self) -> int: ...  # Z

    @property
    def siren(self) -> SirenConfig: ...  # architecture of every decoded SIREN (for export)

    @property
    def resolution(self) -> int: ...  # the native render resolution (that of the training signals)

    def encode(self, signals: Tensor, *, context_size: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Signals `[B, ...]` -> latents `[B, Z]`, from `context_size` random points each (None: all points)."""
        ...

    def decode(self, latent: Tensor) -> SirenParams:
        """Latents `[B, Z]` -> one SIREN per latent (batch shape `(B,)`)."""
        ...

    def query_coords(self, resolution: int | None = None) -> Tensor:
        """Where a SIREN is sampled to render a signal at `resolution` (None: the native one): `[N, D]`."""
        ...

    def to_signals(self, values: Tensor, *, resolution: int | None = None) -> Tensor:
        """SIREN outputs `[B, N, C]` at `query_coords(resolution)` -> signals `[B, ...]`."""
        ...

    def render(self, params: SirenParams, *, resolution: int | None = None) -> Tensor:
        """SIRENs (batch `(B,)`) -> signals `[B, ...]`: `to_signals` of their outputs at `query_coords`."""
        ...

    def to_images(self, signals: Tensor) -> Tensor:
        """Signals `[B, ...]` -> pictures of them `[B, H, W, C]` in [0, 1], C = 1 or 3 (figures, thumbnails)."""
        ...

    def load_signals(self, source: str | None = None, *, split: str | None = None) -> Tensor:
        """Signals to encode: the prior's own run data (`split` "train", "heldout" or "all"; default "train")
        when `source` is None, else every signal of `source` (files, folders, named sets)."""
        ...


class ImagePrior:
    """A `HyperSiren` image prior as a `LatentPrior`: signals are images `[B, H, W, C]` in [0, 1].

    The model sees values in [-1, 1] (`images * 2 - 1`); `render` maps back to [0, 1] units without
    clamping (a SIREN is unbounded), `to_images` clamps for display.
    """

    def __init__(self, model: HyperSiren, *, resolution: int, run_config: dict | None = None):
        if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
            raise ValueError(f"ImagePrior: resolution must be a positive int, got {resolution!r}")
        if model.config.coord_dim != 2:
            raise ValueError(f"ImagePrior: expected a prior over 2-D coordinates, got coord_dim="
                             f"{model.config.coord_dim}")
        self.model, self._resolution, self.run_config = model, resolution, run_config

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> ImagePrior:
        """The prior of a `train/train_prior.py` run: its checkpoint and the `config.json` beside it."""
        model, _ = load_prior(path)
        config_path = Path(path).parent / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"ImagePrior.from_checkpoint: {config_path} is missing; the checkpoint's run "
                                    "folder must hold the config.json that train_prior.py wrote")
        run_config = read_json(config_path)
        return cls(model, resolution=run_config["resolution"], run_config=run_config)

    @property
    def latent_dim(self) -> int:
        return self.model.config.latent_dim

    @property
    def siren(self) -> SirenConfig:
        return self.model.config.siren

    @property
    def resolution(self) -> int:
        return self._resolution

    def encode(self, signals: Tensor, *, context_size: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        channels = self.model.config.value_dim
        if signals.dim() != 4 or signals.shape[-1] != channels:
            raise ValueError(f"ImagePrior.encode: expected images [B, H, W, {channels}] in [0, 1], "
                             f"got {tuple(signals.shape)}")
        coords, values = image_to_points(signals * 2 - 1)  # [B, N, 2], [B, N, C]
        if context_size is None:
            mask = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
            context = Context(coords, values, mask)
        else:
            context = fixed_context(coords, values, context_size, generator=generator)
        return self.model.encode(context)

    def decode(self, latent: Tensor) -> SirenParams:
        return self.model.decode(latent)

    def query_coords(self, resolution: int | None = None) -> Tensor:
        side = self._resolution if resolution is None else resolution
        return grid((side, side))  # [side^2, 2], row-major pixels

    def to_signals(self, values: Tensor, *, resolution: int | None = None) -> Tensor:
        side = self._resolution if resolution is None else resolution
        return points_to_image((values + 1) / 2, side, side)  # [-1, 1] -> [0, 1] units, [B, side, side, C]

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
        if source is None:
            if self.run_config is None:
                raise ValueError("ImagePrior.load_signals: this prior has no run config; pass a source "
                                 "(an image file, an .npz/.npy array, a folder or 'faces')")
            train, heldout = run_images(self.run_config, self._resolution)
            parts = {"train": train, "heldout": heldout,
                     "all": torch.cat([train, heldout]) if self.run_config["holdout"] else train}
            split = split or "train"
            if split not in parts:
                raise ValueError(f"ImagePrior.load_signals: split must be one of {sorted(parts)}, got {split!r}")
            return parts[split]
        if split is not None:
            raise ValueError(f"ImagePrior.load_signals: split={split!r} selects from the run's own data; "
                             f"with a source ({source}) every image of it is loaded")
        if Path(source).suffix.lower() in IMAGE_FILE_SUFFIXES:
            from PIL import Image

            with Image.open(source) as image:
                array = np.array(image.convert("RGB"))[None]  # [1, H, W, 3], a writable copy
        else:
            array = load_collection(source)
        images = square_resize(array, self._resolution)
        channels = self.model.config.value_dim
        if images.shape[-1] == 3 and channels == 1:
            images = images.mean(-1, keepdim=True)  # colour -> grey for a grey prior
        if images.shape[-1] != channels:
            raise ValueError(f"ImagePrior.load_signals: the prior models {channels} channel(s) but {source} has "
                             f"{images.shape[-1]}")
        return images


# checkpoint "kind" -> the adapter that loads it; a new prior kind adds its entry here
PRIOR_KINDS: dict[str, Callable[[Path], LatentPrior]] = {
    "hypersiren.prior": ImagePrior.from_checkpoint,
}


def load_latent_prior(path: str | os.PathLike) -> LatentPrior:
    """The `LatentPrior` stored in a checkpoint, chosen by the checkpoint's "kind"."""
    state = load_checkpoint(path)
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in PRIOR_KINDS:
        if kind == SIREN_KIND:
            hint = "; it is one exported SIREN: load it with hypersiren.load_exported_siren"
        elif kind is None:
            hint = "; it has no 'kind' entry (a plain state_dict?): pass the checkpoint.pt of a prior's run folder"
        else:
            hint = ""
        raise ValueError(f"load_latent_prior: {path} is a checkpoint of kind {kind!r}, expected a prior of kind "
                         f"{' or '.join(map(repr, sorted(PRIOR_KINDS)))}{hint}")
    return PRIOR_KINDS[kind](Path(path))


@torch.no_grad()
def decode_and_render(prior: LatentPrior, latents: Tensor, *, resolution: int | None = None,
                      batch_size: int = 16) -> Tensor:
    """Latents `[B, Z]` -> rendered signals `[B, ...]`, `batch_size` at a time (bounded memory)."""
    if latents.dim() != 2 or latents.shape[-1] != prior.latent_dim:
        raise ValueError(f"decode_and_render: expected latents [B, {prior.latent_dim}], got {tuple(latents.shape)}")
    return torch.cat([prior.render(prior.decode(chunk), resolution=resolution)
                      for chunk in latents.split(batch_size)])
