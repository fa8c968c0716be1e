"""`fit_signal`: fit one SIREN to one signal, for any task, and write the run folder.

Run folder: `config.json`, TensorBoard events (every loss term, the task metric, images),
`siren.pt` (the fitted network; `load_siren` rebuilds it), the task's artefact (PNG / wav / mp4 /
PLY / field) and `metrics.json` (`task`, `preset`, `steps`, `seconds` of training, `seconds_per_step`
and the task metrics). `seconds` and `--time-budget` count training steps only, not the periodic
evaluations, so budgets compare recipes fairly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time

import numpy as np
import torch

from ..export import export_siren, load_exported_siren
from ..runs import prepare_run_dir, write_json
from ..siren import Siren
from . import signals
from .config import FitConfig
from .fields import HelmholtzTask, SdfTask, WaveTask
from .tasks import AudioTask, ImageTask, PoissonTask, Task, VideoTask

log = logging.getLogger(__name__)
SIREN_FILE = "siren.pt"


def load_task(config: FitConfig, input: str | os.PathLike | None = None,
              second_input: str | os.PathLike | None = None) -> Task:
    """The task of `config.task` on its input file (or on the task's default signal when None)."""
    c = config
    if c.task in ("helmholtz", "wave"):
        if input is not None:
            raise ValueError(f"load_task: task {c.task!r} takes no input file (its options are FitConfig fields)")
        return HelmholtzTask(c) if c.task == "helmholtz" else WaveTask(c)
    if c.task == "image":
        image = signals.load_image(input, size=c.size) if input else signals.packaged_image("camera", size=c.size)
        return ImageTask(c, image)
    if c.task == "audio":
        samples, rate = signals.load_audio(input) if input else (signals.tone_sequence(), 8000)
        return AudioTask(c, samples, rate)
    if c.task == "video":
        frames = (signals.load_video(input) if input
                  else signals.moving_crop_video(signals.packaged_image("astronaut", size=256)))
        return VideoTask(c, frames)
    if c.task == "sdf":
        return SdfTask(c, *(signals.load_oriented_points(input) if input else signals.torus_points()))
    grey = (signals.load_image(input, size=c.size, grey=True) if input
            else signals.packaged_image("camera", size=c.size, grey=True))[..., 0] * 2 - 1
    if c.task == "poisson_blend":
        other = (signals.load_image(second_input, size=c.size, grey=True) if second_input
                 else signals.packaged_image("astronaut", size=c.size, grey=True))[..., 0] * 2 - 1
        grey = c.blend_alpha * grey + (1 - c.blend_alpha) * other  # grad of the blend = blend of the grads
    return PoissonTask(c, grey, "laplacian" if c.task == "poisson_lapl" else "gradient")


def save_siren(path: str | os.PathLike, siren: Siren, **meta) -> None:
    """A fitted SIREN as a standalone file (`hypersiren.export_siren`'s format; `load_siren` reads it)."""
    export_siren(siren.params(), path, config=siren.config, meta=meta)


load_siren = load_exported_siren


def learning_rate(config: FitConfig, step: int, elapsed: float = 0.0, time_budget_s: float | None = None) -> float:
    """Constant `lr`, or a cosine from `lr` to `lr_final` over the run: its progress is the larger of
    `step / steps` and `elapsed / time_budget_s`, so the schedule ends when either runs out."""
    if config.lr_final is None:
        return config.lr
    progress = step / max(config.steps, 1)
    if time_budget_s:
        progress = max(progress, elapsed / time_budget_s)
    progress = min(progress, 1.0)
    return config.lr_final + 0.5 * (config.lr - config.lr_final) * (1 + math.cos(math.pi * progress))


def fit_signal(
    config: FitConfig,
    run_dir: str | os.PathLike,
    *,
    input: str | os.PathLike | None = None,
    second_input: str | os.PathLike | None = None,
    time_budget_s: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
    preset: str | None = None,
    task: Task | None = None,
) -> dict:
    """Fit a SIREN to the signal of `config.task` for `config.steps` steps (or until `time_budget_s`
    seconds of training) and write the run folder (see the module docstring). Returns the metrics.

    `task` may be passed pre-built (e.g. to reuse loaded data across runs); it must match `config`.
    """
    run_dir = prepare_run_dir(run_dir, overwrite=overwrite)
    task = task or load_task(config, input, second_input)
    write_json(run_dir / "config.json", {"preset": preset, "input": None if input is None else str(input),
                                         "second_input": None if second_input is None else str(second_input),
                                         "time_budget_s": time_budget_s, "fit": dataclasses.asdict(config)})
    torch.manual_seed(config.seed)
    siren = Siren(task.in_dim, task.out_dim, hidden_dim=config.hidden_dim, depth=config.depth,
                  w0_first=config.w0_first, w0=config.w0)
    optimizer = torch.optim.Adam(siren.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    elapsed, step, shown = 0.0, 0, {}
    while step < config.steps and (time_budget_s is None or elapsed < time_budget_s):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, elapsed, time_budget_s)
        terms = task.loss(siren.params(), task.sample(generator))
        if not torch.isfinite(terms["total"]):
            save_siren(run_dir / SIREN_FILE, siren, task=config.task, step=step)
            raise FloatingPointError(f"fit_signal: the loss became {terms['total'].item()} at step {step}; "
                                     f"the last finite model is in {run_dir / SIREN_FILE} (try a lower lr)")
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(siren.parameters(), config.grad_clip)
        optimizer.step()
        elapsed += time.perf_counter() - start
        step += 1
        if step % config.log_every == 0 or step == 1:
            for name, value in terms.items():
                writer.add_scalar(f"loss/{name}", value.item(), step)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], step)
        if step % config.image_every == 0:
            shown = task.metrics(siren)
            _log_metrics(writer, task, siren, shown, step)
        if progress and (step % 10 == 0 or step == 1):
            metric = f"  {task.metric} {shown[task.metric]:.4g}" if task.metric in shown else ""
            print(f"\r{config.task} step {step}/{config.steps}  loss {terms['total'].item():.4g}{metric}  "
                  f"{step / elapsed:.1f} steps/s", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    save_siren(run_dir / SIREN_FILE, siren, task=config.task, step=step)
    final = task.metrics(siren, final=True)
    _log_metrics(writer, task, siren, final, step)
    writer.close()
    outputs = task.save_outputs(siren, run_dir)
    metrics = {"task": config.task, "preset": preset, "steps": step, "seconds": round(elapsed, 3),
               "seconds_per_step": round(elapsed / max(step, 1), 5), **final,
               "outputs": [p.name for p in outputs]}
    write_json(run_dir / "metrics.json", metrics)
    log.info("fit %s: %d steps in %.1f s: %s", config.task, step, elapsed, final)
    return metrics


def _log_metrics(writer, task: Task, siren: Siren, metrics: dict, step: int) -> None:
    for name, value in metrics.items():
        writer.add_scalar(f"metric/{name}", value, step)
    for name, image in task.images(siren).items():
        writer.add_image(name, np.clip(image, 0, 1), step, dataformats="HWC")
