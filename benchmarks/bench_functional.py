"""Per-sample SIREN evaluation: hypersiren's batched forward against the ways users do it otherwise.

The network is the paper's image SIREN (2 -> 256 x 3 hidden -> 3, depth 5), with a different weight
set for each of the B samples. Compared, side by side in one run:

- `hypersiren`: `siren_forward(params, coords)`, one batched pass.
- `loop`: a Python loop over B `Siren` modules, one call per sample (the baseline of the targets).
- `vmap`: `torch.func.vmap` over `torch.func.functional_call` with stacked weights, on a SIREN module
  written the way a user without hypersiren writes it (`nn.Linear` layers, `sin(w0 * linear(x))`).
- `floor`: the raw arithmetic alone on pre-laid-out weights, with no bias, no w0, no checks and no
  autograd: `bmm` and `sin` per layer forward; for forward+backward also `cos`, one product and two
  `bmm`s per layer. `loop/floor` and `vmap/floor` bound the speed-up any implementation of the same
  arithmetic can have over those baselines (hypersiren's blocking can go a little below the floor).

`fwd` times a forward under `torch.no_grad()`; `fwd+bwd` a forward and the backward of a mean squared
output with respect to every sample's weights. Each cell is the median of at least `--repeats` timed runs (more for short cells) after
one warm-up, the implementations interleaved round by round. Ratios > 1 mean hypersiren is faster (`hs/floor`: hypersiren's time over the floor's).
On a GPU every timed run starts and ends with `torch.cuda.synchronize()`.

    python benchmarks/bench_functional.py [--device auto] [--quick] [--repeats 5] [--markdown]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.func import functional_call, vmap

import hypersiren as hs
from hypersiren.devices import resolve_device
from timing import describe_device, interleaved_medians, timed

IN_DIM, OUT_DIM, HIDDEN, DEPTH = 2, 3, 256, 5
MIN_SECONDS = 1.0  # each cell runs at least `repeats` rounds and at least about this long


def median_seconds(fns: dict, repeats: int, device: torch.device) -> dict:
    """Interleaved medians after a warm-up; short cells run more rounds (at least about MIN_SECONDS)."""
    round_seconds = sum(timed(fn, device) for fn in fns.values())  # warm-up
    rounds = max(repeats, min(200, int(MIN_SECONDS / max(round_seconds, 1e-9))))
    return interleaved_medians(fns, rounds, device=device, warm_up=False)


def make_case(batch: int, n: int, device: torch.device, seed: int = 0):
    """The same weights and points on every device: drawn on the CPU, then moved."""
    torch.manual_seed(seed)
    modules = [hs.Siren(IN_DIM, OUT_DIM, hidden_dim=HIDDEN, depth=DEPTH).to(device) for _ in range(batch)]
    coords = (torch.rand(batch, n, IN_DIM) * 2 - 1).to(device)
    params = hs.stack_params(modules).map(lambda t: t.detach().clone().requires_grad_(True))
    stacked = {name: torch.stack([m.state_dict()[name] for m in modules]).requires_grad_(True)
               for name in modules[0].state_dict()}
    return modules, coords, params, stacked


class PlainSiren(nn.Module):
    """A SIREN as commonly written with `nn.Linear`; same parameter names as `hypersiren.Siren`."""

    def __init__(self, w0: float = 30.0):
        super().__init__()
        dims = [IN_DIM] + [HIDDEN] * (DEPTH - 1) + [OUT_DIM]
        self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(DEPTH))
        self.w0 = w0

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.sin(self.w0 * layer(x))
        return self.layers[-1](x)


def implementations(modules, coords, params, stacked):
    template = PlainSiren().to(coords.device)

    def hypersiren_fn():
        return hs.siren_forward(params, coords)

    def loop_fn():
        return torch.stack([m(coords[b]) for b, m in enumerate(modules)])

    def one_sample(p, c):
        return functional_call(template, p, (c,), strict=True)

    batched_call = vmap(one_sample)

    def vmap_fn():
        return batched_call(stacked, coords)

    return {"hypersiren": hypersiren_fn, "loop": loop_fn, "vmap": vmap_fn}


def floor_fns(params, coords):
    """The raw arithmetic of the same shapes, weights pre-transposed and contiguous, no autograd.

    forward: per layer one `bmm` and (hidden layers) one `sin`.
    forward+backward: the forward keeping its tensors, then per layer `cos`, one product with the
    incoming gradient and the two `bmm`s of the input and weight gradients.
    """
    weights_t = [w.detach().mT.contiguous() for w in params.weights]  # [B, in, out]
    last = len(weights_t) - 1

    def forward(keep=None):
        h = coords
        for i, w in enumerate(weights_t):
            if keep is not None:
                keep.append(h)
            z = torch.bmm(h, w)
            if i < last:
                if keep is not None:
                    keep.append(z)
                h = torch.sin(z)
        return z

    def forward_backward():
        kept = []
        g = torch.ones_like(forward(kept))
        for i in reversed(range(last + 1)):
            if i < last:
                g = g * torch.cos(kept[2 * i + 1])
            torch.bmm(g.mT, kept[2 * i])
            if i > 0:
                g = torch.bmm(g, weights_t[i].mT)

    return forward, forward_backward


def all_params(modules, params, stacked):
    return [p for m in modules for p in m.parameters()] + list(params.weights + params.biases) + list(stacked.values())


def bench_size(batch: int, n: int, repeats: int, device: torch.device) -> list[dict]:
    modules, coords, params, stacked = make_case(batch, n, device)
    impls = implementations(modules, coords, params, stacked)
    floor_fwd, floor_bwd = floor_fns(params, coords)
    with torch.no_grad():
        outputs = {name: fn() for name, fn in impls.items()}
        max_diff = max((outputs[name] - outputs["hypersiren"]).abs().max().item() for name in ("loop", "vmap"))
        fwd = median_seconds({**impls, "floor": floor_fwd}, repeats, device)
    del outputs

    def with_backward(fn):
        def run():
            for p in all_params(modules, params, stacked):
                p.grad = None
            fn().square().mean().backward()
        return run

    bwd = median_seconds({**{name: with_backward(fn) for name, fn in impls.items()}, "floor": floor_bwd}, repeats,
                         device)
    rows = []
    for mode, times in (("fwd", fwd), ("fwd+bwd", bwd)):
        hs_t = times["hypersiren"]
        rows.append({
            "B": batch, "N": n, "mode": mode,
            "hypersiren_ms": hs_t * 1e3, "loop_ms": times["loop"] * 1e3, "vmap_ms": times["vmap"] * 1e3,
            "floor_ms": times["floor"] * 1e3,
            "loop/hs": times["loop"] / hs_t, "vmap/hs": times["vmap"] / hs_t, "hs/floor": hs_t / times["floor"],
            "loop/floor": times["loop"] / times["floor"], "vmap/floor": times["vmap"] / times["floor"],
            "max_abs_diff": max_diff,
        })
    return rows


COLUMNS = ["B", "N", "mode", "hypersiren_ms", "loop_ms", "vmap_ms", "floor_ms", "loop/hs", "vmap/hs", "hs/floor",
           "loop/floor", "vmap/floor", "max_abs_diff"]


def format_cell(key: str, value) -> str:
    if isinstance(value, str) or isinstance(value, int):
        return str(value)
    if value != value:  # nan
        return "-"
    if key == "max_abs_diff":
        return f"{value:.1e}"
    if key.endswith("_ms"):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return f"{value:.2f}x"


def print_table(rows: list[dict], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in rows:
            print("| " + " | ".join(format_cell(k, row[k]) for k in COLUMNS) + " |")
    else:
        widths = [max(len(c), 10) for c in COLUMNS]
        print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths)))
        for row in rows:
            print("  ".join(format_cell(k, row[k]).rjust(w) for k, w in zip(COLUMNS, widths)))


def main(args: argparse.Namespace) -> list[dict]:
    device = resolve_device(args.device)
    print(f"# bench_functional: torch {torch.__version__}, {describe_device(device)}; median of {args.repeats}; "
          "baseline = loop (ratios > 1: hypersiren faster)")
    batches, sizes = ((1, 8), (64, 1024)) if args.quick else ((1, 8, 64), (64, 1024, 16384))
    rows = []
    for batch in batches:
        for n in sizes:
            rows += bench_size(batch, n, args.repeats, device)
            print_table(rows[-2:], markdown=False) if not args.markdown else None
    print()
    print_table(rows, markdown=args.markdown)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N; auto: cuda where there is one, else cpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median reported)")
    parser.add_argument("--quick", action="store_true", help="B in {1, 8}, N in {64, 1024} only")
    parser.add_argument("--markdown", action="store_true", help="print the final table as markdown")
    main(parser.parse_args())
