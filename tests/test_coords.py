"""Coordinate grids and signal <-> point-set conversion."""

import pytest
import torch

import hypersiren as hs


def test_grid_is_endpoint_inclusive_row_major_with_row_first():
    g = hs.grid((3, 5))
    assert g.shape == (15, 2)
    torch.testing.assert_close(g[0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(g[-1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(g[1], torch.tensor([-1.0, -0.5]))  # the column varies fastest
    torch.testing.assert_close(g[5], torch.tensor([0.0, -1.0]))  # next row: coordinate 0 moves down
    r, c = 2, 3
    torch.testing.assert_close(g[r * 5 + c], torch.tensor([-1 + 2 * r / 2, -1 + 2 * c / 4]))


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), (1, 4)])
def test_grid_any_dimension(shape):
    g = hs.grid(shape, dtype=torch.float64)
    assert g.shape == (torch.Size(shape).numel(), len(shape)) and g.dtype == torch.float64
    for d, side in enumerate(shape):
        values = g[:, d].unique()
        expected = torch.linspace(-1, 1, side, dtype=torch.float64)
        torch.testing.assert_close(values, expected)


def test_image_points_round_trip_and_coordinates_address_pixels():
    images = torch.rand(2, 4, 6, 3)
    coords, values = hs.image_to_points(images)
    assert coords.shape == (2, 24, 2) and values.shape == (2, 24, 3)
    assert torch.equal(hs.points_to_image(values, 4, 6), images)
    # the point whose coordinates are (row 3 -> +1, column 0 -> -1) carries pixel [3, 0]
    index = ((coords[0] - torch.tensor([1.0, -1.0])).abs().sum(-1) < 1e-6).nonzero().item()
    assert torch.equal(values[1, index], images[1, 3, 0])


def test_channels_first_last_are_inverses():
    images = torch.rand(2, 3, 4, 5)
    assert hs.channels_last(images).shape == (2, 4, 5, 3)
    assert torch.equal(hs.channels_first(hs.channels_last(images)), images)


def test_video_signal_to_points():
    video = torch.rand(1, 5, 4, 6, 3)  # [B, T, H, W, C]
    coords, values = hs.signal_to_points(video, spatial_dims=3)
    assert coords.shape == (1, 120, 3)
    assert torch.equal(hs.points_to_signal(values, (5, 4, 6)), video)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"expected a non-empty shape of positive ints, got \(4, 0\)"):
        hs.grid((4, 0))
    with pytest.raises(ValueError, match=r"expected images \[B, H, W, C\], got \(4, 6, 3\)"):
        hs.image_to_points(torch.zeros(4, 6, 3))
    with pytest.raises(ValueError, match=r"expected values \[B, 20, C\] for a grid of shape \(4, 5\), got \(2, 24, 3\)"):
        hs.points_to_image(torch.zeros(2, 24, 3), 4, 5)


def test_grid_index_inverts_grid():
    for shape in [(4, 6), (3, 2, 5)]:
        g = hs.grid(shape, dtype=torch.float64)
        assert torch.equal(hs.grid_index(g, shape), torch.arange(g.shape[0]))
    with pytest.raises(ValueError, match=r"expected coords \[\.\.\., 2\] for a grid of shape \(4, 6\)"):
        hs.grid_index(torch.zeros(3, 3), (4, 6))
