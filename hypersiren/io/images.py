"""Image collections for priors: arrays on disk, image folders, CelebA's aligned layout, packaged faces.

Every loader returns `uint8 [N, H, W, C]` (C = 1 or 3). `square_resize` then centre-crops to a
square and resizes with an antialiased bilinear filter (stated here because the reference code's
resize filter changed with its Pillow version: it used NEAREST). For collections larger than memory,
`stream_collection` yields them resized a chunk at a time (memory-mapped `.npy` shards, images decoded
per chunk), each process of several its own share.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._files import error_text, memory_mapped, open_numpy_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
CELEBA_SPLITS = {"train": 0, "val": 1, "test": 2}


def load_image_array(path: str | os.PathLike, key: str = "images") -> np.ndarray:
    """Images from an `.npz` (array under `key`) or `.npy` file: `uint8 [N, H, W, C]`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_image_array: no file at {path}")
    if path.suffix not in (".npz", ".npy"):
        raise ValueError(f"load_image_array: expected a .npz or .npy file, got {path}")
    with open_numpy_file(path, "load_image_array") as loaded:
        if path.suffix == ".npz" and key not in loaded:
            raise ValueError(f"load_image_array: {path} has no array {key!r}; it has {sorted(loaded.files)}")
        images = loaded[key] if path.suffix == ".npz" else loaded
    return _checked(images, f"load_image_array: {path}")


def load_image_folder(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """All images in a folder (sorted by name), which must share one size: `uint8 [N, H, W, C]`."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"load_image_folder: no folder at {path}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"load_image_folder: no {'/'.join(IMAGE_SUFFIXES)} files in {path}")
    images = [read_pixels(f, where="load_image_folder") for f in files]
    return _stacked(images, f"load_image_folder: images in {path}")


def load_celeba(root: str | os.PathLike, split: str = "train", limit: int | None = None) -> np.ndarray:
    """CelebA from its official aligned layout: `root/img_align_celeba/*.jpg` and
    `root/list_eval_partition.txt` (`000001.jpg 0` per line; 0 train, 1 val, 2 test)."""
    files = _celeba_files(Path(root), split, limit)
    images = [read_pixels(file, where="load_celeba") for file in files]
    return _stacked(images, f"load_celeba: images in {files[0].parent}")


def _celeba_files(root: Path, split: str, limit: int | None) -> list[Path]:
    """The image files of a CelebA `split` (the first `limit`), each checked to exist."""
    if split not in CELEBA_SPLITS:
        raise ValueError(f"load_celeba: split must be one of {sorted(CELEBA_SPLITS)}, got {split!r}")
    partition, folder = root / "list_eval_partition.txt", root / "img_align_celeba"
    for needed in (partition, folder):
        if not needed.exists():
            raise FileNotFoundError(
                f"load_celeba: missing {needed}; expected CelebA's aligned layout (img_align_celeba/ and "
                "list_eval_partition.txt) under the root folder"
            )
    names = [name for name, part in _partition(partition) if part == CELEBA_SPLITS[split]][:limit]
    if not names:
        raise ValueError(f"load_celeba: {partition} lists no {split} images")
    files = [folder / name for name in names]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"load_celeba: {file} is listed in {partition.name} but missing")
    return files


def _partition(path: Path) -> list[tuple[str, int]]:
    """`(file name, split)` per line of CelebA's `list_eval_partition.txt`."""
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.split()
        if fields and (len(fields) != 2 or fields[1] not in ("0", "1", "2")):
            raise ValueError(f"load_celeba: line {number} of {path} reads {line!r}; expected a file name and its "
                             "split 0, 1 or 2, as in '000001.jpg 0'")
        if fields:
            rows.append((fields[0], int(fields[1])))
    return rows


def _stacked(images: list[np.ndarray], where: str) -> np.ndarray:
    """Images `[H, W, C]` of one size as `[N, H, W, C]`; ValueError naming `where` when their sizes differ."""
    sizes = {image.shape for image in images}
    if len(sizes) > 1:
        raise ValueError(f"{where} differ in size ({sorted(sizes)[:3]}...); resize them to one size first")
    return np.stack(images)


def load_packaged_faces() -> np.ndarray:
    """The 100 real 25x25 grey faces that ship with scikit-image: `uint8 [100, 25, 25, 1]`.

    `skimage.data.lfw_subset()` holds 200 crops: the first 100 are faces, the rest are not.
    """
    try:
        from skimage.data import lfw_subset
    except ImportError as error:  # pragma: no cover - scikit-image is an install requirement
        raise ImportError("load_packaged_faces needs scikit-image (pip install scikit-image)") from error
    faces = lfw_subset()[:100]  # float in [0, 1], [100, 25, 25]
    return np.round(faces * 255).astype(np.uint8)[..., None]


def square_resize(images: np.ndarray, resolution: int) -> torch.Tensor:
    """Centre-crop to a square and resize (antialiased bilinear): `uint8 [N, H, W, C]` ->
    `float32 [N, resolution, resolution, C]` in [0, 1]."""
    images = _checked(images, "square_resize")
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"square_resize: resolution must be a positive int, got {resolution!r}")
    h, w = images.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = torch.from_numpy(images[:, top : top + side, left : left + side]).permute(0, 3, 1, 2).float() / 255.0
    if side != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def read_pixels(path: str | os.PathLike, *, grey: bool | None = False, where: str = "read_pixels") -> np.ndarray:
    """One image file's pixels: `uint8 [H, W, 3]`, or `[H, W, 1]` with `grey=True`; `grey=None` keeps grey
    files grey (`GREY_MODES`). A file Pillow cannot read is a ValueError naming it (and `where`)."""
    from PIL import Image  # Pillow comes with torchvision and scikit-image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no file at {path}")
    try:
        with Image.open(path) as image:
            one_channel = image.mode in GREY_MODES if grey is None else grey
            pixels = np.array(image.convert("L" if one_channel else "RGB"))  # a writable copy, for torch
    except Exception as error:  # Pillow raises several types for bad files: OSError, SyntaxError, DecompressionBomb
        raise ValueError(f"{where}: cannot read image file {path} as an image ({error_text(error)})") from error
    return pixels[..., None] if one_channel else pixels


