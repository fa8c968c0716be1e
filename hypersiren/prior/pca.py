"""Principal components of a collection of signals, and the probabilistic PCA built on them.

Numerics only (float64 tensors in, no model): `principal_components` picks the Gram matrix or a chunked
covariance by the collection's shape; `probabilistic_pca` turns the top components into the mean and
scaled basis of a PPCA model (Tipping and Bishop), the targets a basis prior starts from.

Collections larger than memory, or spread over processes: `Moments` accumulates the count, sum and
scatter of signals chunk by chunk (from memory-mapped shards, a folder, ...) and sums them over the
processes of a `torch.distributed` group; `streamed_principal_components(chunks, count)` gives what
`principal_components` gives for their concatenation, with the top eigenpairs by `top_eigenpairs`: a
dense `eigh` for small covariances, randomized subspace iteration (Halko, Martinsson and Tropp 2011)
beyond `DENSE_LIMIT` values per signal (64x64 RGB images have 12,288). `streamed_probabilistic_pca` is
`probabilistic_pca` by that route; the two share the step from eigenpairs to the PPCA (`_ppca`). Past
`SKETCH_LIMIT` values per signal (128x128 RGB images have 49,152: a float64 scatter of 19 GB) the scatter is
never formed: `sketched_principal_components` reads the chunks several times and multiplies each by a thin
block of directions (randomized subspace iteration on the data themselves), holding `D x (K + 16)` numbers.
The streamed route fixes each component's sign (its largest entry is positive), so that every chunking,
share of processes and eigensolver gives the same basis; the in-memory route keeps `eigh`'s signs, so the
starts it made before stay what they were (the two agree up to the sign of each component).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import NamedTuple, Union

import torch
from torch import Tensor

DENSE_LIMIT = 4096  # values per signal up to which `top_eigenpairs` uses a dense eigendecomposition
SKETCH_LIMIT = 16384  # values per signal beyond which the start never forms the D x D scatter (2 GiB here)
Chunks = Union[Iterable[Tensor], Callable[[], Iterable[Tensor]]]  # chunks, or a function reading them afresh


def principal_components(flat: Tensor, count: int, chunk: int = 4096) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top `count` eigenvalues `[K]` and eigenvectors `[D, K]` of the sample covariance of `flat [N, D]`,
    its mean `[D]` and total variance, in float64. With fewer signals than values the eigenvectors come
    from the `N x N` Gram matrix; otherwise the `D x D` covariance is accumulated `chunk` signals at a
    time, so memory stays at one chunk in float64 however many signals there are."""
    n, dim = flat.shape
    if n >= dim > SKETCH_LIMIT:  # the D x D scatter would not fit: the same components from thin products
        return sketched_principal_components(lambda: flat.split(chunk), count, distributed=False)
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


