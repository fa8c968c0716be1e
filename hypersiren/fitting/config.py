"""Configuration of a single-signal fit, and the presets: `paper` (the SIREN paper's recipe for the
task) and `default` (the project's faster recipe).

Every field has a default; task-specific fields are ignored by the other tasks. `FIT_PRESETS[task][name]`
holds only the fields that differ from the defaults, so a preset reads as the recipe it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TASKS = ("image", "audio", "video", "poisson_grad", "poisson_lapl", "poisson_blend", "sdf", "helmholtz", "wave")
DERIVATIVES = ("closed_form", "autograd")


@dataclass(frozen=True)
class FitConfig:
    task: str = "image"
    # network
    hidden_dim: int = 256
    depth: int = 5  # linear layers, first and last included
    w0_first: float = 30.0
    w0: float = 30.0
    # optimisation (Adam)
    lr: float = 1e-4
    lr_final: float | None = None  # cosine decay from lr to lr_final over the steps; None: constant (the paper)
    steps: int = 500
    batch_points: int = 0  # points per step; 0: batch_fraction of them, or all when that is 0 too
    batch_fraction: float = 0.0  # fraction of the signal's points per step (the paper's video: 0.38%)
    grad_clip: float = 0.0  # max gradient norm; 0: no clipping
    derivatives: str = "closed_form"  # "closed_form" (hypersiren.diff.siren_derivatives) or "autograd"
    seed: int = 0
    # task data
    size: int = 256  # image side for image / Poisson tasks (the input is centre-cropped and resized)
    # Poisson targets: 0 = derivatives in units of the [-1, 1] coordinates (the fit is the image itself);
    # s > 0 = the reference's convention, pixel-unit operators on s * image (the fit is a scaled image)
    target_scale: float = 0.0
    blend_alpha: float = 0.5  # poisson_blend: target = alpha * grad(image 1) + (1 - alpha) * grad(image 2)
    # sdf: loss weights of |f| on the surface, exp(-100 |f|) off it, 1 - cos(grad f, n), | |grad f| - 1 |
    sdf_weights: tuple[float, float, float, float] = (3e3, 1e2, 1e2, 5e1)
    mesh_resolution: int = 256  # marching cubes grid for the exported mesh and the Chamfer metric
    # helmholtz
    wavenumber: float = 20.0
    source: tuple[float, float] = (0.0, 0.0)
    source_sigma: float = 0.02  # width of the Gaussian point source
    velocity: str = "uniform"  # "uniform" (1 everywhere) or "layered" (1 above row 0, 1.5 below)
    pml_width: float = 0.5  # absorbing layer width at each side of [-1, 1]^2
    pml_strength: float = 40.0  # damping profile a0 * (depth into the layer / width)^2
    # wave (coordinates (t, x, y) in [-1, 1]^3; t = -1 is the initial time)
    wave_speed: float = 1.0
    pulse_sigma: float = 0.1
    initial_points: int = 2000  # points on the initial-time plane per step
    wave_weights: tuple[float, float, float] = (1.0, 1e3, 1e3)  # residual, initial value, initial velocity
    # logging
    log_every: int = 10  # steps between TensorBoard scalars
    image_every: int = 100  # steps between TensorBoard images and metric evaluations

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"FitConfig: task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.derivatives not in DERIVATIVES:
            raise ValueError(f"FitConfig: derivatives must be one of {DERIVATIVES}, got {self.derivatives!r}")
        if self.velocity not in ("uniform", "layered"):
            raise ValueError(f"FitConfig: velocity must be 'uniform' or 'layered', got {self.velocity!r}")
        for name in ("hidden_dim", "depth", "steps", "size", "mesh_resolution", "initial_points", "log_every", "image_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"FitConfig: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("w0_first", "w0", "lr", "wavenumber", "source_sigma", "wave_speed", "pulse_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FitConfig: {name} must be positive, got {getattr(self, name)!r}")
        if self.batch_points < 0 or self.grad_clip < 0 or not 0 <= self.batch_fraction <= 1:
            raise ValueError("FitConfig: batch_points and grad_clip must be >= 0 and batch_fraction in [0, 1]")
        if not 0 < self.pml_width < 1:
            raise ValueError(f"FitConfig: pml_width must be in (0, 1), got {self.pml_width!r}")


# The paper's recipes (../shared/REFERENCE.md section 5) and the project's defaults; see docs/fitting.md.
FIT_PRESETS: dict[str, dict[str, dict]] = {
    "image": {
        "paper": dict(lr=1e-4, steps=500),
        "default": dict(lr=1e-3, lr_final=1e-5, steps=1000, batch_points=16384),
    },
    "audio": {
        "paper": dict(w0_first=3000.0, lr=1e-4, steps=9000),
        "default": dict(w0_first=3000.0, lr=2e-4, lr_final=1e-5, steps=3000, batch_points=32768),
    },
    "video": {
        "paper": dict(hidden_dim=1024, lr=1e-4, steps=100_000, batch_fraction=0.0038),
        "default": dict(hidden_dim=256, lr=5e-4, lr_final=1e-5, steps=3000, batch_points=8192),
    },
    "poisson_grad": {
        "paper": dict(lr=1e-4, steps=10_000, target_scale=10.0),
        "default": dict(lr=1e-4, lr_final=1e-5, steps=2000, batch_points=8192),
    },
    "poisson_lapl": {
        "paper": dict(lr=1e-4, steps=10_000, target_scale=1e4),
        "default": dict(lr=1e-4, lr_final=1e-5, steps=2000, batch_points=8192),
    },
    "poisson_blend": {
        "paper": dict(lr=1e-4, steps=10_000, target_scale=10.0),
        "default": dict(lr=1e-4, lr_final=1e-5, steps=2000, batch_points=8192),
    },
    "sdf": {
        "paper": dict(lr=1e-4, grad_clip=1.0, batch_points=250_000, steps=10_000),
        "default": dict(lr=1e-4, lr_final=1e-5, grad_clip=1.0, batch_points=8192, steps=10_000, w0_first=15.0),
    },
    "helmholtz": {
        "paper": dict(lr=2e-5, steps=50_000, batch_points=5000),
        "default": dict(lr=1e-4, lr_final=1e-5, steps=5000, batch_points=4096),
    },
    "wave": {
        "paper": dict(hidden_dim=512, lr=2e-5, steps=100_000, batch_points=5000),
        "default": dict(hidden_dim=256, lr=1e-4, lr_final=1e-5, steps=5000, batch_points=4096),
    },
}


def preset_config(task: str, preset: str = "default", **overrides) -> FitConfig:
    """The `FitConfig` of a task's preset, with `overrides` (field=value) on top."""
    if task not in FIT_PRESETS:
        raise ValueError(f"preset_config: unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if preset not in FIT_PRESETS[task]:
        raise ValueError(f"preset_config: task {task!r} has presets {sorted(FIT_PRESETS[task])}, got {preset!r}")
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    values = {k: v for k, v in FIT_PRESETS[task][preset].items() if k in fields}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"preset_config: unknown FitConfig fields {unknown}")
    return FitConfig(task=task, **{**values, **overrides})
