"""Score a trained prior with the inpainting protocol (k = 10 / 100 / 1000 pixels, half, full), next to baselines.

    python evaluate/eval_prior.py --checkpoint runs/faces_tiny/checkpoint.pt --out runs/faces_tiny/eval.json
    python evaluate/eval_prior.py --checkpoint runs/faces_tiny/checkpoint.pt --cnp runs/faces_cnp/checkpoint.pt \
        --out runs/faces_tiny/eval.json

Without `--data`, the images are the ones the run held out (`--holdout` of train_prior.py) from its
own data source, or all of its images if it held none out. Writes FILE.json
(`{"mse": {...}, "psnr": {...}, "mse_completed": {...}, "baselines": {name: {...}}}`) and FILE.md
(the tables). Baselines on the same images and context pixels: the mean training image,
scattered-data interpolation of the context (linear, nearest outside the hull) and, with
`--cnp CKPT`, a Conditional Neural Process (its mean) trained by `train/train_prior.py --preset
cnp_tiny|cnp` on the same data (same source, resolution, holdout and limit as the prior's run, checked).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hypersiren.data import load_collection, square_resize
from hypersiren.evaluation import (CONTEXT_SIZES, cnp_predictor, evaluate, interpolation_predictor, markdown_table,
                                   mean_image_predictor)
from hypersiren.refine import RefineConfig, refined_predictor
from hypersiren.runs import read_json, write_json
from hypersiren.training import load_cnp, load_prior, run_images

DATA_KEYS = ("data", "resolution", "holdout", "limit")  # what makes two runs' training images the same


def read_run_config(checkpoint: str | Path) -> dict:
    config_path = Path(checkpoint).parent / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: the checkpoint's run folder must hold its config.json")
    return read_json(config_path)


def load_baseline_cnp(path: str | Path, run_config: dict):
    """The CNP of `path`, checked to have trained on the prior's training images."""
    cnp, _ = load_cnp(path)
    cnp_config = read_run_config(path)
    differ = {k: (run_config.get(k), cnp_config.get(k)) for k in DATA_KEYS if run_config.get(k) != cnp_config.get(k)}
    if differ:
        raise ValueError("eval_prior: expected the CNP to train on the prior's images, got different "
                         + ", ".join(f"{k} (prior {a!r}, cnp {b!r})" for k, (a, b) in differ.items()))
    return cnp  # same images, so the same channels as the prior


def main(args: argparse.Namespace) -> dict:
    model, _ = load_prior(args.checkpoint)
    run_config = read_run_config(args.checkpoint)
    cnp = load_baseline_cnp(args.cnp, run_config) if args.cnp else None
    resolution = args.resolution or run_config["resolution"]
    train, test = run_images(run_config, resolution)
    if args.data is not None:
        test = square_resize(load_collection(args.data, limit=args.limit), resolution)
    test = test[: args.limit]
    if test.shape[-1] != model.config.value_dim:
        raise ValueError(f"the prior predicts {model.config.value_dim} channels but the images have {test.shape[-1]}")
    sizes = [s for s in CONTEXT_SIZES if s in ("half", "full") or int(s) <= resolution * resolution]
    refine = RefineConfig(steps=args.refine_steps, lr=args.refine_lr, residual=args.residual,
                          code="coeffs" if model.config.heads == "low_rank" else "latent")
    results = {"prior": evaluate(refined_predictor(model, refine), test, sizes=sizes, seed=args.seed)}
    results["mean image"] = evaluate(mean_image_predictor(train), test, sizes=sizes, seed=args.seed)
    results["interpolation"] = evaluate(interpolation_predictor(), test, sizes=sizes, seed=args.seed)
    if cnp is not None:
        results["cnp"] = evaluate(cnp_predictor(cnp), test, sizes=sizes, seed=args.seed)
    report = {**results["prior"], "images": int(test.shape[0]), "resolution": resolution, "seed": args.seed,
              "baselines": {k: v for k, v in results.items() if k != "prior"}}
    out = Path(args.out)
    write_json(out, report)
    tables = "\n\n".join(f"{metric}\n\n{markdown_table(results, metric, sizes)}"
                         for metric in ("mse", "mse_completed", "psnr"))
    out.with_suffix(".md").write_text(tables + "\n")
    print(tables)
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--cnp", default=None, metavar="CKPT",
                        help="a CNP checkpoint (train_prior.py --preset cnp_tiny|cnp, same data) for a baseline row")
    parser.add_argument("--data", default=None, help="images to score (default: the run's held-out images)")
    parser.add_argument("--resolution", type=int, default=None, help="default: the run's")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the context pixels")
    parser.add_argument("--residual", action="store_true",
                        help="add the interpolated context residuals to the prior's prediction (hypersiren.refine)")
    parser.add_argument("--refine-steps", type=int, default=0, help="Adam steps on the context pixels per image")
    parser.add_argument("--refine-lr", type=float, default=1e-2)
    parser.add_argument("--out", required=True, help="FILE.json; the tables go to FILE.md")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