def _checked(images: np.ndarray, where: str) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{where}: expected images as a numpy array, got {type(images).__name__}")
    if images.ndim == 3:  # [N, H, W]: grey
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{where}: expected images [N, H, W, C] with C = 1 or 3, got shape {images.shape}")
    if images.dtype != np.uint8:
        hint = " (from floats in [0, 1]: (images * 255).round().astype(np.uint8))" if images.dtype.kind == "f" else ""
        raise ValueError(f"{where}: expected uint8 pixel values, got {images.dtype}{hint}")
    if images.shape[0] == 0:
        raise ValueError(f"{where}: no images")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"{where}: expected images of at least 1x1 pixels, got shape {images.shape}")
    return images


def load_collection(source: str | os.PathLike, *, split: str = "train", limit: int | None = None) -> np.ndarray:
    """Images from any supported source: `faces` (the packaged default), an `.npz`/`.npy` array, a CelebA
    root (holding `list_eval_partition.txt`), a folder of images or a folder of `.npy` shards (as
    `stream_collection` reads them). `uint8 [N, H, W, C]`."""
    if str(source) == "faces":
        return load_packaged_faces()[:limit]
    path = Path(source)
    if path.is_file():
        return load_image_array(path)[:limit]
    if (path / "list_eval_partition.txt").is_file():
        return load_celeba(path, split, limit)
    if path.is_dir() and any(p.suffix.lower() == ".npy" for p in path.iterdir()):
        count, read = _image_rows(path, split, "load_collection")
        return read(slice(0, count if limit is None else min(limit, count)))
    if path.is_dir():
        return load_image_folder(path, limit)
    raise FileNotFoundError(f"no image data at {path}: expected 'faces', an .npz/.npy file, a CelebA root, an image "
                            "folder or a folder of .npy shards")