class Moments:
    """Running count, sum and scatter of signals `[n, D]`, in float64, shifted by the first chunk's mean
    (so that sums of squares do not lose the spread to a large mean). `add` chunks in any order and any
    size; `all_reduce` sums them over the processes of the default `torch.distributed` group (each
    process adds its own share of the signals; every process must have added a first chunk, which fixes
    the shift, and the shifts are made common first)."""

    def __init__(self, dim: int, device: torch.device | str = "cpu"):
        self.count = 0
        self.shift: Tensor | None = None  # [D]
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)  # of x - shift
        self.scatter = torch.zeros(dim, dim, dtype=torch.float64, device=device)  # of (x - shift)(x - shift)^T

    def add(self, chunk: Tensor) -> "Moments":
        if chunk.dim() != 2 or chunk.shape[1] != self.sum.shape[0]:
            raise ValueError(f"Moments.add: expected a chunk [n, {self.sum.shape[0]}], got {tuple(chunk.shape)}")
        if not torch.isfinite(chunk).all():
            raise ValueError("Moments.add: the chunk holds NaN or inf")
        chunk = chunk.to(self.sum.device, torch.float64)
        if self.shift is None:
            self.shift = chunk.mean(0)
        centred = chunk - self.shift
        self.count += chunk.shape[0]
        self.sum += centred.sum(0)
        self.scatter.addmm_(centred.T, centred)
        return self

    def all_reduce(self) -> "Moments":
        """Sum over the processes (a no-op without an initialised `torch.distributed` group)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        if self.shift is None:
            raise ValueError("Moments.all_reduce: this process added no signals")
        shift = self.shift.clone()
        dist.all_reduce(shift)
        shift /= dist.get_world_size()
        self._reshift(shift)
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.sum.device)
        for tensor in (count, self.sum, self.scatter):
            dist.all_reduce(tensor)
        self.count = int(count.item())
        return self

    def _reshift(self, shift: Tensor) -> None:
        """Express the moments about `shift` instead of `self.shift` (exact: a rank-two update)."""
        delta = self.shift - shift  # x - shift = (x - self.shift) + delta
        self.scatter += torch.outer(self.sum, delta) + torch.outer(delta, self.sum) + self.count * torch.outer(delta, delta)
        self.sum += self.count * delta
        self.shift = shift

    def covariance(self) -> tuple[Tensor, Tensor]:
        """The mean `[D]` and the sample covariance `[D, D]` (divided by n - 1)."""
        if self.count < 2:
            raise ValueError(f"Moments.covariance: need at least 2 signals, got {self.count}")
        centre = self.sum / self.count
        covariance = torch.addr(self.scatter, centre, centre, alpha=-self.count).div_(self.count - 1)  # one D x D copy
        return self.shift + centre, covariance


def top_eigenpairs(matrix: Tensor, count: int, *, method: str = "auto", oversample: int = 16, iterations: int = 6,
                   seed: int = 0) -> tuple[Tensor, Tensor]:
    """The `count` largest eigenvalues `[K]` and eigenvectors `[D, K]` of a symmetric positive semi-definite
    `matrix [D, D]`. `method`: "dense" (`torch.linalg.eigh`), "randomized" (subspace iteration on
    `count + oversample` random directions, `iterations` passes, each re-orthonormalised; accurate where
    the spectrum falls off past the top `count`), or "auto" (dense up to `DENSE_LIMIT`)."""
    dim = matrix.shape[0]
    if method not in ("auto", "dense", "randomized"):
        raise ValueError(f"top_eigenpairs: method must be auto, dense or randomized, got {method!r}")
    if not 1 <= count <= dim:
        raise ValueError(f"top_eigenpairs: count must be in [1, {dim}], got {count}")
    if method == "dense" or (method == "auto" and dim <= DENSE_LIMIT) or count + oversample >= dim:
        eigenvalues, vectors = torch.linalg.eigh(matrix)
        return eigenvalues.flip(0)[:count], vectors.flip(1)[:, :count]
    generator = torch.Generator(device=matrix.device).manual_seed(seed)
    basis = torch.randn(dim, count + oversample, generator=generator, dtype=matrix.dtype, device=matrix.device)
    for _ in range(iterations):
        basis = torch.linalg.qr(matrix @ basis).Q
    eigenvalues, small = torch.linalg.eigh(basis.T @ matrix @ basis)  # the matrix on the found subspace
    return eigenvalues.flip(0)[:count], (basis @ small).flip(1)[:, :count]


def streamed_moments(chunks: Iterable[Tensor], *, distributed: bool = True,
                     caller: str = "streamed_moments") -> Moments:
    """The `Moments` of the concatenated `chunks` (each `[n_i, D]`), summed over the processes of the
    `torch.distributed` group when `distributed` and one is initialised (each process streaming its share).

    Among several processes a failure while streaming (a bad file, a bad chunk, a process given no
    chunks) stops every process: the one that failed raises its error, the others a ValueError saying
    which process failed, instead of waiting forever for its sums."""
    moments, failure = None, None
    try:
        for chunk in chunks:
            moments = (moments or Moments(chunk.shape[-1], chunk.device)).add(chunk.reshape(chunk.shape[0], -1))
        if moments is None:
            raise ValueError(f"{caller}: no chunks")
    except Exception as error:  # agreed on below, then raised again here
        failure = error
    if distributed and _group_size() > 1:
        _agree(failure, moments, caller)
    if failure is not None:
        raise failure
    return moments.all_reduce() if distributed else moments


def _group_size() -> int:
    """Processes in the default `torch.distributed` group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _agree(failure: Exception | None, moments: Moments | None, caller: str) -> None:
    """Whether every process streamed its share (one small all_reduce); if one failed, the others raise."""
    import torch.distributed as dist

    if moments is not None:
        device = moments.sum.device
    elif dist.get_backend() == "nccl":  # NCCL reduces tensors on this process's GPU only
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    failed = torch.zeros(dist.get_world_size(), dtype=torch.float64, device=device)
    failed[dist.get_rank()] = failure is not None
    dist.all_reduce(failed)
    others = [rank for rank, flag in enumerate(failed.tolist()) if flag and rank != dist.get_rank()]
    if failure is None and others:
        raise ValueError(f"{caller}: process(es) {others} failed while streaming their share of the signals "
                         "(their error says why); every process stops")


