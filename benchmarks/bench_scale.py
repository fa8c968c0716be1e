"""Data-parallel scaling of prior training on this machine's CPU: steps per second of 1 process with 1 thread
against 2 processes with 1 thread each (torchrun, gloo), at the same global batch.

    python benchmarks/bench_scale.py --markdown           # tiny:32, tiny:64, cnp_tiny:32: about 2.5 minutes
    python benchmarks/bench_scale.py --configs tiny:32 --rounds 3 --steps 60
    python benchmarks/bench_scale.py --configs cnp:100 celeba32_paper:100 celeba32:100:train.init_steps=0 \
        --steps 5 --warm-up 2 --rounds 3 --markdown     # the CelebA presets at their own batch

Each `PRESET:BATCH[:OVERRIDE,...]` of `--configs` (overrides as `--set` takes them, e.g.
`train.init_steps=0` to skip a basis prior's start, which is not a step) trains a fresh run of the preset on the packaged faces (`--data`) at
that global batch from the same seed, in 1 process and in 2 (torchrun, gloo), every process with
`torch.set_num_threads(1)`. After `--warm-up` steps (the first builds DistributedDataParallel), the clock
runs over the next `--steps` whole steps of the training loop (`Trainer.run`: drawing the batch, forward,
backward, the gradients' all-reduce, clipping, Adam, the loop's stop decision), read on rank 0 at the end
of each step; start-up, data loading and the final checkpoint are outside it. 1 and 2 processes alternate
for `--rounds` rounds (a shared machine's slow drifts hit both alike) and the table gives the medians,
their ratio, the loss of the last step in each (the same run: equal up to float rounding) and the time
of drawing one global batch, which every process repeats.

`--part start` measures instead the basis prior's PCA start of a collection streamed from disk:

    python benchmarks/bench_scale.py --part start --images 1000 5000 --resolutions 32   # a small version
    python benchmarks/bench_scale.py --part start          # 1k, 5k, 10k, 50k images at 32 and 64 px

For each size it writes `N` generated uint8 RGB images (smooth random fields: sums of low-frequency sines)
as `.npy` shards of `--shard-size` into a temporary folder, then times each route in a fresh process (one
thread unless `--threads`): the baseline, `load_collection` + the in-memory `probabilistic_pca` (run only
where the collection's float32 size is under `--baseline-max-mb`), and the streamed start
(`stream_collection` -> `Moments` -> `top_eigenpairs`) with the dense `eigh` and with randomized subspace
iteration, and the sketch that never forms the scatter (`sketched_principal_components`: one pass for the
mean, six multiplying the images by 272 directions; its whole time is in the moments column). The table gives the seconds of the moments pass and of the eigen step, and the process's peak
resident memory (VmHWM) against the collection's float32 size.
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

import numpy as np
import torch

import hypersiren  # noqa: F401  (registers the modalities and presets)
from hypersiren.coords import image_to_points
from hypersiren.io import load_collection, square_resize, stream_collection
from hypersiren.metrics import to_signed
from hypersiren.prior import (join_torchrun, make_trainer, probabilistic_pca, sketched_principal_components, streamed_moments,
                              top_eigenpairs)
from hypersiren.prior.commands import configure

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node")


def worker(args: argparse.Namespace) -> None:
    """Train `warm_up + steps` steps in this process (one of several under torchrun); rank 0 prints the timing
    as one JSON line."""
    torch.set_num_threads(1)
    with join_torchrun(torch.device("cpu")) as ranks, tempfile.TemporaryDirectory() as run_dir:
        modality, signals, model, train = configure(
            args.preset, ["train.checkpoint_every_s=1e9", *args.set],
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


def measure(args: argparse.Namespace, preset: str, batch_size: int, overrides: list[str], processes: int) -> dict:
    """One run of the worker in `processes` processes (torchrun when more than one), one thread each."""
    launcher = (*TORCHRUN, str(processes)) if processes > 1 else ()
    command = [sys.executable, *launcher, __file__, "--worker", "--preset", preset, "--data", args.data,
               "--batch-size", str(batch_size), "--steps", str(args.steps), "--warm-up", str(args.warm_up),
               *(f"--set={override}" for override in overrides)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        raise SystemExit(f"bench_scale: {preset} at batch {batch_size} in {processes} process(es) failed:\n"
                         f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scaling(args: argparse.Namespace, preset: str, batch_size: int, overrides: list[str]) -> dict:
    """Medians over `rounds` alternating runs of 1 and 2 processes."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for processes in runs:
            runs[processes].append(measure(args, preset, batch_size, overrides, processes))
    rate = {p: statistics.median(r["steps_per_s"] for r in rs) for p, rs in runs.items()}
    return {"preset": ":".join([preset, *overrides]), "batch": batch_size, "one": rate[1], "two": rate[2], "ratio": rate[2] / rate[1],
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
        preset, _, rest = config.partition(":")
        batch, _, overrides = rest.partition(":")
        if not batch.isdigit():
            raise SystemExit(f"bench_scale: expected --configs as PRESET:BATCH[:OVERRIDE,...] (e.g. tiny:32), got "
                             f"{config!r}")
        configs.append((preset, int(batch), overrides.split(",") if overrides else []))
    rows = [scaling(args, preset, batch, overrides) for preset, batch, overrides in configs]
    print(f"processes x threads on {args.data}: {args.steps} timed steps after {args.warm_up}, median of "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(table(rows, args.markdown))
    return rows


# --- the streamed PCA start (--part start) ---------------------------------------------------------

ROUTES = {"baseline": "in-memory probabilistic_pca (baseline)", "dense": "streamed, dense eigh",
          "randomized": "streamed, randomized", "sketch": "streamed sketch, no scatter (1 + 6 passes)"}


def write_collection(folder: Path, count: int, side: int, shard_size: int, seed: int = 0) -> None:
    """`count` uint8 RGB images `[side, side, 3]` of smooth random fields (8 sines of up to 3 cycles across
    the image per channel, random directions, phases and weights) as `.npy` shards of `shard_size`."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side), indexing="ij")  # [side, side]
    for first in range(0, count, shard_size):
        n = min(shard_size, count - first)
        freq = rng.uniform(-3, 3, (n, 8, 2, 3)) * 2 * np.pi  # [n, K, 2, C] cycles per image, per axis
        phase, weight = rng.uniform(0, 2 * np.pi, (n, 8, 3)), rng.uniform(0.2, 1, (n, 8, 3))
        field = np.zeros((n, side, side, 3), np.float32)
        for k in range(8):  # [n, side, side, C], one sine at a time
            angle = freq[:, None, None, k, 0] * y[..., None] + freq[:, None, None, k, 1] * x[..., None]
            field += (weight[:, None, None, k] * np.sin(angle + phase[:, None, None, k])).astype(np.float32)
        field /= weight.sum(1)[:, None, None]
        np.save(folder / f"part-{first // shard_size:05d}.npy", np.round((field + 1) * 127.5).astype(np.uint8))


def peak_mb() -> tuple[float, float]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def start_worker(args: argparse.Namespace) -> None:
    """Time one route of the start on `--source` in this process; print one JSON line."""
    torch.set_num_threads(args.threads)
    route, z, resolution = args.start_worker, args.latent_dim, args.resolution
    at_start, _ = peak_mb()
    begin = time.perf_counter()
    if route == "baseline":  # the whole collection in memory, then the in-memory PPCA
        values = image_to_points(to_signed(square_resize(load_collection(args.source), resolution)))[1]
        loaded = time.perf_counter()
        probabilistic_pca(values, z)
        moments_s, eigen_s = loaded - begin, time.perf_counter() - loaded  # loading; PCA
    elif route == "sketch":  # no scatter: 1 + 6 passes over the files (all in the moments column)
        sketched_principal_components(lambda: (image_to_points(to_signed(part))[1].reshape(len(part), -1)
                                               for part in stream_collection(args.source, resolution, chunk=args.chunk)), z)
        moments_s, eigen_s = time.perf_counter() - begin, 0.0
    else:
        chunks = (image_to_points(to_signed(part))[1].reshape(len(part), -1)
                  for part in stream_collection(args.source, resolution, chunk=args.chunk))
        moments = streamed_moments(chunks)
        streamed = time.perf_counter()
        _, covariance = moments.covariance()
        top_eigenpairs(covariance, z, method=route)
        moments_s, eigen_s = streamed - begin, time.perf_counter() - streamed
    _, peak = peak_mb()
    print(json.dumps({"moments_s": moments_s, "eigen_s": eigen_s, "peak_mb": peak, "start_mb": at_start}))


def start_main(args: argparse.Namespace) -> list[dict]:
    """Generate each collection, time each route on it in a fresh process, print the table."""
    rows = []
    for side in args.resolutions:
        for count in args.images:
            float_mb = count * side * side * 3 * 4 / 2**20
            with tempfile.TemporaryDirectory() as folder:
                write_collection(Path(folder), count, side, args.shard_size)
                for route in args.routes:
                    if route == "baseline" and float_mb > args.baseline_max_mb:
                        continue
                    command = [sys.executable, __file__, "--start-worker", route, "--source", folder,
                               "--resolution", str(side), "--latent-dim", str(args.latent_dim),
                               "--chunk", str(args.chunk), "--threads", str(args.threads)]
                    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
                    result = subprocess.run(command, capture_output=True, text=True, env=env)
                    if result.returncode != 0:
                        raise SystemExit(f"bench_scale: the {route} start of {count} images at {side} px failed:\n"
                                         f"{result.stderr[-3000:]}")
                    measured = json.loads(result.stdout.strip().splitlines()[-1])
                    rows.append({"images": count, "side": side, "float_mb": float_mb, "route": route, **measured})
                    print(f"{count} images at {side} px, {route}: {measured}", file=sys.stderr, flush=True)
    print(f"\n{args.latent_dim} components, chunks of {args.chunk} images, {args.threads} thread(s) per process; "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}. Baseline: {ROUTES['baseline']}: its 'moments' column "
          "is loading the whole collection, its 'eigen' column the in-memory PCA.\n")
    print(start_table(rows))
    return rows


def start_table(rows: list[dict], header: bool = True) -> str:
    lines = ["| images | side | values | float32 collection MB | route | moments s | eigen s | total s | peak RSS MB "
             "| peak above start MB |", "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"] if header else []
    lines += [f"| {r['images']} | {r['side']} | {r['side'] ** 2 * 3} | {r['float_mb']:.0f} | {ROUTES[r['route']]} | "
              f"{r['moments_s']:.2f} | {r['eigen_s']:.2f} | {r['moments_s'] + r['eigen_s']:.2f} | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] - r['start_mb']:.0f} |" for r in rows]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny:32", "tiny:64", "cnp_tiny:32"],
                        metavar="PRESET:BATCH", help="presets and global batches to measure")
    parser.add_argument("--data", default="faces", help="the presets' data source (default: the packaged faces)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warm-up", type=int, default=3, help="steps before the clock starts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of 1 and 2 processes")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--part", choices=("ddp", "start"), default="ddp",
                        help="ddp: steps/s of 1 and 2 processes; start: the streamed PCA start from disk")
    start = parser.add_argument_group("--part start")
    start.add_argument("--images", type=int, nargs="+", default=[1000, 5000, 10_000, 50_000],
                       help="collection sizes to generate")
    start.add_argument("--resolutions", type=int, nargs="+", default=[32, 64], help="image sides (RGB)")
    start.add_argument("--shard-size", type=int, default=1000, help="images per .npy shard")
    start.add_argument("--latent-dim", type=int, default=64, help="principal components")
    start.add_argument("--chunk", type=int, default=256, help="images per streamed chunk")
    start.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES), help="routes to time")
    start.add_argument("--baseline-max-mb", type=float, default=4096.0,
                       help="run the in-memory baseline only for collections of at most this float32 size")
    start.add_argument("--threads", type=int, default=1, help="torch threads of each timed process")
    parser.add_argument("--start-worker", help=argparse.SUPPRESS)  # a route, timed in this process
    parser.add_argument("--source", help=argparse.SUPPRESS)  # of a start worker
    parser.add_argument("--resolution", type=int, help=argparse.SUPPRESS)  # of a start worker
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)  # of a worker
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)  # of a worker
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)  # of a worker
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        worker(arguments)
    elif arguments.start_worker:
        start_worker(arguments)
    elif arguments.part == "start":
        start_main(arguments)
    else:
        main(arguments)
