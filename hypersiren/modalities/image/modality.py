"""Images as a modality of the prior machinery: `ImageModality` (registered as "image").

Training draws, per step, `batch_size` images with replacement, a context of `min_context..max_context`
random pixels each (`sample_context`) and every pixel (or `query_points` random ones) as queries; the
supervised loss is the MSE of the predicted values in [-1, 1] units (`value_mse`), and the step metrics
report its PSNR in [0, 1] units. The basis prior's start sees every training image on the pixel grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from ...coords import image_to_points
from ...metrics import mse_to_psnr, signed_mse_to_unit, to_signed
from ...prior.context import fixed_context, sample_context
from ...prior.losses import SupervisedLoss, value_mse
from ...prior.modality import START_CHUNK, Batch, Modality, Predictor, register_modality
from ...prior.types import Context
from .data import ImageData, StoredImages, load_split
from .protocol import (CONTEXT_SIZES, evaluate, interpolation_predictor, markdown_table, mean_image_predictor,
                       preview_grid)


class ImageTrainingSet(NamedTuple):
    coords: Tensor  # [1, P, 2] pixel centres, shared by every image, on the training device
    values: Tensor | StoredImages  # [N, P, C] in [-1, 1]; or the images [N, R, R, C] left on disk, read per batch


@register_modality
class ImageModality(Modality):
    name = "image"
    data_type = ImageData
    coord_dim = 2

    def load(self, split: str = "train") -> Tensor:
        return load_split(self.data, split)

    def value_dim(self, signals: Tensor) -> int:
        self._check_images(signals, "ImageModality")
        return signals.shape[-1]

    def prepare(self, signals: Tensor | StoredImages, train_config, device: torch.device) -> ImageTrainingSet:
        self._check_images(signals, "ImageModality")
        pixels = signals.shape[1] * signals.shape[2]
        if train_config.max_context > pixels:
            raise ValueError(f"ImageModality: max_context={train_config.max_context} exceeds the {pixels} pixels "
                             "per image")
        if isinstance(signals, StoredImages):  # left on disk: the pixel grid now, the values per batch
            coords, _ = image_to_points(torch.zeros(1, *signals.shape[1:], device=device))
            return ImageTrainingSet(coords, signals.to(device))
        coords, values = image_to_points(to_signed(signals.to(device)))
        return ImageTrainingSet(coords[:1], values)

    def streams(self, train_set: ImageTrainingSet) -> bool:
        return isinstance(train_set.values, StoredImages)

    def sample_batch(self, train_set: ImageTrainingSet, batch_size: int, train_config,
                     generator: torch.Generator) -> Batch:
        c = train_config
        index = torch.randint(0, train_set.values.shape[0], (batch_size,), generator=generator)
        values = self._values(train_set, index)  # [B, P, C]
        coords = train_set.coords.expand(batch_size, -1, -1)
        context = sample_context(coords, values, max_points=c.max_context, min_points=c.min_context,
                                 generator=generator)
        if c.query_points is not None and c.query_points < coords.shape[1]:
            coords, values, _, _ = fixed_context(coords, values, c.query_points, generator=generator)
        return Batch(context, coords, values)

    def loss(self, model, batch: Batch) -> SupervisedLoss:
        prediction = model(batch.context, batch.coords)
        mse = value_mse(prediction, batch.values)
        return SupervisedLoss(prediction, mse, {"mse": mse})

    def step_metrics(self, terms: dict[str, float]) -> dict[str, float]:
        return {"psnr": mse_to_psnr(signed_mse_to_unit(terms["mse"]))} if "mse" in terms else {}

    def start_targets(self, train_set: ImageTrainingSet) -> tuple[Tensor, Tensor]:
        if self.streams(train_set):  # every image read into memory: `start_chunks` is the trainer's route here
            return train_set.coords[0], torch.cat(list(self.start_chunks(train_set)[1]))
        return train_set.coords[0], train_set.values

    def start_chunks(self, train_set: ImageTrainingSet, *, rows: slice = slice(None),
                     chunk: int = START_CHUNK) -> tuple[Tensor, Iterator[Tensor]]:
        if not self.streams(train_set):
            return super().start_chunks(train_set, rows=rows, chunk=chunk)
        return train_set.coords[0], (image_to_points(to_signed(part))[1] for part in train_set.values.chunks(rows, chunk))

    @staticmethod
    def _values(train_set: ImageTrainingSet, index: Tensor) -> Tensor:
        """The training values `[B, P, C]` of the images `index`, read from disk when they are stored there."""
        if isinstance(train_set.values, StoredImages):  # read onto the training device (`prepare`)
            return image_to_points(to_signed(train_set.values[index]))[1]
        return train_set.values[index.to(train_set.values.device)]

    def preview(self, predict: Predictor, signals: Tensor, *, context_points: int = 100, seed: int = 0) -> Tensor:
        scale = max(1, 128 // max(signals.shape[1:3]))  # panels of about 128 pixels
        return preview_grid(predict, signals, context_points=context_points, seed=seed, scale=scale)

    def evaluate(self, predict: Predictor, signals: Tensor, *, seed: int = 0) -> dict:
        pixels = signals.shape[1] * signals.shape[2]
        sizes = [s for s in CONTEXT_SIZES if s in ("half", "full") or int(s) <= pixels]
        return evaluate(predict, signals, sizes=sizes, seed=seed)

    def baselines(self, train_signals: Tensor) -> dict[str, Predictor]:
        return {"mean image": mean_image_predictor(train_signals), "interpolation": interpolation_predictor()}

    def report(self, results: dict[str, dict]) -> str:
        sizes = list(next(iter(results.values()))["mse"])
        return "\n\n".join(f"{metric}\n\n{markdown_table(results, metric, sizes)}"
                           for metric in ("mse", "mse_completed", "psnr"))

    def residual_correction(self, context: Context, residuals: Tensor, coords: Tensor) -> Tensor:
        """Residuals at the context pixels, interpolated linearly inside their hull, nearest outside."""
        return interpolation_predictor()(Context(context.coords, residuals, context.mask), coords)

    def latent_prior(self, model):
        from .latent import ImagePrior

        return ImagePrior(model, resolution=self.data.resolution, modality=self)

    @staticmethod
    def _check_images(signals: Tensor | StoredImages, where: str) -> None:
        if not isinstance(signals, (Tensor, StoredImages)):
            raise TypeError(f"{where}: expected images as a tensor [N, H, W, C], got {type(signals).__name__}")
        if signals.dim() != 4 or signals.shape[-1] not in (1, 3):
            raise ValueError(f"{where}: expected images [N, H, W, C] with C = 1 or 3 in [0, 1], "
                             f"got {tuple(signals.shape)}")
