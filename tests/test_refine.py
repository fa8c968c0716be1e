"""Inference beyond one encoder pass: refinement against the context, residual correction."""

import pytest
import torch

import hypersiren as hs
from hypersiren.modalities.image import ImageData, ImageModality
from hypersiren.prior import RefineConfig, fixed_context, refine, refined_predictor

IMAGES = ImageModality(ImageData())  # spreads residuals by interpolation; nothing is loaded

CONFIG = hs.HyperSirenConfig(value_dim=1, latent_dim=16, encoder_hidden=16, encoder_depth=2, siren_hidden=16,
                             siren_depth=3, head_hidden=16, heads="low_rank", rank=8, w0_first=10.0, w0=10.0)


def setup(k=40, seed=0):
    torch.manual_seed(seed)
    model = hs.HyperSiren(CONFIG).eval()
    rows, cols = hs.grid((12, 12)).unbind(-1)
    images = torch.stack([torch.sin(2 * rows + p) * torch.cos(3 * cols) for p in (0.0, 1.0)]).unsqueeze(-1)  # [2, N, 1]
    coords = hs.grid((12, 12)).expand(2, -1, -1)
    context = fixed_context(coords, images, k, generator=torch.Generator().manual_seed(seed))
    return model, coords, images, context


def context_error(model, params, context):
    with torch.no_grad():
        return (model.render(params, context.coords) - context.values).square().mean().item()


@pytest.mark.parametrize("code", ["coeffs", "latent"])
def test_refinement_lowers_the_error_at_the_context_points(code):
    model, _, _, context = setup()
    before = context_error(model, refine(model, context, RefineConfig(code=code)), context)
    after = context_error(model, refine(model, context, RefineConfig(steps=60, lr=0.05, code=code)), context)
    assert after < 0.85 * before  # an untrained prior: only its code moves, so the fit is limited


def test_refinement_leaves_the_model_untouched_and_anchor_holds_the_code():
    model, _, _, context = setup()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    free = refine(model, context, RefineConfig(steps=20, lr=0.05)).flatten()
    held = refine(model, context, RefineConfig(steps=20, lr=0.05, anchor=1e3)).flatten()
    start = refine(model, context, RefineConfig()).flatten()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in model.parameters())
    assert (held - start).norm() < 0.2 * (free - start).norm()


def test_residual_correction_passes_through_the_context_and_keeps_full_context_exact():
    model, coords, images, context = setup(k=40)
    predict = refined_predictor(model, RefineConfig(residual=True), IMAGES)
    with torch.no_grad():
        at_context = predict(context, context.coords)
    torch.testing.assert_close(at_context, context.values, rtol=0, atol=1e-5)
    full = fixed_context(coords, images, 144, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(predict(full, coords), images, rtol=0, atol=1e-5)
        plain = refined_predictor(model, RefineConfig())(context, coords)
        corrected = predict(context, coords)
    assert (corrected - images).square().mean() < (plain - images).square().mean()


def test_refine_config_errors():
    with pytest.raises(ValueError, match="RefineConfig: expected steps >= 0"):
        RefineConfig(steps=-1)
    with pytest.raises(ValueError, match="code must be 'coeffs' or 'latent'"):
        RefineConfig(code="weights")
    torch.manual_seed(0)
    model = hs.HyperSiren(hs.HyperSirenConfig(value_dim=1, latent_dim=8, encoder_hidden=8, siren_hidden=8, siren_depth=2,
                                              head_hidden=8))
    _, _, _, context = setup()
    with pytest.raises(ValueError, match="code='coeffs' needs a low_rank hypernetwork"):
        refine(model, context, RefineConfig(steps=1))
    with pytest.raises(ValueError, match="refined_predictor: residual=True needs the modality"):
        refined_predictor(model, RefineConfig(residual=True))
    with torch.no_grad():  # without refinement steps the code kind does not matter: residual correction works
        values = refined_predictor(model, RefineConfig(residual=True), IMAGES)(context, context.coords)
    torch.testing.assert_close(values, context.values, rtol=0, atol=1e-5)
