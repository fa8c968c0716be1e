"""Train a HyperSiren prior on a collection of images.

    python train/train_prior.py --preset tiny --data faces --out runs/faces_tiny
    python train/train_prior.py --preset celeba32_paper --data ../shared/data/celeba64/celeba64_train.npz \
        --holdout 500 --time-budget 1200 --out runs/celeba_paper

`--data`: `faces` (scikit-image's packaged faces, no download), an `.npz`/`.npy` array of uint8
`[N, H, W, C]` images (key `images`), a CelebA root, or a folder of images. Images are centre-cropped
and resized to `--resolution`. `--holdout K` keeps the last K images out of training (for evaluation).
The run folder gets `config.json`, TensorBoard events, `checkpoint.pt` and `metrics.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

import torch
from torch.utils.tensorboard import SummaryWriter

from hypersiren.data import load_collection, square_resize
from hypersiren.presets import PRIOR_PRESETS
from hypersiren.runs import prepare_run_dir, read_json, write_json
from hypersiren.training import PriorTrainer, StepLog


def load_training_images(data: str, resolution: int, holdout: int, limit: int | None) -> torch.Tensor:
    images = square_resize(load_collection(data, limit=limit), resolution)
    if not 0 <= holdout < images.shape[0]:
        raise ValueError(f"--holdout {holdout} must leave at least one of the {images.shape[0]} images for training")
    return images[: images.shape[0] - holdout]


def main(args: argparse.Namespace) -> dict:
    run_dir = prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite)
    if args.resume:
        saved = read_json(run_dir / "config.json")
        images = load_training_images(saved["data"], saved["resolution"], saved["holdout"], saved["limit"])
        trainer = PriorTrainer.resume(run_dir, images, steps=args.steps, time_budget_s=args.time_budget)
    else:
        model_config, train_config = PRIOR_PRESETS[args.preset]
        images = load_training_images(args.data, args.resolution, args.holdout, args.limit)
        model_config = dataclasses.replace(model_config, value_dim=images.shape[-1])
        overrides = {k: v for k, v in (("steps", args.steps), ("time_budget_s", args.time_budget),
                                       ("batch_size", args.batch_size), ("seed", args.seed)) if v is not None}
        train_config = dataclasses.replace(train_config, **overrides)
        trainer = PriorTrainer(model_config, train_config, images, run_dir)
        write_json(run_dir / "config.json", {
            "preset": args.preset, "data": args.data, "resolution": args.resolution, "holdout": args.holdout,
            "limit": args.limit, "model": dataclasses.asdict(model_config), "train": dataclasses.asdict(train_config),
        })
    writer = SummaryWriter(str(run_dir))
    start, total = time.perf_counter(), trainer.config.steps

    def on_step(entry: StepLog) -> None:
        for name in ("loss", "mse", "latent", "params", "psnr"):
            writer.add_scalar(f"train/{name}", getattr(entry, name), entry.step)
        if entry.step % 10 == 0 or entry.step == total:
            rate = entry.step / max(trainer.elapsed, 1e-9)
            print(f"\rstep {entry.step}/{total}  loss {entry.loss:.4f}  psnr {entry.psnr:.2f} dB  "
                  f"{rate:.1f} steps/s", end="", file=sys.stderr, flush=True)

    logs = trainer.run(on_step)
    print(file=sys.stderr)
    writer.close()
    tail = logs[-min(len(logs), 50):] if logs else []
    metrics = {
        "steps": trainer.step,
        "seconds": round(trainer.elapsed, 2),
        "wall_seconds_this_segment": round(time.perf_counter() - start, 2),
        "train_psnr_last50": sum(e.psnr for e in tail) / len(tail) if tail else None,
        "train_mse_last50": sum(e.mse for e in tail) / len(tail) if tail else None,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
    }
    write_json(run_dir / "metrics.json", metrics)
    print(f"trained {metrics['steps']} steps in {metrics['seconds']} s; checkpoint in {run_dir}")
    return metrics


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRIOR_PRESETS), default="tiny")
    parser.add_argument("--data", default="faces", help="'faces', an .npz/.npy file, a CelebA root or an image folder")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--holdout", type=int, default=0, help="keep the last K images out of training")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images of the source")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    parser.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds of training")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", required=True, help="run folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--overwrite", action="store_true", help="delete --out and start over")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(parse_args())
