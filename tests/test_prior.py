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


# measured over seeds 0..3: per_tensor 1.83..2.62 (the reference heads, Kaiming / 100, start at about twice
# the SIREN init's std), low_rank 0.99..1.02, basis 0.99..1.01
@pytest.mark.parametrize("heads, low, high", [("per_tensor", 1.6, 3.0), ("low_rank", 0.93, 1.07), ("basis", 0.97, 1.03)])
def test_predicted_sirens_start_at_siren_init_scale(heads, low, high):
    """At init the decoded weights of every hidden layer have a std close to the SIREN init's (the reference's
    per-tensor heads: about twice it)."""
    torch.manual_seed(0)
    config = HyperSirenConfig(heads=heads, encoder="posterior" if heads == "basis" else "set", latent_dim=64,
                              encoder_hidden=64, siren_hidden=64, head_hidden=64, rank=64)
    model = HyperSiren(config)
    with torch.no_grad():
        params = model.decode(model.encode(random_context(batch=8, m=50)))
    bounds = hs.siren_init_bounds(config.layer_shapes, w0=config.w0)
    for i in range(1, config.siren_depth - 1):
        ratio = params.weights[i].std().item() / (bounds[i][0] / math.sqrt(3))
        assert low < ratio < high, f"layer {i}: predicted std / SIREN init std = {ratio:.2f}"
    if heads == "basis":  # the last layer of a prior sample z ~ N(0, I): the mean's init plus as much again
        with torch.no_grad():
            last = model.decode(torch.randn(8, 64)).weights[-1]
        ratio = last.std().item() / (bounds[-1][0] / math.sqrt(3))
        assert 1.2 < ratio < 1.7, f"last layer: std / SIREN init std = {ratio:.2f}"


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
    with pytest.raises(ValueError, match="uncertainty: needs encoder='posterior'"):
        model.uncertainty(context, context.coords)
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        HyperSirenConfig(latent_dim=0)


def test_prior_loss_terms():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(**SMALL))
    context = random_context()
    coords = hs.grid((4, 4)).expand(3, -1, -1)
    pred = model(context, coords)
    target = torch.zeros_like(pred.values)
    mse = hs.prior.value_mse(pred, target)
    loss = hs.prior.prior_loss(hs.prior.SupervisedLoss(pred, mse, {"mse": mse}), latent_weight=0.5, param_weight=2.0)
    terms = loss.terms
    torch.testing.assert_close(terms["mse"], pred.values.square().mean())
    torch.testing.assert_close(terms["latent"], pred.latent.square().mean())
    torch.testing.assert_close(terms["params"], pred.params.flatten().square().mean())
    torch.testing.assert_close(loss.total, terms["mse"] + 0.5 * terms["latent"] + 2.0 * terms["params"])
    with pytest.raises(ValueError, match=r"value_mse: expected target \(3, 16, 3\) like the prediction"):
        hs.prior.value_mse(pred, target[:, :5])


def basis_model(latent_dim=6, value_dim=3, seed=0) -> HyperSiren:
    torch.manual_seed(seed)
    return HyperSiren(HyperSirenConfig(value_dim=value_dim, heads="basis", encoder="posterior", latent_dim=latent_dim,
                                       siren_hidden=16, siren_depth=3, w0_first=10.0, w0=10.0)).double()


