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
scored twice: its plain prediction, and `+ residual correction` (`hypersiren.refine`: the
prediction's errors at the context pixels interpolated and added, so it passes through them).
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

from hypersiren.data import load_collection, square_resize
from hypersiren.evaluation import (CONTEXT_SIZES, evaluate, interpolation_predictor, markdown_table,
                                   mean_image_predictor, model_predictor)
from hypersiren.prior import HyperSiren
from hypersiren.refine import RefineConfig, refined_predictor
from hypersiren.presets import PRIOR_PRESETS
from hypersiren.training import Trainer, make_trainer

PRESETS = ("celeba32_paper", "celeba32", "cnp")


def rss_mib() -> float:
    """Current resident memory of this process, MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def load_split(args):
    images = square_resize(load_collection(args.data, limit=args.limit), args.resolution)
    if not 0 < args.holdout < images.shape[0]:
        raise ValueError(f"--holdout {args.holdout} must be between 1 and {images.shape[0] - 1}")
    return images[: -args.holdout], images[-args.holdout :]


def build(preset: str, train_images, args, **overrides) -> Trainer:
    model_config, train_config = PRIOR_PRESETS[preset]
    model_config = dataclasses.replace(model_config, value_dim=train_images.shape[-1])
    train_config = dataclasses.replace(train_config, batch_size=args.batch_size, checkpoint_every_s=1e9, **overrides)
    return make_trainer(model_config, train_config, train_images, tempfile.mkdtemp(prefix=f"bench_{preset}_"))


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
    train_images, _ = load_split(args)
    before = rss_mib()
    trainer = build(preset, train_images, args)
    if not trainer.initialised:  # a data-driven start (basis heads): its memory counts, a few of its steps do
        trainer.config = dataclasses.replace(trainer.config, init_steps=min(trainer.config.init_steps, 5))
        trainer.initialise()
    trainer.train_step()  # warm-up
    times = []
    for _ in range(args.timed_steps):
        start = time.perf_counter()
        trainer.train_step()
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
    train_images, test_images = load_split(args)
    trainer = build(preset, train_images, args, time_budget_s=args.budget)  # or the preset's steps, if fewer
    trainer.run()
    result = evaluate(model_predictor(trainer.model), test_images, sizes=eval_sizes(args))
    corrected = None
    if isinstance(trainer.model, HyperSiren):  # the same prior, its prediction passed through the context
        corrected = evaluate(refined_predictor(trainer.model, RefineConfig(residual=True)), test_images,
                             sizes=eval_sizes(args))
    queue.put({"preset": preset, "steps": trainer.step, "seconds": trainer.elapsed, "result": result,
               "residual": corrected})


def eval_sizes(args) -> list[str]:
    return [s for s in CONTEXT_SIZES if s in ("half", "full") or int(s) <= args.resolution**2]


def part2(args) -> dict:
    results = {}
    for preset in args.presets:
        out = in_child(train_and_score, preset, args)
        print(f"{preset}: {out['steps']} steps in {out['seconds']:.0f} s", flush=True)
        results[f"{preset} ({out['steps']} steps)"] = out["result"]
        if out["residual"] is not None:
            results[f"{preset} + residual correction"] = out["residual"]
    train_images, test_images = load_split(args)
    sizes = eval_sizes(args)
    results["mean training image"] = evaluate(mean_image_predictor(train_images), test_images, sizes=sizes)
    results["interpolation"] = evaluate(interpolation_predictor(), test_images, sizes=sizes)
    for metric in ("mse", "mse_completed"):
        print(f"\n{metric} ({test_images.shape[0]} held-out images, {args.resolution}x{args.resolution})\n")
        print(markdown_table(results, metric, sizes))
    return results


def main(args) -> None:
    print(f"# bench_prior: torch {torch.__version__}, {args.threads} threads, {platform.machine()}; "
          f"batch {args.batch_size}; base = {args.presets[0]}")
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
    parser.add_argument("--presets", nargs="+", choices=sorted(PRIOR_PRESETS), default=list(PRESETS),
                        help="models to compare; the first is the base of the ratios")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--holdout", type=int, default=500)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--budget", type=float, default=0.0, help="seconds of training per preset (0: skip part 2)")
    parser.add_argument("--markdown", action="store_true", help="(tables are always markdown)")
    main(parser.parse_args())
