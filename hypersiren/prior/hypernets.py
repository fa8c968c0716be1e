"""Hypernetworks: a latent `[B, Z]` -> the weights of one SIREN per sample.

- `PerTensorHyperNetwork` (`heads="per_tensor"`): the reference architecture, one ReLU MLP head per
  SIREN tensor (10 heads for 5 layers); for the paper's image SIREN about 52 M parameters.
- `LowRankHyperNetwork` (`heads="low_rank"`): a learned base SIREN plus a latent-dependent offset in a
  learned basis of `rank` directions of weight space, `params = base + coeffs(z) @ basis`.
- `BasisHyperNetwork` (`heads="basis"`): shared hidden layers and a last layer linear in the latent, so
  a SIREN's output is `f_z(x) = m(x) + Phi(x) z`; under `z ~ N(0, I)` and Gaussian noise on the
  observations, the latent given a context has a closed-form posterior (`posterior`), and the model
  starts from the probabilistic PCA of the training signals (`initialise`; `fit_start` takes the PPCA).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..devices import adam, full_precision
from ..forward import layer_scales, siren_forward
from ..params import SirenParams
from ..siren import siren_init_bounds
from .encoders import relu_mlp
from .pca import PPCA, probabilistic_pca
from .types import Context, check_context


class PerTensorHyperNetwork(nn.Module):
    """The reference hypernetwork: one ReLU MLP head per SIREN tensor, `[B, Z]` -> `[B, P]`.

    Last layer of each head: Kaiming weights divided by `init_divisor` (100 in the reference); bias uniform in `+-1/fan_in` of the target
    SIREN layer (weight heads) or `+-1/head_hidden` (bias heads), so the predicted SIREN starts near a
    SIREN initialisation.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3,
                 init_divisor: float = 100.0):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        heads = []
        for out, inp in self.layer_shapes:
            for numel, bias_bound in ((out * inp, 1.0 / inp), (out, 1.0 / hidden)):
                head = relu_mlp(latent_dim, hidden, numel, depth)
                with torch.no_grad():
                    head[-1].weight.div_(init_divisor)
                    head[-1].bias.uniform_(-bias_bound, bias_bound)
                heads.append(head)
        self.heads = nn.ModuleList(heads)  # weight 0, bias 0, weight 1, ...: the flat layout's order

    def forward(self, latent: Tensor) -> Tensor:
        return torch.cat([head(latent) for head in self.heads], dim=-1)



