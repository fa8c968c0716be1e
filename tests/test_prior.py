"""The prior model: set encoder invariances, hypernetwork layout and init scale, end-to-end shapes."""

import math

import pytest
import torch

import hypersiren as hs
from hypersiren.prior import Context, HyperSiren, HyperSirenConfig, PerTensorHyperNetwork

SMALL = dict(latent_dim=32, encoder_hidden=32, siren_hidden=32, head_hidden=32, rank=16)


def random_context(batch=3, m=20, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(batch, m, 2, generator=g, dtype=dtype) * 2 - 1
    values = torch.rand(batch, m, 3, generator=g, dtype=dtype) * 2 - 1
    return Context(coords, values, torch.ones(batch, m, dtype=torch.bool))


@pytest.mark.parametrize("heads", ["per_tensor", "low_rank"])
def test_forward_shapes_and_any_query_resolution(heads):
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(heads=heads, **SMALL))
    context = random_context()
    pred = model(context, hs.grid((32, 32)).expand(3, -1, -1))
    assert pred.values.shape == (3, 1024, 3) and pred.latent.shape == (3, 32)
    assert pred.params.layer_shapes == model.config.layer_shapes and pred.params.batch_shape == (3,)
    # the same predicted SIRENs render at any resolution
    assert model.render(pred.params, hs.grid((63, 63)).expand(3, -1, -1)).shape == (3, 63 * 63, 3)


def test_render_at_finer_grid_matches_at_shared_points():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(**SMALL)).double()
    params = model.decode(model.encode(random_context(dtype=torch.float64)))
    coarse = model.render(params, hs.grid((5, 5), dtype=torch.float64).expand(3, -1, -1))
    fine = model.render(params, hs.grid((9, 9), dtype=torch.float64).expand(3, -1, -1))
    fine_on_coarse = hs.points_to_image(fine, 9, 9)[:, ::2, ::2].reshape(3, 25, 3)
    torch.testing.assert_close(fine_on_coarse, coarse, rtol=0, atol=1e-12)


def test_encoder_is_invariant_to_point_order_and_masked_padding():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(**SMALL)).double()
    context = random_context(dtype=torch.float64)
    latent = model.encode(context)
    perm = torch.randperm(20)
    shuffled = Context(context.coords[:, perm], context.values[:, perm], context.mask[:, perm])
    torch.testing.assert_close(model.encode(shuffled), latent, rtol=0, atol=1e-12)
    # padding with arbitrary junk that the mask marks invalid changes nothing
    junk = random_context(m=7, seed=1, dtype=torch.float64)
    padded = Context(torch.cat([context.coords, junk.coords], 1),
                     torch.cat([context.values, junk.values * 100], 1),
                     torch.cat([context.mask, torch.zeros(3, 7, dtype=torch.bool)], 1))
    torch.testing.assert_close(model.encode(padded), latent, rtol=0, atol=1e-12)
    # but a valid extra point does change it
    extra = padded._replace(mask=torch.ones(3, 27, dtype=torch.bool))
    assert (model.encode(extra) - latent).abs().max() > 1e-3


def test_encoder_is_a_masked_mean_of_sine_features():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(**SMALL)).double()
    context = random_context(batch=1, m=4, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, True]])
    latent = model.encode(context._replace(mask=mask))
    features = torch.sin(30.0 * model.encoder.mlp(torch.cat([context.coords, context.values], -1)))  # [1, 4, Z]
    torch.testing.assert_close(latent, features[:, [0, 2, 3]].mean(1), rtol=0, atol=1e-12)


def test_per_tensor_heads_fill_the_flat_layout_in_order():
    shapes = hs.siren_layer_shapes(2, 3, hidden_dim=8, depth=3)
    net = PerTensorHyperNetwork(16, shapes, hidden=16)
    assert [head[-1].out_features for head in net.heads] == [16, 8, 64, 8, 24, 3]
    z = torch.randn(2, 16)
    params = hs.SirenParams.unflatten(net(z), shapes)
    torch.testing.assert_close(params.weights[1].reshape(2, -1), net.heads[2](z))
    torch.testing.assert_close(params.biases[2], net.heads[5](z))


def test_reference_architecture_parameter_count():
    """The reference prior: ~52.4 M hypernetwork parameters predicting the 198,915 of the image SIREN."""
    model = HyperSiren(HyperSirenConfig())
    hyper = sum(p.numel() for p in model.hypernet.parameters())
    assert hs.num_params(model.config.layer_shapes) == 198_915
    assert 52.0e6 < hyper < 52.8e6
    low_rank = HyperSiren(HyperSirenConfig(heads="low_rank", rank=64))
    assert sum(p.numel() for p in low_rank.parameters()) < hyper / 3


@pytest.mark.parametrize("heads, low, high", [("per_tensor", 0.3, 6.0), ("low_rank", 0.7, 1.5)])
def test_predicted_sirens_start_at_siren_init_scale(heads, low, high):
    """At init the decoded weights of every hidden layer have a std close to the SIREN init's."""
    torch.manual_seed(0)
    config = HyperSirenConfig(heads=heads, latent_dim=64, encoder_hidden=64, siren_hidden=64, head_hidden=64, rank=64)
    model = HyperSiren(config)
    with torch.no_grad():
        params = model.decode(model.encode(random_context(batch=8, m=50)))
    bounds = hs.siren_init_bounds(config.layer_shapes, w0=config.w0)
    for i in range(1, config.siren_depth - 1):
        ratio = params.weights[i].std().item() / (bounds[i][0] / math.sqrt(3))
        assert low < ratio < high, f"layer {i}: predicted std / SIREN init std = {ratio:.2f}"


def test_bad_inputs_are_rejected():
    model = HyperSiren(HyperSirenConfig(**SMALL))
    context = random_context()
    with pytest.raises(ValueError, match=r"samples \[1\] have no valid context point"):
        model.encode(context._replace(mask=torch.tensor([[True] * 20, [False] * 20, [True] * 20])))
    with pytest.raises(ValueError, match="expected a bool mask"):
        model.encode(context._replace(mask=torch.ones(3, 20)))
    with pytest.raises(ValueError, match=r"expected context coords \[B, M, D\] and values \[B, M, C\]"):
        model.encode(context._replace(values=torch.zeros(3, 19, 3)))
    with pytest.raises(ValueError, match=r"expected latent \[B, 32\], got \(3, 16\)"):
        model.decode(torch.zeros(3, 16))
    with pytest.raises(ValueError, match="heads must be 'per_tensor', 'low_rank' or 'basis'"):
        HyperSirenConfig(heads="shared")
    with pytest.raises(ValueError, match="encoder='posterior' needs heads='basis'"):
        HyperSirenConfig(encoder="posterior")
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        HyperSirenConfig(latent_dim=0)


def test_prior_loss_terms():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(**SMALL))
    context = random_context()
    coords = hs.grid((4, 4)).expand(3, -1, -1)
    pred = model(context, coords)
    target = torch.zeros_like(pred.values)
    loss = hs.prior.prior_loss(pred, target, latent_weight=0.5, param_weight=2.0)
    torch.testing.assert_close(loss.mse, pred.values.square().mean())
    torch.testing.assert_close(loss.latent, pred.latent.square().mean())
    torch.testing.assert_close(loss.params, pred.params.flatten().square().mean())
    torch.testing.assert_close(loss.total, loss.mse + 0.5 * loss.latent + 2.0 * loss.params)
    with pytest.raises(ValueError, match=r"expected target \(3, 16, 3\) like the prediction"):
        hs.prior.prior_loss(pred, target[:, :5])
