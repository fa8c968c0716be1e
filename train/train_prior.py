"""Train a HyperSiren prior (or the Conditional Neural Process baseline) on a collection of images.

    python train/train_prior.py --preset faces --data faces --out runs/faces
    python train/train_prior.py --preset tiny --data faces --out runs/faces_tiny
    python train/train_prior.py --preset cnp_tiny --data faces --out runs/faces_cnp
    python train/train_prior.py --preset celeba32_paper --data ../shared/data/celeba64/celeba64_train.npz \
        --holdout 500 --time-budget 1200 --set train.lr=1e-4 --set model.latent_dim=128 --out runs/celeba_paper

`--data`: `faces` (scikit-image's packaged faces, no download), an `.npz`/`.npy` array of uint8
`[N, H, W, C]` images (key `images`), a CelebA root, or a folder of images. Images are centre-cropped
and resized to `--resolution`. `--holdout K` keeps the last K images out of training (for evaluation).
The preset's model config chooses the model (`cnp*` presets: a CNP). `--set section.field=value`
overrides a field of the preset, `model.*` (HyperSirenConfig or CNPConfig) or `train.*` (TrainConfig);
`--steps`, `--time-budget`, `--batch-size` and `--seed` are shortcuts for `train.*` fields.
The run folder gets `config.json`, TensorBoard events (training scalars, and every `--image-every`
steps and at the end an image grid context / prediction / truth of the first `--image-count`
training images), `checkpoint.pt` and `metrics.json`. Presets with a data-driven start (`faces`,
`celeba32`: `train.init_steps`) run it first; its measurements (noise, PCA noise, fit error) go to
`metrics.json` ("start") and TensorBoard (`start/*`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time

import torch
from torch.utils.tensorboard import SummaryWriter

from hypersiren.config import apply_overrides
from hypersiren.data import load_collection, square_resize
from hypersiren.presets import PRIOR_PRESETS
from hypersiren.runs import prepare_run_dir, read_json, write_json
from hypersiren.training import make_trainer, resume_trainer

SHORTCUTS = (("steps", "steps"), ("time_budget", "time_budget_s"), ("batch_size", "batch_size"), ("seed", "seed"))


def load_training_images(data: str, resolution: int, holdout: int, limit: int | None) -> torch.Tensor:
    images = square_resize(load_collection(data, limit=limit), resolution)
    if not 0 <= holdout < images.shape[0]:
        raise ValueError(f"--holdout {holdout} must leave at least one of the {images.shape[0]} images for training")
    return images[: images.shape[0] - holdout]


def configure(args: argparse.Namespace, value_dim: int):
    """The preset's (model config, TrainConfig) with the data's value_dim, `--set` overrides and shortcuts."""
    model_config, train_config = PRIOR_PRESETS[args.preset]
    model_config = dataclasses.replace(model_config, value_dim=value_dim)
    configs = apply_overrides({"model": model_config, "train": train_config}, args.set)
    shortcuts = {field: getattr(args, arg) for arg, field in SHORTCUTS if getattr(args, arg) is not None}
    both = [f"train.{field}" for field in shortcuts if any(p.split("=")[0].strip() == f"train.{field}" for p in args.set)]
    if both:
        raise ValueError(f"train_prior: {', '.join(both)} given both by --set and by its own flag; keep one")
    return configs["model"], dataclasses.replace(configs["train"], **shortcuts)


def main(args: argparse.Namespace) -> dict:
    if args.resume and args.set:
        raise ValueError("train_prior: --set changes a new run's configuration; a resumed run keeps its own "
                         "(use --steps / --time-budget to extend it)")
    if args.image_every < 0 or args.image_count < 1 or args.image_context < 1:
        raise ValueError(f"train_prior: expected --image-every >= 0, --image-count >= 1 and --image-context >= 1, "
                         f"got {args.image_every}, {args.image_count} and {args.image_context}")
    if args.resume:
        run_dir = prepare_run_dir(args.out, resume=True)
        saved = read_json(run_dir / "config.json")
        images = load_training_images(saved["data"], saved["resolution"], saved["holdout"], saved["limit"])
        trainer = resume_trainer(run_dir, images, steps=args.steps, time_budget_s=args.time_budget)
    else:
        images = load_training_images(args.data, args.resolution, args.holdout, args.limit)
        model_config, train_config = configure(args, images.shape[-1])  # bad --set values fail before --out is made
        run_dir = prepare_run_dir(args.out, overwrite=args.overwrite)
        trainer = make_trainer(model_config, train_config, images, run_dir)
        write_json(run_dir / "config.json", {
            "preset": args.preset, "overrides": args.set, "kind": trainer.kind, "data": args.data,
            "resolution": args.resolution, "holdout": args.holdout, "limit": args.limit,
            "model": dataclasses.asdict(model_config), "train": dataclasses.asdict(train_config),
        })
    writer = SummaryWriter(str(run_dir))
    start, total = time.perf_counter(), trainer.config.steps
    shown = images[: args.image_count]
    scale = max(1, 128 // max(shown.shape[1:3]))

    def write_images(step: int) -> None:
        grid = trainer.preview(shown, context_points=args.image_context, scale=scale)
        writer.add_image("inpaint/context_prediction_truth", grid, step, dataformats="HWC")

    def on_step(entry) -> None:
        for field in dataclasses.fields(entry):
            if field.name != "step":
                writer.add_scalar(f"train/{field.name}", getattr(entry, field.name), entry.step)
        if args.image_every and entry.step % args.image_every == 0:
            write_images(entry.step)
        if entry.step % 10 == 0 or entry.step == total:
            rate = entry.step / max(trainer.elapsed, 1e-9)
            print(f"\rstep {entry.step}/{total}  loss {entry.loss:.4f}  psnr {entry.psnr:.2f} dB  "
                  f"{rate:.1f} steps/s", end="", file=sys.stderr, flush=True)

    logs = trainer.run(on_step)
    if trainer.start_info is not None:  # a data-driven start (basis priors): its measurements at step 0
        for name in ("noise", "ppca_noise", "fit_error"):
            writer.add_scalar(f"start/{name}", trainer.start_info[name], 0)
    if args.image_every and (trainer.step % args.image_every != 0 or not logs):
        write_images(trainer.step)
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
        "start": trainer.start_info,
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
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a preset field, e.g. --set train.lr=1e-4 --set model.rank=32 "
                             "(sections: model, train)")
    parser.add_argument("--image-every", type=int, default=250,
                        help="write a context / prediction / truth grid to TensorBoard every N steps and at the "
                             "end (0: never)")
    parser.add_argument("--image-count", type=int, default=4, help="training images in that grid")
    parser.add_argument("--image-context", type=int, default=100, help="known pixels per image in that grid")
    parser.add_argument("--out", required=True, help="run folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--overwrite", action="store_true", help="delete --out and start over")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(parse_args())
