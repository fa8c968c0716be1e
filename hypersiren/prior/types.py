"""The records every prior exchanges: a context set (`Context`) and a prediction (`Prediction`).

A context is what is known about each signal: points `coords [B, M, D]` with their `values [B, M, C]`
(model units), optionally surface `normals [B, M, D]` (oriented point clouds), and a `mask [B, M]`
that is False for padding, so that samples with different numbers of points share one tensor.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..params import SirenParams


class Context(NamedTuple):
    """A set of known points per sample; `mask[b, m]` is False for padding."""

    coords: Tensor  # [B, M, D]
    values: Tensor  # [B, M, C]
    mask: Tensor  # [B, M] bool
    normals: Tensor | None = None  # [B, M, D] observed gradient directions (surface normals), or None

    def map(self, fn) -> Context:
        """The same context with `fn` applied to every tensor (e.g. `lambda t: t.to(device)`)."""
        return Context(fn(self.coords), fn(self.values), fn(self.mask),
                       None if self.normals is None else fn(self.normals))


class Prediction(NamedTuple):
    values: Tensor  # [B, N, C] at the query coordinates
    params: SirenParams  # per-sample SIREN weights
    latent: Tensor  # [B, Z]


def check_context(context: Context, where: str) -> None:
    """Raise unless `context` is coords `[B, M, D]`, values `[B, M, C]`, a bool mask `[B, M]` (and normals
    `[B, M, D]` when given) with a valid point in every sample; `where` names the caller in the message."""
    coords, values, mask, normals = context
    if coords.dim() != 3 or values.dim() != 3 or coords.shape[:2] != values.shape[:2]:
        raise ValueError(
            f"{where}: expected context coords [B, M, D] and values [B, M, C] with the same B, M, "
            f"got {tuple(coords.shape)} and {tuple(values.shape)}"
        )
    if mask.shape != coords.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"{where}: expected a bool mask {tuple(coords.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    if normals is not None and normals.shape != coords.shape:
        raise ValueError(f"{where}: expected context normals {tuple(coords.shape)} like the coords, "
                         f"got {tuple(normals.shape)}")
    if not mask.any(1).all():
        empty = (~mask.any(1)).nonzero()[:, 0].tolist()
        raise ValueError(f"{where}: samples {empty} have no valid context point (mask all False)")


def masked_mean(features: Tensor, mask: Tensor) -> Tensor:
    """Mean of `features [B, M, F]` over the points where `mask [B, M]` is True -> `[B, F]`."""
    weights = mask.unsqueeze(-1).to(features.dtype)  # [B, M, 1]
    return (features * weights).sum(1) / weights.sum(1)
