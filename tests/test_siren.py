"""The SIREN module: architecture, the paper's initialisation and what it is for."""

import math

import pytest
import torch

import hypersiren as hs


def test_paper_image_network_has_the_published_parameter_count():
    model = hs.Siren(2, 3)
    assert [tuple(layer.weight.shape) for layer in model.layers] == [(256, 2)] + [(256, 256)] * 3 + [(3, 256)]
    assert sum(p.numel() for p in model.parameters()) == 198_915 == hs.num_params(model.layer_shapes)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_depth_counts_linear_layers(depth):
    model = hs.Siren(3, 4, hidden_dim=16, depth=depth)
    assert len(model.layers) == depth
    assert model(torch.zeros(7, 3)).shape == (7, 4)


def test_init_bounds_follow_the_reference():
    torch.manual_seed(0)
    w0 = 30.0
    model = hs.Siren(2, 3, hidden_dim=512, depth=4, w0=w0)
    expected = [1 / 2, math.sqrt(6 / 512) / w0, math.sqrt(6 / 512) / w0, math.sqrt(6 / 512) / w0]
    for layer, weight_bound in zip(model.layers, expected):
        bias_bound = 1 / math.sqrt(layer.in_features)
        w, b = layer.weight, layer.bias
        # uniform on [-bound, bound]: inside it, reaching close to it, std = bound / sqrt(3)
        assert w.abs().max() <= weight_bound
        assert w.abs().max() > 0.95 * weight_bound
        if w.numel() > 1000:
            assert w.std().item() == pytest.approx(weight_bound / math.sqrt(3), rel=0.05)
        assert b.abs().max() <= bias_bound
        assert b.abs().max() > 0.8 * bias_bound


def test_hidden_w0_scales_weights_not_the_function_scale():
    """Hidden w0 divides the weights, so changing it leaves the init distribution of w0 * W unchanged."""
    torch.manual_seed(0)
    a = hs.Siren(2, 1, hidden_dim=256, w0=30.0)
    torch.manual_seed(0)
    b = hs.Siren(2, 1, hidden_dim=256, w0=1.0)
    torch.testing.assert_close(30.0 * a.layers[1].weight, b.layers[1].weight)
    torch.testing.assert_close(a.layers[0].weight, b.layers[0].weight)  # first layer: +-1/fan_in, no w0


def hidden_preactivations(model: hs.Siren, coords: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(w0 W h, w0 b) of every sine layer, from the module's parameters; the pre-activation is their sum."""
    out, h = [], coords
    for i, layer in enumerate(model.layers[:-1]):
        w0 = model.w0_first if i == 0 else model.w0
        zw, zb = w0 * h @ layer.weight.T, w0 * layer.bias
        out.append((zw, zb))
        h = torch.sin(zw + zb)
    return out


@pytest.mark.parametrize("hidden_dim", [256, 1024])
def test_init_keeps_preactivation_statistics_fixed_at_every_depth(hidden_dim):
    """The init's purpose: with x ~ U(-1, 1), the hidden pre-activations have the same law at any depth.

    The weight part w0 W h is ~N(0, 1); the bias, drawn as nn.Linear's +-1/sqrt(fan_in) and scaled by
    w0 inside the sine, adds variance w0^2 / (3 fan_in), so the std is sqrt(1 + w0^2 / (3 fan_in)).
    """
    torch.manual_seed(0)
    model = hs.Siren(2, 1, hidden_dim=hidden_dim, depth=10)
    coords = torch.rand(4096, 2) * 2 - 1
    with torch.no_grad():
        layers = hidden_preactivations(model, coords)
    expected_std = math.sqrt(1 + 30.0**2 / (3 * hidden_dim))
    weight_stds, stds = [], []
    for depth, (zw, zb) in enumerate(layers[1:], start=1):  # layer 0 maps 2 inputs: wide on purpose
        weight_stds.append(zw.std().item())
        stds.append((zw + zb).std().item())
        assert weight_stds[-1] == pytest.approx(1.0, abs=0.15), f"layer {depth}"
        assert stds[-1] == pytest.approx(expected_std, rel=0.15), f"layer {depth}"
    assert sum(weight_stds) / len(weight_stds) == pytest.approx(1.0, abs=0.05)
    assert sum(stds) / len(stds) == pytest.approx(expected_std, rel=0.05)
    # activations sin(z) are arcsine distributed: variance 1/2
    zw, zb = layers[-1]
    assert torch.sin(zw + zb).var().item() == pytest.approx(0.5, abs=0.05)


def test_wrong_hidden_w0_convention_breaks_the_statistics():
    """A check that can fail: undivided hidden weights (w0 applied twice) blow the std far above 1."""
    torch.manual_seed(0)
    model = hs.Siren(2, 1, hidden_dim=512, depth=4)
    with torch.no_grad():
        for layer in model.layers[1:]:
            layer.weight.mul_(30.0)
        layers = hidden_preactivations(model, torch.rand(2048, 2) * 2 - 1)
    assert layers[2][0].std().item() > 10


def test_module_forward_matches_the_formula():
    torch.manual_seed(0)
    model = hs.Siren(2, 3, hidden_dim=32, depth=3, w0_first=20.0, w0=10.0)
    coords = torch.rand(5, 7, 2) * 2 - 1
    l0, l1, l2 = model.layers
    expected = l2(torch.sin(10.0 * l1(torch.sin(20.0 * l0(coords)))))
    torch.testing.assert_close(model(coords), expected)
    assert model(coords).shape == (5, 7, 3)
    assert model(coords[0, 0]).shape == (3,)


def test_module_follows_the_dtype_of_its_parameters():
    model = hs.Siren(2, 1, hidden_dim=8, depth=2).double()
    assert model(torch.zeros(4, 2, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="coords are torch.float32 .* params are torch.float64"):
        model(torch.zeros(4, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_dim=0, out_dim=1), "in_dim must be a positive int"),
        (dict(in_dim=2, out_dim=1, depth=0), "depth must be a positive int"),
        (dict(in_dim=2, out_dim=1, hidden_dim=2.5), "hidden_dim must be a positive int"),
        (dict(in_dim=2, out_dim=1, w0=0.0), "w0 must be a positive finite number"),
        (dict(in_dim=2, out_dim=1, w0_first=float("nan")), "w0_first must be a positive finite number"),
    ],
)
def test_bad_architecture_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hs.Siren(**kwargs)


def test_wrong_coordinate_dimension_is_rejected():
    with pytest.raises(ValueError, match=r"expected coords \[\.\.\., 2\], got \(10, 3\)"):
        hs.Siren(2, 1, hidden_dim=8)(torch.zeros(10, 3))