def streamed_principal_components(chunks: Iterable[Tensor], count: int, *, method: str = "auto",
                                  distributed: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`principal_components` of the concatenated `chunks` (each `[n_i, D]`; over all processes of the
    `torch.distributed` group when `distributed` and one is initialised, each process streaming its share),
    holding one chunk and the `D x D` scatter at a time. Eigenvectors match up to sign."""
    moments = streamed_moments(chunks, distributed=distributed, caller="streamed_principal_components")
    mean, covariance = moments.covariance()
    eigenvalues, vectors = top_eigenpairs(covariance, count, method=method)
    return eigenvalues, vectors, mean, covariance.diagonal().sum()


def sketched_principal_components(read: Callable[[], Iterable[Tensor]], count: int, *, oversample: int = 16,
                                  iterations: int = 6, seed: int = 0, distributed: bool = True,
                                  caller: str = "sketched_principal_components") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`principal_components` of the concatenated chunks `[n_i, D]` that `read()` gives (afresh at each
    call), without the `D x D` scatter: one pass for the mean and the total variance, then `iterations`
    passes that each multiply the centred chunks by `count + oversample` orthonormal directions,
    `Y = sum_i X_i^T (X_i Q) / (n - 1)` (the covariance times `Q`, in float64), the last giving the
    eigenpairs on the found subspace (Rayleigh-Ritz). Memory: one chunk and `D x (count + oversample)`.
    Over the processes of the `torch.distributed` group when `distributed` and one is initialised, each
    reading its share (each pass's sums are all-reduced; a failure in one process stops all). Accurate
    where the spectrum falls off past the top `count`, as `top_eigenpairs`' randomized route."""
    import torch.distributed as dist

    joined = distributed and _group_size() > 1

    def passes(visit: Callable[[Tensor], None]) -> None:
        """`visit` every chunk of this process, as float64 `[n, D]`; the processes agree on failures."""
        failure, seen = None, False
        try:
            for chunk in read():
                visit(chunk.reshape(chunk.shape[0], -1))
                seen = True
            if not seen:
                raise ValueError(f"{caller}: no chunks")
        except Exception as error:  # agreed on below, then raised again here
            failure = error
        if joined:
            _agree(failure, None, caller)
        if failure is not None:
            raise failure

    sums: dict[str, Tensor] = {}

    def moments(chunk: Tensor) -> None:  # count, and per value the sum and sum of squares about a shift
        if not torch.isfinite(chunk).all():
            raise ValueError(f"{caller}: a chunk holds NaN or inf")
        chunk = chunk.double()
        if not sums:
            sums.update(shift=chunk.mean(0), count=chunk.new_zeros(1), sum=chunk.new_zeros(chunk.shape[1]),
                        squares=chunk.new_zeros(chunk.shape[1]))
        if chunk.shape[1] != sums["sum"].shape[0]:
            raise ValueError(f"{caller}: expected chunks [n, {sums['sum'].shape[0]}], got {tuple(chunk.shape)}")
        centred = chunk - sums["shift"]
        sums["count"] += chunk.shape[0]
        sums["sum"] += centred.sum(0)
        sums["squares"] += centred.square().sum(0)

    with torch.no_grad():
        passes(moments)
        if joined:  # a common shift first (rank 0's), then the sums about it
            shift = sums["shift"].clone()
            dist.broadcast(shift, src=0)
            delta = sums["shift"] - shift
            sums["squares"] += 2 * delta * sums["sum"] + sums["count"] * delta.square()
            sums["sum"] += sums["count"] * delta
            sums["shift"] = shift
            for name in ("count", "sum", "squares"):
                dist.all_reduce(sums[name])
        n, dim = int(sums["count"].item()), sums["sum"].shape[0]
        if not 1 <= count < min(n - 1, dim + 1):
            raise ValueError(f"{caller}: {count} components need more than {count + 1} signals of at least {count} "
                             f"values, got {n} signals of {dim} values")
        centre = sums["sum"] / n
        mean = sums["shift"] + centre
        total = (sums["squares"] - n * centre.square()).sum() / (n - 1)
        width = min(count + oversample, dim)
        generator = torch.Generator(device=mean.device).manual_seed(seed)
        basis = torch.linalg.qr(torch.randn(dim, width, generator=generator, dtype=torch.float64,
                                            device=mean.device)).Q
        for iteration in range(iterations):
            product = torch.zeros_like(basis)  # the covariance times the basis

            def multiply(chunk: Tensor) -> None:
                centred = chunk.to(mean.device, torch.float64) - mean
                product.addmm_(centred.T, centred @ basis)

            passes(multiply)
            if joined:
                dist.all_reduce(product)
            product /= n - 1
            if iteration < iterations - 1:
                basis = torch.linalg.qr(product).Q
        small = basis.T @ product  # the covariance on the subspace
        eigenvalues, vectors = torch.linalg.eigh((small + small.T) / 2)
        return eigenvalues.flip(0)[:count], (basis @ vectors).flip(1)[:, :count], mean, total


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
    _check_components("probabilistic_pca", latent_dim, n, points * channels)
    with torch.no_grad():
        components = principal_components(values.reshape(n, -1), latent_dim)
        return _ppca(*components, shape=(points, channels), dtype=values.dtype, fix_signs=False)


def streamed_probabilistic_pca(chunks: Chunks, latent_dim: int, *, method: str = "auto",
                               distributed: bool = True) -> PPCA:
    """`probabilistic_pca` of the concatenated `chunks` (each `[n_i, P, C]`, in the dtype the PPCA takes),
    streamed: memory holds one chunk and the `P C x P C` scatter in float64. Over the processes of the
    `torch.distributed` group when `distributed` and one is initialised, each streaming its share (every
    process needs at least one chunk); every process gets the same PPCA. `method`: the eigensolver of
    `top_eigenpairs` ("dense", "randomized"; "auto": randomized beyond `DENSE_LIMIT` values per signal), or
    "sketch": no scatter, `sketched_principal_components`, which reads the chunks several times, so
    `chunks` must then be a function that reads them afresh. Given such a function, "auto" sketches beyond
    `SKETCH_LIMIT` values per signal."""
    if method not in ("auto", "dense", "randomized", "sketch"):
        raise ValueError(f"streamed_probabilistic_pca: method must be auto, dense, randomized or sketch, got {method!r}")
    read = chunks if callable(chunks) else None
    if method == "sketch" and read is None:
        raise ValueError("streamed_probabilistic_pca: the sketch reads the chunks several times; pass a function "
                         "that returns them afresh, not one pass of them")
    first: list[Tensor] = []  # an empty chunk like the first: its points, channels and dtype are the PPCA's

    def flattened(source: Iterable[Tensor]) -> Iterator[Tensor]:
        for chunk in source:
            if chunk.dim() == 3 and not first:
                first.append(chunk.new_empty((0, *chunk.shape[1:])))
            if chunk.dim() != 3 or chunk.shape[1:] != first[0].shape[1:]:
                expected = "[n, {}, {}]".format(*first[0].shape[1:]) if first else "[n, P, C]"
                raise ValueError(f"streamed_probabilistic_pca: expected chunks {expected}, got {tuple(chunk.shape)}")
            yield chunk.reshape(chunk.shape[0], -1)

    with torch.no_grad():
        one_pass = iter(flattened(read() if read is not None else chunks))
        peek = next(one_pass, None)  # the first chunk's size chooses the route (every process's is alike)
        values = None if peek is None else peek.shape[1]
        one_pass = chain([] if peek is None else [peek], one_pass)
        if read is not None and values is not None and (
                method == "sketch" or (method == "auto" and values > SKETCH_LIMIT)):
            eigenvalues, vectors, mean, total = sketched_principal_components(
                lambda: flattened(read()), latent_dim, distributed=distributed, caller="streamed_probabilistic_pca")
            return _ppca(eigenvalues, vectors, mean, total, shape=tuple(first[0].shape[1:]), dtype=first[0].dtype,
                         fix_signs=True)
        moments = streamed_moments(one_pass, distributed=distributed, caller="streamed_probabilistic_pca")
        _check_components("streamed_probabilistic_pca", latent_dim, moments.count, moments.sum.shape[0])
        mean, covariance = moments.covariance()
        eigenvalues, vectors = top_eigenpairs(covariance, latent_dim, method=method)
        return _ppca(eigenvalues, vectors, mean, covariance.diagonal().sum(), shape=tuple(first[0].shape[1:]),
                     dtype=first[0].dtype, fix_signs=True)


def _check_components(caller: str, latent_dim: int, count: int, values: int) -> None:
    if latent_dim >= min(count - 1, values):
        raise ValueError(f"{caller}: {latent_dim} components need more than {count} signals of {values} values")


def _ppca(eigenvalues: Tensor, vectors: Tensor, mean: Tensor, total: Tensor, *, shape: tuple[int, int],
          dtype: torch.dtype, fix_signs: bool) -> PPCA:
    """The PPCA of the top eigenpairs (`[Z]`, `[P C, Z]`), mean `[P C]` and total variance of a sample
    covariance, for signals of `shape = (P, C)`. `fix_signs`: make each component's largest entry in size
    positive, so that every eigensolver and chunking gives the same basis, not one up to signs."""
    points, channels = shape
    latent_dim = eigenvalues.shape[0]
    noise = float((total - eigenvalues.sum()) / (points * channels - latent_dim))
    if fix_signs:
        largest = vectors.gather(0, vectors.abs().argmax(0, keepdim=True))  # [1, Z]
        vectors = vectors * torch.where(largest < 0, -1.0, 1.0).to(vectors.dtype)
    components = vectors * (eigenvalues - noise).clamp_min(0).sqrt()  # [P C, Z]
    return PPCA(mean.reshape(points, channels).to(dtype), components.reshape(points, channels, latent_dim).to(dtype),
                noise)
