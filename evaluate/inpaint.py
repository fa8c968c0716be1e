"""Few-shot inpainting with a trained image prior: context | completion | truth, side by side, at any size.

    python evaluate/inpaint.py --checkpoint runs/faces/checkpoint.pt --context 100 --out inpaint.png

The image is `--image FILE` (any picture or image collection; centre-cropped and resized to the prior's
resolution) or, by default, `--count` images of the run's held-out set (or its data if none was held
out). `--mask`: `random` keeps `--context` random pixels; `half` keeps the top half; `center` keeps all
but a central square hole of half the image side. The completion is rendered at `--size` pixels (the
prior is a continuous function). `--uncertainty` (priors with a posterior over their latent: `faces`,
`celeba32`) adds a fourth panel, the posterior standard deviation of the completion, white at its
largest value (printed). `--residual` / `--refine-steps`: see `hypersiren.prior.refine`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hypersiren  # noqa: F401  (registers the modalities)
from hypersiren.config import non_negative_int, positive_int, random_seed, run_main
from hypersiren.devices import resolve_device
from hypersiren.modalities.image import load_images
from hypersiren.modalities.image.inpaint import MASKS, inpaint_figure
from hypersiren.prior import RefineConfig, load_prior


def main(args: argparse.Namespace) -> Path:
    prior = load_prior(args.checkpoint, modality="image", device=resolve_device(args.device))
    model, modality = prior.model, prior.modality
    if args.image:
        images = load_images(args.image, modality.data.resolution, model.config.value_dim)
    else:
        images = modality.load("heldout")
    refine = RefineConfig(steps=args.refine_steps, residual=args.residual,
                          code="coeffs" if model.config.heads == "low_rank" else "latent")
    out, names = inpaint_figure(model, modality, images[: args.count], args.out, mask=args.mask, context=args.context,
                                size=args.size, seed=args.seed, refine=refine, uncertainty=args.uncertainty)
    print(f"wrote {out}: {names}, {min(args.count, images.shape[0])} image(s)")
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--image", default=None, help="an image file or collection (default: the run's held-out images)")
    parser.add_argument("--count", type=positive_int, default=4, help="how many images")
    parser.add_argument("--context", type=positive_int, default=100,
                        help="number of known pixels for --mask random")
    parser.add_argument("--mask", choices=MASKS, default="random")
    parser.add_argument("--residual", action="store_true", help="pass the completion through the known pixels "
                        "(interpolated context residuals added)")
    parser.add_argument("--refine-steps", type=non_negative_int, default=0,
                        help="Adam steps on the known pixels per image")
    parser.add_argument("--uncertainty", action="store_true", help="add a panel of the posterior standard "
                        "deviation of the completion (priors with encoder='posterior'), scaled to its maximum")
    parser.add_argument("--size", type=positive_int, default=128, help="output resolution of each panel")
    parser.add_argument("--seed", type=random_seed, default=0)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--out", required=True, help="FILE.png")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main, parse_args())
