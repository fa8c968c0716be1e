"""The prior commands as library functions, for any modality: train (or resume) a run, and evaluate a
trained prior against its modality's baselines. `train/train_prior.py`, `evaluate/eval_prior.py` and the
one-command demo are thin wrappers around them.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from ..config import apply_overrides
from ..devices import check_precision
from ..runs import Interrupted, StopRequest, prepare_run_dir, run_lock, stop_requests, write_json
from .distributed import Ranks
from .modality import get_modality
from .predictors import model_predictor
from .presets import get_preset
from .refine import RefineConfig, refined_predictor
from .training import StepLog, Trainer, load_cnp, load_prior, make_trainer, resume_trainer

SHORTCUTS = (("steps", "steps"), ("time_budget", "time_budget_s"), ("batch_size", "batch_size"), ("seed", "seed"),
             ("micro_batch", "micro_batch"), ("precision", "precision"))
# the shortcuts a resumed run takes. Precision is one: like the device (which may change too), it is how
# a step is computed, not what the run learns, and an fp16 run of a GPU must be able to go on on a CPU
# (in bf16 or float32); the steps after such a change are close to the old precision's, not identical.
RESUME_SHORTCUTS = ("steps", "time_budget", "micro_batch", "precision")
DATA_SHORTCUTS = (("data", "source"), ("holdout", "holdout"), ("limit", "limit"))


def configure(preset_name: str, overrides: list[str], *, shortcuts: dict | None = None,
              data_shortcuts: dict | None = None):
    """A preset's (modality, model config, TrainConfig) after `section.field=value` overrides (sections
    `data`, `model`, `train`) and shortcut flags (`train.*` and `data.*` fields); a field set both ways is
    an error. The model's coordinate and value dimensions follow the data (loaded here)."""
    preset = get_preset(preset_name)
    shortcuts = {k: v for k, v in (shortcuts or {}).items() if v is not None}
    data_shortcuts = {k: v for k, v in (data_shortcuts or {}).items() if v is not None}
    given = {p.split("=")[0].strip() for p in overrides}
    both = [f"{section}.{field}" for section, fields in (("train", shortcuts), ("data", data_shortcuts))
            for field in fields if f"{section}.{field}" in given]
    if both:
        raise ValueError(f"train_prior: {', '.join(both)} given both by --set and by its own flag; keep one")
    data = dataclasses.replace(preset.data, **data_shortcuts)
    configs = apply_overrides({"data": data, "model": preset.model, "train": preset.train}, overrides)
    modality = get_modality(preset.modality)(configs["data"])
    signals = modality.load("train")
    model = dataclasses.replace(configs["model"], coord_dim=modality.coord_dim, value_dim=modality.value_dim(signals))
    return modality, signals, model, dataclasses.replace(configs["train"], **shortcuts)