def test_posterior_encoder_is_the_gaussian_conditional_in_function_space():
    """The posterior mean of z, rendered by the per-sample SIRENs, equals the Gaussian-process conditional
    mean with kernel Phi Phi^T + noise I; the posterior covariance gives its conditional covariance."""
    model = basis_model()
    net = model.hypernet
    with torch.no_grad():
        net.log_noise.fill_(math.log(0.05))
    context = random_context(batch=2, m=5, dtype=torch.float64)
    context = context._replace(mask=torch.tensor([[True] * 5, [True, True, False, True, True]]))
    query = hs.grid((4, 4), dtype=torch.float64).expand(2, -1, -1)
    with torch.no_grad():
        pred = model(context, query).values  # [2, 16, 3]
        latent, cov = net.posterior(context)
        std = model.uncertainty(context, query, chunk=5)  # chunks of query points change nothing
        for b in range(2):
            keep = context.mask[b]
            h = net.features(torch.cat([context.coords[b, keep], query[b]]))
            m, phi = net.mean(h).reshape(-1), net.basis(h).reshape(-1, 6)  # stacked [(M + N) C], [(M + N) C, Z]
            o = slice(0, int(keep.sum()) * 3)
            q = slice(o.stop, None)
            kernel = phi @ phi.T
            gain = kernel[q, o] @ torch.linalg.inv(kernel[o, o] + 0.05 * torch.eye(o.stop, dtype=torch.float64))
            expected = m[q] + gain @ (context.values[b, keep].reshape(-1) - m[o])
            torch.testing.assert_close(pred[b].reshape(-1), expected, rtol=1e-9, atol=1e-9)
            conditional_cov = kernel[q, q] - gain @ kernel[o, q]
            torch.testing.assert_close(phi[q] @ cov[b] @ phi[q].T, conditional_cov, rtol=1e-8, atol=1e-9)
            torch.testing.assert_close(std[b].reshape(-1), conditional_cov.diagonal().sqrt(), rtol=1e-7, atol=1e-9)


def test_posterior_encoder_is_invariant_to_point_order_and_masked_padding():
    model = basis_model()
    context = random_context(dtype=torch.float64)
    latent = model.encode(context)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    shuffled = Context(context.coords[:, perm], context.values[:, perm], context.mask[:, perm])
    torch.testing.assert_close(model.encode(shuffled), latent, rtol=0, atol=1e-10)
    junk = random_context(m=7, seed=1, dtype=torch.float64)
    padded = Context(torch.cat([context.coords, junk.coords], 1), torch.cat([context.values, junk.values * 100], 1),
                     torch.cat([context.mask, torch.zeros(3, 7, dtype=torch.bool)], 1))
    torch.testing.assert_close(model.encode(padded), latent, rtol=0, atol=1e-10)


def test_basis_params_render_as_mean_plus_basis_times_latent():
    model = basis_model()
    net = model.hypernet
    z = torch.randn(3, 6, dtype=torch.float64)
    coords = torch.rand(3, 11, 2, dtype=torch.float64) * 2 - 1
    params = model.decode(z)
    assert params.layer_shapes == model.config.layer_shapes and params.batch_shape == (3,)
    h = net.features(coords)
    expected = net.mean(h) + (net.basis(h) @ z[:, None, :, None]).squeeze(-1)
    torch.testing.assert_close(model.render(params, coords), expected, rtol=1e-10, atol=1e-10)
    # a plain Siren with one sample's weights computes the same function
    siren = hs.Siren(2, 3, hidden_dim=16, depth=3, w0_first=10.0, w0=10.0).double()
    torch.nn.utils.vector_to_parameters(params.map(lambda t: t[1]).flatten(), siren.parameters())
    torch.testing.assert_close(siren(coords[1]), expected[1], rtol=1e-10, atol=1e-10)


