"""Encoded data sets: `LatentSet` (latents with ids and metadata), `encode_dataset`, and its file.

A latents file is either a `.pt` (`torch.save`, read back with `weights_only=True`) or an `.npz`
(plain numpy, `allow_pickle=False`), both holding `kind = "hypersiren.latents"`, `latents [N, Z]`
(float32 as encoded), `ids` (N strings) and `meta` (a JSON object: checkpoint, context size, seed...).
Both round-trip exactly; `meta` comes back as JSON would give it (tuples become lists). A file carrying
pickled Python objects is refused unread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..io import open_numpy_file
from ..runs import atomic_write, load_kind, save_checkpoint
from .protocol import LatentPrior

LATENTS_KIND = "hypersiren.latents"
LATENT_SUFFIXES = (".pt", ".npz")


class LatentSet(NamedTuple):
    latents: Tensor  # [N, Z]
    ids: tuple[str, ...]  # N names of the encoded signals, e.g. "train/12"
    meta: dict[str, Any]  # JSON-like: where the latents came from ({} if nothing to say)

    def validate(self, caller: str = "LatentSet") -> None:
        """Raise ValueError unless latents are `[N, Z]` floats with N ids of type str and JSON-like meta."""
        if self.latents.dim() != 2 or not self.latents.is_floating_point() or self.latents.shape[0] == 0:
            raise ValueError(f"{caller}: expected latents [N, Z] of floats with N >= 1, got "
                             f"{self.latents.dtype} {tuple(self.latents.shape)}")
        if len(self.ids) != self.latents.shape[0] or not all(isinstance(i, str) for i in self.ids):
            raise ValueError(f"{caller}: expected {self.latents.shape[0]} string ids, one per latent, got "
                             f"{len(self.ids)}")
        try:
            json.dumps(self.meta)
        except TypeError as error:
            raise ValueError(f"{caller}: expected meta to be JSON-like (str, numbers, lists, dicts), "
                             f"got {error}") from error


@torch.no_grad()
def encode_dataset(prior: LatentPrior, signals: Tensor, *, context_size: int | None = None, batch_size: int = 64,
                   generator: torch.Generator | None = None, ids: Sequence[str] | None = None,
                   meta: dict[str, Any] | None = None) -> LatentSet:
    """Encode signals `[N, ...]`, `batch_size` at a time, from `context_size` random points each (None:
    every point, deterministic). `ids` default to "0" ... "N-1"."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"encode_dataset: batch_size must be a positive int, got {batch_size!r}")
    if signals.dim() < 2 or signals.shape[0] == 0:
        raise ValueError(f"encode_dataset: expected signals [N, ...] with N >= 1, got {tuple(signals.shape)}")
    latents = torch.cat([prior.encode(chunk, context_size=context_size, generator=generator)
                         for chunk in signals.split(batch_size)])  # [N, Z]
    ids = tuple(str(i) for i in range(signals.shape[0])) if ids is None else tuple(ids)
    result = LatentSet(latents, ids, dict(meta or {}))
    result.validate("encode_dataset")
    return result


def save_latents(path: str | os.PathLike, latent_set: LatentSet) -> Path:
    """Write a `.pt` or `.npz` latents file (atomically; see the module docstring)."""
    path = Path(path)
    if path.suffix not in LATENT_SUFFIXES:
        raise ValueError(f"save_latents: expected a path ending in {' or '.join(LATENT_SUFFIXES)}, got {path}")
    latent_set.validate("save_latents")
    latents, ids = latent_set.latents.detach().cpu(), list(latent_set.ids)
    meta = json.loads(json.dumps(latent_set.meta))  # as it will read back
    if path.suffix == ".pt":
        save_checkpoint(path, {"kind": LATENTS_KIND, "latents": latents.clone(), "ids": ids, "meta": meta})
    else:
        arrays = {"kind": np.array(LATENTS_KIND), "latents": latents.numpy(), "ids": np.array(ids, dtype=str),
                  "meta": np.array(json.dumps(meta))}
        atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def load_latents(path: str | os.PathLike) -> LatentSet:
    """Read a latents file written by `save_latents`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_latents: no latents file at {path}; write one with "
                                "`python evaluate/explore.py encode`")
    if path.suffix not in LATENT_SUFFIXES:
        raise ValueError(f"load_latents: expected a {' or '.join(LATENT_SUFFIXES)} file, got {path}")
    if path.suffix == ".pt":
        state = load_kind(path, LATENTS_KIND, "load_latents")
        if not (isinstance(state.get("latents"), Tensor) and isinstance(state.get("ids"), (list, tuple))
                and isinstance(state.get("meta"), dict)):
            raise ValueError(f"load_latents: {path} is of kind {LATENTS_KIND!r} but lacks its latents (a tensor), "
                             "ids (a list) or meta (a dict)")
        result = LatentSet(state["latents"], tuple(state["ids"]), state["meta"])
    else:
        with open_numpy_file(path, "load_latents", "a latents file") as archive:
            arrays = {key: archive[key] for key in archive.files}
        kind = str(arrays["kind"]) if "kind" in arrays else None
        if kind != LATENTS_KIND or not {"latents", "ids", "meta"} <= set(arrays):
            raise ValueError(f"load_latents: {path} is a file of kind {kind!r}, expected {LATENTS_KIND!r}")
        latents, ids = arrays["latents"], arrays["ids"]
        if latents.dtype.name not in ("float16", "float32", "float64") or ids.ndim != 1:  # what torch takes
            raise ValueError(f"load_latents: {path} holds latents {latents.dtype} {latents.shape} and ids "
                             f"{ids.dtype} {ids.shape}, expected latents [N, Z] of floats and N ids")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as error:
            raise ValueError(f"load_latents: {path} holds a meta that is not JSON ({error})") from error
        if not isinstance(meta, dict):
            raise ValueError(f"load_latents: {path} holds a meta that is not a JSON object: {str(arrays['meta'])!r}")
        result = LatentSet(torch.from_numpy(latents), tuple(str(i) for i in ids), meta)
    result.validate(f"load_latents ({path})")
    return result
