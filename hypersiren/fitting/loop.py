"""`fit_signal`: fit one SIREN to one signal, for any task, and write the run folder.

Run folder: `config.json`, TensorBoard events (every loss term, the task metric, images),
`siren.pt` (the fitted network; `load_siren` rebuilds it), the task's artefact (PNG / wav / mp4 /
PLY / field) and `metrics.json` (`task`, `preset`, `steps`, `seconds` of training, `seconds_per_step`
and the task metrics). `seconds` and `--time-budget` count training steps only, not the periodic
evaluations, so budgets compare recipes fairly.

Devices: the SIREN, the optimiser state and the task's data live on `device`; random draws are made
on the CPU (one generator, so a seed fits the same points everywhere) and moved there; metrics and
saved files come back to the CPU.

Precision (`FitConfig.precision`): each step's loss runs under `devices.autocast` ("bf16" on any device,
"fp16" with a gradient scaler on CUDA), the backward outside it; the SIREN's weights, Adam and the metrics
stay float32. The SIREN's derivatives (closed form or autograd) are then computed in bfloat16 / float16 and
have its precision (about 3 significant digits for bf16): losses on derivatives (Poisson, SDF, Helmholtz,
wave) are noisier than on values, and a high w0 amplifies the rounding of the first layer.
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

from ..devices import adam, autocast, check_precision, grad_scaler, resolve_device
from ..export import export_siren, load_exported_siren
from ..io import load_audio, load_image, load_oriented_points, load_video, moving_crop_video, packaged_image
from ..io import tone_sequence, torus_points
from ..metrics import to_signed
from ..runs import prepare_run_dir, write_json
from ..siren import Siren
from .config import FitConfig
from .fields import HelmholtzTask, SdfTask, WaveTask
from .tasks import AudioTask, ImageTask, PoissonTask, Task, VideoTask

log = logging.getLogger(__name__)
SIREN_FILE = "siren.pt"


# What each task fits when no file is given: scikit-image images, a generated tone sequence (8 kHz), a
# panning clip of `astronaut` (from a 256 x 256 crop) and a torus.
DEFAULT_IMAGE, DEFAULT_SECOND_IMAGE, DEFAULT_VIDEO_IMAGE = "camera", "astronaut", "astronaut"
DEFAULT_AUDIO_RATE, DEFAULT_VIDEO_SOURCE_SIZE = 8000, 256


def load_task(config: FitConfig, source: str | os.PathLike | None = None,
              second_source: str | os.PathLike | None = None, *, device: torch.device | str = "cpu") -> Task:
    """The task of `config.task` on its input file `source` (or on the task's default signal when None),
    with its data on `device`. `second_source`: poisson_blend's second image."""
    c = config
    if c.task in ("helmholtz", "wave"):
        if source is not None:
            raise ValueError(f"load_task: task {c.task!r} takes no input file (its options are FitConfig fields)")
        return HelmholtzTask(c, device=device) if c.task == "helmholtz" else WaveTask(c, device=device)
    if second_source is not None and c.task != "poisson_blend":
        raise ValueError(f"load_task: only poisson_blend takes a second input, task {c.task!r} got {second_source}")
    if c.task == "image":
        image = load_image(source, size=c.size) if source is not None else packaged_image(DEFAULT_IMAGE, size=c.size)
        return ImageTask(c, image, device=device)
    if c.task == "audio":
        samples, rate = load_audio(source) if source is not None else (tone_sequence(rate=DEFAULT_AUDIO_RATE),
                                                                       DEFAULT_AUDIO_RATE)
        return AudioTask(c, samples, rate, device=device)
    if c.task == "video":
        frames = (load_video(source) if source is not None
                  else moving_crop_video(packaged_image(DEFAULT_VIDEO_IMAGE, size=DEFAULT_VIDEO_SOURCE_SIZE)))
        return VideoTask(c, frames, device=device)
    if c.task == "sdf":
        return SdfTask(c, *(load_oriented_points(source) if source is not None else torus_points()), device=device)
    grey = _grey_image(source, DEFAULT_IMAGE, c.size)
    if c.task == "poisson_blend":
        other = _grey_image(second_source, DEFAULT_SECOND_IMAGE, c.size)
        grey = c.blend_alpha * grey + (1 - c.blend_alpha) * other  # grad of the blend = blend of the grads
    return PoissonTask(c, grey, "laplacian" if c.task == "poisson_lapl" else "gradient", device=device)


def _grey_image(source: str | os.PathLike | None, default: str, size: int) -> np.ndarray:
    """A grey image `[size, size]` in [-1, 1], from a file or a packaged image."""
    image = load_image(source, size=size, grey=True) if source is not None else packaged_image(default, size=size, grey=True)
    return to_signed(torch.from_numpy(image[..., 0])).numpy()


def save_siren(path: str | os.PathLike, siren: Siren, **meta) -> None:
    """A fitted SIREN as a standalone file (`hypersiren.export_siren`'s format; `load_siren` reads it)."""
    export_siren(siren.params(), path, config=siren.config, meta=meta)


load_siren = load_exported_siren


def learning_rate(config: FitConfig, step: int, elapsed: float = 0.0, time_budget_s: float | None = None) -> float:
    """Constant `lr`, or a cosine from `lr` to `lr_final` over the run: its progress is the larger of
    `step / steps` and `elapsed / time_budget_s`, so the schedule ends when either runs out."""
    if config.lr_final is None:
        return config.lr
    progress = step / config.steps
    if time_budget_s is not None:
        progress = max(progress, elapsed / time_budget_s)
    progress = min(progress, 1.0)
    return config.lr_final + 0.5 * (config.lr - config.lr_final) * (1 + math.cos(math.pi * progress))


def fit_signal(
    config: FitConfig,
    run_dir: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    second_source: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    time_budget_s: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
    preset: str | None = None,
    task: Task | None = None,
) -> dict:
    """Fit a SIREN to the signal of `config.task` (the file `source`, or the task's default signal) for
    `config.steps` steps (or until `time_budget_s` seconds of training) on `device` (a name as
    `hypersiren.devices.resolve_device` takes it, or a `torch.device`), and write the run folder (see
    the module docstring). Returns the metrics.

    `task` may be passed pre-built (e.g. to reuse loaded data across runs); it must match `config` and
    `device`, and then `source` and `second_source` must be None.
    """
    device = resolve_device(str(device))
    _check_arguments(config, device, task, source, second_source, time_budget_s)
    run_dir = prepare_run_dir(run_dir, overwrite=overwrite)
    if task is None:
        task = load_task(config, source, second_source, device=device)
    write_json(run_dir / "config.json", {"preset": preset, "source": None if source is None else str(source),
                                         "second_source": None if second_source is None else str(second_source),
                                         "device": str(device), "time_budget_s": time_budget_s,
                                         "fit": dataclasses.asdict(config)})
    torch.manual_seed(config.seed)  # the same initial SIREN on every device: initialised on the CPU, then moved
    siren = Siren(task.in_dim, task.out_dim, hidden_dim=config.hidden_dim, depth=config.depth,
                  w0_first=config.w0_first, w0=config.w0).to(device)
    optimizer = adam(siren.parameters(), lr=config.lr)
    scaler = grad_scaler(config.precision, device)  # fp16 only
    generator = torch.Generator().manual_seed(config.seed)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    elapsed, step, shown = 0.0, 0, {}
    while step < config.steps and (time_budget_s is None or elapsed < time_budget_s):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, elapsed, time_budget_s)
        batch = task.sample(generator)
        with autocast(config.precision, device):
            terms = task.loss(siren.params(), batch)
        if not torch.isfinite(terms["total"]):
            save_siren(run_dir / SIREN_FILE, siren, task=config.task, step=step)
            raise FloatingPointError(f"fit_signal: the loss became {terms['total'].item()} at step {step}; "
                                     f"the last finite model is in {run_dir / SIREN_FILE} (try a lower lr)")
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            terms["total"].backward()
        else:
            scaler.scale(terms["total"]).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(siren.parameters(), config.grad_clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)  # skipped when a gradient is not finite (the scale then drops)
            scaler.update()
        if device.type == "cuda":  # kernels run asynchronously: wait for the step before timing it
            torch.cuda.synchronize(device)
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
               "seconds_per_step": round(elapsed / max(step, 1), 5), "device": str(device), **final,
               "outputs": [p.name for p in outputs]}
    write_json(run_dir / "metrics.json", metrics)
    log.info("fit %s: %d steps in %.1f s: %s", config.task, step, elapsed, final)
    return metrics


def _check_arguments(config: FitConfig, device: torch.device, task: Task | None, source, second_source,
                     time_budget_s: float | None) -> None:
    if task is not None:
        if source is not None or second_source is not None:
            raise ValueError("fit_signal: pass either a pre-built task or its source files, not both")
        if task.config != config or task.device != device:
            raise ValueError(f"fit_signal: the pre-built task was made for {task.config.task!r} on {task.device}; "
                             f"expected the same config on {device}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"fit_signal: time_budget_s must be positive or None, got {time_budget_s!r}")
    check_precision(config.precision, device, where="fit_signal")  # fp16 on a CPU: before the run folder


def _log_metrics(writer, task: Task, siren: Siren, metrics: dict, step: int) -> None:
    for name, value in metrics.items():
        writer.add_scalar(f"metric/{name}", value, step)
    for name, image in task.images(siren).items():
        writer.add_image(name, np.clip(image, 0, 1), step, dataformats="HWC")
