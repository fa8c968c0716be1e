"""What every modality's latent adapter (a `hypersiren.latent.LatentPrior`) shares about the `HyperSiren`
it wraps: its device, latent size, SIREN architecture, native render resolution, decoding, and the
run's own signals for `load_signals`."""

from __future__ import annotations

import torch
from torch import Tensor

from ..params import SirenParams
from ..siren import SirenConfig
from .modality import SPLITS


class ModelAdapter:
    """Base of a modality's latent adapter around `self.model` (a `HyperSiren`) at `self._resolution`."""

    model: torch.nn.Module
    _resolution: int
    modality = None  # the run's `Modality`, when known: `load_signals` without a source reads its data
    sources = "a file or folder"  # what `load_signals` takes as a source, for its error messages

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def latent_dim(self) -> int:
        return self.model.config.latent_dim

    @property
    def siren(self) -> SirenConfig:
        return self.model.config.siren

    @property
    def resolution(self) -> int:
        return self._resolution

    def decode(self, latent: Tensor) -> SirenParams:
        return self.model.decode(latent.to(self.device))

    def _signals_of(self, source: str | None, split: str | None, kind: str) -> Tensor | None:
        """`load_signals`' shared part: the run's own `split` (default "train") when `source` is None;
        None when a source is to be read (checking that no split was asked for with it)."""
        where = f"{type(self).__name__}.load_signals"
        if source is not None:
            if split is not None:
                raise ValueError(f"{where}: split={split!r} selects from the run's own data; with a source "
                                 f"({source}) every {kind} of it is loaded")
            return None
        if self.modality is None:
            raise ValueError(f"{where}: this prior has no data configuration; pass a source ({self.sources})")
        split = split or "train"
        if split not in SPLITS:
            raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.modality.load(split)
