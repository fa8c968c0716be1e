"""Training steps with losses on a SIREN's derivatives: closed form against autograd's double backward.

The network is the paper's Poisson network (2 -> 256 x 3 hidden -> 1, depth 5) on a full image grid
(256 x 256 by default). One step = forward, the loss on the derivatives, backward to every weight:

- `laplacian`: mean squared error of the Laplacian (Poisson reconstruction from a Laplacian);
- `gradient`: mean over pixels of the squared gradient error (Poisson reconstruction from gradients).

`autograd` takes `hypersiren.diff.laplacian` / `gradient` on `siren_forward` (create_graph, then a
backward through the double-backward graph); `closed_form` takes `hypersiren.diff.siren_derivatives`
(derivatives carried through the layers, one ordinary backward). Both give the same weight
gradients to round-off (checked here). The baseline is `autograd`; ratios > 1 mean closed form is faster.
`floor` times only the matrix products an exact method needs (see `make_floor`): no sine, no
elementwise work, no autograd; `autograd/floor` bounds what any faster method could gain.
Each cell is the median of `--repeats` steps, the methods interleaved, after one warm-up step; on a
GPU every timed step starts and ends with `torch.cuda.synchronize()`.

    python benchmarks/bench_derivatives.py [--device auto] [--side 256] [--repeats 5] [--markdown]
"""

from __future__ import annotations

import argparse

import torch

import hypersiren as hs
from hypersiren import diff
from hypersiren.devices import resolve_device
from timing import describe_device, interleaved_medians, synchronize


def make_step(kind: str, method: str, params: hs.SirenParams, coords: torch.Tensor, target: torch.Tensor):
    tensors = params.weights + params.biases

    def derivative():
        if method == "closed_form":
            out = diff.siren_derivatives(params, coords, laplacian=kind == "laplacian")
            return out.laplacian if kind == "laplacian" else out.jacobian[..., 0, :]
        x = coords.clone().requires_grad_(True)
        y = hs.siren_forward(params, x)
        return diff.laplacian(y, x) if kind == "laplacian" else diff.gradient(y, x)

    def step():
        loss = (derivative() - target).square().sum(-1).mean()
        return torch.autograd.grad(loss, tensors, allow_unused=True)

    return step


def make_floor(kind: str, params: hs.SirenParams, n: int):
    """The bare matmuls any exact method must run, nothing else: per layer, for a gradient loss the
    forward and reverse products and the two backward products of each (6 matmuls of `N` rows); for
    a Laplacian loss the forward product of the `2 + D` state rows and its two backward products."""
    weights = [w[0].detach() for w in params.weights]
    rows = n * (2 + 2) if kind == "laplacian" else n
    inputs = [torch.randn(rows, w.shape[1], device=w.device) for w in weights]
    grads = [torch.randn(rows, w.shape[0], device=w.device) for w in weights]

    def step():
        for w, x, g in zip(weights, inputs, grads):
            for _ in range(2 if kind == "gradient" else 1):
                x @ w.T, g @ w, g.T @ x

    return step


def bench(side: int, repeats: int, device: torch.device) -> list[dict]:
    torch.manual_seed(0)  # the same weights and targets on every device: drawn on the CPU, then moved
    params = hs.Siren(2, 1).params().map(lambda t: t.detach().to(device).requires_grad_(True))
    coords = hs.grid((side, side)).unsqueeze(0).to(device)  # [1, N, 2]
    rows = []
    for kind, channels in (("laplacian", 1), ("gradient", 2)):
        target = torch.randn(1, side * side, channels).to(device)
        steps = {m: make_step(kind, m, params, coords, target) for m in ("autograd", "closed_form")}
        steps["floor"] = make_floor(kind, params, side * side)
        grads = {m: fn() for m, fn in steps.items() if m != "floor"}  # also the warm-up
        steps["floor"]()
        synchronize(device)
        rel_err = max(
            ((a - b).abs().max() / b.abs().max()).item()
            for a, b in zip(grads["closed_form"], grads["autograd"]) if b is not None
        )
        med = interleaved_medians(steps, repeats, device=device, warm_up=False)  # the check above warmed up
        rows.append({
            "loss": kind, "grid": f"{side}x{side}", "autograd_s": med["autograd"],
            "closed_form_s": med["closed_form"], "speed-up": med["autograd"] / med["closed_form"],
            "floor_s": med["floor"], "autograd/floor": med["autograd"] / med["floor"],
            "grad_rel_diff": rel_err,
        })
    return rows


def main(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    print(f"# bench_derivatives: torch {torch.__version__}, {describe_device(device)}; median of {args.repeats}; "
          "baseline = autograd")
    rows = bench(args.side, args.repeats, device)
    cols = list(rows[0])
    fmt = {"autograd_s": "{:.3f}", "closed_form_s": "{:.3f}", "speed-up": "{:.2f}x", "grad_rel_diff": "{:.1e}",
           "floor_s": "{:.3f}", "autograd/floor": "{:.2f}x"}
    cells = [[fmt.get(c, "{}").format(r[c]) for c in cols] for r in rows]
    if args.markdown:
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for line in cells:
            print("| " + " | ".join(line) + " |")
    else:
        print("  ".join(c.rjust(14) for c in cols))
        for line in cells:
            print("  ".join(v.rjust(14) for v in line))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N; auto: cuda where there is one, else cpu")
    parser.add_argument("--side", type=int, default=256, help="image side; N = side^2 points")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    main(parser.parse_args())
