"""What a kind of signal (a *modality*) tells the generic prior machinery, and the registry of modalities.

The trainer, the evaluation command, refinement and the latent tools never look inside a signal: they
ask its `Modality`. A modality is built from its typed data configuration (a frozen dataclass deriving
from `DataConfig`) and provides:

- data: `load(split)` -> the stored signals (`[N, ...]`, the modality's own layout and units),
  `value_dim(signals)`, and `prepare(signals, train_config, device)` -> the training set in model units;
- training: `sample_batch(train_set, batch_size, train_config, generator)` -> a `Batch` (a context and
  query points with their supervision), `loss(model, batch)` -> `SupervisedLoss` computed with the
  per-sample predicted SIRENs, `step_metrics(terms)` (e.g. PSNR in stored units), `start_targets(train_set)`
  (the signals on one shared set of points, for a basis prior's PCA start; `start_chunks` streams them in
  chunks, a share of the signals at a time, by default cut from `start_targets`) and `preview(predict, signals)`
  (a picture for TensorBoard);
- evaluation: `evaluate(predict, signals, seed=)`, `baselines(train_signals)`, `report(results)`, and
  `residual_correction(context, residuals, coords)` for refinement;
- latent tools: `latent_prior(model)` -> a `hypersiren.latent.LatentPrior` adapter.

A new modality subclasses `Modality`, sets `name`, `data_type` and `coord_dim`, and registers itself with
`@register_modality`; nothing generic changes. Checkpoints store `modality` and `data` (the data config
as a dict), so a checkpoint alone rebuilds its modality (`modality_from_state`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, NamedTuple

import torch
from torch import Tensor

from .types import Context

Predictor = Callable[[Context, Tensor], Tensor]  # (context, query coords [B, N, D]) -> values [B, N, C]
SPLITS = ("train", "heldout", "all")
START_CHUNK = 256  # signals per chunk of a basis prior's streamed PCA start (`Modality.start_chunks`)


@dataclass(frozen=True)
class DataConfig:
    """Where a run's signals come from. Modalities extend it with their own fields (resolution, ...)."""

    source: str = ""  # a file, a folder or a named collection; the modality says which
    holdout: int = 0  # the last `holdout` signals of the source are kept out of training
    limit: int | None = None  # only the first `limit` signals of the source; None: all

    def __post_init__(self):
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"{type(self).__name__}: source must be a non-empty string, got {self.source!r}")
        if not isinstance(self.holdout, int) or self.holdout < 0:
            raise ValueError(f"{type(self).__name__}: holdout must be an int >= 0, got {self.holdout!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"{type(self).__name__}: limit must be a positive int or None, got {self.limit!r}")


class Batch(NamedTuple):
    """One training step's draw: a context per signal and query points with their target values."""

    context: Context
    coords: Tensor  # [B, N, D] query points
    values: Tensor  # [B, N, C] target values at the query points, model units


def split_signals(signals: Tensor, holdout: int, split: str) -> Tensor:
    """The `train` (all but the last `holdout`), `heldout` (the last `holdout`, or all signals when none
    are held out) or `all` part of a collection `[N, ...]`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    count = signals.shape[0]
    if not 0 <= holdout < count:
        raise ValueError(f"holdout={holdout} must leave at least one of the {count} signals for training")
    if split == "train":
        return signals[: count - holdout]
    if split == "heldout":
        return signals[count - holdout :] if holdout else signals
    return signals


class Modality:
    """Base class of a kind of signal; see the module docstring for what a subclass provides."""

    name: ClassVar[str] = ""
    data_type: ClassVar[type[DataConfig]] = DataConfig
    coord_dim: ClassVar[int] = 0

    def __init__(self, data: DataConfig):
        if not isinstance(data, self.data_type):
            raise TypeError(f"{type(self).__name__}: expected data of type {self.data_type.__name__}, "
                            f"got {type(data).__name__}")
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data})"

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this modality: `{"modality": name, "data": {...}}`."""
        return {"modality": self.name, "data": dataclasses.asdict(self.data)}

    def _missing(self, what: str):
        return NotImplementedError(f"the {self.name!r} modality does not provide {what}")

    # data
    def load(self, split: str = "train") -> Tensor:
        raise self._missing("load")

    def value_dim(self, signals: Tensor) -> int:
        raise self._missing("value_dim")

    def prepare(self, signals: Tensor, train_config, device: torch.device) -> Any:
        raise self._missing("prepare")

    # training
    def sample_batch(self, train_set: Any, batch_size: int, train_config, generator: torch.Generator) -> Batch:
        raise self._missing("sample_batch")

    def loss(self, model, batch: Batch):
        raise self._missing("loss")

    def step_metrics(self, terms: dict[str, float]) -> dict[str, float]:
        return {}

    def start_targets(self, train_set: Any) -> tuple[Tensor, Tensor]:
        raise self._missing("a data-driven start (start_targets)")

    def start_chunks(self, train_set: Any, *, rows: slice = slice(None),
                     chunk: int = START_CHUNK) -> tuple[Tensor, Iterator[Tensor]]:
        """The start's shared points `[P, D]` and the values there of the training signals `rows`, in chunks
        `[n, P, C]` of at most `chunk` signals, for a start streamed over processes (each its own rows). By
        default `start_targets` cut into chunks; a modality whose targets cost much to compute overrides it
        to compute only `rows`."""
        coords, values = self.start_targets(train_set)
        return coords, iter(values[rows].split(chunk))

    def streams(self, train_set: Any) -> bool:
        """Whether the training set is left on disk, so that a basis prior's start must stream it
        (`start_chunks`) whatever the number of processes."""
        return False

    def preview(self, predict: Predictor, signals: Tensor, *, context_points: int = 100, seed: int = 0) -> Tensor:
        raise self._missing("preview")

    # evaluation
    def evaluate(self, predict: Predictor, signals: Tensor, *, seed: int = 0) -> dict:
        raise self._missing("evaluate")

    def baselines(self, train_signals: Tensor) -> dict[str, Predictor]:
        return {}

    def report(self, results: dict[str, dict]) -> str:
        raise self._missing("report")

    def residual_correction(self, context: Context, residuals: Tensor, coords: Tensor) -> Tensor:
        raise self._missing("residual correction")

    # latent tools
    def latent_prior(self, model):
        raise self._missing("a latent adapter (latent_prior)")


MODALITIES: dict[str, type[Modality]] = {}


def register_modality(cls: type[Modality]) -> type[Modality]:
    """Class decorator: make a modality known to checkpoints and scripts by its `name`."""
    if not cls.name or not (isinstance(cls.data_type, type) and issubclass(cls.data_type, DataConfig)):
        raise TypeError(f"register_modality: {cls.__name__} needs a name and a data_type deriving from DataConfig")
    if cls.name in MODALITIES and MODALITIES[cls.name] is not cls:
        raise ValueError(f"register_modality: a modality named {cls.name!r} is already registered "
                         f"({MODALITIES[cls.name].__name__})")
    MODALITIES[cls.name] = cls
    return cls


def get_modality(name: str) -> type[Modality]:
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; known: {', '.join(sorted(MODALITIES)) or 'none'}")
    return MODALITIES[name]


def modality_from_state(state: dict[str, Any], where: str = "checkpoint") -> Modality:
    """The modality stored in a checkpoint's `modality` and `data` entries."""
    if "modality" not in state or "data" not in state:
        raise ValueError(f"{where}: no modality and data configuration stored; it was written by an earlier "
                         "hypersiren (retrain it with this version)")
    cls = get_modality(state["modality"])
    try:
        data = cls.data_type(**state["data"])
    except TypeError as error:
        raise ValueError(f"{where}: its {cls.name} data configuration does not match {cls.data_type.__name__}: "
                         f"{error}") from error
    return cls(data)
