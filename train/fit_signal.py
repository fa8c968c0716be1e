"""Fit one SIREN to one signal: image, audio, video, Poisson, SDF, Helmholtz or wave.

    python train/fit_signal.py --task image --out runs/camera
    python train/fit_signal.py --task sdf --input bunny.obj --preset default --time-budget 300 --out runs/bunny
    python train/fit_signal.py --task audio --input gt_bach.wav --set lr=5e-5 --out runs/bach
    python train/fit_signal.py --task video --input bikes.mp4 --device cuda --out runs/bikes

Without `--input` each task fits its default signal (scikit-image's `camera`, a generated tone
sequence, a panning clip of `astronaut`, a torus; Helmholtz and wave need no input). `--preset paper`
is the SIREN paper's recipe for the task, `default` the project's faster one; `--set FIELD=VALUE`
overrides any `FitConfig` field. `--device` picks where it runs (default `auto`: CUDA where there is
a GPU, else the CPU); `--precision bf16` (any device) or `fp16` (CUDA) runs the steps under autocast. The run folder gets config.json, TensorBoard events, siren.pt, the
output (reconstruction.png / .wav / .mp4, mesh.ply, field.png) and metrics.json.
Bad input (a file that cannot be read, an unknown `--set` field, an out-of-range option) ends it with one
`error:` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging

from hypersiren.config import parse_field_overrides, positive_float, positive_int, run_main
from hypersiren.devices import PRECISIONS, resolve_device
from hypersiren.fitting import FIT_PRESETS, TASKS, FitConfig, fit_signal, preset_config


def main(args: argparse.Namespace) -> dict:
    overrides = parse_field_overrides(args.set, FitConfig)  # bad ones: ValueError, exit status 2 by run_main
    if "task" in overrides:
        raise ValueError(f"--set task={overrides['task']}: choose the task with --task, not --set")
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.precision is not None:
        overrides["precision"] = args.precision
    config = preset_config(args.task, args.preset, **overrides)
    metrics = fit_signal(config, args.out, source=args.source, second_source=args.second_source,
                         device=resolve_device(args.device), time_budget_s=args.time_budget,
                         overwrite=args.overwrite, preset=args.preset)
    shown = {k: v for k, v in metrics.items() if k != "outputs"}
    print(json.dumps(shown))
    print(f"wrote {', '.join(metrics['outputs'])} to {args.out}")
    return metrics


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--input", dest="source", metavar="FILE",
                        help="the signal file (image, wav, mp4/npy/npz frames, xyz+normals text, npz or mesh)")
    parser.add_argument("--second-input", dest="second_source", metavar="FILE", help="poisson_blend: the second image (default: astronaut)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (CUDA if available, else CPU)")
    parser.add_argument("--preset", default="default", choices=sorted({p for t in FIT_PRESETS.values() for p in t}))
    parser.add_argument("--steps", type=positive_int, help="training steps (default: the preset's)")
    parser.add_argument("--time-budget", type=positive_float, help="stop after this many seconds of training")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="what each step's forward computes in: float32 (default), bf16 autocast (any device; "
                             "derivatives lose precision) or fp16 with a gradient scaler (CUDA)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a FitConfig field, e.g. --set lr=5e-4 --set hidden_dim=128")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_main(main, parse_args())
