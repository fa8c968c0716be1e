"""Latents in TensorBoard's embedding projector (`tensorboard --logdir LOGDIR`, tab "Projector")."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from ..figures import as_rgb


def write_projector(logdir: str | os.PathLike, latents: Tensor, *, labels: Sequence[str],
                    thumbnails: Tensor | None = None, tag: str = "latents") -> Path:
    """Write latents `[N, Z]` with one label each and optional thumbnails `[N, H, W, C]` (C = 1 or 3, in
    [0, 1]) as an embedding: `LOGDIR/projector_config.pbtxt` and `LOGDIR/00000/TAG/` (tensors.tsv,
    metadata.tsv, sprite.png). TensorBoard limits the sprite to 8192 x 8192 pixels: keep
    `ceil(sqrt(N)) * H` under that (thumbnails of 32 pixels: up to 65 000 latents)."""
    from torch.utils.tensorboard import SummaryWriter

    if latents.dim() != 2 or latents.shape[0] == 0:
        raise ValueError(f"write_projector: expected latents [N, Z] with N >= 1, got {tuple(latents.shape)}")
    n = latents.shape[0]
    if len(labels) != n:
        raise ValueError(f"write_projector: expected {n} labels, one per latent, got {len(labels)}")
    if thumbnails is not None and (thumbnails.dim() != 4 or thumbnails.shape[0] != n
                                   or thumbnails.shape[-1] not in (1, 3)):
        raise ValueError(f"write_projector: expected thumbnails [{n}, H, W, C] with C = 1 or 3, got "
                         f"{tuple(thumbnails.shape)}")
    images = None if thumbnails is None else as_rgb(thumbnails.detach().float().clamp(0, 1)).permute(0, 3, 1, 2)
    writer = SummaryWriter(str(logdir))
    try:
        writer.add_embedding(latents.detach().cpu(), metadata=[str(label) for label in labels],
                             label_img=None if images is None else images.cpu(), tag=tag)
    finally:
        writer.close()
    return Path(logdir)
