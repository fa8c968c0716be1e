"""Fitting tasks on regular grids: image, audio and video (values), and Poisson reconstruction and
blending (derivatives of an image).

A task owns its signal and knows four things: which points a training step sees (`sample`), the
loss on them (`loss`, named terms plus `total`), how good a fit is (`metrics`), and what a fit
produces (`images` for TensorBoard, `save_outputs` for the run folder). `fitting.loop.fit_signal`
does the rest, the same for every task.

Values are scaled to [-1, 1] for training (`hypersiren.metrics.to_signed`); PSNR is
`hypersiren.metrics.psnr`: clipped, measured in [0, 1] units.

Devices: a task keeps its signal on `device` (`fit_signal`'s); random draws come from a CPU generator
and move there, so a seed gives the same points on every device. Metrics, images and saved files come
back to the CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import diff
from ..coords import grid
from ..forward import siren_forward
from ..io import save_audio, save_image, save_video
from ..metrics import psnr, to_signed, to_unit
from ..params import SirenParams
from ..siren import Siren
from .config import FitConfig

log = logging.getLogger(__name__)

EVAL_CHUNK = 32768  # points per forward when evaluating a whole signal


def derivatives(params: SirenParams, coords: Tensor, config: FitConfig, *, laplacian: bool = False,
                hessian_diagonal: bool = False) -> diff.SirenDerivatives:
    """Values and coordinate derivatives of a SIREN at `coords [B, N, D]`, by `config.derivatives`:
    closed form (`diff.siren_derivatives`) or autograd (`siren_forward` + double backward)."""
    if config.derivatives == "closed_form":
        return diff.siren_derivatives(params, coords, w0_first=config.w0_first, w0=config.w0,
                                      laplacian=laplacian, hessian_diagonal=hessian_diagonal)
    x = coords.detach().requires_grad_(True)
    y = siren_forward(params, x, w0_first=config.w0_first, w0=config.w0)
    jac = diff.jacobian(y, x)  # [B, N, C, D]
    if hessian_diagonal:
        second = torch.stack([
            torch.stack([torch.autograd.grad(jac[..., c, d].sum(), x, create_graph=True)[0][..., d]
                         for d in range(x.shape[-1])], dim=-1)
            for c in range(y.shape[-1])], dim=-2)  # [B, N, C, D]
        return diff.SirenDerivatives(y, jac, second.sum(-1), second)
    return diff.SirenDerivatives(y, jac, diff.laplacian(y, x) if laplacian else None)


@torch.no_grad()
def evaluate(siren: Siren, coords: Tensor) -> Tensor:
    """`siren` at every point of `coords [N, D]`, in chunks -> `[N, C]`."""
    return torch.cat([siren(chunk) for chunk in coords.split(EVAL_CHUNK)])


def display(image: Tensor, symmetric: bool = False) -> np.ndarray:
    """A `[H, W, C]` tensor scaled to [0, 1] for viewing (by its own range, or symmetric around 0), as a
    CPU array."""
    image = image.detach().float().cpu()
    if symmetric:
        return to_unit(image / image.abs().max().clamp_min(1e-12)).numpy()
    low, high = image.min(), image.max()
    return ((image - low) / (high - low).clamp_min(1e-12)).numpy()


class Task:
    """Base class: see the module docstring. Subclasses set `in_dim`, `out_dim` and `metric`."""

    in_dim: int
    out_dim: int
    metric: str = "psnr"  # the metric shown in the progress bar

    def __init__(self, config: FitConfig, *, device: torch.device | str = "cpu"):
        self.config = config
        self.device = torch.device(device)

    def batch_size(self, total: int) -> int:
        """Points per step out of a signal's `total`: `batch_points`, `batch_fraction` of them, or all."""
        c = self.config
        if c.batch_points is not None:
            return min(c.batch_points, total)
        if c.batch_fraction is not None:
            return max(1, round(c.batch_fraction * total))
        return total

    def sample(self, generator: torch.Generator):
        raise NotImplementedError

    def sample_points(self, coords: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """All points of a grid signal, or `batch_size` of them drawn at random: `[n, D]`, `[n, ...]`."""
        n = coords.shape[0]
        size = self.batch_size(n)
        if size == n:
            return coords, targets
        index = torch.randperm(n, generator=generator)[:size].to(self.device)
        return coords[index], targets[index]

    def loss(self, params: SirenParams, batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def metrics(self, siren: Siren, final: bool = False) -> dict[str, float]:
        """Quality of a fit; `final=True` at the end of a run (may be costlier, e.g. meshing)."""
        raise NotImplementedError

    def images(self, siren: Siren) -> dict[str, np.ndarray]:
        return {}

    def save_outputs(self, siren: Siren, run_dir: Path) -> list[Path]:
        raise NotImplementedError


class GridTask(Task):
    """A signal sampled on a regular grid, fitted by MSE on its values: image, audio, video."""

    def __init__(self, config: FitConfig, signal: np.ndarray, *, device: torch.device | str = "cpu"):
        """`signal`: `[*grid shape, C]` in [0, 1]."""
        super().__init__(config, device=device)
        self.shape = signal.shape[:-1]  # grid shape: (H, W), (T,) or (T, H, W)
        self.in_dim, self.out_dim = len(self.shape), signal.shape[-1]
        self.coords = grid(self.shape, device=self.device)  # [N, D]
        unit = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32)).reshape(-1, self.out_dim)
        self.values = to_signed(unit).to(self.device)  # [N, C] in [-1, 1]

    def sample(self, generator):
        return self.sample_points(self.coords, self.values, generator)

    def loss(self, params, batch):
        coords, values = batch
        pred = siren_forward(params, coords.unsqueeze(0), w0_first=self.config.w0_first, w0=self.config.w0)[0]
        mse = (pred - values).square().mean()
        return {"total": mse, "mse": mse}

    def prediction(self, siren: Siren) -> Tensor:
        """The fit on the whole grid, `[*shape, C]` in [-1, 1] (unclipped)."""
        return evaluate(siren, self.coords).reshape(*self.shape, self.out_dim)

    def metrics(self, siren, final=False):
        return {"psnr": psnr(self.prediction(siren).reshape(-1, self.out_dim), self.values)}


