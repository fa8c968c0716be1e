"""Per-sample SIREN weights as data.

`SirenParams` holds one weight matrix and one bias vector per linear layer, each with the same
leading batch shape: weights `[B, out, in]`, biases `[B, out]`. It is a NamedTuple of tuples, so
`torch.func` transforms (`vmap`, `grad`, `jacrev`) see it as a pytree and map over its leaves; inside
a `vmap` the batch dimension is simply absent, and every method here works on any leading shape.

The flat layout, used by hypernetworks that predict one vector per sample, is layer by layer:
the weight matrix in row-major order, then the bias. This is the order of `Siren.state_dict()`, so a
flat vector and a module's parameters line up one to one. `flatten` and `unflatten` are the only code
that knows this layout.
"""

from __future__ import annotations

import operator
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

LayerShapes = tuple[tuple[int, int], ...]  # ((out, in), ...) per linear layer, first to last


def siren_layer_shapes(in_dim: int, out_dim: int, *, hidden_dim: int, depth: int) -> LayerShapes:
    """Shapes `(out, in)` of the `depth` linear layers of a SIREN, first to last."""
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim), ("depth", depth)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"siren_layer_shapes: {name} must be a positive int, got {value!r}")
    dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
    return tuple((dims[i + 1], dims[i]) for i in range(depth))


def num_params(layer_shapes: LayerShapes) -> int:
    """Number of scalars in one SIREN with these layer shapes (weights and biases)."""
    return sum(out * (inp + 1) for out, inp in layer_shapes)


class SirenParams(NamedTuple):
    """Weights `[*batch, out, in]` and biases `[*batch, out]` of every layer, first to last.

    Usually `*batch` is a single `B` (one SIREN per signal); inside `torch.func.vmap` it is empty.
    """

    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def batch_shape(self) -> torch.Size:
        return self.weights[0].shape[:-2]

    @property
    def layer_shapes(self) -> LayerShapes:
        return tuple((w.shape[-2], w.shape[-1]) for w in self.weights)

    @property
    def in_dim(self) -> int:
        return self.weights[0].shape[-1]

    @property
    def out_dim(self) -> int:
        return self.weights[-1].shape[-2]

    def validate(self, caller: str = "SirenParams") -> None:
        """Raise ValueError unless the layers chain and share one batch shape."""
        if len(self.weights) == 0 or len(self.weights) != len(self.biases):
            raise ValueError(
                f"{caller}: expected as many biases as weights (at least one layer), "
                f"got {len(self.weights)} weights and {len(self.biases)} biases"
            )
        batch = self.batch_shape
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.dim() < 2 or w.shape[:-2] != batch:
                raise ValueError(
                    f"{caller}: expected weight {i} of shape [{_fmt(batch)}out, in], got {tuple(w.shape)}"
                )
            if b.shape != w.shape[:-1]:
                raise ValueError(
                    f"{caller}: expected bias {i} of shape {tuple(w.shape[:-1])} to match weight {i} "
                    f"{tuple(w.shape)}, got {tuple(b.shape)}"
                )
            if i > 0 and w.shape[-1] != self.weights[i - 1].shape[-2]:
                raise ValueError(
                    f"{caller}: layer {i} takes {w.shape[-1]} inputs but layer {i - 1} gives "
                    f"{self.weights[i - 1].shape[-2]} outputs"
                )

    def flatten(self) -> Tensor:
        """All parameters as one vector per sample: `[*batch, P]`."""
        self.validate("SirenParams.flatten")
        parts = []
        for w, b in zip(self.weights, self.biases):
            parts += [w.flatten(-2), b]
        return torch.cat(parts, dim=-1)

    @staticmethod
    def unflatten(flat: Tensor, layer_shapes: LayerShapes) -> "SirenParams":
        """Exact inverse of `flatten`: `[*batch, P]` -> `SirenParams` with these layer shapes.

        The returned tensors are views of `flat`, so gradients flow back into it.
        """
        if not isinstance(flat, Tensor):
            raise TypeError(f"SirenParams.unflatten: expected flat as a tensor, got {type(flat).__name__}")
        layer_shapes = _checked_shapes(layer_shapes, "SirenParams.unflatten")
        expected = num_params(layer_shapes)
        if flat.dim() < 1 or flat.shape[-1] != expected:
            raise ValueError(
                f"SirenParams.unflatten: expected flat [..., {expected}] for layer shapes {tuple(layer_shapes)}, "
                f"got {tuple(flat.shape)}"
            )
        batch = flat.shape[:-1]
        weights, biases, start = [], [], 0
        for out, inp in layer_shapes:
            weights.append(flat[..., start : start + out * inp].unflatten(-1, (out, inp)))
            start += out * inp
            biases.append(flat[..., start : start + out])
            start += out
        assert start == expected and all(b.shape == batch + (out,) for b, (out, _) in zip(biases, layer_shapes))
        return SirenParams(tuple(weights), tuple(biases))

    def map(self, fn) -> "SirenParams":
        """Apply `fn` to every tensor (e.g. `.to(device)`, `.detach()`, indexing a sub-batch)."""
        return SirenParams(tuple(fn(w) for w in self.weights), tuple(fn(b) for b in self.biases))


def stack_params(modules: Sequence[torch.nn.Module]) -> SirenParams:
    """Stack the parameters of `Siren` modules of one shape into a `SirenParams` with `B = len(modules)`.

    The result is differentiable with respect to each module's parameters.
    """
    modules = list(modules)
    if not modules:
        raise ValueError("stack_params: expected at least one Siren, got an empty list")
    per_module = [m.params() for m in modules]
    shapes = per_module[0].layer_shapes
    for i, p in enumerate(per_module[1:], start=1):
        if p.layer_shapes != shapes:
            raise ValueError(
                f"stack_params: module {i} has layer shapes {p.layer_shapes}, module 0 has {shapes}; "
                "all modules must share one architecture"
            )
    depth = len(shapes)
    weights = tuple(torch.cat([p.weights[i] for p in per_module]) for i in range(depth))
    biases = tuple(torch.cat([p.biases[i] for p in per_module]) for i in range(depth))
    return SirenParams(weights, biases)


def _checked_shapes(layer_shapes, caller: str) -> LayerShapes:
    """`layer_shapes` as a tuple of `(out, in)` pairs of positive ints that chain (each layer takes the
    previous one's outputs); TypeError (not pairs of ints) or ValueError naming `caller` otherwise."""
    try:
        shapes = tuple((operator.index(out), operator.index(inp)) for out, inp in layer_shapes)
    except (TypeError, ValueError):  # not iterable, not pairs, not ints
        raise TypeError(f"{caller}: expected layer shapes ((out, in), ...) of ints, got {layer_shapes!r}") from None
    if not shapes or any(out < 1 or inp < 1 for out, inp in shapes):
        raise ValueError(f"{caller}: expected at least one layer and positive sizes, got layer shapes {shapes}")
    for i in range(1, len(shapes)):
        if shapes[i][1] != shapes[i - 1][0]:
            raise ValueError(f"{caller}: layer {i} takes {shapes[i][1]} inputs but layer {i - 1} gives "
                             f"{shapes[i - 1][0]} outputs, in layer shapes {shapes}")
    return shapes


def _fmt(batch: torch.Size) -> str:
    return "".join(f"{d}, " for d in batch)