# --- collections streamed from disk ------------------------------------------------------------------

def stream_collection(source: str | os.PathLike, resolution: int, *, chunk: int = 256, limit: int | None = None,
                      holdout: int = 0, split: str = "train", rank: int = 0, world_size: int = 1
                      ) -> Iterator[torch.Tensor]:
    """The images of `source` at `resolution`, `chunk` at a time, without holding the collection: float32
    `[n, R, R, C]` in [0, 1] (`square_resize` of each chunk), in `load_collection`'s order.

    `source`: an `.npy` array or a folder of `.npy` shards (each uint8 `[N_i, H, W, C]`, all of one size,
    in name order), read memory-mapped and a chunk at a time; a folder of images or a CelebA root (`split`),
    decoded a chunk at a time; or `faces`. Of the first `limit` images less the last `holdout` (as a
    `DataConfig` takes them), process `rank` of `world_size` streams its consecutive share. The files,
    the shards' types and sizes and the share are checked here, before the first chunk, so that every
    process raises alike; an image that cannot be decoded raises when its chunk is read."""
    where = "stream_collection"
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"{where}: chunk must be a positive int, got {chunk!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"{where}: expected 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    count, read = _image_rows(source, split, where)
    count = min(count, count if limit is None else limit) - holdout
    if count < world_size:
        raise ValueError(f"{where}: {source} has {count + holdout} images (limit {limit}), {holdout} held out: too few "
                         f"to give each of {world_size} processes one")
    start, stop = rank * count // world_size, (rank + 1) * count // world_size
    return (square_resize(read(slice(first, min(first + chunk, stop))), resolution)
            for first in range(start, stop, chunk))


def collection_rows(source: str | os.PathLike, *, split: str = "train") -> tuple[int, Callable[[slice], np.ndarray]]:
    """How many images `source` holds and a reader of some of them, `uint8 [n, H, W, C]`, without loading
    the others: `read(slice)` for consecutive rows, `read(rows)` for any rows (a sequence of ints, each
    shard mapped once per read). `.npy` arrays and shards are memory-mapped per read, image files (a
    folder, or a CelebA root's `split`) decoded per read; or `faces`. The files and the shards' sizes are
    checked here."""
    return _image_rows(source, split, "collection_rows")


def _image_rows(source: str | os.PathLike, split: str, where: str) -> tuple[int, Callable[[slice], np.ndarray]]:
    """How many images `source` has and a reader of the rows `slice` of them: `uint8 [n, H, W, C]`."""
    if str(source) == "faces":
        faces = load_packaged_faces()
        return len(faces), lambda rows: faces[rows if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)]
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() != ".npy":
            raise ValueError(f"{where}: cannot stream {path}: expected an .npy array (np.save), a folder of .npy "
                             "shards or of images, or a CelebA root")
        return _shard_rows([path], where)
    if (path / "list_eval_partition.txt").is_file():
        return _image_file_rows(_celeba_files(path, split, None), where)
    if not path.is_dir():
        raise FileNotFoundError(f"{where}: no image data at {path}: expected 'faces', an .npy file, a folder of "
                                ".npy shards or of images, or a CelebA root")
    shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".npy")
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if shards and images:
        raise ValueError(f"{where}: {path} holds both .npy shards and image files; keep one kind per folder")
    if not shards and not images:
        raise ValueError(f"{where}: no .npy shards or {'/'.join(IMAGE_SUFFIXES)} files in {path}")
    return _shard_rows(shards, where) if shards else _image_file_rows(images, where)


