"""Data-parallel scaling of prior training on this machine's CPU: steps per second of 1 process with 1 thread
against 2 processes with 1 thread each (torchrun, gloo), at the same global batch.

    python benchmarks/bench_scale.py --markdown           # tiny:32, tiny:64, cnp_tiny:32: about 2.5 minutes
    python benchmarks/bench_scale.py --configs tiny:32 --rounds 3 --steps 60

Each `PRESET:BATCH` of `--configs` trains a fresh run of the preset on the packaged faces (`--data`) at
that global batch from the same seed, in 1 process and in 2 (torchrun, gloo), every process with
`torch.set_num_threads(1)`. After `--warm-up` steps (the first builds DistributedDataParallel), the clock
runs over the next `--steps` whole steps of the training loop (`Trainer.run`: drawing the batch, forward,
backward, the gradients' all-reduce, clipping, Adam, the loop's stop decision), read on rank 0 at the end
of each step; start-up, data loading and the final checkpoint are outside it. 1 and 2 processes alternate
for `--rounds` rounds (a shared machine's slow drifts hit both alike) and the table gives the medians,
their ratio, the loss of the last step in each (the same run: equal up to float rounding) and the time
of drawing one global batch, which every process repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import hypersiren  # noqa: F401  (registers the modalities and presets)
from hypersiren.prior import join_torchrun, make_trainer
from hypersiren.prior.commands import configure

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node")


def worker(args: argparse.Namespace) -> None:
    """Train `warm_up + steps` steps in this process (one of several under torchrun); rank 0 prints the timing
    as one JSON line."""
    torch.set_num_threads(1)
    with join_torchrun(torch.device("cpu")) as ranks, tempfile.TemporaryDirectory() as run_dir:
        modality, signals, model, train = configure(
            args.preset, ["train.checkpoint_every_s=1e9"],
            shortcuts={"steps": args.warm_up + args.steps, "batch_size": args.batch_size, "seed": 0},
            data_shortcuts={"source": args.data})
        trainer = make_trainer(model, train, modality, signals, Path(run_dir), device="cpu", ranks=ranks)
        ends: list[float] = []
        logs = trainer.run(lambda entry: ends.append(time.perf_counter()))
        seconds = ends[-1] - ends[args.warm_up - 1]  # the `steps` steps after the warm-up
        if ranks.main:
            generator, draws = torch.Generator().manual_seed(1), []
            for _ in range(10):
                start = time.perf_counter()
                modality.sample_batch(trainer.train_set, args.batch_size, train, generator)
                draws.append(time.perf_counter() - start)
            print(json.dumps({"steps_per_s": args.steps / seconds, "loss": logs[-1].loss,
                              "draw_ms": 1000 * statistics.median(draws)}))


def measure(args: argparse.Namespace, preset: str, batch_size: int, processes: int) -> dict:
    """One run of the worker in `processes` processes (torchrun when more than one), one thread each."""
    launcher = (*TORCHRUN, str(processes)) if processes > 1 else ()
    command = [sys.executable, *launcher, __file__, "--worker", "--preset", preset, "--data", args.data,
               "--batch-size", str(batch_size), "--steps", str(args.steps), "--warm-up", str(args.warm_up)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        raise SystemExit(f"bench_scale: {preset} at batch {batch_size} in {processes} process(es) failed:\n"
                         f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scaling(args: argparse.Namespace, preset: str, batch_size: int) -> dict:
    """Medians over `rounds` alternating runs of 1 and 2 processes."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for processes in runs:
            runs[processes].append(measure(args, preset, batch_size, processes))
    rate = {p: statistics.median(r["steps_per_s"] for r in rs) for p, rs in runs.items()}
    return {"preset": preset, "batch": batch_size, "one": rate[1], "two": rate[2], "ratio": rate[2] / rate[1],
            "loss_one": runs[1][-1]["loss"], "loss_two": runs[2][-1]["loss"], "draw_ms": runs[1][-1]["draw_ms"]}


def table(rows: list[dict], markdown: bool) -> str:
    lines = [("preset", "global batch", "1 x 1 steps/s", "2 x 1 steps/s", "ratio", "last loss 1 x 1", "last loss 2 x 1",
              "batch draw ms")]
    lines += [(r["preset"], str(r["batch"]), f"{r['one']:.2f}", f"{r['two']:.2f}", f"{r['ratio']:.2f}",
               f"{r['loss_one']:.5f}", f"{r['loss_two']:.5f}", f"{r['draw_ms']:.1f}") for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(lines[0]) + " |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
                         + ["| " + " | ".join(line) + " |" for line in lines[1:]])
    return "\n".join("  ".join(cell.rjust(17) for cell in line) for line in lines)


def main(args: argparse.Namespace) -> list[dict]:
    if args.warm_up < 1 or args.steps < 1 or args.rounds < 1:
        raise SystemExit(f"bench_scale: need --warm-up, --steps and --rounds >= 1, got {args.warm_up}, "
                         f"{args.steps}, {args.rounds}")
    configs = []
    for config in args.configs:
        preset, _, batch = config.partition(":")
        if not batch.isdigit():
            raise SystemExit(f"bench_scale: expected --configs as PRESET:BATCH (e.g. tiny:32), got {config!r}")
        configs.append((preset, int(batch)))
    rows = [scaling(args, preset, batch) for preset, batch in configs]
    print(f"processes x threads on {args.data}: {args.steps} timed steps after {args.warm_up}, median of "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(table(rows, args.markdown))
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny:32", "tiny:64", "cnp_tiny:32"],
                        metavar="PRESET:BATCH", help="presets and global batches to measure")
    parser.add_argument("--data", default="faces", help="the presets' data source (default: the packaged faces)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warm-up", type=int, default=3, help="steps before the clock starts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of 1 and 2 processes")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)  # of a worker
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)  # of a worker
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        worker(arguments)
    else:
        main(arguments)
