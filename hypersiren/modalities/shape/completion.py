"""A shape's signed distance field from a few surface points: the prior's SIREN, corrected to the context.

A completion method is a `Completer`: the context of one shape (`Context` with coords `[1, M, 3]`,
optionally normals) -> a field, a function from points `[N, 3]` to signed distances `[N]` (negative
inside). `prior_completer(model)` gives the prior's own prediction (the SIREN of the posterior latent,
or of the set encoder's latent). `corrected_field` adds what the context says directly, which a prior
learned from a few dozen shapes cannot: near the points, the surface passes through them, and far from
them, there is no surface.

- **Residuals.** The prior's first-order error at each context point `p_k` (its value there, which
  should be 0, and the difference between its gradient and the normal `n_k`) is extrapolated linearly,
  `r_k(x) = -f(p_k) + (n_k - grad f(p_k)) . (x - p_k)`, and the `neighbours` nearest points' `r_k` are
  averaged with weights `exp(-(|x - p_k| / h)^2) * max(0, n_k . n_1)^agreement`, `h` = `width` times the
  context's median spacing and `n_1` the normal of the point nearest to `x` (so that across a thin part,
  an arm or a leg, the other side's tangent planes do not pull the surface in), and added to the prior. Near the points the surface passes through them with their normals; where the
  prior already agrees with the context nothing changes; away from all points (weights below `blend`)
  the correction fades out and the prior decides.
- **Free space.** Every part of the surface lies within about `cut` spacings of some context point
  (the points are a sample of it), so a point farther than that from all of them is off the surface:
  the field's magnitude there is at least `distance - cut * spacing`. Where the prior agrees with the
  `neighbours` nearest points (its miss there, `|f(p_k)| + spacing * |n_k - grad f(p_k)|`, well under
  `trust` spacings), the cut widens towards `trusted_cut`, so a good prior still fills the sampling's gaps. For points spread uniformly over a
  surface, the share of it farther than `c` median spacings from every point is about `2^(-c^2)`: 21% at
  1.5 spacings, 6% at 2 and 0.2% at 3; a cut of 1.5 leaves some of that surface to the clamp's round caps,
  but removes the sheets that the tangent planes, extrapolated beyond the points, make (on held-out
  ModelNet40 people, Chamfer-L1 at 1000 points fell from 0.0139 with a cut of 3 to 0.0117). Its sign comes from the context's
  generalised winding number (`geometry.winding_number`), which is robust to sparse and noisy normals.
  This removes the surfaces the prior puts where the shape has none (an arm in another pose).

Without normals (`Context.normals is None`), the normals are the prior field's normalised gradients at
the context points.

`fitted_completer(seconds)` is the no-prior baseline: a SIREN fitted to the context alone with the SIREN
paper's SDF loss for a fixed time (the fitting mode's recipe on just those points).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...devices import adam
from ...geometry import SdfBatch, SdfLossConfig, sdf_loss, winding_number
from ...prior.types import Context
from ...siren import Siren

Field = Callable[[Tensor], Tensor]  # points [N, 3] -> signed distances [N]
Completer = Callable[[Context], Field]  # the context of one shape -> its field


@dataclass(frozen=True)
class CompletionConfig:
    correct: bool = True  # False: the prior's SIREN alone
    neighbours: int = 8  # context points whose residuals are spread to a query
    width: float = 1.0  # the spreading Gaussian's width, in median context spacings
    agreement: float = 2.0  # weights times max(0, n_k . n_nearest) to this power (0: normals ignored)
    blend: float = 1e-3  # fades the correction out where the nearest weights fall below it (about 2.6 widths)
    cut: float = 1.5  # free space begins this many median context spacings away from every point, ...
    trusted_cut: float = 3.0  # ... or up to this many where the prior agrees with the nearby points
    trust: float = 0.5  # the prior's error near a point (in spacings) at which that trust falls to 1/e

    def __post_init__(self):
        if not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise ValueError(f"CompletionConfig: neighbours must be an int >= 1, got {self.neighbours!r}")
        for name in ("width", "blend", "cut", "trust"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CompletionConfig: {name} must be positive, got {getattr(self, name)!r}")
        if not self.agreement >= 0:
            raise ValueError(f"CompletionConfig: agreement must be >= 0, got {self.agreement!r}")
        if not self.trusted_cut >= self.cut:
            raise ValueError(f"CompletionConfig: trusted_cut must be >= cut, got {self.trusted_cut!r} < {self.cut!r}")


def prior_completer(model, config: CompletionConfig = CompletionConfig()) -> Completer:
    """The completion of a trained `HyperSiren` shape prior: its predicted SIREN for the context, corrected
    to the context (`corrected_field`) when `config.correct`."""

    @torch.no_grad()
    def complete(context: Context) -> Field:
        check_single(context, "prior_completer")
        params = model.decode(model.encode(context))

        def field(points: Tensor) -> Tensor:
            return model.render(params, points.unsqueeze(0))[0, :, 0]

        return corrected_field(field, context, config) if config.correct else field

    return complete


def corrected_field(base: Field, context: Context, config: CompletionConfig = CompletionConfig()) -> Field:
    """`base` corrected to the context points: its first-order residuals spread near them, free space far
    from them (see the module docstring)."""
    from scipy.spatial import cKDTree

    check_single(context, "corrected_field")
    valid = context.mask[0]
    coords = context.coords[0, valid]
    if len(coords) < 2:
        raise ValueError(f"corrected_field: expected at least 2 valid context points, got {len(coords)}")
    values, gradients = field_gradients(base, coords)  # the prior at the points: [M], [M, 3]
    normals = context.normals[0, valid] if context.normals is not None else torch.nn.functional.normalize(gradients, dim=-1)
    points, normals, offset, slope = (t.double().cpu().numpy() for t in (coords, normals, -values, normals - gradients))
    tree = cKDTree(points)
    spacing = max(float(np.median(tree.query(points, k=2)[0][:, 1])), 1e-6)
    width, k = config.width * spacing, min(config.neighbours, len(points))
    error = np.abs(offset) + spacing * np.linalg.norm(slope, axis=1)  # [M] the prior's miss at each point

    def field(queries: Tensor) -> Tensor:
        x = queries.double().cpu().numpy()
        distances, index = tree.query(x, k=k)
        distances, index = distances.reshape(len(x), k), index.reshape(len(x), k)
        weights = np.exp(-(distances / width) ** 2)
        if config.agreement:
            agree = np.einsum("qkd,qd->qk", normals[index], normals[index[:, 0]])
            weights *= np.clip(agree, 0, 1) ** config.agreement
        residual = offset[index] + np.einsum("qkd,qkd->qk", x[:, None] - points[index], slope[index])  # [Q, k]
        value = base(queries).double().cpu().numpy() + (weights * residual).sum(1) / (weights.sum(1) + config.blend)
        trust = np.exp(-(error[index].mean(1) / (config.trust * spacing)) ** 2)  # [Q] 1: the prior fits here
        reach = spacing * (config.cut + (config.trusted_cut - config.cut) * trust)
        far = distances[:, 0] > reach  # free space: the winding number decides the side
        if far.any():
            beyond = distances[far, 0] - reach[far]
            inside = np.abs(winding_number(points, normals, x[far])) > 0.5
            value[far] = np.where(inside, np.minimum(value[far], -beyond), np.maximum(value[far], beyond))
        return torch.as_tensor(value, dtype=queries.dtype, device=queries.device)

    return field


def field_gradients(field: Field, points: Tensor) -> tuple[Tensor, Tensor]:
    """A field's values `[M]` and gradients `[M, 3]` at points `[M, 3]` (by autograd)."""
    with torch.enable_grad():
        points = points.detach().requires_grad_(True)
        values = field(points)
        gradient = torch.autograd.grad(values.sum(), points)[0]
    return values.detach(), gradient.detach()


