"""Image collections as a modality's data: the typed configuration and its loading.

Stored units: images `[N, H, W, C]` (C = 1 or 3) in [0, 1], centre-cropped to a square and resized to
`resolution` (`hypersiren.io.square_resize`); the models see pixel centres in [-1, 1]^2 and values in
[-1, 1] (`hypersiren.metrics.to_signed`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...coords import image_to_points
from ...io import IMAGE_SUFFIXES, collection_rows, load_collection, read_pixels, square_resize, stream_collection
from ...metrics import to_signed
from ...prior.modality import START_CHUNK, DataConfig, split_signals
from ...prior.pca import PPCA, streamed_probabilistic_pca


@dataclass(frozen=True)
class ImageData(DataConfig):
    """An image collection: `source` is `faces` (scikit-image's 100 packaged faces), an `.npz`/`.npy` array
    of uint8 `[N, H, W, C]` images (key `images`), a folder of `.npy` shards of such arrays, a CelebA root
    or a folder of images. `stream`: leave the collection on disk (not an `.npz`): training reads each
    step's images from the files (memory-mapped `.npy` shards are fast; image files are decoded per batch)
    and the basis start streams them, so memory holds one batch or chunk, not the collection."""

    source: str = "faces"
    resolution: int = 32  # side of the square images the prior is trained on
    # keep the collection on disk (`StoredImages`): each step reads its batch, the start streams the images
    stream: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.resolution, int) or isinstance(self.resolution, bool) or self.resolution < 1:
            raise ValueError(f"ImageData: resolution must be a positive int, got {self.resolution!r}")
        if not isinstance(self.stream, bool):
            raise ValueError(f"ImageData: stream must be true or false, got {self.stream!r}")


def load_split(data: ImageData, split: str) -> Tensor | StoredImages:
    """The `train`, `heldout` or `all` images of a configured collection, `[N, R, R, C]` in [0, 1]. With
    `data.stream` the `train` and `all` images stay on disk (`StoredImages`) and the held-out ones, which
    evaluation needs whole, are read into memory; that needs a `holdout` (else "heldout" would be all)."""
    if not data.stream:
        images = square_resize(load_collection(data.source, limit=data.limit), data.resolution)
        return split_signals(images, data.holdout, split)
    stored = StoredImages(data.source, data.resolution)
    count = min(len(stored), data.limit or math.inf)
    split_signals(torch.empty(count, 0), data.holdout, split)  # the split's checks, on the count alone
    if split == "heldout" and not data.holdout:
        raise ValueError(f"ImageData(stream=True): the held-out images are read into memory to evaluate on them, "
                         f"and with holdout=0 they would be all {count} of {data.source}; set data.holdout (e.g. "
                         "--holdout 500) or evaluate on other images (eval_prior.py --data)")
    rows = {"train": range(count - data.holdout), "heldout": range(count - data.holdout, count), "all": range(count)}
    images = stored.part(rows[split])
    return images[:] if split == "heldout" else images


class StoredImages:
    """Images of a collection left on disk: rows `rows` of `source` (as `io.collection_rows` reads it:
    memory-mapped `.npy` arrays or shards, image files, a CelebA root), resized to `resolution` when read.
    `ImageData(stream=True)` trains on these, holding one batch or chunk of images at a time.

    `images[i]`, `images[a:b]` and `images[index]` (a tensor or list of ints) read those images: float32
    `[n, R, R, C]` (`[R, R, C]` for an int) in [0, 1] on `device`; `chunks` streams a range of them; `shape`
    is the collection's; `to(device)` is the same images read onto `device` (they stay on disk). A signal is
    read with `square_resize`, exactly as `load_split` reads it into memory."""

    def __init__(self, source: str | os.PathLike, resolution: int, rows: range | None = None, *,
                 device: torch.device | str = "cpu"):
        self.source, self.resolution, self.device = str(source), resolution, torch.device(device)
        count, self._read = collection_rows(source)
        self.rows = range(count) if rows is None else rows
        if len(self.rows) == 0 or self.rows.step != 1 or self.rows.start < 0 or self.rows.stop > count:
            raise ValueError(f"StoredImages: rows {self.rows} of the {count} images of {source}")
        first = self._read(slice(self.rows.start, self.rows.start + 1))
        if first.ndim != 4 or first.shape[-1] not in (1, 3):
            raise ValueError(f"StoredImages: expected images [N, H, W, C] with C = 1 or 3 in {source}, got "
                             f"{tuple(first.shape)} per row")
        self.shape = torch.Size((len(self.rows), resolution, resolution, first.shape[-1]))

    def __len__(self) -> int:
        return len(self.rows)

    def dim(self) -> int:
        return 4

    def to(self, device: torch.device | str) -> StoredImages:
        moved = copy.copy(self)
        moved.device = torch.device(device)
        return moved

    def part(self, rows: range) -> StoredImages:
        """The images at the consecutive positions `rows` of these, still on disk."""
        picked = copy.copy(self)
        picked.rows = self.rows[rows.start : rows.stop]
        picked.shape = torch.Size((len(picked.rows), *self.shape[1:]))
        return picked

    def __getitem__(self, key) -> Tensor:
        if isinstance(key, slice):
            picked = self.rows[key]
            if picked.step == 1:
                return self._consecutive(picked.start, picked.stop)
            key = list(picked)
        if isinstance(key, int):
            return self[[key]][0]
        positions = torch.as_tensor(key).reshape(-1).tolist()
        if not all(-len(self) <= p < len(self) for p in positions):
            raise IndexError(f"StoredImages: an index out of the {len(self)} images")
        rows = [self.rows[p] for p in positions]
        if not rows:
            return torch.empty(0, *self.shape[1:], device=self.device)
        return square_resize(self._read(rows), self.resolution).to(self.device)

    def _consecutive(self, start: int, stop: int) -> Tensor:
        if stop <= start:
            return torch.empty(0, *self.shape[1:], device=self.device)
        return square_resize(self._read(slice(start, stop)), self.resolution).to(self.device)

    def chunks(self, rows: slice = slice(None), chunk: int = START_CHUNK) -> Iterator[Tensor]:
        """The images `rows` (positions in this collection), `chunk` at a time."""
        picked = self.rows[rows]
        return (self._consecutive(first, min(first + chunk, picked.stop)) for first in range(picked.start, picked.stop, chunk))

    def mean_image(self) -> Tensor:
        """The mean image `[1, R, R, C]`, summed a chunk at a time in float64."""
        total = torch.zeros(self.shape[1:], dtype=torch.float64, device=self.device)
        for part in self.chunks():
            total += part.double().sum(0)
        return (total / len(self)).float()[None]

    def __repr__(self) -> str:
        return f"StoredImages({self.source!r}, resolution={self.resolution}, rows={self.rows}, device={self.device})"


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
