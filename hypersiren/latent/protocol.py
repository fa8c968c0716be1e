"""Priors seen through their latent space: the `LatentPrior` protocol and loading one from a checkpoint.

The latent tools (`hypersiren.latent.sets`, `.space`, `.projector`) only ever call the members of
`LatentPrior`. Each modality provides its adapter (`Modality.latent_prior(model)`, e.g. the image
modality's `ImagePrior`), which says how to encode its signals, decode and render a SIREN and show a
signal as an image; `load_latent_prior` finds it through the checkpoint's stored modality.

Two members are optional (not part of `LatentPrior`), for signals whose pictures say too little:
- `distance(a, b)`: signals `[Q, ...]`, `[R, ...]` -> their distances `[Q, R]`, named by the adapter's
  `distance_name` (default "distance"). Without it, signals are compared by their pictures
  (`signal_distances`: root mean square difference per picture value, named "rmse").
- `export_extras(params, path)`: files to write next to one exported SIREN (batch shape `(1,)`) saved at
  `path`, e.g. a mesh -> `{label: written path}` (`export_extras` here: `{}` without it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..export import SIREN_KIND
from ..params import SirenParams
from ..prior.training import PriorTrainer, load_prior
from ..runs import load_kind
from ..siren import SirenConfig
from .space import euclidean_distances

PICTURE_DISTANCE = "rmse"  # the name of the default distance between signals (see `signal_distances`)


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


class SignalDistances(NamedTuple):
    name: str  # what the distances are, e.g. "rmse" (pictures) or the adapter's `distance_name`
    values: Tensor  # [Q, R] float64 on the CPU


@torch.no_grad()
def signal_distances(prior: LatentPrior, queries: Tensor, references: Tensor) -> SignalDistances:
    """Distances between signals `[Q, ...]` and `[R, ...]`: the adapter's own `distance` when it has one,
    else the root mean square difference of their pictures (`to_images`) per picture value, "rmse".

    Pictures are the default because whether two signals *look* alike is the question for a memorisation
    check, and it does not depend on how the encoder happens to scale its latents."""
    if queries.dim() < 2 or references.dim() < 2 or queries.shape[0] == 0 or references.shape[0] == 0:
        raise ValueError(f"signal_distances: expected signals [Q, ...] and [R, ...] with Q, R >= 1, got "
                         f"{tuple(queries.shape)} and {tuple(references.shape)}")
    distance = getattr(prior, "distance", None)
    if distance is not None:
        values = distance(queries, references).detach().cpu().double()
        if values.shape != (queries.shape[0], references.shape[0]):
            raise ValueError(f"signal_distances: {type(prior).__name__}.distance returned {tuple(values.shape)}, "
                             f"expected [{queries.shape[0]}, {references.shape[0]}]")
        return SignalDistances(getattr(prior, "distance_name", "distance"), values)
    a, b = prior.to_images(queries).cpu(), prior.to_images(references).cpu()
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"signal_distances: the pictures of the two sets differ in size, {tuple(a.shape[1:])} "
                         f"and {tuple(b.shape[1:])}")
    scale = b[0].numel() ** 0.5  # L2 -> root mean square per picture value
    return SignalDistances(PICTURE_DISTANCE, euclidean_distances(a, b) / scale)


def export_extras(prior: LatentPrior, params: SirenParams, path: str | os.PathLike) -> dict[str, str]:
    """What the adapter's optional `export_extras` writes next to an exported SIREN at `path` (`{label:
    path}`), or `{}` when it has none."""
    extras = getattr(prior, "export_extras", None)
    return {} if extras is None else dict(extras(params, Path(path)))
