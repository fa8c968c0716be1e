"""The whole story in one command: train a prior on the packaged faces, score it against the baselines,
and draw few-shot inpainting.

    python train/demo.py --out runs/demo

On scikit-image's 100 real 25x25 faces (no download; 80 to train, 20 held out, at 32x32): the `faces`
prior (seconds) and the `cnp_tiny` Conditional Neural Process baseline for `--cnp-budget` seconds (default
90; 0 skips it); the inpainting protocol's tables (10 / 100 / 1000 known pixels, top half, all pixels)
for the prior, the CNP, the mean training face and interpolation of the known pixels, printed and written
to `OUT/eval.md`; and `OUT/inpaint.png`: known pixels | completion at 128x128 | truth | posterior
standard deviation for four held-out faces. The runs are in `OUT/prior` and `OUT/cnp`
(`tensorboard --logdir OUT`).
"""

from __future__ import annotations

import argparse
import logging

import hypersiren  # noqa: F401  (registers the modalities and their presets)
from hypersiren.config import non_negative_float, positive_int, run_main
from hypersiren.devices import resolve_device
from hypersiren.modalities.image.demo import run_demo


def main(args: argparse.Namespace) -> dict:
    return run_demo(args.out, cnp_budget=args.cnp_budget, context=args.context, overwrite=args.overwrite,
                    device=resolve_device(args.device))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="folder for the runs, tables and figure")
    parser.add_argument("--cnp-budget", type=non_negative_float, default=90.0,
                        help="seconds of CNP training (0: no CNP row)")
    parser.add_argument("--context", type=positive_int, default=100, help="known pixels per face in the figure")
    parser.add_argument("--overwrite", action="store_true", help="replace the runs of an earlier demo in --out")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    run_main(main, parse_args())
