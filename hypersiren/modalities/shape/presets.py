"""The shape modality's named presets: the reference-style conditional model next to the project's own.

Every preset trains on the generated collection of tori, superquadrics and capsules (128 shapes for
`shapes` and `shapes_paper`, whose 64-d PCA start needs more than 65 training shapes; 64 for
`shapes_tiny`) unless `--data` / `--set data.*` say otherwise, e.g. `--data ../shared/data/modelnet40_person/
modelnet40_person_pc10k.npz` (its own 88 / 20 split). The SIREN predicts one signed distance.
"""

from __future__ import annotations

from ...prior.model import HyperSirenConfig
from ...prior.presets import Preset, register_presets
from ...prior.training import TrainConfig
from .data import ShapeData

SHAPE_PRESETS: dict[str, Preset] = {
    # The reference-style conditional model: a sine set encoder over context points and their normals,
    # one ReLU head per SIREN tensor, latent 256, trained end to end with the SIREN paper's SDF loss
    # (surface value 3e3, off-surface exp(-100|f|) 1e2, normal alignment 1e2, eikonal 5e1) of each
    # shape's own predicted SIREN on 2,048 surface and 2,048 uniform points per shape per step, with
    # 50..1000 context points. Sized for a CPU: a 128-wide SIREN of 4 layers (w0 30), 8 shapes per step.
    "shapes_paper": Preset(
        "shape", ShapeData(count=128),
        HyperSirenConfig(coord_dim=3, value_dim=1, heads="per_tensor", encoder="set", context_normals=True,
                         latent_dim=256, encoder_hidden=256, encoder_depth=4, siren_hidden=128, siren_depth=4,
                         head_hidden=256, head_depth=3),
        TrainConfig(steps=100_000, batch_size=8, lr=5e-5, clip_grad_norm=1.0, latent_weight=0.1, param_weight=0.0,
                    min_context=50, max_context=1000, query_points=2048, checkpoint_every_s=120.0),
    ),
    # The project's design: a SIREN whose last layer is linear in a 64-d latent, started from the
    # probabilistic PCA of the training shapes' signed distances (winding-number signs) at 8,192 shared
    # points, half near the surfaces (1,500 Adam steps at lr 1e-3); the latent is the exact posterior
    # given the context's points (f = 0) and normals (grad f = n). Completion (protocol.py) corrects the
    # prior's SIREN to the context: tangent planes near the points, free space far from them.
    "shapes": Preset(
        "shape", ShapeData(count=128),
        HyperSirenConfig(coord_dim=3, value_dim=1, heads="basis", encoder="posterior", latent_dim=64,
                         siren_hidden=128, siren_depth=4, w0_first=8.0, w0=8.0),
        TrainConfig(steps=0, batch_size=8, lr=1e-5, clip_grad_norm=1.0, latent_weight=0.0, param_weight=0.0,
                    min_context=50, max_context=1000, query_points=2048, init_steps=1500, init_lr=1e-3,
                    checkpoint_every_s=120.0),
    ),
    # `shapes` at the scale of a quick look or a test: 16 basis functions of a 64-wide SIREN, 300 start
    # steps (tens of seconds on the generated collection).
    "shapes_tiny": Preset(
        "shape", ShapeData(),
        HyperSirenConfig(coord_dim=3, value_dim=1, heads="basis", encoder="posterior", latent_dim=16,
                         siren_hidden=64, siren_depth=3, w0_first=8.0, w0=8.0),
        TrainConfig(steps=0, batch_size=8, lr=1e-5, clip_grad_norm=1.0, latent_weight=0.0, param_weight=0.0,
                    min_context=50, max_context=1000, query_points=2048, init_steps=300, init_lr=1e-3,
                    checkpoint_every_s=120.0),
    ),
}

register_presets(SHAPE_PRESETS)