def check_single(context: Context, where: str) -> None:
    if context.coords.dim() != 3 or context.coords.shape[0] != 1 or context.coords.shape[-1] != 3:
        raise ValueError(f"{where}: expected the context of one shape, coords [1, M, 3], got "
                         f"{tuple(context.coords.shape)}")


@dataclass(frozen=True)
class FitConfig:
    """The single-SIREN baseline: the fitting mode's SDF recipe (SIREN paper) on the context points only."""

    seconds: float = 20.0  # training time per shape
    hidden: int = 128
    depth: int = 4
    w0: float = 30.0
    lr: float = 1e-4
    seed: int = 0


def fitted_completer(config: FitConfig = FitConfig()) -> Completer:
    """A SIREN fitted to each context from scratch for `config.seconds`: each Adam step sees every context
    point (with the normal term when the context has normals) and as many uniform points in
    `[-1, 1]^3`."""

    def complete(context: Context) -> Field:
        check_single(context, "fitted_completer")
        valid = context.mask[0]
        points = context.coords[:, valid]  # [1, M, 3]
        normals = context.normals[:, valid] if context.normals is not None else torch.zeros_like(points)
        loss_config = SdfLossConfig() if context.normals is not None else SdfLossConfig(normal_weight=0.0)
        torch.manual_seed(config.seed)
        siren = Siren(3, 1, hidden_dim=config.hidden, depth=config.depth, w0_first=config.w0, w0=config.w0)
        siren = siren.to(points.device)
        optimizer = adam(siren.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(config.seed)
        end = time.perf_counter() + config.seconds
        with torch.enable_grad():
            while time.perf_counter() < end:
                uniform = (torch.rand(points.shape, generator=generator) * 2 - 1).to(points)
                terms = sdf_loss(siren.params(), SdfBatch(points, normals, uniform), w0_first=config.w0,
                                 w0=config.w0, config=loss_config)
                optimizer.zero_grad(set_to_none=True)
                terms.total.sum().backward()
                optimizer.step()
        siren.eval()

        @torch.no_grad()
        def field(queries: Tensor) -> Tensor:
            return siren(queries)[..., 0]

        return field

    return complete