def _shard_rows(paths: list[Path], where: str) -> tuple[int, Callable[[slice], np.ndarray]]:
    """Rows of `.npy` shards of one image size; each is checked from its header, and mapped again per read
    (so that the pages a read touched leave this process's resident memory with the mapping)."""
    counts, size = [], None
    for path in paths:
        images = _checked(memory_mapped(path, where, "an .npy array of images"), f"{where}: {path}")
        if size is not None and images.shape[1:] != size[1]:
            raise ValueError(f"{where}: shard {path} holds images of {images.shape[1:]}, but {size[0]} holds "
                             f"{size[1]}; every shard must hold images of one size [H, W, C]")
        size = size or (path, images.shape[1:])
        counts.append(images.shape[0])
    offsets = np.cumsum([0, *counts])

    def read(rows: slice | Sequence[int]) -> np.ndarray:
        if not isinstance(rows, slice):  # any rows: each shard holding some is mapped once
            rows = np.asarray(rows, dtype=np.int64)
            out = np.empty((len(rows), *size[1]), np.uint8)
            for path, first, last in zip(paths, offsets[:-1], offsets[1:]):
                inside = (rows >= first) & (rows < last)
                if inside.any():
                    out[inside] = _checked(memory_mapped(path, where), f"{where}: {path}")[rows[inside] - first]
            return out
        parts = []
        for path, first, last in zip(paths, offsets[:-1], offsets[1:]):
            if first < rows.stop and rows.start < last:
                images = _checked(memory_mapped(path, where), f"{where}: {path}")
                parts.append(np.array(images[max(rows.start - first, 0) : rows.stop - first]))  # a copy, then unmapped
        return np.concatenate(parts)

    return int(offsets[-1]), read


def _image_file_rows(files: list[Path], where: str) -> tuple[int, Callable[[slice], np.ndarray]]:
    """Rows of image files of one size (the first file's, decoded here), decoded per read."""
    size = read_pixels(files[0], where=where).shape

    def read(rows: slice | Sequence[int]) -> np.ndarray:
        chosen = files[rows] if isinstance(rows, slice) else [files[row] for row in rows]
        images = [read_pixels(file, where=where) for file in chosen]
        for file, image in zip(chosen, images):
            if image.shape != size:
                raise ValueError(f"{where}: {file} is {image.shape[1]}x{image.shape[0]} pixels, but {files[0]} is "
                                 f"{size[1]}x{size[0]}; resize the images to one size first")
        return np.stack(images)

    return len(files), read


# --- single images ---------------------------------------------------------------------------------

GREY_MODES = ("1", "L", "LA", "I", "I;16")  # Pillow modes read as one channel when `grey` is None


def unit_image(pixels: np.ndarray, *, size: int | None = None) -> np.ndarray:
    """`uint8 [H, W]` or `[H, W, C]` pixels -> float32 `[H, W, C]` in [0, 1].

    `size` centre-crops to a square and resizes to `size x size` with `square_resize` (the resize the
    priors use), so a single-signal fit and a prior see the same image.
    """
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"unit_image: size must be a positive int or None, got {size!r}")
    pixels = _checked(np.array(pixels)[None], "unit_image")  # [1, H, W, C], a writable copy for torch
    if size is None:
        return pixels[0].astype(np.float32) / 255.0
    return square_resize(pixels, size)[0].numpy()


def load_image(path: str | os.PathLike, *, size: int | None = None, grey: bool | None = None) -> np.ndarray:
    """One image file -> float32 `[H, W, C]` in [0, 1]: `C = 1` for grey files (or `grey=True`), else 3.

    `size`: centre square crop and antialiased bilinear resize, as `unit_image` (and `square_resize`).
    """
    return unit_image(read_pixels(path, grey=grey, where="load_image"), size=size)


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """`[H, W, C]` floats in [0, 1] (clipped), `C = 1` or 3 -> an 8-bit PNG (or any format Pillow
    writes, by suffix); returns the path."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"save_image: expected an image [H, W, C] with C = 1 or 3, got shape {image.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path
