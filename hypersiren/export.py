"""One SIREN as a standalone file: a plain `Siren` state_dict plus the arguments that rebuild the module.

The file is a `torch.save`d dict, readable with `torch.load(path, weights_only=True)` and no
hypersiren code:

    {"kind": "hypersiren.siren",
     "format": 1,                                                               # layout version
     "config": {"in_dim", "out_dim", "hidden_dim", "depth", "w0_first", "w0"},   # Siren(**config)
     "state_dict": {"layers.0.weight": [out, in], "layers.0.bias": [out], ...},
     "meta": {...}}                                                             # free-form, JSON-like

so `Siren(**f["config"]).load_state_dict(f["state_dict"])` rebuilds it; `load_exported_siren` does that
with checks. A state_dict (rather than safetensors) keeps the dependencies as they are and is what
`nn.Module.load_state_dict` takes directly; `weights_only=True` makes loading it safe: a file carrying
pickled Python objects is refused unread.

`format` numbers the layout; a reader refuses a newer one. Files written before it existed (by `export_siren`
or `train/fit_signal.py`, without a "format" entry) have the layout of format 1 and are read as such.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from .params import SirenParams
from .runs import load_kind, save_checkpoint
from .siren import Siren, SirenConfig

SIREN_KIND = "hypersiren.siren"
SIREN_FORMAT = 1  # layout version of an exported SIREN file


def siren_state_dict(params: SirenParams) -> dict[str, torch.Tensor]:
    """The `Siren.state_dict()` of one SIREN given as `SirenParams` with batch shape `()` or `(1,)`."""
    params.validate("siren_state_dict")
    if params.batch_shape not in (torch.Size(()), torch.Size((1,))):
        raise ValueError(f"siren_state_dict: expected the parameters of one SIREN (batch shape () or (1,)), "
                         f"got batch shape {tuple(params.batch_shape)}; index one sample first")
    state = {}
    for i, (w, b) in enumerate(zip(params.weights, params.biases)):
        state[f"layers.{i}.weight"] = w.detach().reshape(w.shape[-2:]).to("cpu", copy=True).contiguous()
        state[f"layers.{i}.bias"] = b.detach().reshape(b.shape[-1:]).to("cpu", copy=True).contiguous()
    return state


def export_siren(params: SirenParams, path: str | os.PathLike, *, config: SirenConfig,
                 meta: dict[str, Any] | None = None) -> None:
    """Write one SIREN (`SirenParams` with batch shape `()` or `(1,)`) as a standalone file (see the module
    docstring). `config` is its architecture (e.g. `HyperSirenConfig.siren`); the layer shapes must match."""
    if not isinstance(config, SirenConfig):
        raise TypeError(f"export_siren: expected config to be a SirenConfig, got {type(config).__name__}")
    if params.layer_shapes != config.layer_shapes:
        raise ValueError(f"export_siren: expected layer shapes {config.layer_shapes} for {config}, "
                         f"got {params.layer_shapes}")
    state = {"kind": SIREN_KIND, "format": SIREN_FORMAT, "config": dataclasses.asdict(config),
             "state_dict": siren_state_dict(params), "meta": dict(meta or {})}
    save_checkpoint(path, state)


def load_exported_siren(path: str | os.PathLike) -> Siren:
    """The plain `Siren` stored by `export_siren` (in eval mode)."""
    state = load_kind(path, SIREN_KIND, "load_exported_siren", expected=f"{SIREN_KIND!r} (written by export_siren)")
    version = state.get("format", 1)  # unversioned files predate the entry and have format 1's layout
    if version not in range(1, SIREN_FORMAT + 1):
        newer = isinstance(version, int) and version > SIREN_FORMAT
        raise ValueError(f"load_exported_siren: {path} has exported-SIREN format {version!r}, this hypersiren reads "
                         f"format {SIREN_FORMAT}" + (" (written by a newer hypersiren: upgrade)" if newer else ""))
    siren = SirenConfig(**state["config"]).build()
    siren.load_state_dict(state["state_dict"])
    return siren.eval()
