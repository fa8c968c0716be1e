"""Per-sample weights: SirenParams, stack_params and the batched siren_forward."""

import pytest
import torch
from torch.func import functional_call, grad, vmap

import hypersiren as hs
import hypersiren.forward as forward_module


def make_modules(batch, *, in_dim=2, out_dim=3, hidden_dim=32, depth=4, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return [hs.Siren(in_dim, out_dim, hidden_dim=hidden_dim, depth=depth).to(dtype) for _ in range(batch)]


def reference_forward(module: hs.Siren, coords: torch.Tensor) -> torch.Tensor:
    """The SIREN formula with plain torch ops, independent of siren_forward."""
    h = coords
    for i, layer in enumerate(module.layers):
        z = h @ layer.weight.T + layer.bias
        if i == len(module.layers) - 1:
            return z
        h = torch.sin((module.w0_first if i == 0 else module.w0) * z)


@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_batched_equals_module_loop_and_vmap_functional_call(depth, dtype, tol, device, generator):
    modules = [m.to(device) for m in make_modules(6, depth=depth, dtype=dtype)]
    coords = (torch.rand(6, 33, 2, dtype=dtype, generator=generator) * 2 - 1).to(device)
    batched = hs.siren_forward(hs.stack_params(modules), coords)
    loop = torch.stack([reference_forward(m, coords[b]) for b, m in enumerate(modules)])
    with torch.no_grad():
        module_calls = torch.stack([m(coords[b]) for b, m in enumerate(modules)])
    stacked = {k: torch.stack([m.state_dict()[k] for m in modules]) for k in modules[0].state_dict()}
    vmapped = vmap(lambda p, c: functional_call(modules[0], p, (c,), strict=True))(stacked, coords)
    assert batched.shape == (6, 33, 3) and batched.device == coords.device
    assert (batched - loop).abs().max() < tol
    assert (batched - module_calls).abs().max() < tol
    assert (batched - vmapped).abs().max() < tol


def test_each_sample_uses_only_its_own_weights():
    modules = make_modules(4)
    params = hs.stack_params(modules)
    coords = torch.rand(4, 10, 2) * 2 - 1
    before = hs.siren_forward(params, coords)
    with torch.no_grad():
        modules[2].layers[1].weight.add_(0.1)
    after = hs.siren_forward(hs.stack_params(modules), coords)
    changed = (after - before).abs().amax(dim=(1, 2))
    assert changed[2] > 1e-3
    assert torch.equal(changed[[0, 1, 3]], torch.zeros(3))


@pytest.mark.parametrize("batch, n", [(1, 5000), (3, 3000), (40, 64)])
def test_cache_blocking_changes_nothing(batch, n, monkeypatch):
    """Large inputs run in blocks of samples and points; blocks must not mix or drop points."""
    modules = make_modules(batch, hidden_dim=64, dtype=torch.float64)
    params = hs.stack_params(modules).map(lambda t: t.detach().requires_grad_(True))
    coords = torch.rand(batch, n, 2, dtype=torch.float64) * 2 - 1
    out = hs.siren_forward(params, coords)
    out.square().sum().backward()
    grads = [w.grad.clone() for w in params.weights]
    monkeypatch.setattr(forward_module, "CPU_BLOCK_ELEMENTS", 500)  # forces many small blocks
    for w in params.weights:
        w.grad = None
    blocked = hs.siren_forward(params, coords)
    blocked.square().sum().backward()
    torch.testing.assert_close(blocked, out, rtol=0, atol=1e-12)
    for g, w in zip(grads, params.weights):
        torch.testing.assert_close(w.grad, g, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(hs.siren_forward(params, coords), out, rtol=0, atol=1e-12)


def test_gradients_wrt_weights_match_the_module_loop(device, generator):
    modules = [m.to(device) for m in make_modules(3, dtype=torch.float64)]
    coords = (torch.rand(3, 20, 2, dtype=torch.float64, generator=generator) * 2 - 1).to(device)
    hs.siren_forward(hs.stack_params(modules), coords).sin().sum().backward()
    batched = [p.grad.clone() for m in modules for p in m.parameters()]
    for m in modules:
        m.zero_grad()
    sum(reference_forward(m, coords[b]).sin().sum() for b, m in enumerate(modules)).backward()
    for g, m_p in zip(batched, [p for m in modules for p in m.parameters()]):
        torch.testing.assert_close(g, m_p.grad, rtol=1e-10, atol=1e-12)


def test_flatten_unflatten_are_exact_inverses():
    modules = make_modules(5, depth=3)
    params = hs.stack_params(modules)
    flat = params.flatten()
    assert flat.shape == (5, hs.num_params(params.layer_shapes))
    back = hs.SirenParams.unflatten(flat, params.layer_shapes)
    for a, b in zip(back.weights + back.biases, params.weights + params.biases):
        assert torch.equal(a, b)
    assert torch.equal(back.flatten(), flat)
    # the flat order is the state_dict order of a Siren
    assert torch.equal(flat[1], torch.cat([t.flatten() for t in modules[1].state_dict().values()]))


def test_unflatten_is_differentiable_and_works_on_any_leading_shape():
    shapes = hs.siren_layer_shapes(2, 1, hidden_dim=4, depth=2)
    flat = torch.randn(2, 3, hs.num_params(shapes), requires_grad=True)
    params = hs.SirenParams.unflatten(flat, shapes)
    assert params.weights[0].shape == (2, 3, 4, 2) and params.biases[1].shape == (2, 3, 1)
    params.weights[1].sum().backward()
    assert flat.grad.sum() == 4 * 6


def test_params_pass_through_vmap():
    modules = make_modules(4)
    params = hs.stack_params(modules)
    coords = torch.rand(4, 9, 2) * 2 - 1

    def one(p: hs.SirenParams, c: torch.Tensor) -> torch.Tensor:
        assert isinstance(p, hs.SirenParams) and p.weights[0].shape == (32, 2)
        return hs.siren_forward(p.map(lambda t: t.unsqueeze(0)), c.unsqueeze(0))[0]

    torch.testing.assert_close(vmap(one)(params, coords), hs.siren_forward(params, coords))
    assert torch.equal(vmap(hs.SirenParams.flatten)(params), params.flatten())
    # per-sample gradients of a per-sample loss, through torch.func.grad
    per_sample = vmap(grad(lambda p, c: one(p, c).square().mean()))(params, coords)
    assert isinstance(per_sample, hs.SirenParams) and per_sample.weights[1].shape == (4, 32, 32)


def test_stack_params_is_differentiable_to_each_module(generator):
    """Gradients flow through the stack back to every module: the same as each module run on its own."""
    modules = make_modules(2, dtype=torch.float64)
    coords = torch.rand(2, 3, 2, dtype=torch.float64, generator=generator) * 2 - 1  # nonzero: layer 0 gets a gradient
    hs.siren_forward(hs.stack_params(modules), coords).sin().sum().backward()
    through_stack = [[p.grad.clone() for p in m.parameters()] for m in modules]
    for m in modules:
        m.zero_grad()
    for b, m in enumerate(modules):
        m(coords[b]).sin().sum().backward()
    for b, m in enumerate(modules):
        for (name, p), g in zip(m.named_parameters(), through_stack[b]):
            assert g.abs().max() > 1e-6, f"module {b} {name}: no gradient reached it through stack_params"
            torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12, msg=f"module {b} {name}")


def test_stack_params_rejects_mixed_architectures():
    with pytest.raises(ValueError, match="module 1 has layer shapes .* all modules must share one architecture"):
        hs.stack_params([hs.Siren(2, 1, hidden_dim=8), hs.Siren(2, 1, hidden_dim=16)])
    with pytest.raises(ValueError, match="expected at least one Siren"):
        hs.stack_params([])


def test_siren_forward_rejects_bad_shapes():
    params = hs.stack_params(make_modules(8))
    with pytest.raises(ValueError, match=r"expected coords \[B, N, 2\] with B=8 to match params, got \(4, 1024, 2\)"):
        hs.siren_forward(params, torch.zeros(4, 1024, 2))
    with pytest.raises(ValueError, match=r"expected coords \[B, N, 2\] with B=8 .* got \(8, 10, 3\)"):
        hs.siren_forward(params, torch.zeros(8, 10, 3))
    with pytest.raises(ValueError, match=r"got \(10, 2\)"):
        hs.siren_forward(params, torch.zeros(10, 2))
    with pytest.raises(TypeError, match="expected params to be a SirenParams"):
        hs.siren_forward(list(params.weights), torch.zeros(8, 10, 2))


def test_inconsistent_params_are_rejected():
    params = hs.stack_params(make_modules(3))
    bad_bias = params._replace(biases=params.biases[:1] + (torch.zeros(3, 5),) + params.biases[2:])
    with pytest.raises(ValueError, match=r"expected bias 1 of shape \(3, 32\) to match weight 1"):
        hs.siren_forward(bad_bias, torch.zeros(3, 4, 2))
    mixed_batch = params.map(lambda t: t[:2])._replace(weights=(params.weights[0][:2],) + params.weights[1:])
    with pytest.raises(ValueError, match=r"expected weight 1 of shape \[2, out, in\], got \(3, 32, 32\)"):
        hs.siren_forward(mixed_batch, torch.zeros(2, 4, 2))
    broken_chain = params._replace(
        weights=params.weights[:2] + (torch.zeros(3, 32, 7),) + params.weights[3:],
    )
    with pytest.raises(ValueError, match="layer 2 takes 7 inputs but layer 1 gives 32 outputs"):
        broken_chain.flatten()
    with pytest.raises(ValueError, match=r"expected flat \[\.\.\., \d+\] for layer shapes .* got \(3, 10\)"):
        hs.SirenParams.unflatten(torch.zeros(3, 10), params.layer_shapes)


@pytest.mark.parametrize("block_elements", [500, 2**19])
def test_weight_gradients_of_fused_path_equal_the_graph_path(block_elements, monkeypatch, device, generator):
    """Training on values takes a hand-written backward; it must equal autograd's on the plain ops."""
    monkeypatch.setattr(forward_module, "CPU_BLOCK_ELEMENTS", block_elements)
    params = hs.stack_params(make_modules(5, depth=4, dtype=torch.float64)).map(
        lambda t: t.detach().to(device).requires_grad_(True))
    coords = (torch.rand(5, 77, 2, dtype=torch.float64, generator=generator) * 2 - 1).to(device)
    target = torch.randn(5, 77, 3, dtype=torch.float64, generator=generator).to(device)
    tensors = params.weights + params.biases

    fused = hs.siren_forward(params, coords)
    assert fused.grad_fn.name() == "_FusedSirenBackward"
    fused_grads = torch.autograd.grad((fused - target).square().mean(), tensors)
    graph = hs.siren_forward(params, coords, higher_order=True)
    graph_grads = torch.autograd.grad((graph - target).square().mean(), tensors)
    torch.testing.assert_close(fused, graph, rtol=0, atol=1e-12)
    for a, b in zip(fused_grads, graph_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_second_order_through_weights_needs_higher_order():
    params = hs.stack_params(make_modules(2, dtype=torch.float64)).map(lambda t: t.detach().requires_grad_(True))
    coords = torch.rand(2, 5, 2, dtype=torch.float64)
    w = params.weights[1]

    def grad_norm(higher_order):
        out = hs.siren_forward(params, coords, higher_order=higher_order)
        (g,) = torch.autograd.grad(out.square().sum(), w, create_graph=True)
        return g.square().sum()

    with pytest.raises(RuntimeError, match=r"call siren_forward\(\.\.\., higher_order=True\)"):
        grad_norm(False)
    (second,) = torch.autograd.grad(grad_norm(True), w)
    eps = 1e-6
    values = []
    for step in (eps, -2 * eps, eps):
        with torch.no_grad():
            w[0, 1, 2] += step
        values.append(grad_norm(True).item())
    plus, minus = values[0], values[1]
    assert second[0, 1, 2].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-5)


def test_changing_weights_between_forward_and_backward_raises():
    params = hs.stack_params(make_modules(2)).map(lambda t: t.detach().requires_grad_(True))
    out = hs.siren_forward(params, torch.rand(2, 5, 2))
    with torch.no_grad():
        params.weights[0].add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# --- inside torch.func transforms ------------------------------------------------------------------


def test_functorch_transform_detection_still_exists():
    """siren_forward picks its path with torch's private `_are_functorch_transforms_active` (torch has
    no public equivalent); this fails first, with the fix in its message, if a torch release drops it."""
    assert callable(getattr(torch._C, "_are_functorch_transforms_active", None)), (
        f"torch {torch.__version__} no longer has torch._C._are_functorch_transforms_active, which "
        "hypersiren.forward._inside_functorch_transform calls to keep the fused autograd.Function out of "
        "torch.func transforms; replace it there with that release's way of asking (see docs/decisions.md)"
    )
    x = torch.ones(3)
    inside = []

    def record(t):
        inside.append(forward_module._inside_functorch_transform())
        return t.sin().sum()

    assert forward_module._inside_functorch_transform() is False
    vmap(record)(x.unsqueeze(1))
    grad(record)(x)
    torch.func.jvp(record, (x,), (x,))
    assert inside == [True, True, True]
    assert forward_module._inside_functorch_transform() is False


def test_transform_with_only_plain_inputs_takes_the_graph_path():
    """A transform around a call whose own inputs are not transformed: the fused autograd.Function would
    refuse to run here, which is why the path is chosen by whether a transform is active at all."""
    params = hs.stack_params(make_modules(2, dtype=torch.float64)).map(lambda t: t.detach().requires_grad_(True))
    coords = torch.rand(2, 5, 2, dtype=torch.float64)
    scales = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    out = vmap(lambda s: s * hs.siren_forward(params, coords).sum())(scales)
    direct = hs.siren_forward(params, coords).sum()
    torch.testing.assert_close(out, scales * direct, rtol=1e-12, atol=1e-12)
    (from_vmap,) = torch.autograd.grad(out.sum(), params.weights[1])
    (reference,) = torch.autograd.grad(scales.sum() * direct, params.weights[1])
    torch.testing.assert_close(from_vmap, reference, rtol=1e-12, atol=1e-12)


def test_per_sample_gradients_from_vmap_grad_equal_the_fused_backward(generator):
    """torch.func.grad over the weights (graph path) gives what an ordinary backward gives (fused path)."""
    params = hs.stack_params(make_modules(4, dtype=torch.float64)).map(lambda t: t.detach().requires_grad_(True))
    coords = torch.rand(4, 9, 2, dtype=torch.float64, generator=generator) * 2 - 1

    def loss(p: hs.SirenParams, c: torch.Tensor) -> torch.Tensor:
        return hs.siren_forward(p.map(lambda t: t.unsqueeze(0)), c.unsqueeze(0)).square().sum()

    per_sample = vmap(grad(loss))(params, coords)
    fused = hs.siren_forward(params, coords)
    assert fused.grad_fn.name() == "_FusedSirenBackward"
    fused.square().sum().backward()
    for a, b in zip(per_sample.weights + per_sample.biases, params.weights + params.biases):
        torch.testing.assert_close(a, b.grad, rtol=1e-10, atol=1e-12)