def train_prior(*, preset: str, out: str | Path, overrides: list[str] = (), shortcuts: dict | None = None,
                data_shortcuts: dict | None = None, resume: bool = False, overwrite: bool = False,
                device: torch.device | str = "cpu", image_every: int = 250, image_count: int = 4,
                image_context: int = 100, progress: bool = True, ranks: Ranks | None = None) -> dict:
    """Train a new run of `preset` into `out` (or `resume` it from its checkpoint); TensorBoard scalars and
    previews, `config.json`, `checkpoint.pt` and `metrics.json` in the run folder. Returns the metrics.

    The run holds the folder's lock throughout (`runs.run_lock`: `RunFolderError` if another run holds it or
    the folder is not writable). SIGINT / SIGTERM stop it after the current step with a checkpoint and raise
    `runs.Interrupted`; a non-finite loss raises `FloatingPointError` and a failed checkpoint write
    `RunFolderError`, both keeping the last good checkpoint.

    `ranks`: this process among several started by torchrun (`distributed.join_torchrun`). Every process
    loads the data and trains; rank 0 alone makes and locks the folder and writes in it, and an error
    there stops every process."""
    ranks = Ranks() if ranks is None else ranks
    overrides = list(overrides)
    if resume and overrides:
        raise ValueError("train_prior: --set changes a new run's configuration; a resumed run keeps its own "
                         "(use --steps / --time-budget to extend it)")
    if image_every < 0 or image_count < 1 or image_context < 1:
        raise ValueError(f"train_prior: expected --image-every >= 0, --image-count >= 1 and --image-context >= 1, "
                         f"got {image_every}, {image_count} and {image_context}")
    if not resume:
        names = {arg: field for arg, field in SHORTCUTS}
        modality, signals, model_config, train_config = configure(
            preset, overrides, shortcuts={names[k]: v for k, v in (shortcuts or {}).items()},
            data_shortcuts={dict(DATA_SHORTCUTS)[k]: v for k, v in (data_shortcuts or {}).items()})
        check_precision(train_config.precision, device, where="train_prior")  # fp16 on a CPU: before the folder
    run_dir = Path(out)
    with ExitStack() as folder, stop_requests() as stop:
        # bad settings fail before the folder is made; the lock is also the check that it is writable
        ranks.on_main(lambda: folder.enter_context(run_lock(prepare_run_dir(out, resume=resume, overwrite=overwrite))))
        if resume:
            extend = {k: v for k, v in (shortcuts or {}).items() if k in RESUME_SHORTCUTS and v is not None}
            trainer = resume_trainer(run_dir, steps=extend.get("steps"), time_budget_s=extend.get("time_budget"),
                                     micro_batch=extend.get("micro_batch"), precision=extend.get("precision"),
                                     device=device, ranks=ranks)
            shown = trainer.modality.load("train")[:image_count] if ranks.main else None
        else:
            trainer = make_trainer(model_config, train_config, modality, signals.to(device), run_dir, device=device,
                                   ranks=ranks)
            ranks.on_main(lambda: write_json(run_dir / "config.json", {
                "preset": preset, "overrides": overrides, "kind": trainer.kind, **modality.state(),
                "model": dataclasses.asdict(model_config), "train": dataclasses.asdict(train_config),
            }))
            shown = signals[:image_count]
        return _run(trainer, run_dir, shown, stop=stop, image_every=image_every, image_context=image_context,
                    progress=progress)


def _run(trainer: Trainer, run_dir: Path, shown: torch.Tensor | None, *, stop: StopRequest, image_every: int,
         image_context: int, progress: bool) -> dict:
    """Train with TensorBoard scalars and previews of the signals `shown`; write `metrics.json` (rank 0 alone
    writes and prints). `Interrupted` when `stop` was requested (of rank 0; after the checkpoint)."""
    from torch.utils.tensorboard import SummaryWriter

    main = trainer.ranks.main
    writer = SummaryWriter(str(run_dir)) if main else None
    start, total = time.perf_counter(), trainer.config.steps

    def write_images(step: int) -> None:
        picture = trainer.preview(shown, context_points=image_context)
        writer.add_image("preview/context_prediction_truth", picture.cpu(), step, dataformats="HWC")

    def on_step(entry: StepLog) -> None:
        writer.add_scalar("train/loss", entry.loss, entry.step)
        for name, value in entry.terms.items():
            writer.add_scalar(f"train/{name}", value, entry.step)
        if image_every and entry.step % image_every == 0:
            write_images(entry.step)
        if progress and (entry.step % 10 == 0 or entry.step == total):
            rate = entry.step / max(trainer.elapsed, 1e-9)
            shown_terms = "  ".join(f"{k} {v:.4g}" for k, v in entry.terms.items())
            print(f"\rstep {entry.step}/{total}  loss {entry.loss:.4f}  {shown_terms}  {rate:.1f} steps/s", end="",
                  file=sys.stderr, flush=True)

    try:
        logs = trainer.run(on_step if main else None, stop=lambda: stop.requested)
        signum = trainer.ranks.share(stop.signum)
        if signum is not None:
            raise Interrupted(signum, trainer.step, run_dir)
        if main and trainer.start_info is not None:  # a data-driven start (basis priors): its measurements at step 0
            for name in ("noise", "ppca_noise", "fit_error"):
                writer.add_scalar(f"start/{name}", trainer.start_info[name], 0)
        if main and image_every and (trainer.step % image_every != 0 or not logs):
            write_images(trainer.step)
    finally:
        if main:
            if progress:
                print(file=sys.stderr)
            writer.close()
    tail = logs[-min(len(logs), 50):] if logs else []
    metrics = {
        "steps": trainer.step,
        "seconds": round(trainer.elapsed, 2),
        "wall_seconds_this_segment": round(time.perf_counter() - start, 2),
        "device": str(trainer.device),
        "processes": trainer.ranks.world_size,  # of this segment
        "last50": {name: sum(e.terms[name] for e in tail) / len(tail) for name in tail[0].terms} if tail else None,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "start": trainer.start_info,
    }
    if main:
        write_json(run_dir / "metrics.json", metrics)
        print(f"trained {metrics['steps']} steps in {metrics['seconds']} s; checkpoint in {run_dir}")
    return metrics


