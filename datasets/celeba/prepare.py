"""Turn CelebA's official aligned images into small `.npz` arrays, one per split.

    python datasets/celeba/prepare.py --root /path/to/celeba --resolution 32 --out data/celeba32

`--root` holds `img_align_celeba/` (the 202,599 aligned 178x218 JPEGs) and `list_eval_partition.txt`.
Each image is centre-cropped to a square and resized with an antialiased bilinear filter, then
stored as uint8. Writes `OUT/celeba{R}_{split}.npz` with the key `images` ([N, R, R, 3]), which
`train/train_prior.py --data` and `evaluate/eval_prior.py --data` read directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hypersiren.io import load_celeba, square_resize


def main(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in args.splits:
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
    parser.add_argument("--out", required=True)
    main(parser.parse_args())
