"""Principal components of a collection of signals, and the probabilistic PCA built on them.

Numerics only (float64 tensors in, no model): `principal_components` picks the Gram matrix or a chunked
covariance by the collection's shape; `probabilistic_pca` turns the top components into the mean and
scaled basis of a PPCA model (Tipping and Bishop), the targets a basis prior starts from.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def principal_components(flat: Tensor, count: int, chunk: int = 4096) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top `count` eigenvalues `[K]` and eigenvectors `[D, K]` of the sample covariance of `flat [N, D]`,
    its mean `[D]` and total variance, in float64. With fewer signals than values the eigenvectors come
    from the `N x N` Gram matrix; otherwise the `D x D` covariance is accumulated `chunk` signals at a
    time, so memory stays at one chunk in float64 however many signals there are."""
    n, dim = flat.shape
    mean = flat.double().mean(0)
    if n < dim:
        centred = flat.double() - mean
        eigenvalues, vectors = torch.linalg.eigh(centred @ centred.T)
        eigenvalues, vectors = eigenvalues.flip(0)[:count], vectors.flip(1)[:, :count]
        vectors = centred.T @ vectors / eigenvalues.clamp_min(1e-12).sqrt()
        total = centred.square().sum()
    else:
        scatter = torch.zeros(dim, dim, dtype=torch.float64, device=flat.device)
        for part in flat.split(chunk):
            centred = part.double() - mean
            scatter.addmm_(centred.T, centred)
        eigenvalues, vectors = torch.linalg.eigh(scatter)
        eigenvalues, vectors = eigenvalues.flip(0)[:count], vectors.flip(1)[:, :count]
        total = scatter.diagonal().sum()
    return eigenvalues / (n - 1), vectors, mean, total / (n - 1)



class PPCA(NamedTuple):
    """A probabilistic PCA of signals of `P` points and `C` channels, in the signals' dtype."""

    mean: Tensor  # [P, C]
    basis: Tensor  # [P, C, Z]: the top Z components, each scaled by sqrt(eigenvalue - noise)
    noise: float  # isotropic noise variance: the mean discarded eigenvalue


def probabilistic_pca(values: Tensor, latent_dim: int) -> PPCA:
    """PPCA of signals `values [N, P, C]` sampled at one shared set of points, with `latent_dim` components.

    Raises ValueError unless there are more signals than components (plus one) and more values per
    signal than components.
    """
    if values.dim() != 3:
        raise ValueError(f"probabilistic_pca: expected values [N, P, C], got {tuple(values.shape)}")
    n, points, channels = values.shape
    if latent_dim >= min(n - 1, points * channels):
        raise ValueError(f"probabilistic_pca: {latent_dim} components need more than {n} signals "
                         f"of {points * channels} values")
    with torch.no_grad():
        eigenvalues, vectors, mean, total = principal_components(values.reshape(n, -1), latent_dim)
        noise = float((total - eigenvalues.sum()) / (points * channels - latent_dim))
        components = vectors * (eigenvalues - noise).clamp_min(0).sqrt()  # [P C, Z]
        return PPCA(mean.reshape(points, channels).to(values.dtype),
                    components.reshape(points, channels, latent_dim).to(values.dtype), noise)
