"""Geometry of a latent space: interpolation (in latent and in weight space), Gaussian and PCA fits with
temperature sampling, principal-direction sweeps, nearest neighbours. Pure functions of tensors.

Latent-space interpolation decodes `(1 - t) za + t zb`; weight-space interpolation blends the two
decoded SIRENs' flat parameter vectors, `(1 - t) flatten(pa) + t flatten(pb)`. Both reproduce the
end points exactly (t = 0 and 1 give `1 * a + 0 * b`); between them they differ wherever the decoder
is not linear, which is what a side-by-side figure shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ..params import SirenParams

SIGMAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def _weights(steps: int, like: Tensor, caller: str) -> Tensor:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"{caller}: steps must be an int >= 2 (both end points included), got {steps!r}")
    return torch.linspace(0.0, 1.0, steps, dtype=like.dtype, device=like.device).unsqueeze(-1)  # [S, 1]


def _blend(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return (1 - t) * a + t * b  # exact at t = 0 and t = 1 (unlike torch.lerp at t = 1)


def interpolate_latents(za: Tensor, zb: Tensor, steps: int) -> Tensor:
    """Straight line from `za` to `zb` (each `[Z]` or `[1, Z]`), end points included: `[steps, Z]`."""
    za, zb = za.reshape(-1), zb.reshape(-1)
    if za.shape != zb.shape:
        raise ValueError(f"interpolate_latents: expected two latents of one size, got {za.numel()} and {zb.numel()}")
    return _blend(za, zb, _weights(steps, za, "interpolate_latents"))


def interpolate_params(pa: SirenParams, pb: SirenParams, steps: int) -> SirenParams:
    """Straight line in weight space between two SIRENs of one architecture (batch shape `()` or `(1,)`):
    SIRENs with batch shape `(steps,)`, the first equal to `pa`, the last to `pb`."""
    if pa.layer_shapes != pb.layer_shapes:
        raise ValueError(f"interpolate_params: expected two SIRENs of one architecture, got layer shapes "
                         f"{pa.layer_shapes} and {pb.layer_shapes}")
    fa, fb = pa.flatten().reshape(-1), pb.flatten().reshape(-1)
    if fa.numel() != fb.numel() or pa.batch_shape.numel() != 1 or pb.batch_shape.numel() != 1:
        raise ValueError(f"interpolate_params: expected one SIREN each (batch shape () or (1,)), got batch shapes "
                         f"{tuple(pa.batch_shape)} and {tuple(pb.batch_shape)}")
    flat = _blend(fa, fb, _weights(steps, fa, "interpolate_params"))  # [S, P]
    return SirenParams.unflatten(flat, pa.layer_shapes)


def _check_latents(latents: Tensor, caller: str) -> Tensor:
    if latents.dim() != 2 or latents.shape[0] < 2 or not latents.is_floating_point():
        raise ValueError(f"{caller}: expected latents [N, Z] of floats with N >= 2, got "
                         f"{latents.dtype} {tuple(latents.shape)}")
    return latents.detach().double()


def _check_sampling(n: int, temperature: float, caller: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{caller}: n must be a positive int, got {n!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"{caller}: temperature must be a finite number >= 0, got {temperature!r}")


class GaussianFit(NamedTuple):
    """A full-covariance Gaussian over latents: `z = mean + temperature * scale_tril @ eps`, eps ~ N(0, I)."""

    mean: Tensor  # [Z]
    scale_tril: Tensor  # [Z, Z], lower triangular: covariance = scale_tril @ scale_tril.T

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """`[n, Z]`; temperature scales the standard deviation (0: n copies of the mean, exactly)."""
        _check_sampling(n, temperature, "GaussianFit.sample")
        eps = torch.randn(n, self.mean.numel(), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + temperature * (eps @ self.scale_tril.T)


def fit_gaussian(latents: Tensor, *, jitter: float = 1e-6) -> GaussianFit:
    """Mean and unbiased covariance of latents `[N, Z]` (computed in float64; the result has their dtype).

    `jitter` times the mean variance is added to the diagonal before the Cholesky factorisation, so that
    fewer latents than dimensions (a singular covariance) still give a valid, nearly flat Gaussian.
    """
    x = _check_latents(latents, "fit_gaussian")
    if not jitter >= 0:
        raise ValueError(f"fit_gaussian: jitter must be >= 0, got {jitter!r}")
    mean = x.mean(0)
    centred = x - mean  # [N, Z]
    cov = centred.T @ centred / (x.shape[0] - 1)  # [Z, Z]
    scale = cov.diagonal().mean().clamp_min(torch.finfo(torch.float64).tiny)
    tril, info = torch.linalg.cholesky_ex(cov + jitter * scale * torch.eye(cov.shape[0], dtype=cov.dtype))
    if info != 0:
        raise ValueError(f"fit_gaussian: the covariance is not positive definite with jitter={jitter}; "
                         "pass a larger jitter (e.g. 1e-4)")
    return GaussianFit(mean.to(latents.dtype), tril.to(latents.dtype))


class PCAFit(NamedTuple):
    """Principal components of latents, strongest first."""

    mean: Tensor  # [Z]
    components: Tensor  # [K, Z], orthonormal rows
    std: Tensor  # [K], standard deviation of the latents along each component (unbiased)
    explained: Tensor  # [K], fraction of the total variance along each component

    def project(self, latents: Tensor) -> Tensor:
        """Coordinates of latents `[N, Z]` along the components: `[N, K]`."""
        return (latents - self.mean) @ self.components.T

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """`[n, Z]` from the Gaussian restricted to the K components (0 temperature: the mean, exactly)."""
        _check_sampling(n, temperature, "PCAFit.sample")
        eps = torch.randn(n, self.std.numel(), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + temperature * ((eps * self.std) @ self.components)


def fit_pca(latents: Tensor, *, components: int | None = None) -> PCAFit:
    """PCA of latents `[N, Z]` by SVD in float64, keeping `components` (default and at most `min(N, Z)`).

    Each component's sign is fixed so that its largest-magnitude entry is positive (deterministic).
    """
    x = _check_latents(latents, "fit_pca")
    limit = min(x.shape)
    k = limit if components is None else components
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
        raise ValueError(f"fit_pca: components must be an int in 1..{limit} (min of N={x.shape[0]} latents and "
                         f"Z={x.shape[1]}), got {components!r}")
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)  # s [min(N, Z)], vh [min(N, Z), Z]
    vh = vh[:k]
    sign = vh.gather(1, vh.abs().argmax(1, keepdim=True)).sign()  # [K, 1]
    variance = s.square() / (x.shape[0] - 1)
    explained = variance[:k] / variance.sum().clamp_min(torch.finfo(torch.float64).tiny)
    dtype = latents.dtype
    return PCAFit(mean.to(dtype), (vh * sign).to(dtype), variance[:k].sqrt().to(dtype), explained.to(dtype))


def direction_sweep(pca: PCAFit, component: int, *, sigmas: Sequence[float] = SIGMAS) -> Tensor:
    """Latents along one principal direction, `mean + s * std[k] * components[k]` for s in sigmas: `[S, Z]`."""
    k = pca.std.numel()
    if not isinstance(component, int) or isinstance(component, bool) or not 0 <= component < k:
        raise ValueError(f"direction_sweep: component must be an int in 0..{k - 1}, got {component!r}")
    s = torch.as_tensor(list(sigmas), dtype=pca.mean.dtype, device=pca.mean.device).unsqueeze(-1)  # [S, 1]
    if s.numel() == 0:
        raise ValueError("direction_sweep: expected at least one sigma, got none")
    return pca.mean + s * pca.std[component] * pca.components[component]


class Neighbours(NamedTuple):
    indices: Tensor  # [Q, k] long: rows of the references, nearest first
    distances: Tensor  # [Q, k]: their distances (Euclidean for `nearest_neighbours`)


def nearest_neighbours(queries: Tensor, references: Tensor, *, k: int = 1) -> Neighbours:
    """The `k` nearest references `[R, ...]` to each query `[Q, ...]` by Euclidean distance of the flattened
    items (ties: lower index first), computed in float64.

    For a memorisation check pass images (pixel space): whether a sample *looks* like a training image
    is the question, and pixel distance does not depend on how the encoder happens to scale its latents.
    """
    if queries.dim() < 2 or references.dim() < 2 or queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"nearest_neighbours: expected queries [Q, ...] and references [R, ...] with the same "
                         f"item shape, got {tuple(queries.shape)} and {tuple(references.shape)}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= references.shape[0]:
        raise ValueError(f"nearest_neighbours: k must be an int in 1..{references.shape[0]} (the number of "
                         f"references), got {k!r}")
    found = nearest(euclidean_distances(queries, references), k=k)
    return found._replace(distances=found.distances.to(queries.dtype))


def euclidean_distances(queries: Tensor, references: Tensor) -> Tensor:
    """Euclidean distances of flattened items `[Q, ...]`, `[R, ...]` -> `[Q, R]`, computed in float64 (not by
    the matrix-product shortcut, which loses precision for near neighbours)."""
    q, r = queries.detach().flatten(1).double(), references.detach().flatten(1).double()
    return torch.cdist(q, r, compute_mode="donot_use_mm_for_euclid_dist")


def nearest(distances: Tensor, *, k: int = 1) -> Neighbours:
    """The `k` smallest entries of each row of a distance matrix `[Q, R]` (ties: lower index first)."""
    if distances.dim() != 2 or distances.shape[1] == 0:
        raise ValueError(f"nearest: expected distances [Q, R] with R >= 1, got {tuple(distances.shape)}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= distances.shape[1]:
        raise ValueError(f"nearest: k must be an int in 1..{distances.shape[1]} (the number of references), got {k!r}")
    order = distances.argsort(dim=1, stable=True)[:, :k]
    return Neighbours(order, distances.gather(1, order))
