"""A prior over SIRENs: set encoder -> latent -> hypernetwork -> per-sample SIREN weights.

`HyperSiren` reads a set of context points (coordinates and values, with a mask for padding),
pools them into one latent vector per sample, and predicts from it the full weights of a SIREN,
which is then evaluated at any query coordinates with the batched `siren_forward`.

Three hypernetwork designs:
- `heads="per_tensor"`: the reference architecture, one ReLU MLP head per SIREN tensor (10 heads for
  5 layers); for the paper's image SIREN that is about 52 M parameters.
- `heads="low_rank"`: a learned base SIREN (initialised as a SIREN) plus a latent-dependent offset
  in a learned basis of `rank` directions of weight space: `params = base + coeffs(z) @ basis`. The
  basis is the only tensor of size `rank x P`, so it is several times smaller at the same latent size.
- `heads="basis"`: every predicted SIREN shares its hidden layers, and the last layer is linear in
  the latent, so a SIREN's output is a mean function plus `latent_dim` basis functions weighted by z:
  `f_z(x) = m(x) + Phi(x) z`. With the prior `z ~ N(0, I)` and Gaussian noise on the values, the
  latent given a context has a closed-form posterior, which is this design's encoder
  (`encoder="posterior"`): exact Bayesian inference instead of an amortised guess, for any number of
  context points. `BasisHyperNetwork.initialise` starts it from the principal components of the
  training images (probabilistic PCA), represented by the SIREN.

Two encoders: `encoder="set"` (the reference's sine MLP and masked mean) and `encoder="posterior"`
(the posterior mean of z under a `basis` hypernetwork).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .forward import siren_forward
from .params import SirenParams, siren_layer_shapes
from .siren import Siren, SirenConfig, siren_init_bounds


class Context(NamedTuple):
    """A set of known points per sample; `mask[b, m]` is False for padding."""

    coords: Tensor  # [B, M, D]
    values: Tensor  # [B, M, C]
    mask: Tensor  # [B, M] bool


class Prediction(NamedTuple):
    values: Tensor  # [B, N, C]
    params: SirenParams  # per-sample SIREN weights
    latent: Tensor  # [B, Z]


@dataclass(frozen=True)
class HyperSirenConfig:
    coord_dim: int = 2
    value_dim: int = 3
    latent_dim: int = 256
    encoder_hidden: int = 256
    encoder_depth: int = 4  # linear layers of the per-point encoder MLP, each followed by a sine
    siren_hidden: int = 256
    siren_depth: int = 5
    w0_first: float = 30.0
    w0: float = 30.0
    heads: str = "per_tensor"  # "per_tensor" (reference), "low_rank" or "basis"
    encoder: str = "set"  # "set" (sine MLP + masked mean) or "posterior" (heads="basis" only)
    head_hidden: int = 256  # width of the hypernetwork's hidden ReLU layers
    head_depth: int = 3  # linear layers per head (per_tensor) or in the coefficient MLP (low_rank)
    rank: int = 256  # low_rank only: number of weight-space directions

    def __post_init__(self):
        for name in ("coord_dim", "value_dim", "latent_dim", "encoder_hidden", "encoder_depth", "siren_hidden",
                     "siren_depth", "head_hidden", "head_depth", "rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HyperSirenConfig: {name} must be a positive int, got {value!r}")
        if self.heads not in ("per_tensor", "low_rank", "basis"):
            raise ValueError(f"HyperSirenConfig: heads must be 'per_tensor', 'low_rank' or 'basis', got {self.heads!r}")
        if self.encoder not in ("set", "posterior"):
            raise ValueError(f"HyperSirenConfig: encoder must be 'set' or 'posterior', got {self.encoder!r}")
        if self.encoder == "posterior" and self.heads != "basis":
            raise ValueError(f"HyperSirenConfig: encoder='posterior' needs heads='basis' (a SIREN linear in the "
                             f"latent), got heads={self.heads!r}")
        if self.heads == "basis" and self.siren_depth < 2:
            raise ValueError(f"HyperSirenConfig: heads='basis' needs siren_depth >= 2 (shared hidden layers), "
                             f"got {self.siren_depth}")
        for name in ("w0_first", "w0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HyperSirenConfig: {name} must be positive, got {getattr(self, name)!r}")

    @property
    def layer_shapes(self):
        return siren_layer_shapes(self.coord_dim, self.value_dim, hidden_dim=self.siren_hidden, depth=self.siren_depth)

    @property
    def siren(self) -> SirenConfig:
        """The architecture of every predicted SIREN: what rebuilds one as a plain `Siren` (export)."""
        return SirenConfig(self.coord_dim, self.value_dim, hidden_dim=self.siren_hidden, depth=self.siren_depth,
                           w0_first=self.w0_first, w0=self.w0)


class SetEncoder(nn.Module):
    """Per-point sine MLP on `concat(coords, values)`, then a masked mean: `[B, M, D + C]` -> `[B, Z]`.

    Every layer, the last included, is `sin(w0 (W x + b))` with SIREN initialisation. The mean over
    valid points makes the latent invariant to the order of the points and to masked padding.
    """

    def __init__(self, in_dim: int, latent_dim: int, *, hidden_dim: int = 256, depth: int = 4, w0: float = 30.0):
        super().__init__()
        self.mlp = Siren(in_dim, latent_dim, hidden_dim=hidden_dim, depth=depth, w0_first=w0, w0=w0)
        self.w0 = w0

    def forward(self, context: Context) -> Tensor:
        check_context(context, "SetEncoder")
        features = torch.sin(self.w0 * self.mlp(torch.cat([context.coords, context.values], dim=-1)))  # [B, M, Z]
        return masked_mean(features, context.mask)


def check_context(context: Context, where: str) -> None:
    """Raise unless `context` is coords `[B, M, D]`, values `[B, M, C]` and a bool mask `[B, M]` with a
    valid point in every sample; `where` names the caller in the message."""
    coords, values, mask = context
    if coords.dim() != 3 or values.dim() != 3 or coords.shape[:2] != values.shape[:2]:
        raise ValueError(
            f"{where}: expected context coords [B, M, D] and values [B, M, C] with the same B, M, "
            f"got {tuple(coords.shape)} and {tuple(values.shape)}"
        )
    if mask.shape != coords.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"{where}: expected a bool mask {tuple(coords.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    if not mask.any(1).all():
        empty = (~mask.any(1)).nonzero()[:, 0].tolist()
        raise ValueError(f"{where}: samples {empty} have no valid context point (mask all False)")


def masked_mean(features: Tensor, mask: Tensor) -> Tensor:
    """Mean of `features [B, M, F]` over the points where `mask [B, M]` is True -> `[B, F]`."""
    weights = mask.unsqueeze(-1).to(features.dtype)  # [B, M, 1]
    return (features * weights).sum(1) / weights.sum(1)


def relu_mlp(in_dim: int, hidden: int, out_dim: int, depth: int) -> nn.Sequential:
    """`depth` linear layers with ReLUs between them; Kaiming-normal init (fan_in, ReLU)."""
    dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(dims[i], dims[i + 1])
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()] if i < depth - 1 else [linear]
    return nn.Sequential(*layers)


class PerTensorHyperNetwork(nn.Module):
    """The reference hypernetwork: one ReLU MLP head per SIREN tensor, `[B, Z]` -> `[B, P]`.

    Last layer of each head: Kaiming weights divided by 100; bias uniform in `+-1/fan_in` of the target
    SIREN layer (weight heads) or `+-1/head_hidden` (bias heads), so the predicted SIREN starts near a
    SIREN initialisation.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3):
        super().__init__()
        self.layer_shapes = tuple(layer_shapes)
        heads = []
        for out, inp in self.layer_shapes:
            for numel, bias_bound in ((out * inp, 1.0 / inp), (out, 1.0 / hidden)):
                head = relu_mlp(latent_dim, hidden, numel, depth)
                with torch.no_grad():
                    head[-1].weight.div_(100.0)
                    head[-1].bias.uniform_(-bias_bound, bias_bound)
                heads.append(head)
        self.heads = nn.ModuleList(heads)  # weight 0, bias 0, weight 1, ...: the flat layout's order

    def forward(self, latent: Tensor) -> Tensor:
        return torch.cat([head(latent) for head in self.heads], dim=-1)


