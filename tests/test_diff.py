"""Derivative operators against closed forms, finite differences and torch.func, with per-sample weights."""

import pytest
import torch
from torch.func import hessian, jacrev, vmap

import hypersiren as hs
from hypersiren import diff

torch.set_default_dtype(torch.float32)


def coords(batch=2, n=11, dim=2, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n, dim, generator=g, dtype=dtype) * 2 - 1).to(device).requires_grad_(True)


# --- closed forms ----------------------------------------------------------------------------------


def test_quadratic_gradient_and_laplacian():
    x = coords(dim=3)
    scale = torch.tensor([1.0, 2.0], dtype=torch.float64).view(2, 1, 1)  # a different field per sample
    y = scale * x.square().sum(-1, keepdim=True)  # [B, N, 1]
    torch.testing.assert_close(diff.gradient(y, x), 2 * scale * x)
    torch.testing.assert_close(diff.laplacian(y, x), (2 * 3 * scale).expand(2, 11, 1))


def test_per_channel_sine_waves():
    x = coords(dim=2)
    k = torch.tensor([[1.0, 2.0], [-3.0, 0.5], [0.0, 4.0]], dtype=torch.float64)  # [C, D]
    phase = x @ k.T  # [B, N, C]
    y = torch.sin(phase)
    torch.testing.assert_close(diff.jacobian(y, x), torch.cos(phase)[..., None] * k)  # [B, N, C, D]
    torch.testing.assert_close(diff.laplacian(y, x), -(k.square().sum(-1)) * torch.sin(phase))


def test_divergence_of_polynomial_field():
    x = coords(dim=3)
    v = torch.stack([x[..., 0] ** 3, x[..., 0] * x[..., 1], x[..., 2] * x[..., 0]], dim=-1)
    expected = 3 * x[..., 0] ** 2 + x[..., 0] + x[..., 0]
    torch.testing.assert_close(diff.divergence(v, x), expected.unsqueeze(-1))


def test_linear_field_has_zero_laplacian():
    x = coords()
    y = (x @ torch.tensor([[2.0], [3.0]], dtype=torch.float64)) + 1.0
    assert torch.equal(diff.laplacian(y, x), torch.zeros(2, 11, 1, dtype=torch.float64))
    torch.testing.assert_close(diff.gradient(y, x), torch.tensor([2.0, 3.0], dtype=torch.float64).expand(2, 11, 2))


# --- SIRENs with per-sample weights ----------------------------------------------------------------


def siren_batch(batch=3, out_dim=2, depth=4, hidden_dim=24, seed=0, device="cpu"):
    torch.manual_seed(seed)
    modules = [hs.Siren(2, out_dim, hidden_dim=hidden_dim, depth=depth).double().to(device) for _ in range(batch)]
    return modules, hs.stack_params(modules)


def test_siren_derivatives_match_float64_finite_differences():
    _, params = siren_batch()
    x = coords(batch=3, n=7)
    y = hs.siren_forward(params, x)
    jac, lap = diff.jacobian(y, x), diff.laplacian(y, x)

    def f(points):
        with torch.no_grad():
            return hs.siren_forward(params, points)

    h1, h2 = 1e-6, 1e-4
    fd_jac, fd_lap = [], 0
    for d in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[d] = 1
        fd_jac.append((f(x + h1 * e) - f(x - h1 * e)) / (2 * h1))
        fd_lap = fd_lap + (f(x + h2 * e) - 2 * f(x) + f(x - h2 * e)) / h2**2
    fd_jac = torch.stack(fd_jac, dim=-1)
    assert (jac - fd_jac).abs().max() < 1e-6 * fd_jac.abs().max()
    assert (lap - fd_lap).abs().max() < 1e-4 * fd_lap.abs().max()


