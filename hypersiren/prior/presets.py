"""Named recipes for priors: a `Preset` bundles a modality, its typed data configuration, a model config
and a `TrainConfig`. Modalities register theirs (`register_presets`); `train/train_prior.py --preset NAME`
picks one. The model config's type chooses the model (`HyperSirenConfig`: a HyperSiren prior,
`CNPConfig`: a Conditional Neural Process); coordinate and value dimensions follow the data.
"""

from __future__ import annotations

from typing import NamedTuple

from .cnp import CNPConfig
from .modality import DataConfig
from .model import HyperSirenConfig
from .training import TrainConfig


class Preset(NamedTuple):
    modality: str  # a registered modality's name
    data: DataConfig  # the modality's data config: its default source and settings
    model: HyperSirenConfig | CNPConfig
    train: TrainConfig


PRESETS: dict[str, Preset] = {}


def register_presets(presets: dict[str, Preset]) -> None:
    """Add a modality's named presets; a name may be registered only once."""
    for name, preset in presets.items():
        if not isinstance(preset, Preset):
            raise TypeError(f"register_presets: {name!r} must be a Preset, got {type(preset).__name__}")
        if name in PRESETS and PRESETS[name] != preset:
            raise ValueError(f"register_presets: a preset named {name!r} is already registered")
        PRESETS[name] = preset


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        import difflib

        match = difflib.get_close_matches(name, list(PRESETS), n=1, cutoff=0.5)
        hint = f"; did you mean {match[0]!r}?" if match else f"; known: {', '.join(sorted(PRESETS))}"
        raise ValueError(f"unknown preset {name!r}{hint}")
    return PRESETS[name]
