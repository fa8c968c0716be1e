"""Configuration of a single-signal fit, and the presets: `paper` (the SIREN paper's recipe for the
task) and `default` (the project's faster recipe).

Every field has a default; task-specific fields are ignored by the other tasks. `FIT_PRESETS[task][name]`
holds only the fields that differ from the defaults, so a preset reads as the recipe it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..devices import check_precision
from ..geometry import SdfLossConfig

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
    # points per step; None: batch_fraction of the signal's points, or all of them when that is None too.
    # helmholtz and wave have no fixed point set and need batch_points.
    batch_points: int | None = None
    batch_fraction: float | None = None  # fraction of the signal's points per step (the paper's video: 0.38%)
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    derivatives: str = "closed_form"  # "closed_form" (hypersiren.diff.siren_derivatives) or "autograd"
    # "float32", "bf16" (autocast, any device) or "fp16" (autocast with a gradient scaler, CUDA only): what the
    # loss's forward computes in (hypersiren.devices.autocast); derivatives of the SIREN then have its precision
    precision: str = "float32"
    seed: int = 0
    # task data
    size: int = 256  # image side for image / Poisson tasks (the input is centre-cropped and resized)
    # Poisson targets: None = derivatives in units of the [-1, 1] coordinates (the fit is the image itself);
    # s > 0 = the reference's convention, pixel-unit operators on s * image (the fit is a scaled image)
    target_scale: float | None = None
    blend_alpha: float = 0.5  # poisson_blend: target = alpha * grad(image 1) + (1 - alpha) * grad(image 2)
    # sdf: the loss weights (hypersiren.geometry.SdfLossConfig; the paper's values by default)
    sdf_surface_weight: float = SdfLossConfig.surface_weight  # |f| on the surface
    sdf_off_surface_weight: float = SdfLossConfig.off_surface_weight  # exp(-sharpness |f|) off it
    sdf_normal_weight: float = SdfLossConfig.normal_weight  # 1 - cos(grad f, n) on the surface
    sdf_eikonal_weight: float = SdfLossConfig.eikonal_weight  # | |grad f| - 1 | everywhere
    sdf_off_surface_sharpness: float = SdfLossConfig.off_surface_sharpness
    mesh_resolution: int = 256  # marching cubes grid for the exported mesh and the Chamfer metric
    fscore_threshold: float = 0.01  # F-score distance, as a fraction of the input's bounding-box diagonal
    # helmholtz
    wavenumber: float = 20.0
    source: tuple[float, float] = (0.0, 0.0)
    source_sigma: float = 0.02  # width of the Gaussian point source
    source_fraction: float = 0.1  # share of each step's points drawn around the source (narrower than their spacing)
    velocity: str = "uniform"  # "uniform" (1 everywhere) or "layered" (1 above row 0, 1.5 below)
    pml_width: float = 0.5  # absorbing layer width at each side of [-1, 1]
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
        check_precision(self.precision, where="FitConfig")
        if self.velocity not in ("uniform", "layered"):
            raise ValueError(f"FitConfig: velocity must be 'uniform' or 'layered', got {self.velocity!r}")
        for name in ("hidden_dim", "depth", "steps", "size", "mesh_resolution", "initial_points", "log_every", "image_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"FitConfig: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("w0_first", "w0", "lr", "wavenumber", "source_sigma", "wave_speed", "pulse_sigma", "fscore_threshold",
                     "sdf_off_surface_sharpness"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FitConfig: {name} must be positive, got {getattr(self, name)!r}")
        for name in ("sdf_surface_weight", "sdf_off_surface_weight", "sdf_normal_weight", "sdf_eikonal_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"FitConfig: {name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("batch_points", "grad_clip", "target_scale"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"FitConfig: {name} must be positive or None (none), got {getattr(self, name)!r}")
        if self.batch_fraction is not None and not 0 < self.batch_fraction <= 1:
            raise ValueError(f"FitConfig: batch_fraction must be in (0, 1] or None, got {self.batch_fraction!r}")
        if self.batch_points is not None and self.batch_fraction is not None:
            raise ValueError(f"FitConfig: set batch_points ({self.batch_points}) or batch_fraction "
                             f"({self.batch_fraction}), not both")
        if self.task in ("helmholtz", "wave") and self.batch_points is None:
            raise ValueError(f"FitConfig: task {self.task!r} draws batch_points random points per step and has no "
                             "fixed point set to take whole or in fractions; set batch_points (e.g. 4096)")
        if not 0 < self.pml_width < 1:
            raise ValueError(f"FitConfig: pml_width must be in (0, 1), got {self.pml_width!r}")
        if not 0 <= self.source_fraction < 1:
            raise ValueError(f"FitConfig: source_fraction must be in [0, 1), got {self.source_fraction!r}")

    @property
    def sdf_loss(self) -> SdfLossConfig:
        """The SDF loss weights as `hypersiren.geometry.sdf_loss` takes them."""
        return SdfLossConfig(surface_weight=self.sdf_surface_weight, off_surface_weight=self.sdf_off_surface_weight,
                             normal_weight=self.sdf_normal_weight, eikonal_weight=self.sdf_eikonal_weight,
                             off_surface_sharpness=self.sdf_off_surface_sharpness)


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


def preset_config(task: str, preset: str = "default", /, **overrides) -> FitConfig:
    """The `FitConfig` of a task's preset, with `overrides` (field=value) on top. `task` and `preset` are
    positional only, and `task` is no override: it chooses the preset (a `task=` override is a ValueError)."""
    if task not in FIT_PRESETS:
        raise ValueError(f"preset_config: unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if preset not in FIT_PRESETS[task]:
        raise ValueError(f"preset_config: task {task!r} has presets {sorted(FIT_PRESETS[task])}, got {preset!r}")
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    values = {k: v for k, v in FIT_PRESETS[task][preset].items() if k in fields}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"preset_config: unknown FitConfig fields {unknown}")
    # refused even when equal to `task`: the task chooses the preset, so it is given in one place only
    if "task" in overrides:
        raise ValueError(f"preset_config: the task is given as the first argument ({task!r}), not as an override; "
                         f"got task={overrides['task']!r}")
    return FitConfig(task=task, **{**values, **overrides})