def test_siren_derivatives_match_torch_func_per_sample_per_point(device):
    modules, params = siren_batch(device=device)
    x = coords(batch=3, n=5, device=device)
    y = hs.siren_forward(params, x)
    jac, lap = diff.jacobian(y, x), diff.laplacian(y, x)
    for b, module in enumerate(modules):
        ref_jac = vmap(jacrev(module))(x[b].detach())  # [N, C, D]
        ref_hess = vmap(hessian(module))(x[b].detach())  # [N, C, D, D]
        torch.testing.assert_close(jac[b], ref_jac, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(lap[b], ref_hess.diagonal(dim1=-2, dim2=-1).sum(-1), rtol=1e-10, atol=1e-8)


def test_derivatives_do_not_see_other_samples_or_points():
    _, params = siren_batch(out_dim=1)
    x = coords(batch=3, n=6)
    together = diff.laplacian(hs.siren_forward(params, x), x)
    grad_together = diff.gradient(hs.siren_forward(params, x), x)
    for b in range(3):
        for n in range(6):
            single = params.map(lambda t: t[b : b + 1])
            xp = x[b : b + 1, n : n + 1].detach().requires_grad_(True)
            y = hs.siren_forward(single, xp)
            torch.testing.assert_close(diff.laplacian(y, xp)[0, 0], together[b, n], rtol=1e-12, atol=1e-9)
            torch.testing.assert_close(diff.gradient(y, xp)[0, 0], grad_together[b, n], rtol=1e-12, atol=1e-12)


def test_derivative_losses_differentiate_again():
    """d/dw of a Laplacian loss by autograd equals a finite difference in that weight."""
    _, params = siren_batch(batch=2, out_dim=1)
    params = params.map(lambda t: t.detach().clone())
    x = coords(batch=2, n=9)

    def loss(p):
        return diff.laplacian(hs.siren_forward(p, x), x).square().mean() + diff.gradient(
            hs.siren_forward(p, x), x).square().mean()

    w = params.weights[1].requires_grad_(True)
    loss(params).backward()
    analytic = w.grad[1, 3, 5].item()
    eps = 1e-6
    with torch.no_grad():
        plus, minus = w.clone(), w.clone()
        plus[1, 3, 5] += eps
        minus[1, 3, 5] -= eps
    numeric = (loss(params._replace(weights=(params.weights[0], plus) + params.weights[2:]))
               - loss(params._replace(weights=(params.weights[0], minus) + params.weights[2:]))).item() / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-5)


# --- errors ----------------------------------------------------------------------------------------


def test_colour_gradient_asks_for_jacobian():
    x = coords()
    y = torch.cat([x, x[..., :1]], dim=-1)
    with pytest.raises(ValueError, match=r"expected a scalar field y \[B, N, 1\], got \(2, 11, 3\) .* use jacobian"):
        diff.gradient(y, x)


def test_coordinates_must_require_grad():
    x = coords().detach()
    with pytest.raises(ValueError, match=r"x does not require grad; call x.requires_grad_\(True\)"):
        diff.laplacian(x.sum(-1, keepdim=True), x)


def test_output_must_come_from_autograd():
    x = coords()
    with torch.no_grad():
        y = x.sum(-1, keepdim=True)
    with pytest.raises(ValueError, match="y does not require grad"):
        diff.gradient(y, x)


def test_mismatched_shapes_are_rejected():
    x = coords(batch=2, n=11)
    with pytest.raises(ValueError, match=r"expected y \[B, N, C\] with B, N = \(2, 11\) to match x, got \(3, 11, 1\)"):
        diff.jacobian(torch.zeros(3, 11, 1, requires_grad=True), x)
    with pytest.raises(ValueError, match=r"expected coordinates x \[B, N, D\], got \(11, 2\)"):
        diff.gradient(torch.zeros(11, 1), x[0])
    with pytest.raises(ValueError, match=r"expected a vector field v \[B, N, 2\]"):
        diff.divergence(x.sum(-1, keepdim=True), x)


# --- closed form ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth, dim, out_dim", [(1, 2, 1), (2, 3, 2), (5, 2, 3)])
def test_closed_form_equals_autograd_in_float64(depth, dim, out_dim, device):
    torch.manual_seed(0)
    modules = [hs.Siren(dim, out_dim, hidden_dim=24, depth=depth, w0_first=20.0, w0=25.0).double().to(device)
               for _ in range(3)]
    params = hs.stack_params(modules)
    x = coords(batch=3, n=8, dim=dim, device=device)
    y = hs.siren_forward(params, x, w0_first=20.0, w0=25.0)
    closed = diff.siren_derivatives(params, x.detach(), w0_first=20.0, w0=25.0)
    assert closed.values.shape == (3, 8, out_dim) and closed.jacobian.shape == (3, 8, out_dim, dim)
    torch.testing.assert_close(closed.values, y, rtol=0, atol=1e-12)
    torch.testing.assert_close(closed.jacobian, diff.jacobian(y, x), rtol=0, atol=1e-10)
    torch.testing.assert_close(closed.laplacian, diff.laplacian(y, x), rtol=0, atol=1e-10 * 30**2)


def test_closed_form_in_float32_matches_autograd_to_round_off():
    _, params = siren_batch(batch=2, out_dim=1, depth=5, hidden_dim=256)
    params = params.map(lambda t: t.float())
    x = coords(batch=2, n=50, dtype=torch.float32)
    y = hs.siren_forward(params, x)
    closed = diff.siren_derivatives(params, x.detach())
    grad, lap = diff.gradient(y, x), diff.laplacian(y, x)
    assert (closed.jacobian[..., 0, :] - grad).abs().max() < 1e-5 * grad.abs().max()
    assert (closed.laplacian - lap).abs().max() < 1e-5 * lap.abs().max()