class ImageTask(GridTask):
    def images(self, siren):
        return image_panels(siren, self.shape, self.config, self.device)

    def save_outputs(self, siren, run_dir):
        image = to_unit(self.prediction(siren).clamp(-1, 1))
        return [save_image(run_dir / "reconstruction.png", image.cpu().numpy())]


class AudioTask(GridTask):
    """Mono audio on a [-1, 1] time axis; the amplitude is divided by its maximum, as in the paper."""

    def __init__(self, config: FitConfig, samples: np.ndarray, rate: int, *, device: torch.device | str = "cpu"):
        """`samples`: mono audio `[T]` at `rate` Hz."""
        self.peak, self.rate = float(np.abs(samples).max()), rate
        if self.peak == 0:
            raise ValueError("AudioTask: the audio is silent (all samples are 0)")
        # GridTask takes values in [0, 1]; the fit sees samples / peak in [-1, 1], as in the paper
        normalised = torch.from_numpy(np.asarray(samples / self.peak, dtype=np.float32))
        super().__init__(config, to_unit(normalised)[:, None].numpy(), device=device)

    def images(self, siren):
        pred = self.prediction(siren)[:, 0]
        n = min(2000, pred.shape[0])
        wave = torch.stack([self.values[:n, 0], pred[:n]])  # [2, n]: truth over fit, as two image rows
        return {"waveform": display(wave.unsqueeze(-1).repeat_interleave(20, dim=0), symmetric=True)}

    def save_outputs(self, siren, run_dir):
        audio = self.prediction(siren)[:, 0].clamp(-1, 1).cpu().numpy() * self.peak
        return [save_audio(run_dir / "reconstruction.wav", audio, self.rate)]


class VideoTask(GridTask):
    def images(self, siren):
        t = self.shape[0] // 2  # the middle frame, truth | fit
        coords = self.coords.reshape(*self.shape, 3)[t].reshape(-1, 3)
        fit = evaluate(siren, coords).reshape(*self.shape[1:], self.out_dim)
        truth = self.values.reshape(*self.shape, self.out_dim)[t]
        return {"middle_frame": to_unit(torch.cat([truth, fit.clamp(-1, 1)], dim=1)).cpu().numpy()}

    def save_outputs(self, siren, run_dir):
        frames = to_unit(self.prediction(siren).clamp(-1, 1)).cpu().numpy()
        return [save_video(run_dir / "reconstruction.mp4", frames),
                save_video(run_dir / "reconstruction.npy", frames)]


