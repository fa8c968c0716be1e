"""The image modality's named presets: the paper's recipe next to the project's own, and the CNP baseline's.

Every preset trains on `ImageData()` (the packaged faces at 32x32) unless `--data` / `--set data.*` say
otherwise; the value dimension follows the images.
"""

from __future__ import annotations

from ...prior.cnp import CNPConfig
from ...prior.model import HyperSirenConfig
from ...prior.presets import Preset, register_presets
from ...prior.training import TrainConfig
from .data import ImageData

IMAGE_PRESETS: dict[str, Preset] = {
    # The reference architecture and recipe (sine set encoder, one ReLU head per SIREN tensor,
    # latent 256, three-term loss, Adam 5e-5, batch 100, clipping 1.0, 10..200 of 200 context pixels).
    "celeba32_paper": Preset(
        "image", ImageData(),
        HyperSirenConfig(heads="per_tensor"),
        TrainConfig(steps=650_000, batch_size=100, lr=5e-5, clip_grad_norm=1.0, latent_weight=0.1,
                    param_weight=100.0, min_context=10, max_context=200),
    ),
    # The project's design: a SIREN whose last layer is linear in a 256-d latent (mean + 256 basis
    # functions, shared hidden layers), fitted to the probabilistic PCA of the training images
    # (3,000 Adam steps on the full grid, about 2 minutes here), and exact Bayesian inference of the
    # latent from the context (encoder "posterior"). No further steps by default: 140 end-to-end steps on
    # the posterior's prediction error at lr 1e-5 measured slightly worse on held-out faces (mse at
    # 10 / 100 / 1000 px 0.0276 / 0.0068 / 0.0014 vs 0.0275 / 0.0065 / 0.0013); `--steps N` still runs them.
    "celeba32": Preset(
        "image", ImageData(),
        HyperSirenConfig(heads="basis", encoder="posterior", latent_dim=256),
        TrainConfig(steps=0, batch_size=100, lr=1e-5, clip_grad_norm=1.0, latent_weight=0.0, param_weight=0.0,
                    min_context=10, max_context=200, query_points=256, init_steps=3000, init_lr=1e-4),
    ),
    # The project's design at 64x64: `celeba32`'s model and start on 64x64 images (12,288 values per image;
    # the start's 3,000 steps fit the SIREN to the mean and 256 components on all 4,096 pixels: about 4
    # minutes here). On faces 3,000-3,499 of the shared training file held out of the first 3,000: mse
    # 0.034 / 0.013 / 0.005 at 10 / 100 / 1000 px, against interpolation's 0.066 / 0.019 / 0.004.
    "celeba64": Preset(
        "image", ImageData(resolution=64),
        HyperSirenConfig(heads="basis", encoder="posterior", latent_dim=256),
        TrainConfig(steps=0, batch_size=100, lr=1e-5, clip_grad_norm=1.0, latent_weight=0.0, param_weight=0.0,
                    min_context=10, max_context=200, query_points=256, init_steps=3000, init_lr=1e-4),
    ),
    # The previous project design, kept for comparison: a learned base SIREN plus a rank-64 latent
    # offset instead of 52 M parameters of per-tensor heads, and a loss on 256 random pixels per image
    # per step instead of all 1024 (a quarter of the activation memory).
    "celeba32_low_rank": Preset(
        "image", ImageData(),
        HyperSirenConfig(heads="low_rank", rank=64),
        TrainConfig(steps=650_000, batch_size=100, lr=1e-4, clip_grad_norm=1.0, latent_weight=0.1,
                    param_weight=0.0, min_context=10, max_context=200, query_points=256),
    ),
    # The project's design (as `celeba32`) at the scale of the packaged faces, the README's demo: 32
    # basis functions (80 training faces), a 64-wide SIREN of 4 layers at w0 = 10, 500 start steps at
    # lr 1e-3 (seconds). On the 20 held-out faces: mse 0.0169 / 0.0085 / 0.0060 at 10 / 100 / 1000 px,
    # against `tiny`'s 0.023 / 0.017 / 0.017 after 2,000 steps; w0 = 30 measured 0.0170 / 0.0087 / 0.0062.
    "faces": Preset(
        "image", ImageData(),
        HyperSirenConfig(heads="basis", encoder="posterior", latent_dim=32, siren_hidden=64, siren_depth=4,
                         w0_first=10.0, w0=10.0),
        TrainConfig(steps=0, batch_size=32, lr=1e-5, clip_grad_norm=1.0, latent_weight=0.0, param_weight=0.0,
                    min_context=10, max_context=200, init_steps=500, init_lr=1e-3, checkpoint_every_s=120.0),
    ),
    # A small low-rank prior, the previous demo (about 2 minutes on the packaged faces); the tests use
    # it. w0 = 10 and lr 3e-4 measured better on 20 held-out faces than w0 = 30 / lr 1e-3 (mse at
    # 10 px 0.023 vs 0.029).
    "tiny": Preset(
        "image", ImageData(),
        HyperSirenConfig(latent_dim=64, encoder_hidden=64, encoder_depth=3, siren_hidden=64, siren_depth=4,
                         w0_first=10.0, w0=10.0, heads="low_rank", head_hidden=128, rank=64),
        TrainConfig(steps=2000, batch_size=32, lr=3e-4, clip_grad_norm=1.0, latent_weight=0.0,
                    param_weight=0.0, min_context=10, max_context=200, checkpoint_every_s=120.0),
    ),
    # The paper's comparison row: a Conditional Neural Process (Garnelo et al. 2018) as in the authors'
    # image-completion code (ReLU MLPs of width 128, encoder 4 and decoder 5 linear layers, Gaussian NLL
    # with std >= 0.1, Adam 1e-4, no clipping), on the prior's data, batch and context sampling.
    "cnp": Preset(
        "image", ImageData(),
        CNPConfig(),
        TrainConfig(steps=650_000, batch_size=100, lr=1e-4, clip_grad_norm=None, latent_weight=0.0,
                    param_weight=0.0, min_context=10, max_context=200),
    ),
    # The CNP with the `tiny` prior's budget (2,000 steps, batch, context), for the README's faces demo.
    # lr 1e-3 measured better than 1e-4 after 100 steps on 80 faces (mse on 20 held out at 10 px:
    # 0.029 vs 0.033); not checked at the full 2000 steps.
    "cnp_tiny": Preset(
        "image", ImageData(),
        CNPConfig(),
        TrainConfig(steps=2000, batch_size=32, lr=1e-3, clip_grad_norm=None, latent_weight=0.0,
                    param_weight=0.0, min_context=10, max_context=200, checkpoint_every_s=120.0),
    ),
}

register_presets(IMAGE_PRESETS)
