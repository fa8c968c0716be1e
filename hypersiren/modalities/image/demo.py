"""The one-command demo: on scikit-image's 100 packaged faces (80 to train, 20 held out), train the `faces`
prior and, for the baseline row, the `cnp_tiny` CNP for a short time budget; score both with the
inpainting protocol next to the mean image and interpolation; draw the few-shot inpainting figure."""

from __future__ import annotations

from pathlib import Path

import torch

from ...prior.commands import evaluate_prior, train_prior
from ...prior.refine import RefineConfig
from ...prior.training import load_prior
from .inpaint import inpaint_figure

HOLDOUT = 20


def run_demo(out: str | Path, *, cnp_budget: float = 90.0, context: int = 100, overwrite: bool = False,
             device: torch.device | str = "cpu") -> dict:
    """Write `out/prior/` and `out/cnp/` (runs), `out/eval.json` / `out/eval.md` (the tables) and
    `out/inpaint.png` (context | completion at 128x128 | truth | posterior std for 4 held-out faces).
    `cnp_budget` seconds of CNP training (0: no CNP row). Returns the evaluation report."""
    if cnp_budget < 0 or context < 1:
        raise ValueError(f"run_demo: expected cnp_budget >= 0 and context >= 1, got {cnp_budget} and {context}")
    out = Path(out)
    data = {"data": "faces", "holdout": HOLDOUT}
    train_prior(preset="faces", out=out / "prior", data_shortcuts=data, overwrite=overwrite, device=device)
    cnp = None
    if cnp_budget > 0:
        train_prior(preset="cnp_tiny", out=out / "cnp", data_shortcuts=data, overwrite=overwrite, device=device,
                    shortcuts={"time_budget": cnp_budget}, image_every=0)
        cnp = out / "cnp" / "checkpoint.pt"
    report = evaluate_prior(out / "prior" / "checkpoint.pt", cnp=cnp, out=out / "eval.json", device=device)
    prior = load_prior(out / "prior" / "checkpoint.pt", device=device)
    figure, panels = inpaint_figure(prior.model, prior.modality, prior.modality.load("heldout")[:4],
                                    out / "inpaint.png", context=context, refine=RefineConfig(), uncertainty=True)
    print(f"\nwrote {out / 'eval.md'} (the tables above) and {figure}: {panels}, 4 held-out faces from "
          f"{context} known pixels each")
    return report
