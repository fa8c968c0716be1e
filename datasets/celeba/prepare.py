"""Turn CelebA's official aligned images into small `.npz` arrays, one per split, or into folders of `.npy`
shards for training on images left on disk.

    python datasets/celeba/prepare.py --root /path/to/celeba --resolution 32 --out data/celeba32
    python datasets/celeba/prepare.py --root /path/to/celeba --resolution 128 --shard-size 10000 --out data/celeba128

With `--shard-size N` each split becomes a folder `OUT/celeba{R}_{split}/` of `part-00000.npy`, ... of at
most N images each, written a shard at a time (memory holds one shard, never a split): the format
`--data OUT/celeba{R}_train --set data.stream=true` trains on without loading it.

`--root` holds `img_align_celeba/` (the 202,599 aligned 178x218 JPEGs) and `list_eval_partition.txt`.
Each image is centre-cropped to a square and resized with an antialiased bilinear filter, then
stored as uint8. Writes `OUT/celeba{R}_{split}.npz` with the key `images` ([N, R, R, 3]), which
`train/train_prior.py --data` and `evaluate/eval_prior.py --data` read directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hypersiren.io import load_celeba, square_resize, stream_collection


def main(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in args.splits:
        if args.shard_size is not None:
            folder = out / f"celeba{args.resolution}_{split}"
            folder.mkdir(exist_ok=True)
            count = 0
            for index, part in enumerate(stream_collection(args.root, args.resolution, chunk=args.shard_size,
                                                           limit=args.limit, split=split)):
                np.save(folder / f"part-{index:05d}.npy", (part.numpy() * 255).round().astype(np.uint8))
                count += len(part)
            print(f"{split}: {count} images -> {folder} ({index + 1} shards)")
            written.append(folder)
            continue
        images = square_resize(load_celeba(args.root, split, args.limit), args.resolution)
        array = (images.numpy() * 255).round().astype(np.uint8)
        path = out / f"celeba{args.resolution}_{split}.npz"
        np.savez_compressed(path, images=array)
        print(f"{split}: {array.shape[0]} images -> {path}")
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with img_align_celeba/ and list_eval_partition.txt")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], choices=["train", "val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="at most N images per split")
    parser.add_argument("--shard-size", type=int, default=None,
                        help="write each split as a folder of .npy shards of at most N images (streamed)")
    parser.add_argument("--out", required=True)
    main(parser.parse_args())