class LowRankHyperNetwork(nn.Module):
    """`params = base + coeffs(z) @ basis`: a learned base SIREN and `rank` learned weight-space directions.

    The base starts as a SIREN initialisation; the basis rows start random and the coefficient MLP's last
    layer is divided by `init_divisor`, so at init every latent decodes to (nearly) the base SIREN, at
    SIREN-init scale.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3, rank: int = 256,
                 w0: float = 30.0, init_divisor: float = 10.0):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        base, scale = [], []
        for (out, inp), (weight_bound, bias_bound) in zip(self.layer_shapes, siren_init_bounds(self.layer_shapes, w0=w0)):
            base += [torch.empty(out * inp).uniform_(-weight_bound, weight_bound),
                     torch.empty(out).uniform_(-bias_bound, bias_bound)]
            scale += [torch.full((out * inp,), weight_bound), torch.full((out,), bias_bound)]
        self.base = nn.Parameter(torch.cat(base))  # [P], in the flat layout
        # each entry of a direction is scaled like the SIREN init of its tensor
        self.register_buffer("scale", torch.cat(scale), persistent=False)
        self.basis = nn.Parameter(torch.randn(rank, self.base.numel()) / math.sqrt(rank))  # [rank, P]
        self.coeffs = relu_mlp(latent_dim, hidden, rank, depth)
        with torch.no_grad():
            self.coeffs[-1].weight.div_(init_divisor)

    def from_coeffs(self, coeffs: Tensor) -> Tensor:
        """Flat per-sample parameters from rank coefficients `[B, rank]` -> `[B, P]`."""
        return self.base + (coeffs @ self.basis) * self.scale

    def forward(self, latent: Tensor) -> Tensor:
        return self.from_coeffs(self.coeffs(latent))  # [B, P]



class BasisHyperNetwork(nn.Module):
    """`f_z(x) = m(x) + Phi(x) z`: shared hidden layers (the trunk, features `h(x)`), a last layer that
    is linear in the latent, `W(z) = W + sum_j z_j W_j` (biases likewise), and a learned noise variance.

    `params(z)` gives the per-sample SIRENs (hidden layers shared, as expanded views); `posterior`
    gives the exact posterior of z given a context under `z ~ N(0, I)` and value noise `noise`.
    At init the mean SIREN is a SIREN initialisation and each basis function's last layer is one
    scaled by `1/sqrt(latent_dim)`, so samples of the prior are at SIREN-init scale.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, w0_first: float = 30.0, w0: float = 30.0,
                 noise: float = 1e-2):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        self.w0_first, self.w0 = w0_first, w0
        bounds = siren_init_bounds(self.layer_shapes, w0=w0)
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(out, inp).uniform_(-wb, wb))
                                        for (out, inp), (wb, _) in zip(self.layer_shapes, bounds))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(out).uniform_(-bb, bb))
                                       for (out, _), (_, bb) in zip(self.layer_shapes, bounds))
        (out, inp), (wb, bb) = self.layer_shapes[-1], bounds[-1]
        self.basis_weight = nn.Parameter(torch.empty(latent_dim, out, inp).uniform_(-wb, wb) / math.sqrt(latent_dim))
        self.basis_bias = nn.Parameter(torch.empty(latent_dim, out).uniform_(-bb, bb) / math.sqrt(latent_dim))
        self.log_noise = nn.Parameter(torch.tensor(math.log(noise)))

    @property
    def noise(self) -> Tensor:
        """Variance of the Gaussian noise on each value, in the model's value units."""
        return self.log_noise.exp()

    def features(self, coords: Tensor) -> Tensor:
        """Trunk features `h(x)`, the last hidden layer's sines: `[..., D]` -> `[..., H]`."""
        trunk = SirenParams(tuple(w.unsqueeze(0) for w in self.weights[:-1]),
                            tuple(b.unsqueeze(0) for b in self.biases[:-1]))
        # siren_forward leaves its last layer linear; the trunk's last layer is a sine layer, with the
        # scale that layer has in the full SIREN
        pre = siren_forward(trunk, coords.reshape(1, -1, coords.shape[-1]), w0_first=self.w0_first, w0=self.w0)
        scale = layer_scales(len(self.layer_shapes), self.w0_first, self.w0)[trunk.depth - 1]
        return torch.sin(scale * pre).reshape(*coords.shape[:-1], -1)

    def mean(self, features: Tensor) -> Tensor:
        """`m(x)` from trunk features: `[..., H]` -> `[..., C]`."""
        return features @ self.weights[-1].T + self.biases[-1]

    def basis(self, features: Tensor) -> Tensor:
        """`Phi(x)` from trunk features: `[..., H]` -> `[..., C, Z]`."""
        return torch.einsum("...h,zch->...cz", features, self.basis_weight) + self.basis_bias.T

    def params(self, latent: Tensor) -> SirenParams:
        """Per-sample SIREN weights for latents `[B, Z]`; the hidden layers are views of the shared ones."""
        batch = latent.shape[0]
        weights = [w.expand(batch, *w.shape) for w in self.weights[:-1]]
        biases = [b.expand(batch, *b.shape) for b in self.biases[:-1]]
        weights.append(self.weights[-1] + torch.einsum("bz,zch->bch", latent, self.basis_weight))
        biases.append(self.biases[-1] + latent @ self.basis_bias)
        return SirenParams(tuple(weights), tuple(biases))

    def feature_gradients(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """Trunk features `h(x)` `[..., H]` and their derivatives `dh/dx` `[..., D, H]` (one forward-mode pass
        per coordinate axis)."""
        dims = coords.shape[-1]
        tangents = torch.eye(dims, dtype=coords.dtype, device=coords.device)
        columns = []
        for d in range(dims):
            features, column = torch.func.jvp(self.features, (coords,), (tangents[d].expand_as(coords),))
            columns.append(column)
        return features, torch.stack(columns, dim=-2)

    def posterior(self, context: Context) -> tuple[Tensor, Tensor]:
        """Mean `[B, Z]` and covariance `[B, Z, Z]` of z given the context's values (and normals).

        With `Phi_o` the basis at the valid context observations and `r` their difference from the mean,
        `cov = noise (Phi_o^T Phi_o + noise I)^-1` and `mean = cov Phi_o^T r / noise`. The observations are
        the values `f(x_m) = v_m` and, when the context has normals (a scalar field: signed distances),
        also the gradients `grad f(x_m) = n_m`, which are linear in z as well: `grad m(x) + grad Phi(x) z`.
        """
        check_context(context, "BasisHyperNetwork.posterior")
        if context.normals is None:
            features = self.features(context.coords)  # [B, M, H]
        else:
            if self.layer_shapes[-1][0] != 1:
                raise ValueError(f"BasisHyperNetwork.posterior: normals observe the gradient of a scalar field, but "
                                 f"this prior has {self.layer_shapes[-1][0]} output channels")
            features, jac = self.feature_gradients(context.coords)  # [B, M, H], [B, M, D, H]
        valid = context.mask.unsqueeze(-1).to(features.dtype)  # [B, M, 1]
        residual = ((context.values - self.mean(features)) * valid).flatten(1)  # [B, M C]
        phi = (self.basis(features) * valid.unsqueeze(-1)).flatten(1, 2)  # [B, M C, Z]
        if context.normals is not None:
            mean_gradient = jac @ self.weights[-1][0]  # [B, M, D]
            basis_gradient = torch.einsum("bmdh,zh->bmdz", jac, self.basis_weight[:, 0])  # [B, M, D, Z]
            residual = torch.cat([residual, ((context.normals - mean_gradient) * valid).flatten(1)], dim=1)
            phi = torch.cat([phi, (basis_gradient * valid.unsqueeze(-1)).flatten(1, 2)], dim=1)  # [B, M (C + D), Z]
        # the normal equations in float32 at least, also under autocast: a bfloat16 Gram matrix loses its
        # small eigenvalues (and Cholesky its positive definiteness); the features above may be bfloat16
        dtype = torch.promote_types(phi.dtype, torch.float32)
        with full_precision(phi.device):
            phi, residual, noise = phi.to(dtype), residual.to(dtype), self.noise.to(dtype)
            eye = torch.eye(phi.shape[-1], dtype=dtype, device=phi.device)
            chol = torch.linalg.cholesky(phi.mT @ phi + noise * eye)
            mean = torch.cholesky_solve((phi.mT @ residual.unsqueeze(-1)), chol).squeeze(-1)
            return mean, noise * torch.cholesky_inverse(chol)

    def initialise(self, coords: Tensor, values: Tensor, *, steps: int, lr: float = 1e-4) -> dict:
        """Start from probabilistic PCA of a collection of signals on a shared grid, represented by the SIREN:
        `fit_start(coords, probabilistic_pca(values, latent_dim))`. `coords [P, D]`, `values [N, P, C]`;
        ValueError unless there are more signals than components plus one."""
        latent_dim, dims, channels = self.basis_weight.shape[0], self.layer_shapes[0][1], self.layer_shapes[-1][0]
        if coords.dim() != 2 or values.dim() != 3 or coords.shape != (values.shape[1], dims) \
                or values.shape[2] != channels:
            raise ValueError(f"BasisHyperNetwork.initialise: expected coords [P, {dims}] and values [N, P, {channels}], "
                             f"got {tuple(coords.shape)} and {tuple(values.shape)}")
        return self.fit_start(coords, probabilistic_pca(values, latent_dim), steps=steps, lr=lr)

    def fit_start(self, coords: Tensor, start: PPCA, *, steps: int, lr: float = 1e-4) -> dict:
        """Represent a probabilistic PCA of signals on the points `coords [P, D]` by the SIREN.

        `start`'s mean `[P, C]` and top `latent_dim` components `[P, C, Z]` (`probabilistic_pca`, or
        `streamed_probabilistic_pca` of a collection streamed from disk or over processes) become the
        targets of `steps` Adam steps on the trunk and last layers (squared error summed over the mean and
        components, averaged over points); the noise is PPCA's (the mean discarded eigenvalue) plus what the
        fit leaves per value. Returns `{"ppca_noise", "fit_error", "noise"}`.
        """
        latent_dim, dims, channels = self.basis_weight.shape[0], self.layer_shapes[0][1], self.layer_shapes[-1][0]
        points = coords.shape[0] if coords.dim() == 2 else -1
        if coords.dim() != 2 or coords.shape[1] != dims or start.mean.shape != (points, channels) \
                or start.basis.shape != (points, channels, latent_dim):
            raise ValueError(f"BasisHyperNetwork.fit_start: expected coords [P, {dims}], a PPCA mean [P, {channels}] "
                             f"and basis [P, {channels}, {latent_dim}], got {tuple(coords.shape)}, "
                             f"{tuple(start.mean.shape)} and {tuple(start.basis.shape)}")
        target_mean, target_basis, ppca_noise = start
        optimizer = adam(self.parameters(), lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                features = self.features(coords)
                loss = ((self.mean(features) - target_mean).square().sum(-1)
                        + (self.basis(features) - target_basis).square().sum((-1, -2))).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            features = self.features(coords)
            fit_error = float((self.basis(features) - target_basis).square().sum(-1).mean())
            self.log_noise.fill_(math.log(ppca_noise + fit_error))
        return {"ppca_noise": ppca_noise, "fit_error": fit_error, "noise": ppca_noise + fit_error}