class LowRankHyperNetwork(nn.Module):
    """`params = base + coeffs(z) @ basis`: a learned base SIREN and `rank` learned weight-space directions.

    The base starts as a SIREN initialisation; the basis rows start small and random, so at init every
    latent decodes to (nearly) the base SIREN, at SIREN-init scale.
    """

    def __init__(self, latent_dim: int, layer_shapes, *, hidden: int = 256, depth: int = 3, rank: int = 256,
                 w0: float = 30.0):
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
            self.coeffs[-1].weight.div_(10.0)

    def forward(self, latent: Tensor) -> Tensor:
        return self.base + (self.coeffs(latent) @ self.basis) * self.scale  # [B, P]


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
        # siren_forward leaves its last layer linear; the trunk's last layer is a sine layer
        pre = siren_forward(trunk, coords.reshape(1, -1, coords.shape[-1]), w0_first=self.w0_first, w0=self.w0)
        scale = self.w0_first if trunk.depth == 1 else self.w0
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

    def posterior(self, context: Context) -> tuple[Tensor, Tensor]:
        """Mean `[B, Z]` and covariance `[B, Z, Z]` of z given the context's values.

        With `Phi_o` the basis at the valid context values and `r` their difference from the mean,
        `cov = noise (Phi_o^T Phi_o + noise I)^-1` and `mean = cov Phi_o^T r / noise`.
        """
        check_context(context, "BasisHyperNetwork.posterior")
        features = self.features(context.coords)  # [B, M, H]
        valid = context.mask.unsqueeze(-1).to(features.dtype)  # [B, M, 1]
        residual = ((context.values - self.mean(features)) * valid).flatten(1)  # [B, M C]
        phi = (self.basis(features) * valid.unsqueeze(-1)).flatten(1, 2)  # [B, M C, Z]
        noise = self.noise
        eye = torch.eye(phi.shape[-1], dtype=phi.dtype, device=phi.device)
        chol = torch.linalg.cholesky(phi.mT @ phi + noise * eye)
        mean = torch.cholesky_solve((phi.mT @ residual.unsqueeze(-1)), chol).squeeze(-1)
        return mean, noise * torch.cholesky_inverse(chol)

    def initialise(self, coords: Tensor, values: Tensor, *, steps: int, lr: float = 1e-4) -> dict:
        """Start from probabilistic PCA of a collection of signals on a shared grid, represented by the SIREN.

        `coords [P, D]`, `values [N, P, C]`. The top `latent_dim` principal components, each scaled by
        `sqrt(eigenvalue - noise)`, and the mean signal become the targets of `steps` Adam steps on the
        trunk and last layers (squared error summed over the mean and components, averaged over points);
        the noise is PPCA's (the mean discarded eigenvalue) plus what the fit leaves per value.
        Returns `{"ppca_noise", "fit_error", "noise"}`.
        """
        latent_dim, dims, channels = self.basis_weight.shape[0], self.layer_shapes[0][1], self.layer_shapes[-1][0]
        if coords.dim() != 2 or values.dim() != 3 or coords.shape != (values.shape[1], dims) \
                or values.shape[2] != channels:
            raise ValueError(f"BasisHyperNetwork.initialise: expected coords [P, {dims}] and values [N, P, {channels}], "
                             f"got {tuple(coords.shape)} and {tuple(values.shape)}")
        n, points, _ = values.shape
        if latent_dim >= min(n - 1, points * channels):
            raise ValueError(f"BasisHyperNetwork.initialise: {latent_dim} components need more than {n} signals "
                             f"of {points * channels} values")
        with torch.no_grad():
            eigenvalues, vectors, mean, total = _principal_components(values.reshape(n, -1), latent_dim)
            ppca_noise = float((total - eigenvalues.sum()) / (points * channels - latent_dim))
            components = vectors * (eigenvalues - ppca_noise).clamp_min(0).sqrt()  # [P C, Z]
            target_mean = mean.reshape(points, channels).to(values.dtype)
            target_basis = components.reshape(points, channels, latent_dim).to(values.dtype)
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
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


