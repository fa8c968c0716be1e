"""Context sampling: distinct points, the reference's k range, exact k for evaluation, seeding."""

import pytest
import torch

import hypersiren as hs
from hypersiren.prior import fixed_context, prefix_context, sample_context


def image_points(batch=4, side=8):
    images = torch.arange(batch * side * side * 3, dtype=torch.float32).reshape(batch, side, side, 3)
    return hs.image_to_points(images)


def test_sample_context_draws_distinct_points_and_masks_k_of_them():
    coords, values = image_points()
    g = torch.Generator().manual_seed(0)
    ks = []
    for _ in range(50):
        context = sample_context(coords, values, max_points=20, min_points=3, generator=g)
        assert context.coords.shape == (4, 20, 2) and context.values.shape == (4, 20, 3)
        for b in range(4):
            assert context.values[b, :, 0].unique().numel() == 20  # distinct pixels
            index = (context.values[b, :, 0] - values[b, 0, 0]).long() // 3
            assert torch.equal(context.coords[b], coords[b, index])  # coords and values stay paired
        k = context.mask.sum(1)
        assert torch.equal(context.mask, torch.arange(20) < k.unsqueeze(1))  # the valid points come first
        ks += k.tolist()
    assert min(ks) == 3 and max(ks) == 20


def test_fixed_context_has_exactly_k_valid_points_and_is_seeded():
    coords, values = image_points()
    a = fixed_context(coords, values, 10, generator=torch.Generator().manual_seed(7))
    b = fixed_context(coords, values, 10, generator=torch.Generator().manual_seed(7))
    c = fixed_context(coords, values, 10, generator=torch.Generator().manual_seed(8))
    assert a.mask.all() and a.coords.shape == (4, 10, 2)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)
    full = fixed_context(coords, values, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(full.values.sort(1).values, values.sort(1).values)


def test_prefix_context_is_the_top_rows():
    coords, values = image_points()
    half = prefix_context(coords, values, 32)
    assert torch.equal(half.coords[0, :, 0].unique(), hs.grid((8,))[:4, 0])  # rows 0..3 of 8


def test_asking_for_too_many_points_is_an_error():
    coords, values = image_points()
    with pytest.raises(ValueError, match="k=1000 context points asked for, but each signal has N=64 points"):
        fixed_context(coords, values, 1000)
    with pytest.raises(ValueError, match="need 1 <= min_points <= max_points <= N=64"):
        sample_context(coords, values, max_points=200)
    with pytest.raises(ValueError, match=r"expected coords \[B, N, D\] and values \[B, N, C\]"):
        prefix_context(coords, values[:, :10], 5)
