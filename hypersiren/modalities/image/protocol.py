"""The image modality's evaluation: the paper's inpainting protocol and the classical baselines.

Protocol (the paper's): for each context size — exactly k in {10, 100, 1000} distinct random pixels,
`half` (the top half of the image, the first N/2 pixels in row-major order) and `full` (every pixel)
— predict every pixel of every test image. Scores, per image over all pixels and channels in [0, 1]
units after clipping, then averaged over images:

- `mse`: the raw prediction at every pixel, context pixels included (the paper's number);
- `mse_completed`: the image a user gets, with the known context pixels kept as they are;
- `psnr`: the mean over images of `10 log10(1 / mse)` of each image's raw prediction.

A predictor is any callable `(context, coords [B, N, 2]) -> values [B, N, C]`, values in [-1, 1]:
a trained prior or the Conditional Neural Process baseline (`hypersiren.prior.model_predictor`, with
refinement `refined_predictor`), the mean training image, or interpolation of the context pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...coords import grid_index, image_to_points, points_to_image
from ...metrics import per_signal_psnr, to_signed, to_unit
from ...prior.context import fixed_context, prefix_context
from ...prior.modality import Predictor
from ...prior.types import Context
from .figures import completion_grid, context_image

CONTEXT_SIZES = ("10", "100", "1000", "half", "full")


def make_context(name: str, coords: Tensor, values: Tensor, generator: torch.Generator) -> Context:
    n = coords.shape[1]
    if name == "half":
        return prefix_context(coords, values, n // 2)
    if name == "full":
        return prefix_context(coords, values, n)
    return fixed_context(coords, values, int(name), generator=generator)


def evaluate(predict: Predictor, images: Tensor, *, sizes=CONTEXT_SIZES, seed: int = 0, batch_size: int = 100) -> dict:
    """Score a predictor on images `[N, H, W, C]` in [0, 1]. Returns `{"mse": {size: ..}, "psnr": .., "mse_completed": ..}`."""
    if images.dim() != 4:
        raise ValueError(f"evaluate: expected images [N, H, W, C] in [0, 1], got {tuple(images.shape)}")
    height, width = images.shape[1:3]
    results: dict[str, dict[str, float]] = {"mse": {}, "psnr": {}, "mse_completed": {}}
    for size in sizes:
        if size not in ("half", "full") and int(size) > height * width:
            raise ValueError(f"evaluate: context size {size} exceeds the {height * width} pixels of a {height}x{width} image")
        generator = torch.Generator().manual_seed(seed)  # the same context pixels for every predictor
        raw, completed = [], []
        for start in range(0, images.shape[0], batch_size):
            coords, truth = image_to_points(images[start : start + batch_size])  # truth in [0, 1]
            context = make_context(size, coords, to_signed(truth), generator)
            with torch.no_grad():
                pred = to_unit(predict(context, coords)).clamp(0, 1)
            raw.append((pred - truth).square().mean(dim=(1, 2)))
            filled = pred.clone()
            index = grid_index(context.coords, (height, width)).unsqueeze(-1).expand(-1, -1, truth.shape[-1])
            filled.scatter_(1, index, to_unit(context.values))
            completed.append((filled - truth).square().mean(dim=(1, 2)))
        raw_mse, completed_mse = torch.cat(raw), torch.cat(completed)
        results["mse"][size] = raw_mse.mean().item()
        results["mse_completed"][size] = completed_mse.mean().item()
        results["psnr"][size] = per_signal_psnr(raw_mse).mean().item()
    return results


def mean_image_predictor(train_images: Tensor) -> Predictor:
    """Ignores the context: predicts the mean training image (of images in memory, or `StoredImages`)."""
    mean_image = train_images.mean_image() if hasattr(train_images, "mean_image") else train_images.mean(0, keepdim=True)
    _, mean = image_to_points(to_signed(mean_image))  # [1, N, C]
    return lambda context, coords: mean.expand(coords.shape[0], -1, -1)


def interpolation_predictor() -> Predictor:
    """Scattered-data interpolation of the context pixels: linear inside their convex hull, nearest outside."""
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    def predict(context: Context, coords: Tensor) -> Tensor:
        out = []
        for b in range(coords.shape[0]):
            keep = context.mask[b]
            points = context.coords[b][keep].double().cpu().numpy()
            values = context.values[b][keep].double().cpu().numpy()
            query = coords[b].double().cpu().numpy()
            nearest = griddata(points, values, query, method="nearest")
            if len(points) >= 3:
                try:
                    linear = griddata(points, values, query, method="linear")
                    nearest = np.where(np.isnan(linear), nearest, linear)
                except QhullError:  # collinear context pixels have no 2-D hull: nearest everywhere
                    pass
            out.append(torch.from_numpy(nearest).to(device=coords.device, dtype=coords.dtype))
        return torch.stack(out)

    return predict


def preview_grid(predict: Predictor, images: Tensor, *, context_points: int = 100, seed: int = 0,
                 scale: int = 1) -> Tensor:
    """Inpaint `images [K, H, W, C]` (in [0, 1]) from `context_points` random pixels each (drawn from
    `seed`) and draw rows context / prediction / truth -> one image `[H', W', 3]` in [0, 1]
    (`figures.completion_grid`)."""
    if images.dim() != 4:
        raise ValueError(f"preview_grid: expected images [K, H, W, C] in [0, 1], got {tuple(images.shape)}")
    height, width = images.shape[1:3]
    coords, truth = image_to_points(images)
    context = fixed_context(coords, to_signed(truth), min(context_points, height * width),
                            generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        pred = to_unit(predict(context, coords)).clamp(0, 1)
    known = context_image(context.coords, context.values, context.mask, height, width)
    return completion_grid(known, points_to_image(pred, height, width), images, scale=scale)


def _cell(value: float, metric: str) -> str:
    """PSNR to 0.01 dB; an MSE to 5 decimals, or to 3 significant digits between 1e-9 and 0.001 (1000-pixel contexts)."""
    if metric == "psnr":
        return f"{value:.2f}"
    return f"{value:.5f}" if value >= 1e-3 or value < 1e-9 else f"{value:.3g}"


def markdown_table(rows: dict[str, dict], metric: str = "mse", sizes=CONTEXT_SIZES) -> str:
    """`rows = {method: evaluate(...) result}` -> a markdown table of one metric."""
    lines = ["| method | " + " | ".join(f"{s} px" if s.isdigit() else s for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for method, result in rows.items():
        cells = [_cell(result[metric][s], metric) for s in sizes]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

