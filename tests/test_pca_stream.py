"""Streamed and distributed principal components (`prior.pca`): the same eigenpairs as the in-memory
route, chunk by chunk, by randomized subspace iteration, by the sketch that never forms the scatter, and
summed over two real gloo processes."""


import pytest
import torch

from hypersiren.prior import pca
from hypersiren.prior.pca import (Moments, principal_components, probabilistic_pca, sketched_principal_components,
                                  streamed_principal_components, streamed_probabilistic_pca, top_eigenpairs)

from support import in_gloo_processes


def collection(n=400, dim=300, rank=8, seed=0) -> torch.Tensor:
    """Signals near a rank-`rank` subspace, far from the origin (a mean of 100 tests the shifted sums)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, dim, generator=g, dtype=torch.float64)
    return 3 * low + 0.1 * torch.randn(n, dim, generator=g, dtype=torch.float64) + 100


def assert_same_components(found, expected, *, atol=1e-9):
    (values, vectors, mean, total), (values0, vectors0, mean0, total0) = found, expected
    torch.testing.assert_close(values, values0, rtol=1e-9, atol=atol)
    torch.testing.assert_close((vectors.T @ vectors0).abs().diagonal(), torch.ones(len(values0), dtype=torch.float64),
                               rtol=0, atol=1e-8)  # the same directions, up to sign
    torch.testing.assert_close(mean, mean0, rtol=0, atol=1e-9)
    torch.testing.assert_close(total, total0, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["dense", "randomized"])
def test_streamed_components_equal_the_in_memory_ones(method):
    flat = collection()
    expected = principal_components(flat, 6)
    assert_same_components(streamed_principal_components(flat.split(37), 6, method=method), expected)
    assert_same_components(streamed_principal_components(iter(flat.split(400)), 6, method=method), expected)


def test_randomized_eigenpairs_of_a_large_covariance_match_the_dense_ones():
    flat = collection(n=300, dim=5000, rank=12)
    covariance = torch.cov(flat.T)
    dense, randomized = top_eigenpairs(covariance, 10, method="dense"), top_eigenpairs(covariance, 10)  # auto
    torch.testing.assert_close(randomized[0], dense[0], rtol=1e-9, atol=0)
    torch.testing.assert_close((randomized[1].T @ dense[1]).abs().diagonal(), torch.ones(10, dtype=torch.float64),
                               rtol=0, atol=1e-8)


def test_moments_reshift_exactly_and_refuse_bad_chunks():
    flat = collection(n=50, dim=20)
    moments = Moments(20).add(flat[:20]).add(flat[20:])
    mean, covariance = moments.covariance()
    moments._reshift(torch.zeros(20, dtype=torch.float64))
    torch.testing.assert_close(moments.covariance()[1], covariance, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(covariance, torch.cov(flat.T), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mean, flat.mean(0))
    with pytest.raises(ValueError, match=r"Moments.add: expected a chunk \[n, 20\], got \(3, 21\)"):
        moments.add(torch.zeros(3, 21))
    with pytest.raises(ValueError, match="Moments.add: the chunk holds NaN or inf"):
        moments.add(torch.full((3, 20), float("nan")))
    with pytest.raises(ValueError, match="need at least 2 signals, got 1"):
        Moments(20).add(flat[:1]).covariance()
    with pytest.raises(ValueError, match="streamed_principal_components: no chunks"):
        streamed_principal_components([], 3)
    with pytest.raises(ValueError, match="method must be auto, dense or randomized"):
        top_eigenpairs(covariance, 3, method="lanczos")


def _share(rank: int) -> list:
    flat = collection()
    mine = flat[:150] if rank == 0 else flat[150:]  # unequal shares, each streamed in its own chunks
    return list(streamed_principal_components(mine.split(41 + rank), 6, method="randomized"))


def test_two_processes_streaming_their_shares_find_the_components_of_all(tmp_path):
    results = in_gloo_processes(_share, folder=tmp_path, timeout=120)
    expected = principal_components(collection(), 6)
    for rank in range(2):
        assert_same_components(results[rank], expected)


def test_the_sketch_finds_the_components_without_the_scatter():
    flat = collection()
    reads = []

    def read():
        reads.append(1)
        return flat.split(37)

    assert_same_components(sketched_principal_components(read, 6), principal_components(flat, 6))
    assert len(reads) == 1 + 6  # the mean pass, then one pass per iteration
    with pytest.raises(ValueError, match="sketched_principal_components: no chunks"):
        sketched_principal_components(lambda: [], 3)
    with pytest.raises(ValueError, match="a chunk holds NaN or inf"):
        sketched_principal_components(lambda: [flat[:5], torch.full((3, 300), float("inf"))], 3)
    with pytest.raises(ValueError, match="expected chunks \\[n, 300\\], got \\(3, 299\\)"):
        sketched_principal_components(lambda: [flat[:5], flat[:3, 1:]], 3)
    with pytest.raises(ValueError, match="6 components need more than 7 signals"):
        sketched_principal_components(lambda: [flat[:7]], 6)


def test_a_ppca_beyond_the_sketch_limit_never_forms_the_scatter(monkeypatch):
    """Past `SKETCH_LIMIT` values per signal the in-memory and the streamed PPCA (given a reader) sketch;
    they match the PPCA from the scatter. A one-pass iterable cannot be sketched."""
    values = collection(n=400, dim=300).reshape(400, 100, 3)
    expected = probabilistic_pca(values, 6)
    monkeypatch.setattr(pca, "SKETCH_LIMIT", 200)
    monkeypatch.setattr(Moments, "__init__", lambda *args: pytest.fail("the scatter was formed"))
    for found in (probabilistic_pca(values, 6), streamed_probabilistic_pca(lambda: values.split(64), 6)):
        signs = torch.sign((found.basis * expected.basis).sum((0, 1)))  # the in-memory route keeps eigh's signs
        torch.testing.assert_close(found.basis * signs, expected.basis, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(found.mean, expected.mean, rtol=0, atol=1e-9)
        assert found.noise == pytest.approx(expected.noise, rel=1e-9)
    with pytest.raises(ValueError, match="the sketch reads the chunks several times"):
        streamed_probabilistic_pca(values.split(64), 6, method="sketch")


def _sketch_share(rank: int) -> list:
    flat = collection()
    mine = flat[:150] if rank == 0 else flat[150:]
    return list(sketched_principal_components(lambda: mine.split(41 + rank), 6))


def test_two_processes_sketching_their_shares_find_the_components_of_all(tmp_path):
    results = in_gloo_processes(_sketch_share, folder=tmp_path, timeout=120)
    expected = principal_components(collection(), 6)
    for rank in range(2):
        assert_same_components(results[rank], expected)
