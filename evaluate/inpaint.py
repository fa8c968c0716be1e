"""Few-shot inpainting with a trained prior: context | completion | truth, side by side, at any size.

    python evaluate/inpaint.py --checkpoint runs/faces_tiny/checkpoint.pt --context 100 --out inpaint.png

The image is `--image FILE` (any picture; centre-cropped and resized to the prior's resolution) or,
by default, `--count` images of the run's held-out set (or its data if none was held out).
`--mask`: `random` keeps `--context` random pixels; `half` keeps the top half; `center` keeps all
but a central square hole of half the image side. The completion is rendered at `--size` pixels
(the prior is a continuous function), with the known pixels kept at the prior's resolution grid.
`--uncertainty` (priors with a posterior over their latent: `faces`, `celeba32`) adds a fourth panel,
the posterior standard deviation of the completion, white at its largest value (printed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import hypersiren as hs
from hypersiren.data import fixed_context, load_collection, prefix_context, square_resize
from hypersiren.figures import context_image, save_png, tile, upsample_nearest
from hypersiren.prior import Context
from hypersiren.refine import RefineConfig, refined_predictor
from hypersiren.runs import read_json
from hypersiren.training import load_prior, run_images


def make_context(mask: str, k: int, coords, values, resolution: int, generator) -> Context:
    if mask == "random":
        return fixed_context(coords, values, k, generator=generator)
    if mask == "half":
        return prefix_context(coords, values, coords.shape[1] // 2)
    rows, cols = hs.grid((resolution, resolution)).unbind(-1)
    keep = ~((rows.abs() < 0.5) & (cols.abs() < 0.5))  # outside the central square of half the side
    return Context(coords[:, keep], values[:, keep], torch.ones(coords.shape[0], int(keep.sum()), dtype=torch.bool))


def main(args: argparse.Namespace) -> Path:
    model, _ = load_prior(args.checkpoint)
    run_config = read_json(Path(args.checkpoint).parent / "config.json")
    resolution = run_config["resolution"]
    if args.image:
        images = square_resize(load_collection(args.image) if Path(args.image).suffix in (".npz", ".npy")
                               else np.asarray(Image.open(args.image).convert("RGB"))[None], resolution)
        if model.config.value_dim == 1:
            images = images.mean(-1, keepdim=True)
    else:
        _, images = run_images(run_config)
    images = images[: args.count]
    if images.shape[-1] != model.config.value_dim:
        raise ValueError(f"the prior predicts {model.config.value_dim} channels but the image has {images.shape[-1]}")
    if args.mask == "random" and not 1 <= args.context <= resolution * resolution:
        raise ValueError(f"--context {args.context} must be between 1 and the {resolution * resolution} pixels of the image")
    coords, values = hs.image_to_points(images * 2 - 1)
    context = make_context(args.mask, args.context, coords, values, resolution, torch.Generator().manual_seed(args.seed))
    fine = hs.grid((args.size, args.size)).expand(images.shape[0], -1, -1)
    refine = RefineConfig(steps=args.refine_steps, residual=args.residual,
                          code="coeffs" if model.config.heads == "low_rank" else "latent")
    with torch.no_grad():
        completion = ((refined_predictor(model, refine)(context, fine) + 1) / 2).clamp(0, 1)
    completion = hs.points_to_image(completion, args.size, args.size)
    shown = context_image(*context, resolution, resolution)  # unknown pixels: mid grey
    panels = [upsample_nearest(shown, args.size), completion, upsample_nearest(images, args.size)]
    names = f"context | completion ({args.size}x{args.size}) | truth"
    if args.uncertainty:
        if model.config.encoder != "posterior":
            raise ValueError(f"--uncertainty needs a prior with a posterior over its latent (encoder='posterior', "
                             f"presets faces and celeba32); this one has encoder={model.config.encoder!r}")
        with torch.no_grad():
            std = hs.points_to_image(model.uncertainty(context, fine) / 2, args.size, args.size)  # [0, 1] units
        top = std.max().item()
        panels.append((std / max(top, 1e-12)).clamp(0, 1))
        names += f" | posterior std (white = {top:.3f} in [0, 1] units)"
    out = save_png(args.out, tile(torch.stack(panels, 1)))  # one row per image
    print(f"wrote {out}: {names}, {images.shape[0]} image(s)")
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", default=None, help="an image file (default: the run's held-out images)")
    parser.add_argument("--count", type=int, default=4, help="how many of the run's images (without --image)")
    parser.add_argument("--context", type=int, default=100, help="number of known pixels for --mask random")
    parser.add_argument("--mask", choices=("random", "center", "half"), default="random")
    parser.add_argument("--residual", action="store_true", help="pass the completion through the known pixels "
                        "(interpolated context residuals added; hypersiren.refine)")
    parser.add_argument("--refine-steps", type=int, default=0, help="Adam steps on the known pixels per image")
    parser.add_argument("--uncertainty", action="store_true", help="add a panel of the posterior standard "
                        "deviation of the completion (priors with encoder='posterior'), scaled to its maximum")
    parser.add_argument("--size", type=int, default=128, help="output resolution of each panel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="FILE.png")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
