"""Image collections as a modality's data: the typed configuration and its loading.

Stored units: images `[N, H, W, C]` (C = 1 or 3) in [0, 1], centre-cropped to a square and resized to
`resolution` (`hypersiren.io.square_resize`); the models see pixel centres in [-1, 1]^2 and values in
[-1, 1] (`hypersiren.metrics.to_signed`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...coords import image_to_points
from ...io import IMAGE_SUFFIXES, load_collection, read_pixels, square_resize, stream_collection
from ...metrics import to_signed
from ...prior.modality import START_CHUNK, DataConfig, split_signals
from ...prior.pca import PPCA, streamed_probabilistic_pca


@dataclass(frozen=True)
class ImageData(DataConfig):
    """An image collection: `source` is `faces` (scikit-image's 100 packaged faces), an `.npz`/`.npy` array
    of uint8 `[N, H, W, C]` images (key `images`), a folder of `.npy` shards of such arrays, a CelebA root
    or a folder of images."""

    source: str = "faces"
    resolution: int = 32  # side of the square images the prior is trained on

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.resolution, int) or isinstance(self.resolution, bool) or self.resolution < 1:
            raise ValueError(f"ImageData: resolution must be a positive int, got {self.resolution!r}")


def load_split(data: ImageData, split: str) -> Tensor:
    """The `train`, `heldout` or `all` images of a configured collection, `[N, R, R, C]` in [0, 1]."""
    images = square_resize(load_collection(data.source, limit=data.limit), data.resolution)
    return split_signals(images, data.holdout, split)


def load_images(source: str | os.PathLike, resolution: int, channels: int) -> Tensor:
    """Every image of `source` (one image file, an array file, a folder, a CelebA root or `faces`) at
    `resolution`, converted to `channels` (colour -> grey by the channel mean): `[N, R, R, C]` in [0, 1]."""
    if Path(source).suffix.lower() in IMAGE_SUFFIXES:
        array = read_pixels(source, where="load_images")[None]  # [1, H, W, 3]
    else:
        array = load_collection(source)
    images = square_resize(array, resolution)
    if images.shape[-1] == 3 and channels == 1:
        images = images.mean(-1, keepdim=True)
    if images.shape[-1] != channels:
        raise ValueError(f"load_images: the prior models {channels} channel(s) but {source} has {images.shape[-1]}")
    return images


def stream_start(source: str | os.PathLike, resolution: int, latent_dim: int, *, chunk: int = START_CHUNK,
                 limit: int | None = None, holdout: int = 0, method: str = "auto",
                 device: torch.device | str = "cpu") -> PPCA:
    """A basis prior's start for a collection too large to hold: the probabilistic PCA (`latent_dim`
    components) of its training images at `resolution`, the first `limit` less the last `holdout` as
    `ImageData` takes them, streamed from disk `chunk` images at a time (`io.stream_collection`) with the
    moments on `device`. In model units, as `PriorTrainer` computes it from the same images: values in
    [-1, 1] at the pixel centres in `image_to_points`' order (mean `[R R, C]`, basis `[R R, C, Z]`), for
    `BasisHyperNetwork.fit_start`. Within an initialised `torch.distributed` group each process streams its
    share and every process gets the PPCA of all. `method`: as `streamed_probabilistic_pca` takes it ("auto":
    a dense or randomized eigensolver on the scatter up to `SKETCH_LIMIT` values per image, 64x64 RGB
    included; beyond, 128x128 RGB say, the sketch, which reads the images `1 + 6` times)."""
    import torch.distributed as dist

    joined = dist.is_available() and dist.is_initialized()
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if joined else (0, 1)

    def chunks() -> Iterator[Tensor]:  # this process's share, read afresh at each call: [n, R R, C]
        images = stream_collection(source, resolution, chunk=chunk, limit=limit, holdout=holdout, rank=rank,
                                   world_size=world_size)
        return (image_to_points(to_signed(part.to(device)))[1] for part in images)

    return streamed_probabilistic_pca(chunks, latent_dim, method=method)