def evaluate_prior(checkpoint: str | Path, *, out: str | Path, cnp: str | Path | None = None,
                   data: str | None = None, limit: int | None = None, seed: int = 0, residual: bool = False,
                   refine_steps: int = 0, refine_lr: float = 1e-2, device: torch.device | str = "cpu",
                   precision: str = "float32") -> dict:
    """Score a trained prior with its modality's protocol on the run's held-out signals (or every signal of
    `data`), next to the modality's baselines and, with `cnp`, a CNP trained on the same data. Writes
    `out` (JSON) and `out` with suffix `.md` (the tables); returns the report. `precision`: what the prior
    and the CNP predict in (`devices.autocast`; their predictions come back in float32 for the metrics);
    the baselines compute in float32."""
    check_precision(precision, device, where="eval_prior")
    prior = load_prior(checkpoint, device=device)
    modality, model = prior.modality, prior.model
    baseline_cnp = None
    if cnp is not None:
        baseline_cnp = load_cnp(cnp, modality=modality.name, device=device)
        if baseline_cnp.state["data"] != prior.state["data"]:
            differ = {k: (v, baseline_cnp.state["data"].get(k)) for k, v in prior.state["data"].items()
                      if baseline_cnp.state["data"].get(k) != v}
            raise ValueError("eval_prior: expected the CNP to train on the prior's data, got different "
                             + ", ".join(f"{k} (prior {a!r}, cnp {b!r})" for k, (a, b) in differ.items()))
    train = modality.load("train").to(device)
    if data is None:
        test = modality.load("heldout")
    else:
        test = dataclasses.replace(modality.data, source=data, holdout=0, limit=None)
        test = type(modality)(test).load("all")
    test = test[:limit].to(device)
    if modality.value_dim(test) != model.config.value_dim:
        raise ValueError(f"eval_prior: the prior predicts {model.config.value_dim} channel(s) but the test signals "
                         f"have {modality.value_dim(test)}")
    refine = RefineConfig(steps=refine_steps, lr=refine_lr, residual=residual,
                          code="coeffs" if model.config.heads == "low_rank" else "latent")
    predictors = {"prior": refined_predictor(model, refine, modality, precision=precision),
                  **modality.baselines(train)}
    if baseline_cnp is not None:
        predictors["cnp"] = model_predictor(baseline_cnp.model, precision=precision)
    results = {name: modality.evaluate(predict, test, seed=seed) for name, predict in predictors.items()}
    report = {**results["prior"], "signals": int(test.shape[0]), "seed": seed, "precision": precision,
              "modality": modality.name,
              "data": dataclasses.asdict(modality.data), "baselines": {k: v for k, v in results.items() if k != "prior"}}
    out = Path(out)
    write_json(out, report)
    tables = modality.report(results)
    out.with_suffix(".md").write_text(tables + "\n")
    print(tables)
    return report
