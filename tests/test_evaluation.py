"""The evaluation protocol and its baselines."""

import math

import pytest
import torch

import hypersiren as hs
from hypersiren.modalities.image import (evaluate, interpolation_predictor, markdown_table, mean_image_predictor)
from hypersiren.prior import Context, HyperSiren, HyperSirenConfig, fixed_context, model_predictor


def ramp_images(n=3, side=32):
    """Images that are linear in the coordinates: linear interpolation recovers them inside the hull."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, 1, 1, 3, generator=g) * 0.4
    grid = hs.grid((side, side)).reshape(side, side, 2)
    return (0.5 + a * grid[..., :1] + (0.4 - a) * grid[..., 1:]).clamp(0, 1)


def test_perfect_predictor_scores_zero_and_psnr_is_per_image():
    images = ramp_images()
    truth = hs.image_to_points(images * 2 - 1)[1]
    perfect = evaluate(lambda context, coords: truth[: coords.shape[0]], images, sizes=("10", "half"))
    assert perfect["mse"]["10"] < 1e-12 and perfect["mse_completed"]["half"] < 1e-12

    # per-image offsets 0.2, 0.02, 0.2 in [-1, 1] units: mse 0.01, 1e-4, 0.01 in [0, 1] units, PSNR 20, 40, 20 dB
    shift = torch.tensor([0.2, 0.02, 0.2]).reshape(3, 1, 1)
    offset = evaluate(lambda context, coords: truth[: coords.shape[0]] + shift, images, sizes=("10",))
    assert offset["mse"]["10"] == pytest.approx((0.01 + 1e-4 + 0.01) / 3, rel=1e-4)
    assert offset["psnr"]["10"] == pytest.approx(80 / 3, abs=1e-3)  # the mean of per-image PSNRs
    pooled = 10 * math.log10(1 / offset["mse"]["10"])
    assert abs(offset["psnr"]["10"] - pooled) > 4  # which the PSNR of the mean error (21.7 dB) is not


def test_completed_score_keeps_exactly_the_context_pixels():
    images = ramp_images()
    zeros = lambda context, coords: torch.full((coords.shape[0], coords.shape[1], 3), -1.0)  # noqa: E731
    result = evaluate(zeros, images, sizes=("100", "full"))
    per_pixel = images.square().mean(-1).reshape(3, -1)  # error of predicting 0 at each pixel
    assert result["mse_completed"]["full"] == pytest.approx(0.0, abs=1e-12)
    # keeping 100 of 1024 pixels removes, on average, about 100/1024 of the error
    assert result["mse_completed"]["100"] == pytest.approx(result["mse"]["100"] * (1 - 100 / 1024), rel=0.08)
    assert result["mse"]["100"] == pytest.approx(per_pixel.mean().item(), rel=1e-5)


def test_interpolation_recovers_linear_images_inside_the_hull():
    images = ramp_images()
    result = evaluate(interpolation_predictor(), images, sizes=("100", "half", "full"))
    assert result["mse"]["full"] < 1e-10
    assert result["mse"]["100"] < 1e-3  # only the border outside the hull is filled by nearest
    assert result["mse"]["half"] > result["mse"]["100"]  # the bottom half is outside the hull of the top half


def test_mean_image_and_prior_predictors_run_on_the_protocol():
    images = ramp_images(n=4, side=8)
    mean = evaluate(mean_image_predictor(images), images, sizes=("10", "half"))
    expected = (images - images.mean(0)).square().mean().item()
    assert mean["mse"]["10"] == pytest.approx(expected, rel=1e-5) == mean["mse"]["half"]
    model = HyperSiren(HyperSirenConfig(latent_dim=16, encoder_hidden=16, siren_hidden=16, head_hidden=16,
                                        heads="low_rank", rank=8))
    prior = evaluate(model_predictor(model), images, sizes=("10", "full"))
    coords, values = hs.image_to_points(images * 2 - 1)
    contexts = {"10": fixed_context(coords, values, 10, generator=torch.Generator().manual_seed(0)),
                "full": Context(coords, values, torch.ones(coords.shape[:2], dtype=torch.bool))}
    for size, context in contexts.items():  # the protocol's number is the prior's own error on these contexts
        with torch.no_grad():
            pred = ((model(context, coords).values + 1) / 2).clamp(0, 1)
        expected = (pred - (values + 1) / 2).square().mean(dim=(1, 2)).mean().item()
        assert prior["mse"][size] == pytest.approx(expected, rel=1e-6), size
    table = markdown_table({"mean image": mean, "prior": {k: {**mean[k], **prior[k]} for k in mean}}, sizes=("10",))
    assert table.splitlines()[0] == "| method | 10 px |" and "| mean image | " in table


def test_context_larger_than_the_image_is_an_error():
    with pytest.raises(ValueError, match="context size 100 exceeds the 64 pixels of a 8x8 image"):
        evaluate(mean_image_predictor(ramp_images(side=8)), ramp_images(side=8))
