"""Train a prior (a HyperSiren, or the Conditional Neural Process baseline) on a collection of signals.

    python train/train_prior.py --preset faces --data faces --holdout 20 --out runs/faces
    python train/train_prior.py --preset cnp_tiny --data faces --holdout 20 --out runs/faces_cnp
    python train/train_prior.py --preset celeba32 --data ../shared/data/celeba64/celeba64_train.npz \
        --holdout 500 --set data.resolution=32 --out runs/celeba32
    torchrun --standalone --nproc_per_node 2 train/train_prior.py --preset tiny --data faces --out runs/tiny2

A preset names its modality (today: images), its data configuration, model and training recipe.
`--data` replaces the data source (images: `faces`, an `.npz`/`.npy` array of uint8 `[N, H, W, C]`,
a CelebA root or a folder), `--holdout K` keeps the last K signals out of training, `--limit N` uses the
first N. `--set section.field=value` overrides any field of `data.*` (e.g. `data.resolution`), `model.*`
or `train.*`; `--steps`, `--time-budget`, `--batch-size`, `--micro-batch`, `--seed` and `--precision`
(`float32`; `bf16` autocast on any device; `fp16` with a gradient scaler on CUDA) are shortcuts for
`train.*`. The run folder gets `config.json`, TensorBoard events (loss terms, and every `--image-every`
steps and at the end a context / prediction / truth picture of the first `--image-count` training
signals), `checkpoint.pt` (which alone rebuilds the run: `--resume`) and `metrics.json`. `--device`
(default: CUDA when present, else the CPU) is where the model and data live.

Several processes (torchrun, `python -m torch.distributed.run`): data parallel over the processes, NCCL
on GPUs (each process on cuda:LOCAL_RANK; pass `--device cuda`, not an index) and gloo on CPUs. Every
process draws the whole batch of `--batch-size` signals and computes the loss on its share of them
(`--micro-batch N`: at most N signals at once), so a step, and the checkpoint, are the same for any number
of processes up to float rounding, and `--resume` takes any number. Rank 0 alone writes the run folder
and logs; a stop (SIGINT / SIGTERM to torchrun, a non-finite loss) stops every process after the same step.

Faults. Checkpoints are written atomically every `train.checkpoint_every_s` seconds, every
`train.checkpoint_every_steps` steps when set, and at the end, so a killed run (even kill -9) loses only the
steps since its last checkpoint and `--resume` continues it exactly (bit-identically on the CPU). While it
runs, a run holds `OUT/run.lock` (its pid and host): a second run into the same folder, `--resume` and
`--overwrite` included, is refused; a lock left by a process of this host that has ended is taken over with
a warning. Exit status (`hypersiren.config.run_main`): 0 done; 130 / 143 after SIGINT / SIGTERM, which
stop the run after its current step with a checkpoint (a second signal stops at once, keeping the last
one); 2 when the run cannot start or go on (bad settings or data, the folder held by another run or not
writable, a non-finite loss, a checkpoint that cannot be written), with one message on stderr and the last
good checkpoint kept.
"""

from __future__ import annotations

import argparse
import logging

import hypersiren  # noqa: F401  (registers the modalities and their presets)
from hypersiren.config import non_negative_int, positive_float, positive_int, random_seed, run_main
from hypersiren.devices import PRECISIONS, resolve_device
from hypersiren.prior.commands import train_prior
from hypersiren.prior.distributed import join_torchrun, launched_rank
from hypersiren.prior.presets import PRESETS


def main(args: argparse.Namespace) -> dict:
    with join_torchrun(resolve_device(args.device)) as ranks:  # a single process unless started by torchrun
        return train_prior(
            preset=args.preset, out=args.out, overrides=args.set, resume=args.resume, overwrite=args.overwrite,
            shortcuts={"steps": args.steps, "time_budget": args.time_budget, "batch_size": args.batch_size,
                       "micro_batch": args.micro_batch, "seed": args.seed, "precision": args.precision},
            data_shortcuts={"data": args.data, "holdout": args.holdout, "limit": args.limit},
            device=ranks.device, image_every=args.image_every, image_count=args.image_count,
            image_context=args.image_context, ranks=ranks)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="faces")
    parser.add_argument("--data", default=None, help="the data source (default: the preset's)")
    parser.add_argument("--holdout", type=non_negative_int, default=None,
                        help="keep the last K signals out of training")
    parser.add_argument("--limit", type=positive_int, default=None, help="use only the first N signals of the source")
    parser.add_argument("--steps", type=non_negative_int, default=None, help="override the preset's number of steps")
    parser.add_argument("--time-budget", type=positive_float, default=None,
                        help="stop after this many seconds of training")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="signals per step, over all processes")
    parser.add_argument("--micro-batch", type=positive_int, default=None,
                        help="at most this many signals per forward and backward in a process (gradients add up; "
                             "the step is the same)")
    parser.add_argument("--seed", type=random_seed, default=None)
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="what the forwards compute in: float32 (the preset's default), bf16 autocast (any "
                             "device) or fp16 with a gradient scaler (CUDA); --resume may change it")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a preset field, e.g. --set train.lr=1e-4 --set data.resolution=64 "
                             "(sections: data, model, train)")
    parser.add_argument("--image-every", type=non_negative_int, default=250,
                        help="write a context / prediction / truth picture to TensorBoard every N steps and at "
                             "the end (0: never)")
    parser.add_argument("--image-count", type=positive_int, default=4, help="training signals in that picture")
    parser.add_argument("--image-context", type=positive_int, default=100,
                        help="context points per signal in that picture")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--out", required=True, help="run folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    group.add_argument("--overwrite", action="store_true", help="delete --out and start over")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO if launched_rank() == 0 else logging.WARNING, format="%(message)s")
    run_main(main, parse_args())