def _principal_components(flat: Tensor, count: int, chunk: int = 4096) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top `count` eigenvalues `[K]` and eigenvectors `[D, K]` of the sample covariance of `flat [N, D]`,
    its mean `[D]` and total variance, in float64. With fewer signals than values the eigenvectors come
    from the `N x N` Gram matrix; otherwise the `D x D` covariance is accumulated `chunk` signals at a
    time, so memory stays at one chunk in float64 however many signals there are."""
    n, dim = flat.shape
    mean = flat.double().mean(0)
    if n < dim:
        centred = flat.double() - mean
        eigenvalues, vectors = torch.linalg.eigh(centred @ centred.T)
        eigenvalues, vectors = eigenvalues.flip(0)[:count], vectors.flip(1)[:, :count]
        vectors = centred.T @ vectors / eigenvalues.clamp_min(1e-12).sqrt()
        total = centred.square().sum()
    else:
        scatter = torch.zeros(dim, dim, dtype=torch.float64, device=flat.device)
        for part in flat.split(chunk):
            centred = part.double() - mean
            scatter.addmm_(centred.T, centred)
        eigenvalues, vectors = torch.linalg.eigh(scatter)
        eigenvalues, vectors = eigenvalues.flip(0)[:count], vectors.flip(1)[:, :count]
        total = scatter.diagonal().sum()
    return eigenvalues / (n - 1), vectors, mean, total / (n - 1)


class HyperSiren(nn.Module):
    """Set encoder + hypernetwork -> a SIREN per sample. See the module docstring."""

    def __init__(self, config: HyperSirenConfig = HyperSirenConfig()):
        super().__init__()
        self.config = config
        c = config
        self.encoder = SetEncoder(c.coord_dim + c.value_dim, c.latent_dim, hidden_dim=c.encoder_hidden,
                                  depth=c.encoder_depth, w0=c.w0) if c.encoder == "set" else None
        if c.heads == "per_tensor":
            self.hypernet = PerTensorHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden, depth=c.head_depth)
        elif c.heads == "low_rank":
            self.hypernet = LowRankHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden,
                                                depth=c.head_depth, rank=c.rank, w0=c.w0)
        else:
            self.hypernet = BasisHyperNetwork(c.latent_dim, c.layer_shapes, w0_first=c.w0_first, w0=c.w0)

    def encode(self, context: Context) -> Tensor:
        """Context points -> latent `[B, Z]` (for `encoder="posterior"`, the posterior mean)."""
        if self.encoder is None:
            return self.hypernet.posterior(context)[0]
        return self.encoder(context)

    def decode(self, latent: Tensor) -> SirenParams:
        """Latent `[B, Z]` -> per-sample SIREN weights."""
        if latent.dim() != 2 or latent.shape[-1] != self.config.latent_dim:
            raise ValueError(f"HyperSiren.decode: expected latent [B, {self.config.latent_dim}], got {tuple(latent.shape)}")
        if isinstance(self.hypernet, BasisHyperNetwork):
            return self.hypernet.params(latent)
        return SirenParams.unflatten(self.hypernet(latent), self.config.layer_shapes)

    def render(self, params: SirenParams, coords: Tensor) -> Tensor:
        """Evaluate predicted SIRENs at query coordinates `[B, N, D]` -> `[B, N, C]`."""
        return siren_forward(params, coords, w0_first=self.config.w0_first, w0=self.config.w0)

    def uncertainty(self, context: Context, coords: Tensor, *, chunk: int = 4096) -> Tensor:
        """Posterior standard deviation of the predicted SIRENs' outputs at query `coords [B, N, D]`
        given the context, `[B, N, C]` in value units: how far the completion may be off where nothing is
        known. Needs `encoder="posterior"` (a Gaussian posterior over z); the value noise is not included."""
        if self.encoder is not None:
            raise ValueError(f"HyperSiren.uncertainty: needs encoder='posterior' (a posterior over the latent), "
                             f"this prior has encoder={self.config.encoder!r}")
        _, cov = self.hypernet.posterior(context)  # [B, Z, Z]
        parts = []
        for part in coords.split(chunk, dim=1):
            phi = self.hypernet.basis(self.hypernet.features(part))  # [B, n, C, Z]
            parts.append(((phi @ cov.unsqueeze(1)) * phi).sum(-1).clamp_min(0).sqrt())
        return torch.cat(parts, dim=1)

    def forward(self, context: Context, coords: Tensor) -> Prediction:
        latent = self.encode(context)
        params = self.decode(latent)
        return Prediction(self.render(params, coords), params, latent)


class PriorLoss(NamedTuple):
    total: Tensor
    mse: Tensor  # mean squared error over all query points and channels
    latent: Tensor  # mean(z^2)
    params: Tensor  # mean(predicted SIREN params^2)


def prior_loss(pred: Prediction, target: Tensor, *, latent_weight: float = 0.1, param_weight: float = 100.0) -> PriorLoss:
    """The reference three-term loss: `mse + latent_weight * mean(z^2) + param_weight * mean(params^2)`.

    `target [B, N, C]` in the units of `pred.values` (the reference trains in [-1, 1]).
    """
    if target.shape != pred.values.shape:
        raise ValueError(f"prior_loss: expected target {tuple(pred.values.shape)} like the prediction, got {tuple(target.shape)}")
    mse = (pred.values - target).square().mean()
    latent = pred.latent.square().mean()
    params = pred.params.flatten().square().mean()
    return PriorLoss(mse + latent_weight * latent + param_weight * params, mse, latent, params)