@torch.no_grad()
def image_panels(siren: Siren, shape, config: FitConfig, device: torch.device) -> dict[str, np.ndarray]:
    """Reconstruction, gradient magnitude and Laplacian of a 2-D fit (on `device`, the SIREN's), for TensorBoard."""
    coords = grid(shape, device=device)
    parts = [diff.siren_derivatives(siren.params(), chunk.unsqueeze(0), w0_first=config.w0_first, w0=config.w0)
             for chunk in coords.split(EVAL_CHUNK // 4)]
    values = torch.cat([p.values[0] for p in parts]).reshape(*shape, -1)
    grad = torch.cat([p.jacobian[0].norm(dim=-1) for p in parts]).reshape(*shape, -1)
    lap = torch.cat([p.laplacian[0] for p in parts]).reshape(*shape, -1)
    return {"reconstruction": to_unit(values.clamp(-1, 1)).cpu().numpy(), "gradient_norm": display(grad),
            "laplacian": display(lap, symmetric=True)}


# --- Poisson -----------------------------------------------------------------------------------------


def image_derivative_targets(image: np.ndarray, kind: str, scale: float | None) -> np.ndarray:
    """Derivatives of a grey image `[H, W]` (values in [-1, 1]) per pixel, as training targets.

    `kind="gradient"` -> `[H, W, 2]` (Sobel along rows, then columns); `"laplacian"` -> `[H, W, 1]`
    (5-point stencil). `scale > 0` is the reference's convention: the operators in pixel units on
    `scale * image`, so the fit is the image times a factor. `scale=None`: in units of the [-1, 1]
    coordinates (Sobel / 8 and the stencil times the squared grid spacing), so the fit is the image
    itself, up to what the derivatives do not determine.
    """
    from scipy import ndimage

    if kind not in ("gradient", "laplacian"):
        raise ValueError(f"image_derivative_targets: kind must be 'gradient' or 'laplacian', got {kind!r}")
    if scale is not None and not scale > 0:
        raise ValueError(f"image_derivative_targets: scale must be positive or None, got {scale!r}")
    h, w = image.shape
    if kind == "gradient":
        if scale is not None:
            return np.stack([ndimage.sobel(scale * image, axis=a) for a in (0, 1)], axis=-1)
        spacing = ((h - 1) / 2, (w - 1) / 2)  # d/dcoord = (side - 1) / 2 * d/dpixel
        return np.stack([ndimage.sobel(image, axis=a) / 8 * spacing[a] for a in (0, 1)], axis=-1)
    if scale is not None:
        return ndimage.laplace(scale * image)[..., None]
    rows = ndimage.correlate1d(image, [1.0, -2.0, 1.0], axis=0, mode="reflect") * ((h - 1) / 2) ** 2
    cols = ndimage.correlate1d(image, [1.0, -2.0, 1.0], axis=1, mode="reflect") * ((w - 1) / 2) ** 2
    return (rows + cols)[..., None]


def fit_affine(prediction: Tensor, target: Tensor, basis: list[Tensor]) -> Tensor:
    """Least-squares `a * prediction + sum_k c_k basis_k` closest to `target` (all `[N]`), solved in
    float64 on the CPU; returned on `prediction`'s device and dtype."""
    design = torch.stack([prediction, *basis], dim=1).double().cpu()  # [N, 1 + K]
    solution = torch.linalg.lstsq(design, target.double().cpu().unsqueeze(1)).solution
    return (design @ solution)[:, 0].to(prediction.device, prediction.dtype)


class PoissonTask(Task):
    """Reconstruct a grey image from its gradients (`poisson_grad`, `poisson_blend`) or Laplacian
    (`poisson_lapl`). Loss: mean over pixels of the squared derivative error (summed over the two
    gradient components). Metric: PSNR after fitting, by least squares against the image the
    derivatives came from, the scale and what the derivatives leave free: a constant (gradients), or
    the harmonic polynomials of degree <= 2 (`1, x, y, x^2 - y^2, xy`; Laplacian). A Laplacian fixes
    an image only up to a harmonic function, and those fits drift mostly in the lowest ones."""

    in_dim, out_dim = 2, 1

    def __init__(self, config: FitConfig, image: np.ndarray, kind: str, *, device: torch.device | str = "cpu"):
        """`image`: grey `[H, W]` in [-1, 1]; `kind`: "gradient" or "laplacian"."""
        super().__init__(config, device=device)
        if image.ndim != 2:
            raise ValueError(f"PoissonTask: expected a grey image [H, W], got {image.shape}")
        self.kind, self.shape = kind, image.shape
        self.image = torch.from_numpy(np.ascontiguousarray(image)).float().reshape(-1).to(self.device)  # [N]
        self.coords = grid(self.shape, device=self.device)  # [N, 2]
        target = image_derivative_targets(image, kind, config.target_scale)  # [H, W, 2] or [H, W, 1]
        self.target = torch.from_numpy(np.ascontiguousarray(target)).float().reshape(-1, target.shape[-1]).to(self.device)

    def sample(self, generator):
        return self.sample_points(self.coords, self.target, generator)

    def loss(self, params, batch):
        coords, target = batch
        out = derivatives(params, coords.unsqueeze(0), self.config, laplacian=self.kind == "laplacian")
        pred = out.laplacian[0] if self.kind == "laplacian" else out.jacobian[0, :, 0, :]  # [N, 1] or [N, 2]
        error = (pred - target).square().sum(-1).mean()
        return {"total": error, self.kind: error}

    def aligned(self, siren: Siren) -> Tensor:
        """The fit on the whole grid after fitting the scale and the free terms (see the class), `[N]`."""
        pred = evaluate(siren, self.coords)[:, 0]
        basis = [torch.ones_like(pred)]
        if self.kind == "laplacian":  # harmonic functions have no Laplacian: those of degree <= 2
            x, y = self.coords.unbind(-1)
            basis += [x, y, x * x - y * y, x * y]
        return fit_affine(pred, self.image, basis)

    def metrics(self, siren, final=False):
        return {"psnr": psnr(self.aligned(siren), self.image)}

    def images(self, siren):
        panels = image_panels(siren, self.shape, self.config, self.device)
        panels["aligned"] = to_unit(self.aligned(siren).clamp(-1, 1).reshape(*self.shape, 1)).cpu().numpy()
        return panels

    def save_outputs(self, siren, run_dir):
        image = to_unit(self.aligned(siren).clamp(-1, 1).reshape(*self.shape, 1))
        return [save_image(run_dir / "reconstruction.png", image.cpu().numpy())]