def ppca_data(n, side=6, channels=1, components=3, noise=0.05, seed=0):
    """`n` signals on a `side x side` grid: a mean plus `components` smooth directions (the same for
    every seed) with unit Gaussian weights drawn from `seed`, plus white noise of std `noise`;
    returns coords [P, 2] and values [n, P, C]."""
    coords = hs.grid((side, side), dtype=torch.float64)
    freq = torch.rand(components + 1, 2, channels, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    g = torch.Generator().manual_seed(seed + 1)
    shapes = torch.sin(torch.einsum("pd,kdc->kpc", coords, freq) * 2 + 1) * 0.3  # [K + 1, P, C]
    weights = torch.randn(n, components, generator=g, dtype=torch.float64)
    values = shapes[0] + torch.einsum("nk,kpc->npc", weights, shapes[1:])
    return coords, values + noise * torch.randn(values.shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("n", [400, 30])  # more signals than values (covariance) and fewer (Gram matrix)
def test_initialise_is_probabilistic_pca_represented_by_the_siren(n):
    coords, values = ppca_data(n)
    model = basis_model(latent_dim=3, value_dim=1)
    info = model.hypernet.initialise(coords, values, steps=600, lr=3e-3)
    # PPCA's noise: the mean of the eigenvalues of the sample covariance beyond the third
    flat = values.reshape(n, -1)
    sample_cov = torch.cov(flat.T)
    eigenvalues = torch.linalg.eigvalsh(sample_cov).flip(0)
    assert info["ppca_noise"] == pytest.approx(float(eigenvalues[3:].mean()), rel=1e-8)
    if n == 400:
        assert info["ppca_noise"] == pytest.approx(0.05**2, rel=0.2)
    # the SIREN's mean and covariance (Phi Phi^T + noise I) reproduce the sample's
    net = model.hypernet
    with torch.no_grad():
        h = net.features(coords)
        mean, phi = net.mean(h).reshape(-1), net.basis(h).reshape(-1, 3)
        cov = phi @ phi.T + net.noise * torch.eye(phi.shape[0], dtype=torch.float64)
    torch.testing.assert_close(mean, flat.mean(0), rtol=0, atol=0.02)
    assert torch.linalg.norm(cov - sample_cov) / torch.linalg.norm(sample_cov) < 0.1
    assert info["fit_error"] < 0.1 * info["ppca_noise"]


def test_initialised_prior_completes_signals_of_its_family():
    coords, values = ppca_data(400)
    model = basis_model(latent_dim=3, value_dim=1)
    model.hypernet.initialise(coords, values, steps=600, lr=3e-3)
    _, test = ppca_data(50, seed=1)
    batch = coords.expand(50, -1, -1)
    context = hs.prior.fixed_context(batch, test, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = model(context, batch).values
    error = (pred - test).square().mean()
    mean_error = (values.mean(0) - test).square().mean()
    assert error < 0.15 * mean_error, (float(error), float(mean_error))
    with pytest.raises(ValueError, match="3 components need more than 3 signals"):
        model.hypernet.initialise(coords, values[:3], steps=1)
    with pytest.raises(ValueError, match=r"expected coords \[P, 2\] and values \[N, P, 1\]"):
        model.hypernet.initialise(coords, values[..., None], steps=1)


@pytest.mark.parametrize("n, dim", [(50, 6), (5, 12)])  # chunked covariance, and the Gram matrix
def test_principal_components_are_the_sample_covariances_eigenpairs(n, dim):
    from hypersiren.prior import principal_components

    flat = torch.randn(n, dim, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.5, 2, dim)
    eigenvalues, vectors, mean, total = principal_components(flat, 3, chunk=7)
    cov = torch.cov(flat.double().T)
    torch.testing.assert_close(eigenvalues, torch.linalg.eigvalsh(cov).flip(0)[:3], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(cov @ vectors, vectors * eigenvalues, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-9)
    torch.testing.assert_close(mean, flat.double().mean(0))
    assert float(total) == pytest.approx(float(cov.trace()), rel=1e-10)


def test_uncertainty_memory_stays_linear_in_the_query_points():
    """No operation of `uncertainty` allocates more than a few `[B, n, C, Z]` blocks (a broadcast of the
    posterior covariance per query point would be `[B, n, Z, Z]`: Z / C = 43 times larger here)."""
    batch, n, latent = 4, 512, 128
    model = HyperSiren(HyperSirenConfig(value_dim=3, heads="basis", encoder="posterior", latent_dim=latent,
                                        siren_hidden=16, siren_depth=3))
    context = random_context(batch=batch, m=60)
    query = hs.grid((16, 32)).expand(batch, -1, -1)
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                 profile_memory=True) as profile:
        std = model.uncertainty(context, query, chunk=n)
    assert std.shape == (batch, n, 3) and torch.isfinite(std).all()
    block = batch * n * 3 * latent * 4  # bytes of one [B, n, C, Z] float32 tensor
    largest = max(event.cpu_memory_usage for event in profile.events())
    assert largest <= 2 * block, f"one operation allocated {largest / block:.1f} [B, n, C, Z] blocks"


def sdf_basis_model(latent_dim=5, seed=0) -> HyperSiren:
    torch.manual_seed(seed)
    return HyperSiren(HyperSirenConfig(coord_dim=3, value_dim=1, heads="basis", encoder="posterior",
                                       latent_dim=latent_dim, siren_hidden=16, siren_depth=3, w0_first=5.0,
                                       w0=5.0)).double()


def oriented_context(batch=2, m=6, seed=0) -> Context:
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(batch, m, 3, generator=g, dtype=torch.float64) * 2 - 1
    normals = torch.nn.functional.normalize(torch.randn(batch, m, 3, generator=g, dtype=torch.float64), dim=-1)
    values = torch.zeros(batch, m, 1, dtype=torch.float64)  # surface points: f = 0
    return Context(coords, values, torch.ones(batch, m, dtype=torch.bool), normals)


def test_feature_gradients_equal_finite_differences():
    net = sdf_basis_model().hypernet
    x = oriented_context().coords
    with torch.no_grad():
        features, jac = net.feature_gradients(x)
        torch.testing.assert_close(features, net.features(x), rtol=0, atol=1e-12)
        eps = 1e-6
        for d in range(3):
            step = torch.zeros(3, dtype=torch.float64)
            step[d] = eps
            numeric = (net.features(x + step) - net.features(x - step)) / (2 * eps)
            torch.testing.assert_close(jac[..., d, :], numeric, rtol=1e-6, atol=1e-7)


def test_posterior_with_normals_is_the_ridge_solution_over_values_and_gradients():
    """Surface points observe f(x) = 0 and normals grad f(x) = n; both are linear in z, so the posterior
    mean is the ridge solution over value and gradient rows, built here by finite differences of the
    decoded SIRENs (one row per observation) rather than by the model's own feature gradients."""
    model = sdf_basis_model()
    net = model.hypernet
    with torch.no_grad():
        net.log_noise.fill_(math.log(0.03))
    context = oriented_context()
    context = context._replace(mask=torch.tensor([[True] * 6, [True, True, True, False, True, True]]))
    with torch.no_grad():
        mean, cov = net.posterior(context)
        eps, latent_dim = 1e-6, 5
        for b in range(2):
            keep = context.mask[b]
            x = context.coords[b, keep]  # [M, 3]

            def field(z, points):  # the decoded SIREN for latent z at points [N, 3] -> [N]
                params = model.decode(z.unsqueeze(0))
                return model.render(params, points.unsqueeze(0))[0, :, 0]

            def rows(z):  # observations of the field for latent z: values [M], then gradients [M * 3]
                grads = [(field(z, x + step) - field(z, x - step)) / (2 * eps)
                         for step in torch.eye(3, dtype=torch.float64) * eps]
                return torch.cat([field(z, x), torch.stack(grads, -1).reshape(-1)])

            zero = torch.zeros(latent_dim, dtype=torch.float64)
            base = rows(zero)
            phi = torch.stack([rows(e) - base for e in torch.eye(latent_dim, dtype=torch.float64)], dim=-1)
            target = torch.cat([context.values[b, keep, 0], context.normals[b, keep].reshape(-1)])
            gram = phi.T @ phi + 0.03 * torch.eye(latent_dim, dtype=torch.float64)
            expected = torch.linalg.solve(gram, phi.T @ (target - base))
            torch.testing.assert_close(mean[b], expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(cov[b], 0.03 * torch.linalg.inv(gram), rtol=1e-5, atol=1e-8)
    without = net.posterior(context._replace(normals=None))[0]
    assert (without - mean).abs().max() > 1e-3  # the normals carry information the values alone do not
    colour = HyperSiren(HyperSirenConfig(coord_dim=3, value_dim=3, heads="basis", encoder="posterior", latent_dim=4,
                                         siren_hidden=8, siren_depth=3)).double()
    with pytest.raises(ValueError, match="normals observe the gradient of a scalar field, but this prior has 3"):
        colour.hypernet.posterior(context._replace(values=torch.zeros(2, 6, 3, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"expected context normals \(2, 6, 3\) like the coords, got \(2, 5, 3\)"):
        net.posterior(context._replace(normals=context.normals[:, :5]))
