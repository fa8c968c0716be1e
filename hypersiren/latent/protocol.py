"""Priors seen through their latent space: the `LatentPrior` protocol and loading one from a checkpoint.

The latent tools (`hypersiren.latent.sets`, `.space`, `.projector`) only ever call the members of
`LatentPrior`. Each modality provides its adapter (`Modality.latent_prior(model)`, e.g. the image
modality's `ImagePrior`), which says how to encode its signals, decode and render a SIREN and show a
signal as an image; `load_latent_prior` finds it through the checkpoint's stored modality.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ..export import SIREN_KIND
from ..params import SirenParams
from ..prior.training import PriorTrainer, load_prior
from ..runs import load_kind
from ..siren import SirenConfig


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


def load_latent_prior(path: str | os.PathLike, *, device: torch.device | str = "cpu") -> LatentPrior:
    """The `LatentPrior` of a prior's checkpoint: its modality's adapter around the trained model."""
    load_kind(path, PriorTrainer.kind, "load_latent_prior", expected=f"a prior of kind {PriorTrainer.kind!r}", hints={
        SIREN_KIND: "; it is one exported SIREN: load it with hypersiren.load_exported_siren",
        None: "; it has no 'kind' entry (a plain state_dict?): pass the checkpoint.pt of a prior's run folder"})
    loaded = load_prior(path, device=device)
    return loaded.modality.latent_prior(loaded.model)


@torch.no_grad()
def decode_and_render(prior: LatentPrior, latents: Tensor, *, resolution: int | None = None,
                      batch_size: int = 16) -> Tensor:
    """Latents `[B, Z]` -> rendered signals `[B, ...]`, `batch_size` at a time (bounded memory)."""
    if latents.dim() != 2 or latents.shape[-1] != prior.latent_dim:
        raise ValueError(f"decode_and_render: expected latents [B, {prior.latent_dim}], got {tuple(latents.shape)}")
    return torch.cat([prior.render(prior.decode(chunk), resolution=resolution)
                      for chunk in latents.split(batch_size)])
