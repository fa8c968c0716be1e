"""Image priors: training step time and peak memory of each preset, and the inpainting table after a
fixed training budget, side by side on the same data.

    python benchmarks/bench_prior.py --data ../shared/data/celeba64/celeba64_train.npz --holdout 500 \
        --budget 1200 --markdown

Models (`--presets`, default all three): the paper's prior `celeba32_paper`, the project's
`celeba32`, and `cnp`, the Conditional Neural Process of the paper's comparison row.
Part 1 (always): for each preset, in a fresh process, the median time of `--timed-steps` training
steps at batch `--batch-size` (after one warm-up step) and the process's peak resident memory during
those steps minus its resident memory before the model was built ("training memory"). The baseline
is the first preset (`celeba32_paper`); ratios > 1 mean the other preset is faster / smaller.
A preset with a data-driven start (`celeba32`: `init_steps`) runs five of its start steps before
the timed steps, so its memory counts. Part 2 (`--budget SECONDS` > 0): each preset, in a fresh
process, trains for that many seconds (start included), or for its own number of steps if it ends
sooner (`celeba32` trains none after its start), on all but the last `--holdout` images, and is
scored on the held-out ones with the inpainting protocol, next to the mean training image and
interpolation of the context pixels. Each prior is
scored twice: its plain prediction, and `+ residual correction` (`hypersiren.prior.refine`: the
prediction's errors at the context pixels interpolated and added, so it passes through them).
`--device` (default: CUDA when present) runs everything there; step times synchronise CUDA.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import platform
import resource
import statistics
import tempfile
import time

import torch

import hypersiren  # noqa: F401  (registers the modalities and presets)
from hypersiren.devices import resolve_device
from hypersiren.modalities.image import ImageModality
from hypersiren.prior import (HyperSiren, RefineConfig, Trainer, get_preset, make_trainer, model_predictor,
                              refined_predictor)
from hypersiren.prior.presets import PRESETS as ALL_PRESETS

PRESETS = ("celeba32_paper", "celeba32", "cnp")


def rss_mib() -> float:
    """Current resident memory of this process, MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def modality_for(args) -> ImageModality:
    if args.holdout < 1:
        raise ValueError(f"--holdout {args.holdout} must be at least 1 (the images scored in part 2)")
    data = dataclasses.replace(get_preset(args.presets[0]).data, source=args.data, resolution=args.resolution,
                               holdout=args.holdout, limit=args.limit)
    return ImageModality(data)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(preset: str, modality: ImageModality, train_images, args, **overrides) -> Trainer:
    chosen = get_preset(preset)
    model_config = dataclasses.replace(chosen.model, value_dim=train_images.shape[-1])
    train_config = dataclasses.replace(chosen.train, batch_size=args.batch_size, checkpoint_every_s=1e9, **overrides)
    device = resolve_device(args.device)
    return make_trainer(model_config, train_config, modality, train_images.to(device),
                        tempfile.mkdtemp(prefix=f"bench_{preset}_"), device=device)


def in_child(target, *args):
    """Run `target(*args, queue)` in a fresh (spawned) process and return what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def step_profile(preset: str, args, queue) -> None:
    """Child process: time steps and measure peak memory of one preset."""
    torch.set_num_threads(args.threads)
    modality = modality_for(args)
    train_images = modality.load("train")
    before = rss_mib()
    trainer = build(preset, modality, train_images, args)
    if not trainer.initialised:  # a data-driven start (basis heads): its memory counts, a few of its steps do
        trainer.config = dataclasses.replace(trainer.config, init_steps=min(trainer.config.init_steps, 5))
        trainer.initialise()
    trainer.train_step()  # warm-up
    times = []
    for _ in range(args.timed_steps):
        sync(trainer.device)
        start = time.perf_counter()
        trainer.train_step()
        sync(trainer.device)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    queue.put({"preset": preset, "step_s": statistics.median(times), "memory_mib": peak - before,
               "parameters": sum(p.numel() for p in trainer.model.parameters())})


def part1(args) -> list[dict]:
    rows = [in_child(step_profile, preset, args) for preset in args.presets]
    base = rows[0]
    for row in rows:
        row["speed"] = base["step_s"] / row["step_s"]
        row["memory"] = row["memory_mib"] / base["memory_mib"]
    return rows


def train_and_score(preset: str, args, queue) -> None:
    """Child process: train one preset for the budget, score it on the held-out images."""
    torch.set_num_threads(args.threads)
    modality = modality_for(args)
    train_images, test_images = modality.load("train"), modality.load("heldout").to(resolve_device(args.device))
    trainer = build(preset, modality, train_images, args, time_budget_s=args.budget)  # or the preset's steps
    trainer.run()
    result = modality.evaluate(model_predictor(trainer.model), test_images)
    corrected = None
    if isinstance(trainer.model, HyperSiren):  # the same prior, its prediction passed through the context
        corrected = modality.evaluate(refined_predictor(trainer.model, RefineConfig(residual=True), modality),
                                      test_images)
    queue.put({"preset": preset, "steps": trainer.step, "seconds": trainer.elapsed, "result": result,
               "residual": corrected})


def part2(args) -> dict:
    results = {}
    for preset in args.presets:
        out = in_child(train_and_score, preset, args)
        print(f"{preset}: {out['steps']} steps in {out['seconds']:.0f} s", flush=True)
        results[f"{preset} ({out['steps']} steps)"] = out["result"]
        if out["residual"] is not None:
            results[f"{preset} + residual correction"] = out["residual"]
    modality = modality_for(args)
    train_images, test_images = modality.load("train"), modality.load("heldout")
    baselines = modality.baselines(train_images)
    results["mean training image"] = modality.evaluate(baselines["mean image"], test_images)
    results["interpolation"] = modality.evaluate(baselines["interpolation"], test_images)
    print(f"\n{test_images.shape[0]} held-out images, {args.resolution}x{args.resolution}\n")
    print(modality.report(results))
    return results


def main(args) -> None:
    print(f"# bench_prior: torch {torch.__version__}, {args.threads} threads, {platform.machine()}, "
          f"device {resolve_device(args.device)}; batch {args.batch_size}; base = {args.presets[0]}")
    rows = part1(args)
    base = "paper" if args.presets[0] == "celeba32_paper" else args.presets[0]
    cols = ["preset", "parameters", "step_s", "memory_mib", "speed", "memory"]
    fmt = {"step_s": "{:.3f}", "memory_mib": "{:.0f}", "speed": "{:.2f}x", "memory": "{:.2f}x"}
    header = [f"{c} vs {base}" if c in ("speed", "memory") else c for c in cols]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(fmt.get(c, "{}").format(row[c]) for c in cols) + " |")
    if args.budget > 0:
        part2(args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="faces")
    parser.add_argument("--presets", nargs="+", choices=sorted(ALL_PRESETS), default=list(PRESETS),
                        help="models to compare; the first is the base of the ratios")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--holdout", type=int, default=500)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--budget", type=float, default=0.0, help="seconds of training per preset (0: skip part 2)")
    parser.add_argument("--markdown", action="store_true", help="(tables are always markdown)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    main(parser.parse_args())
