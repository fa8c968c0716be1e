"""`HyperSiren`: a prior over SIRENs, set encoder -> latent -> hypernetwork -> per-sample SIREN weights.

The model reads a set of context points (`Context`: coordinates and values, with a mask for
padding), infers one latent vector per sample, and predicts from it the full weights of a SIREN,
evaluated at any query coordinates with the batched `siren_forward`. The hypernetwork designs are in
`hypernets.py`; the encoders are `encoder="set"` (`SetEncoder`: the reference's sine MLP and masked
mean) and `encoder="posterior"` (the exact posterior mean of z under a `basis` hypernetwork).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..forward import siren_forward
from ..params import SirenParams, siren_layer_shapes
from ..siren import SirenConfig
from .encoders import SetEncoder
from .hypernets import BasisHyperNetwork, LowRankHyperNetwork, PerTensorHyperNetwork
from .types import Context, Prediction


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
    context_normals: bool = False  # encoder="set": each context point's normal is an input too (shapes)
    head_hidden: int = 256  # width of the hypernetwork's hidden ReLU layers
    head_depth: int = 3  # linear layers per head (per_tensor) or in the coefficient MLP (low_rank)
    rank: int = 256  # low_rank only: number of weight-space directions
    # init constants: per_tensor heads' last layers are Kaiming / head_init_divisor (the reference's 100);
    # low_rank's coefficient MLP's last layer is Kaiming / coeff_init_divisor; basis priors start with
    # this value-noise variance (a data-driven start replaces it)
    head_init_divisor: float = 100.0
    coeff_init_divisor: float = 10.0
    init_noise: float = 1e-2

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
        if self.context_normals and self.encoder != "set":
            raise ValueError("HyperSirenConfig: context_normals=True is for encoder='set' (the posterior reads "
                             f"normals by itself), got encoder={self.encoder!r}")
        if self.encoder == "posterior" and self.heads != "basis":
            raise ValueError(f"HyperSirenConfig: encoder='posterior' needs heads='basis' (a SIREN linear in the "
                             f"latent), got heads={self.heads!r}")
        if self.heads == "basis" and self.siren_depth < 2:
            raise ValueError(f"HyperSirenConfig: heads='basis' needs siren_depth >= 2 (shared hidden layers), "
                             f"got {self.siren_depth}")
        for name in ("w0_first", "w0", "head_init_divisor", "coeff_init_divisor", "init_noise"):
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



class HyperSiren(nn.Module):
    """Set encoder + hypernetwork -> a SIREN per sample. See the module docstring."""

    def __init__(self, config: HyperSirenConfig = HyperSirenConfig()):
        super().__init__()
        self.config = config
        c = config
        inputs = c.coord_dim * (2 if c.context_normals else 1) + c.value_dim
        self.encoder = SetEncoder(inputs, c.latent_dim, hidden_dim=c.encoder_hidden,
                                  depth=c.encoder_depth, w0=c.w0) if c.encoder == "set" else None
        if c.heads == "per_tensor":
            self.hypernet = PerTensorHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden, depth=c.head_depth,
                                                  init_divisor=c.head_init_divisor)
        elif c.heads == "low_rank":
            self.hypernet = LowRankHyperNetwork(c.latent_dim, c.layer_shapes, hidden=c.head_hidden,
                                                depth=c.head_depth, rank=c.rank, w0=c.w0,
                                                init_divisor=c.coeff_init_divisor)
        else:
            self.hypernet = BasisHyperNetwork(c.latent_dim, c.layer_shapes, w0_first=c.w0_first, w0=c.w0,
                                              noise=c.init_noise)

    def encode(self, context: Context) -> Tensor:
        """Context points -> latent `[B, Z]` (for `encoder="posterior"`, the posterior mean)."""
        if self.config.encoder == "posterior":
            return self.hypernet.posterior(context)[0]
        if self.config.context_normals:
            if context.normals is None:
                raise ValueError("HyperSiren.encode: this prior's encoder reads context normals "
                                 "(context_normals=True), but the context has none")
            context = Context(context.coords, torch.cat([context.values, context.normals], dim=-1), context.mask)
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
        if self.config.encoder != "posterior":
            raise ValueError(f"HyperSiren.uncertainty: needs encoder='posterior' (a posterior over the latent), "
                             f"this prior has encoder={self.config.encoder!r}")
        _, cov = self.hypernet.posterior(context)  # [B, Z, Z]
        parts = []
        for part in coords.split(chunk, dim=1):
            phi = self.hypernet.basis(self.hypernet.features(part))  # [B, n, C, Z]
            flat = phi.flatten(1, 2)  # [B, n C, Z]: one bmm with cov, memory O(B n C Z)
            variance = (torch.bmm(flat, cov) * flat).sum(-1)  # [B, n C]
            parts.append(variance.clamp_min(0).sqrt().unflatten(1, phi.shape[1:3]))
        return torch.cat(parts, dim=1)

    def forward(self, context: Context, coords: Tensor) -> Prediction:
        latent = self.encode(context)
        params = self.decode(latent)
        return Prediction(self.render(params, coords), params, latent)


