"""Mixed precision: training step time of one prior preset in float32 against bf16 (and fp16 on CUDA),
and the evaluation table of the priors trained and scored in each.

    python benchmarks/bench_precision.py --preset tiny --data faces --holdout 20 --timed-steps 20 \
        --train-steps 2000 --markdown
    python benchmarks/bench_precision.py --preset tiny --data faces --holdout 20 --batch-size 8 \
        --timed-steps 3 --train-steps 5            # a smoke run of a few seconds

Part 1: one trainer per precision (`--precisions`, default float32 and bf16, plus fp16 on CUDA; the
baseline is float32), built alike from the same seed; the median time of `--timed-steps` training steps
of each, timed one step of each per round (`timing.interleaved_medians`, after a warm-up step), so
that the drifts of a shared machine hit every precision alike. A preset with a data-driven start
(`init_steps`: basis priors) runs five of its start steps (float32 in every precision) first. Ratios > 1
mean faster than float32. Part 2 (`--train-steps N` > 0, or `--budget S`): each precision trains N steps
(or S seconds; start included) in a fresh trainer and is scored on the held-out signals with the
modality's protocol, predicting in its own precision, next to the float32 prior scored in the other
precisions (the effect of evaluation alone) and the modality's baselines.
`--set section.field=value` changes the preset as train_prior.py's does; `--device` (default: CUDA when
present) runs everything there.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch

import hypersiren  # noqa: F401  (registers the modalities and presets)
from hypersiren.devices import PRECISIONS, resolve_device
from hypersiren.prior import Trainer, make_trainer, model_predictor
from hypersiren.prior.commands import configure
from hypersiren.prior.presets import PRESETS
from timing import describe_device, interleaved_medians, synchronize

START_STEPS = 5  # data-driven start steps before the timed steps (part 1)


def build(args, precision: str, **overrides) -> Trainer:
    """A fresh trainer of the preset in `precision`, on `args.device`, with its signals."""
    modality, signals, model_config, train_config = configure(
        args.preset, args.set, data_shortcuts={"source": args.data, "holdout": args.holdout, "limit": args.limit})
    train_config = dataclasses.replace(train_config, precision=precision, checkpoint_every_s=1e9, **overrides,
                                       **({"batch_size": args.batch_size} if args.batch_size else {}))
    return make_trainer(model_config, train_config, modality, signals.to(args.device),
                        tempfile.mkdtemp(prefix=f"bench_precision_{precision}_"), device=args.device)


def step_times(args) -> list[dict]:
    trainers = {}
    for precision in args.precisions:
        trainer = build(args, precision)
        if not trainer.initialised:  # a data-driven start (basis heads): a few of its steps, then training steps
            trainer.config = dataclasses.replace(trainer.config, init_steps=min(trainer.config.init_steps, START_STEPS))
            trainer.initialise()
        trainers[precision] = trainer
    medians = interleaved_medians({p: t.train_step for p, t in trainers.items()}, args.timed_steps,
                                  device=args.device)
    base = medians[args.precisions[0]]
    return [{"precision": p, "step_s": s, "speed": base / s} for p, s in medians.items()]


def scores(args) -> dict:
    """The modality's evaluation of a prior trained in each precision (and the float32 one scored in each)."""
    results, trained = {}, {}
    limit = {"steps": args.train_steps} if args.train_steps else {}
    for precision in args.precisions:
        trainer = build(args, precision, time_budget_s=args.budget, **limit)
        trainer.run()
        trained[precision] = trainer
        print(f"{precision}: {trainer.step} steps in {trainer.elapsed:.1f} s", flush=True)
    modality = trained[args.precisions[0]].modality
    test = modality.load("heldout").to(args.device)
    pairs = [(p, p) for p in args.precisions] + [(args.precisions[0], p) for p in args.precisions[1:]]
    for train, evaluate in pairs:
        synchronize(args.device)
        start = time.perf_counter()
        predict = model_predictor(trained[train].model, precision=evaluate)
        results[f"trained {train}, scored {evaluate}"] = modality.evaluate(predict, test)
        synchronize(args.device)
        print(f"scored the {train} prior in {evaluate}: {time.perf_counter() - start:.1f} s", flush=True)
    for name, predict in modality.baselines(modality.load("train").to(args.device)).items():
        results[name] = modality.evaluate(predict, test)
    print(f"\n{test.shape[0]} held-out signals\n")
    print(modality.report(results))
    return results


def main(args) -> dict:
    args.device = resolve_device(args.device)
    if args.precisions is None:
        args.precisions = ["float32", "bf16"] + (["fp16"] if args.device.type == "cuda" else [])
    if args.precisions[0] != "float32":
        args.precisions = ["float32"] + [p for p in args.precisions if p != "float32"]
    print(f"# bench_precision: preset {args.preset}, torch {torch.__version__}, {describe_device(args.device)}; "
          f"base = float32")
    rows = step_times(args)
    print("| precision | step_s | speed vs float32 |\n|---|---|---|")
    for row in rows:
        print(f"| {row['precision']} | {row['step_s']:.4f} | {row['speed']:.2f}x |")
    out = {"steps": rows}
    if args.train_steps or args.budget:
        out["scores"] = scores(args)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--data", default=None, help="the data source (default: the preset's)")
    parser.add_argument("--holdout", type=int, default=None, help="signals kept out of training and scored")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=None,
                        help="default: float32 bf16 (and fp16 on CUDA); float32 is always the base")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--timed-steps", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=0, help="part 2: training steps per precision (0: skip)")
    parser.add_argument("--budget", type=float, default=None, help="part 2: seconds of training per precision")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, ... (default: CUDA when present)")
    parser.add_argument("--markdown", action="store_true", help="(tables are always markdown)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