def test_closed_form_losses_give_autograd_weight_gradients(device, generator):
    """A loss on closed-form derivatives backpropagates to the same weight gradients as double backward."""
    _, params = siren_batch(batch=2, out_dim=1, device=device)
    params = params.map(lambda t: t.detach().requires_grad_(True))
    x = coords(batch=2, n=9, device=device)
    target = torch.randn(2, 9, 1, dtype=torch.float64, generator=generator).to(device)
    tensors = params.weights + params.biases

    closed = diff.siren_derivatives(params, x.detach())
    loss = (closed.laplacian - target).square().mean() + closed.jacobian.square().mean() + closed.values.mean()
    closed_grads = torch.autograd.grad(loss, tensors)
    y = hs.siren_forward(params, x)
    loss = (diff.laplacian(y, x) - target).square().mean() + diff.jacobian(y, x).square().mean() + y.mean()
    for a, b in zip(closed_grads, torch.autograd.grad(loss, tensors)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("out_dim,depth", [(1, 2), (1, 5), (2, 4), (3, 3)])
def test_first_order_paths_equal_autograd_and_its_weight_gradients(out_dim, depth):
    """laplacian=False: reverse mode for C <= D, forward mode for C > D; both equal autograd to 1e-10."""
    _, params = siren_batch(batch=2, out_dim=out_dim, depth=depth)
    params = params.map(lambda t: t.detach().requires_grad_(True))
    x = coords(batch=2, n=9)
    y = hs.siren_forward(params, x)
    ref_jac = diff.jacobian(y, x)
    out = diff.siren_derivatives(params, x.detach(), laplacian=False)
    assert out.laplacian is None and out.hessian_diagonal is None and out.jacobian.shape == (2, 9, out_dim, 2)
    torch.testing.assert_close(out.values, y, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.jacobian, ref_jac, rtol=0, atol=1e-10)
    target = torch.randn(2, 9, out_dim, 2, dtype=torch.float64)
    tensors = params.weights + params.biases
    closed = torch.autograd.grad((out.jacobian - target).square().mean() + out.values.mean(), tensors)
    auto = torch.autograd.grad((ref_jac - target).square().mean() + y.mean(), tensors)
    for a, b in zip(closed, auto):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_hessian_diagonal_matches_torch_func_hessian():
    modules = [hs.Siren(3, 2, hidden_dim=16, depth=4, w0_first=15.0).double() for _ in range(2)]
    params = hs.stack_params(modules)
    x = coords(batch=2, n=6, dim=3).detach()
    out = diff.siren_derivatives(params, x, w0_first=15.0, hessian_diagonal=True)
    assert out.hessian_diagonal.shape == (2, 6, 2, 3)
    for b, module in enumerate(modules):
        ref = vmap(hessian(module))(x[b]).diagonal(dim1=-2, dim2=-1)  # [N, C, D]
        torch.testing.assert_close(out.hessian_diagonal[b], ref, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(out.laplacian, out.hessian_diagonal.sum(-1), rtol=0, atol=0)


def test_closed_form_checks_its_inputs():
    _, params = siren_batch(batch=3)
    with pytest.raises(ValueError, match=r"siren_derivatives: expected coords \[B, N, 2\] with B=3"):
        diff.siren_derivatives(params, coords(batch=2))


@pytest.mark.parametrize("second", ["laplacian", "diagonal"])
def test_fused_closed_form_in_small_blocks_gives_the_graph_path_weight_gradients(monkeypatch, second):
    """The fused path (weights need grad, coords do not), cut into many point blocks, equals the plain graph."""
    from hypersiren import closed_form, forward

    monkeypatch.setattr(closed_form, "CPU_BLOCK_ELEMENTS", 200)  # blocks of a few points
    _, params = siren_batch(batch=3, out_dim=2, depth=4)
    params = params.map(lambda t: t.detach().requires_grad_(True))
    x = coords(batch=3, n=13).detach()
    tensors = params.weights + params.biases
    scales = forward.layer_scales(4, 30.0, 30.0)
    fused = closed_form.state_derivatives(params, x, scales, second)
    graph = closed_form._graph_state(params.weights, params.biases, x, scales, second)
    assert fused.grad_fn is not None and "Fused" in type(fused.grad_fn).__name__
    torch.testing.assert_close(fused, graph, rtol=0, atol=1e-9)
    weight = torch.randn_like(graph)
    for a, b in zip(torch.autograd.grad((fused * weight).sum(), tensors), torch.autograd.grad((graph * weight).sum(), tensors)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_fused_closed_form_refuses_a_double_backward():
    _, params = siren_batch(batch=1, out_dim=1)
    params = params.map(lambda t: t.detach().requires_grad_(True))
    lap = diff.siren_derivatives(params, coords(batch=1).detach()).laplacian
    (grad,) = torch.autograd.grad(lap.sum(), params.weights[0], create_graph=False)
    assert grad.shape == params.weights[0].shape
    with pytest.raises(RuntimeError, match="set coords.requires_grad_\\(True\\) to use the differentiable path"):
        torch.autograd.grad(diff.siren_derivatives(params, coords(batch=1).detach()).laplacian.sum(),
                            params.weights[0], create_graph=True)
