"""Shapes as a modality of the prior machinery (training side): `ShapeModality`.

Signals are oriented point clouds `[S, P, 6]` in the unit sphere (`data.py`). A training step draws
`batch_size` shapes with replacement; per shape a context of `min_context..max_context` surface points
with their normals (the `Context` observes `f(x) = 0` and `grad f(x) = n` there), `query_points` other
surface points with normals and as many off-surface points uniform in `[-1, 1]^3`. The supervised loss is
the SIREN paper's SDF loss (`hypersiren.geometry.sdf_loss`) of each shape's own predicted SIREN, with
closed-form derivatives. A basis prior starts from the probabilistic PCA of every training shape's
approximate signed distances (`geometry.oriented_point_sdf`) at one shared set of points.

Evaluation is the completion protocol (`protocol.py`: meshes by marching cubes, Chamfer-L1, normal
consistency, F-score); previews render context points, the completed surface and the truth.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ...geometry import SdfBatch, SdfLossConfig, oriented_point_sdf, sdf_loss
from ...prior.context import fixed_context, sample_context
from ...prior.losses import SupervisedLoss
from ...prior.modality import START_CHUNK, Modality, Predictor, register_modality
from ...prior.types import Context, Prediction
from .data import ShapeData, load_split
from .figures import completion_figure, completion_row
from .protocol import (CONTEXT_SIZES, complete_mesh, draw_context, evaluate_shapes, markdown_tables,
                       predictor_completer)

PREVIEW_SHAPES = 3  # shapes in a TensorBoard preview
PREVIEW_RESOLUTION = 64  # marching-cubes grid of the previews' meshes

START_POINTS = 8192  # shared points (uniform in [-1, 1]^3) at which the PCA start sees every training shape
NEAR_SURFACE = (0.01, 0.03, 0.1)  # noise scales of the start's near-surface points
DEFAULT_QUERIES = 2048  # surface and off-surface points per shape per step when query_points is None


class ShapeTrainingSet(NamedTuple):
    points: Tensor  # [S, P, 3] surface points
    normals: Tensor  # [S, P, 3] unit outward normals


class ShapeBatch(NamedTuple):
    context: Context  # coords [B, M, 3], values 0 [B, M, 1], mask [B, M], normals [B, M, 3]
    surface: Tensor  # [B, Q, 3] surface points the loss sees
    normals: Tensor  # [B, Q, 3] their normals
    off_surface: Tensor  # [B, Q, 3] uniform in [-1, 1]^3


@register_modality
class ShapeModality(Modality):
    name = "shape"
    data_type = ShapeData
    coord_dim = 3
    sdf = SdfLossConfig()  # the SIREN paper's weights

    def load(self, split: str = "train") -> Tensor:
        return load_split(self.data, split)

    def value_dim(self, signals: Tensor) -> int:
        self._check_shapes(signals)
        return 1

    def prepare(self, signals: Tensor, train_config, device: torch.device) -> ShapeTrainingSet:
        self._check_shapes(signals)
        if train_config.max_context > signals.shape[1]:
            raise ValueError(f"ShapeModality: max_context={train_config.max_context} exceeds the {signals.shape[1]} "
                             "points per shape")
        signals = signals.to(device)
        return ShapeTrainingSet(signals[..., :3], signals[..., 3:])

    def sample_batch(self, train_set: ShapeTrainingSet, batch_size: int, train_config,
                     generator: torch.Generator) -> ShapeBatch:
        c = train_config
        count, points = train_set.points.shape[:2]
        index = torch.randint(0, count, (batch_size,), generator=generator).to(train_set.points.device)
        surface, normals = train_set.points[index], train_set.normals[index]  # [B, P, 3]
        drawn = sample_context(surface, normals, max_points=c.max_context, min_points=c.min_context,
                               generator=generator)
        context = Context(drawn.coords, drawn.coords.new_zeros(*drawn.coords.shape[:2], 1), drawn.mask, drawn.values)
        queries = min(points, DEFAULT_QUERIES if c.query_points is None else c.query_points)
        if queries < points:
            surface, normals, _, _ = fixed_context(surface, normals, queries, generator=generator)
        off_surface = (torch.rand(batch_size, queries, 3, generator=generator) * 2 - 1).to(surface)
        return ShapeBatch(context, surface, normals, off_surface)

    def loss(self, model, batch: ShapeBatch) -> SupervisedLoss:
        latent = model.encode(batch.context)
        params = model.decode(latent)
        terms = sdf_loss(params, SdfBatch(batch.surface, batch.normals, batch.off_surface),
                         w0_first=model.config.w0_first, w0=model.config.w0, config=self.sdf)
        # no values are predicted at query points here: the loss reads the SIRENs' values and gradients itself
        prediction = Prediction(latent.new_zeros(latent.shape[0], 0, 1), params, latent)
        named = {name: getattr(terms, name).mean() for name in ("surface", "off_surface", "normal", "eikonal")}
        return SupervisedLoss(prediction, terms.total.mean(), named)

    def start_targets(self, train_set: ShapeTrainingSet) -> tuple[Tensor, Tensor]:
        """`START_POINTS` shared points and every training shape's approximate signed distance there
        (`geometry.oriented_point_sdf`): `[Q, 3]`, `[S, Q, 1]`. Half the points are uniform in `[-1, 1]^3`,
        half are surface points of randomly drawn training shapes moved by `NEAR_SURFACE` noise, so the
        start is most accurate where surfaces are. Seeded by the data's seed."""
        queries = self._start_points(train_set)
        return queries, self._signed_distances(train_set, queries, slice(None))

    def start_chunks(self, train_set: ShapeTrainingSet, *, rows: slice = slice(None),
                     chunk: int = START_CHUNK) -> tuple[Tensor, Iterator[Tensor]]:
        """`start_targets`' points and the signed distances of the shapes `rows` there, computed `chunk`
        shapes at a time (among several processes each computes only its own shapes)."""
        queries = self._start_points(train_set)
        shapes = range(train_set.points.shape[0])[rows]
        return queries, (self._signed_distances(train_set, queries, slice(first, min(first + chunk, shapes.stop)))
                         for first in range(shapes.start, shapes.stop, chunk))

    def _start_points(self, train_set: ShapeTrainingSet) -> Tensor:
        """The start's `START_POINTS` shared points `[Q, 3]`, drawn from the data's seed (see `start_targets`)."""
        rng = np.random.default_rng(self.data.seed)
        points = train_set.points.cpu().double().numpy()
        uniform = rng.uniform(-1.0, 1.0, size=(START_POINTS // 2, 3))
        near = points[rng.integers(0, len(points), START_POINTS // 2), rng.integers(0, points.shape[1], START_POINTS // 2)]
        near = near + rng.normal(size=near.shape) * rng.choice(NEAR_SURFACE, size=(len(near), 1))
        queries = np.concatenate([uniform, np.clip(near, -1.0, 1.0)])
        return torch.as_tensor(queries, dtype=train_set.points.dtype, device=train_set.points.device)

    def _signed_distances(self, train_set: ShapeTrainingSet, queries: Tensor, rows: slice) -> Tensor:
        """The approximate signed distances `[n, Q, 1]` of the training shapes `rows` at `queries [Q, 3]`."""
        points, normals = train_set.points[rows].cpu().double().numpy(), train_set.normals[rows].cpu().double().numpy()
        at = queries.cpu().double().numpy()
        values = np.stack([oriented_point_sdf(p, n, at) for p, n in zip(points, normals)])[..., None]
        return torch.as_tensor(values, dtype=queries.dtype, device=queries.device)

    def preview(self, predict: Predictor, signals: Tensor, *, context_points: int = 100, seed: int = 0) -> Tensor:
        """Context points | completed surface | truth for the first `PREVIEW_SHAPES` shapes: `[H, W, 3]`."""
        self._check_shapes(signals)
        rows = []
        for index, shape in enumerate(signals[:PREVIEW_SHAPES]):
            context = draw_context(shape, min(context_points, shape.shape[0]), seed=seed, index=index)
            mesh = complete_mesh(predictor_completer(predict), context, resolution=PREVIEW_RESOLUTION)[0]
            rows.append(completion_row(context.coords[0].cpu().numpy(), mesh, shape[:, :3].cpu().numpy()))
        return completion_figure(rows)

    def evaluate(self, predict: Predictor, signals: Tensor, *, seed: int = 0) -> dict:
        """The completion protocol (`protocol.py`) at `CONTEXT_SIZES` points with normals."""
        self._check_shapes(signals)
        sizes = [m for m in CONTEXT_SIZES if m <= signals.shape[1]]
        return evaluate_shapes(signals, fields={"method": predictor_completer(predict)}, sizes=sizes,
                               seed=seed)["method"]

    def report(self, results: dict[str, dict]) -> str:
        return markdown_tables(results)

    def latent_prior(self, model):
        """The latent tools' adapter (`latent.ShapePrior`): point clouds rendered by marching cubes."""
        from .latent import ShapePrior

        return ShapePrior(model, modality=self)

    @staticmethod
    def _check_shapes(signals: Tensor) -> None:
        if signals.dim() != 3 or signals.shape[-1] != 6 or signals.shape[1] == 0:
            raise ValueError(f"ShapeModality: expected oriented point clouds [S, P, 6] (points, normals), "
                             f"got {tuple(signals.shape)}")
