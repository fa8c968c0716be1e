"""Fitting tasks whose supervision is a differential equation: signed distance functions from
oriented points (eikonal), the Helmholtz equation with an absorbing layer, and the wave equation.

Every derivative comes from `tasks.derivatives` (closed form by default, or autograd), so the losses
need one ordinary backward pass. The SDF loss is `hypersiren.geometry.sdf_loss`, the batched one the
shape prior uses, here with a batch of one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..coords import grid
from ..geometry import Mesh, SdfBatch, extract_mesh, sample_surface, sdf_loss, surface_distance
from ..io import normalise_points, save_image, save_mesh, save_video
from ..siren import Siren
from .config import FitConfig
from .tasks import Task, derivatives, display, evaluate

# Fixed evaluation sets (not recipe knobs): drawn with their own seeds, so metrics compare across runs.
SHAPE_EXTENT = 0.9  # the input's longest half-side after normalisation, inside the uniform points' [-1, 1]^3
SDF_PROBE_POINTS, SDF_PROBE_SEED = 10_000, 1  # surface points whose mean |f| is the running metric
CHAMFER_SAMPLES, CHAMFER_SEED = 100_000, 2  # points on the mesh and on the input for the final distances
SLICE_SIDE = 128  # side of the SDF slices and Helmholtz field images in TensorBoard
HELMHOLTZ_EVAL_SIDE = 96  # grid side of the Helmholtz metrics
HELMHOLTZ_SOURCE_CLEARANCE = 5  # the Hankel comparison skips points within this many source widths
WAVE_EVAL_INTERIOR, WAVE_EVAL_INITIAL, WAVE_EVAL_SEED = 8192, 2048, 3  # points of the wave metrics
EVAL_BATCH = 4096  # points per derivative evaluation in the metrics
FIELD_SIDE = 256  # side of the saved Helmholtz field (field.npy, field.png)
WAVE_FRAMES, WAVE_FRAME_SIDE = 25, 128  # frames of the saved wave field (field.npy, field.mp4), t = -1 .. 1


class SdfTask(Task):
    """A signed distance function from surface points and normals `[P, 3]`.

    The points are centred and scaled into `[-0.9, 0.9]^3` (aspect kept). Each step takes
    `batch_points` surface points and as many uniform points in `[-1, 1]^3`; the loss is
    `hypersiren.geometry.sdf_loss` (weights `config.sdf_loss`) with a batch of one SIREN.
    Metrics: `surface_abs_sdf` (mean |f| on surface points) during training; at the end, Chamfer-L1,
    normal consistency and F-score (at `fscore_threshold` x the input's diagonal) between the
    marching-cubes mesh and the input points.
    """

    in_dim, out_dim, metric = 3, 1, "surface_abs_sdf"

    def __init__(self, config: FitConfig, points: np.ndarray, normals: np.ndarray, *, device: torch.device | str = "cpu"):
        super().__init__(config, device=device)
        normalised, self.centre, self.scale = normalise_points(points, extent=SHAPE_EXTENT)
        self.points = torch.from_numpy(normalised).to(self.device)  # [P, 3]
        self.normals = torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32)).to(self.device)  # [P, 3]
        probe = torch.randperm(len(points), generator=torch.Generator().manual_seed(SDF_PROBE_SEED))[:SDF_PROBE_POINTS]
        self.probe = self.points[probe.to(self.device)]
        self.mesh: Mesh | None = None  # the final mesh, once `metrics(final=True)` made it

    def sample(self, generator) -> SdfBatch:
        n = self.batch_size(len(self.points))
        index = torch.randint(len(self.points), (n,), generator=generator).to(self.device)
        uniform = (torch.rand(n, 3, generator=generator) * 2 - 1).to(self.device)
        return SdfBatch(self.points[index][None], self.normals[index][None], uniform[None])  # B = 1

    def loss(self, params, batch):
        c = self.config
        terms = sdf_loss(params, batch, w0_first=c.w0_first, w0=c.w0, config=c.sdf_loss, derivatives=c.derivatives)
        return {name: value[0] for name, value in terms._asdict().items()}  # the batch of one

    def metrics(self, siren, final: bool = False):
        result = {"surface_abs_sdf": evaluate(siren, self.probe).abs().mean().item()}
        if final:
            self.mesh = extract_mesh(siren, resolution=self.config.mesh_resolution, device=self.device)
            result |= self.mesh_distances(self.mesh)
        return result

    def mesh_distances(self, mesh: Mesh) -> dict[str, float]:
        """Chamfer-L1 (in the input's units and relative to its diagonal), normal consistency, F-score."""
        if len(mesh.faces) == 0:
            return {"chamfer": math.inf, "chamfer_rel_diagonal": math.inf, "normal_consistency": 0.0, "fscore": 0.0}
        mesh_points, mesh_normals = sample_surface(mesh, CHAMFER_SAMPLES)
        keep = torch.randperm(len(self.points), generator=torch.Generator().manual_seed(CHAMFER_SEED))[:CHAMFER_SAMPLES]
        points, normals = self.points.cpu().numpy()[keep.numpy()], self.normals.cpu().numpy()[keep.numpy()]
        all_points = self.points.cpu().numpy()
        diagonal = float(np.linalg.norm(all_points.max(0) - all_points.min(0)))
        distance = surface_distance(mesh_points, mesh_normals, points, normals,
                                    threshold=self.config.fscore_threshold * diagonal)
        # in the input's own units (undoing the normalisation) and relative to its diagonal
        return {"chamfer": distance.chamfer / self.scale, "chamfer_rel_diagonal": distance.chamfer / diagonal,
                "normal_consistency": distance.normal_consistency, "fscore": distance.fscore}

    def images(self, siren):
        coords = grid((SLICE_SIDE, SLICE_SIDE), device=self.device)
        slices = []
        for axis in range(3):  # the planes x=0, y=0, z=0
            points = torch.zeros(coords.shape[0], 3, device=self.device)
            points[:, [a for a in range(3) if a != axis]] = coords
            slices.append(evaluate(siren, points).reshape(SLICE_SIDE, SLICE_SIDE, 1))
        return {"sdf_slices": display(torch.cat(slices, dim=1), symmetric=True)}

    def save_outputs(self, siren, run_dir):
        mesh = self.mesh if self.mesh is not None else extract_mesh(
            siren, resolution=self.config.mesh_resolution, device=self.device)
        if len(mesh.faces) == 0:
            raise ValueError("SdfTask: the fitted SDF has no zero crossing in [-1, 1]^3, so there is no mesh")
        vertices = (mesh.vertices / self.scale + self.centre).astype(np.float32)  # back to the input's coordinates
        return [save_mesh(run_dir / "mesh.ply", Mesh(vertices, mesh.faces))]


class HelmholtzTask(Task):
    """The Helmholtz equation `div(grad u) + k(x)^2 u = -f` on `[-1, 1]^2` with a Gaussian point source
    `f` at `config.source`, for a complex field `u` (outputs: real, imaginary part).

    A perfectly matched layer of width `pml_width` absorbs outgoing waves: with stretch factors
    `s_d = 1 + i a0 (depth_d / width)^2 / omega` (depth into the layer along axis d), the equation
    becomes `d_x((s_y / s_x) d_x u) + d_y((s_x / s_y) d_y u) + k^2 s_x s_y u = -f`. `k = omega / c(x)`
    with `omega = config.wavenumber` and the velocity model `c` (uniform 1, or layered 1 / 1.5).
    Loss: mean squared residual (real and imaginary parts). Metrics: `residual` (RMS over a fixed
    grid) and, for uniform velocity, `relative_error` against the free-space solution
    `(i / 4) H0(k r)` inside the layer, away from the source.
    """

    in_dim, out_dim, metric = 2, 2, "residual"

    def __init__(self, config: FitConfig, *, device: torch.device | str = "cpu"):
        super().__init__(config, device=device)
        self.source = torch.tensor(config.source, dtype=torch.float32, device=self.device)  # [2]
        self.eval_coords = grid((HELMHOLTZ_EVAL_SIDE, HELMHOLTZ_EVAL_SIDE), device=self.device)  # [N, 2]

    def velocity(self, x):
        if self.config.velocity == "uniform":
            return torch.ones_like(x[:, 0])
        return torch.where(x[:, 0] < 0, torch.ones_like(x[:, 0]), torch.full_like(x[:, 0], 1.5))

    def source_term(self, x):
        sigma = self.config.source_sigma
        return torch.exp(-(x - self.source).square().sum(-1) / (2 * sigma**2)) / (2 * math.pi * sigma**2)

    def stretch(self, x):
        """`s [N, 2]` and `ds/dx [N, 2]` (complex) per axis."""
        c = self.config
        inner = 1 - c.pml_width
        depth = (x.abs() - inner).clamp_min(0) / c.pml_width
        sigma = c.pml_strength * depth.square()
        dsigma = 2 * c.pml_strength * depth / c.pml_width * torch.sign(x)
        return torch.complex(torch.ones_like(x), sigma / c.wavenumber), torch.complex(torch.zeros_like(x), dsigma / c.wavenumber)

    def sample(self, generator):
        n = self.config.batch_points
        near = int(n * self.config.source_fraction)  # around the source, which is narrower than the batch spacing
        uniform = torch.rand(n - near, 2, generator=generator) * 2 - 1
        offsets = 3 * self.config.source_sigma * torch.randn(near, 2, generator=generator)
        return torch.cat([uniform.to(self.device), (self.source + offsets.to(self.device)).clamp(-1, 1)])  # [n, 2]

    def residual(self, params, x):
        out = derivatives(params, x.unsqueeze(0), self.config, hessian_diagonal=True)
        u = torch.complex(out.values[0, :, 0], out.values[0, :, 1])  # [N]
        du = torch.complex(out.jacobian[0, :, 0], out.jacobian[0, :, 1])  # [N, 2]
        d2u = torch.complex(out.hessian_diagonal[0, :, 0], out.hessian_diagonal[0, :, 1])  # [N, 2]
        s, ds = self.stretch(x)
        sx, sy, dsx, dsy = s[:, 0], s[:, 1], ds[:, 0], ds[:, 1]
        k = self.config.wavenumber / self.velocity(x)
        lhs = (sy / sx) * d2u[:, 0] + (sx / sy) * d2u[:, 1] - (sy * dsx / sx**2) * du[:, 0] \
            - (sx * dsy / sy**2) * du[:, 1] + k**2 * sx * sy * u
        return lhs + self.source_term(x)

    def loss(self, params, batch):
        residual = self.residual(params, batch)
        pde = (residual.real.square() + residual.imag.square()).mean()
        return {"total": pde, "pde": pde}

    def metrics(self, siren, final: bool = False):
        with torch.no_grad():
            residual = torch.cat([self.residual(siren.params(), chunk) for chunk in self.eval_coords.split(EVAL_BATCH)])
        result = {"residual": residual.abs().square().mean().sqrt().item()}
        if self.config.velocity == "uniform":
            from scipy.special import hankel1

            x = self.eval_coords
            r = (x - self.source).norm(dim=-1)
            inside = (x.abs().max(-1).values < 1 - self.config.pml_width) & \
                (r > HELMHOLTZ_SOURCE_CLEARANCE * self.config.source_sigma)
            exact = 0.25j * hankel1(0, self.config.wavenumber * r[inside].double().cpu().numpy())
            fit = evaluate(siren, x[inside]).double().cpu().numpy()
            error = np.linalg.norm(fit[:, 0] + 1j * fit[:, 1] - exact) / np.linalg.norm(exact)
            result["relative_error"] = float(error)
        return result

    def images(self, siren):
        field = evaluate(siren, grid((SLICE_SIDE, SLICE_SIDE), device=self.device)).reshape(SLICE_SIDE, SLICE_SIDE, 2)
        return {"field_real_imag": display(torch.cat([field[..., :1], field[..., 1:]], dim=1), symmetric=True)}

    def save_outputs(self, siren, run_dir):
        field = evaluate(siren, grid((FIELD_SIDE, FIELD_SIDE), device=self.device)).reshape(FIELD_SIDE, FIELD_SIDE, 2).cpu()
        np.save(run_dir / "field.npy", field.numpy())
        image = display(torch.cat([field[..., :1], field[..., 1:]], dim=1), symmetric=True)
        return [run_dir / "field.npy", save_image(run_dir / "field.png", image)]


class WaveTask(Task):
    """The wave equation `u_tt = c^2 (u_xx + u_yy)` for `u(t, x, y)` on `[-1, 1]^3`, starting at
    `t = -1` from a Gaussian pulse at rest: `u = exp(-|x|^2 / (2 sigma^2))`, `u_t = 0`.

    Each step: `batch_points` uniform points for the residual and `initial_points` on the initial
    plane. Loss: mean squared residual + `wave_weights[1]` x mean squared initial-value error +
    `wave_weights[2]` x mean squared initial velocity. Metrics: `residual` (RMS at fixed points) and
    `initial_error` (RMS of the initial-value error at fixed points).
    """

    in_dim, out_dim, metric = 3, 1, "residual"

    def __init__(self, config: FitConfig, *, device: torch.device | str = "cpu"):
        super().__init__(config, device=device)
        g = torch.Generator().manual_seed(WAVE_EVAL_SEED)
        self.eval_interior = (torch.rand(WAVE_EVAL_INTERIOR, 3, generator=g) * 2 - 1).to(self.device)  # [N, 3]
        self.eval_initial = self.initial_plane(WAVE_EVAL_INITIAL, g).to(self.device)  # [N0, 3]

    def pulse(self, xy):
        return torch.exp(-xy.square().sum(-1) / (2 * self.config.pulse_sigma**2))

    @staticmethod
    def initial_plane(n, generator):
        """`n` random points `(t = -1, x, y)` on the CPU: `[n, 3]`."""
        xy = torch.rand(n, 2, generator=generator) * 2 - 1
        return torch.cat([torch.full((n, 1), -1.0), xy], dim=1)

    def sample(self, generator):
        interior = torch.rand(self.config.batch_points, 3, generator=generator) * 2 - 1
        return interior.to(self.device), self.initial_plane(self.config.initial_points, generator).to(self.device)

    def terms(self, params, interior, initial):
        c = self.config
        out = derivatives(params, torch.cat([interior, initial]).unsqueeze(0), c, hessian_diagonal=True)
        n = interior.shape[0]
        second = out.hessian_diagonal[0, :n, 0]  # [n, 3]: u_tt, u_xx, u_yy
        residual = second[:, 0] - c.wave_speed**2 * (second[:, 1] + second[:, 2])
        value_error = out.values[0, n:, 0] - self.pulse(initial[:, 1:])
        velocity = out.jacobian[0, n:, 0, 0]
        return residual, value_error, velocity

    def loss(self, params, batch):
        residual, value_error, velocity = self.terms(params, *batch)
        w_pde, w_value, w_velocity = self.config.wave_weights
        terms = {"pde": w_pde * residual.square().mean(), "initial_value": w_value * value_error.square().mean(),
                 "initial_velocity": w_velocity * velocity.square().mean()}
        return {"total": sum(terms.values()), **terms}

    def metrics(self, siren, final: bool = False):
        with torch.no_grad():
            residual, value_error, _ = self.terms(siren.params(), self.eval_interior, self.eval_initial)
        return {"residual": residual.square().mean().sqrt().item(),
                "initial_error": value_error.square().mean().sqrt().item()}

    def frames(self, siren: Siren, count: int, side: int) -> torch.Tensor:
        xy = grid((side, side), device=self.device)
        return torch.stack([evaluate(siren, torch.cat([torch.full((side * side, 1), t, device=self.device), xy], dim=1))
                            .reshape(side, side, 1)
                            for t in torch.linspace(-1, 1, count).tolist()])  # [T, side, side, 1]

    def images(self, siren):
        frames = self.frames(siren, 3, 96)
        return {"t=-1,0,1": display(torch.cat(list(frames), dim=1), symmetric=True)}

    def save_outputs(self, siren, run_dir):
        frames = self.frames(siren, WAVE_FRAMES, WAVE_FRAME_SIDE).cpu()
        np.save(run_dir / "field.npy", frames.numpy())
        return [run_dir / "field.npy", save_video(run_dir / "field.mp4", display(frames, symmetric=True))]
