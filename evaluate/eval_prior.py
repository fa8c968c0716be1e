"""Score a trained prior with its modality's protocol, next to the modality's baselines (and a CNP).

    python evaluate/eval_prior.py --checkpoint runs/faces/checkpoint.pt --out runs/faces/eval.json
    python evaluate/eval_prior.py --checkpoint runs/faces/checkpoint.pt --cnp runs/faces_cnp/checkpoint.pt \
        --out runs/faces/eval.json

Without `--data`, the signals are the ones the run held out (`--holdout` of train_prior.py) from its
own data (stored in the checkpoint), or all of them if it held none out. Images: the inpainting
protocol (exactly 10 / 100 / 1000 random pixels, top half, all pixels) against the mean training image
and scattered-data interpolation. `--cnp CKPT`: a Conditional Neural Process trained by
`train/train_prior.py --preset cnp_tiny|cnp` on the same data (checked). `--precision bf16` (any device)
or `fp16` (CUDA) predicts under autocast, the scores computed in float32. Writes FILE.json and FILE.md.
"""

from __future__ import annotations

import argparse

import hypersiren  # noqa: F401  (registers the modalities)
from hypersiren.config import non_negative_int, positive_float, positive_int, random_seed, run_main
from hypersiren.devices import PRECISIONS, resolve_device
from hypersiren.prior.commands import evaluate_prior


def main(args: argparse.Namespace) -> dict:
    return evaluate_prior(args.checkpoint, out=args.out, cnp=args.cnp, data=args.data, limit=args.limit,
                          seed=args.seed, residual=args.residual, refine_steps=args.refine_steps,
                          refine_lr=args.refine_lr, device=resolve_device(args.device), precision=args.precision)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--cnp", default=None, metavar="CKPT",
                        help="a CNP checkpoint (train_prior.py --preset cnp_tiny|cnp, same data) for a baseline row")
    parser.add_argument("--data", default=None, help="signals to score (default: the run's held-out signals)")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N signals")
    parser.add_argument("--seed", type=random_seed, default=0, help="seed of the context points")
    parser.add_argument("--residual", action="store_true",
                        help="add the context residuals, spread by the modality, to the prior's prediction")
    parser.add_argument("--refine-steps", type=non_negative_int, default=0,
                        help="Adam steps on the context points per signal")
    parser.add_argument("--refine-lr", type=positive_float, default=1e-2)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="what the prior and the CNP predict in: bf16 autocast (any device), fp16 (CUDA)")
    parser.add_argument("--out", required=True, help="FILE.json; the tables go to FILE.md")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main, parse_args())
