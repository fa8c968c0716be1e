"""Training a `HyperSiren` prior (or the CNP baseline) on a collection of images, with exact resume.

Each step draws a batch of images and a context per image (`sample_context`) from one seeded
`torch.Generator`, predicts every pixel (or `query_points` random ones) from the context and takes
an Adam step on the model's loss: `prior_loss` (`PriorTrainer`) or `cnp_loss` (`CNPTrainer`); the
shared loop is `Trainer`, and `make_trainer` / `resume_trainer` pick the subclass.
The generator's state, the model and the optimiser go into every checkpoint, so a resumed run
draws the same batches and, on the CPU, reproduces the same losses as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from .cnp import CNPConfig, CNPLoss, ConditionalNeuralProcess, cnp_loss
from .coords import image_to_points
from .data.context import fixed_context, sample_context
from .evaluation import model_predictor, preview_grid
from .prior import BasisHyperNetwork, Context, HyperSiren, HyperSirenConfig, PriorLoss, prior_loss
from .runs import CHECKPOINT, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 100
    lr: float = 5e-5
    clip_grad_norm: float | None = 1.0  # None: no clipping
    latent_weight: float = 0.1
    param_weight: float = 100.0
    min_context: int = 10
    max_context: int = 200
    query_points: int | None = None  # pixels predicted per image per step (random subset); None: all
    seed: int = 0
    checkpoint_every_s: float = 300.0  # also written at the end
    time_budget_s: float | None = None  # stop early once this many seconds of training have run
    # heads="basis" only: Adam steps (at `init_lr`) that fit the SIREN to the training images' principal
    # components before the first step (`BasisHyperNetwork.initialise`); they count towards the budget
    init_steps: int = 0
    init_lr: float = 1e-4

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: need steps >= 0 and batch_size >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be positive, got {self.lr}")
        if self.query_points is not None and self.query_points < 1:
            raise ValueError(f"TrainConfig: query_points must be >= 1 or None, got {self.query_points}")
        if self.init_steps < 0 or not self.init_lr > 0:
            raise ValueError(f"TrainConfig: need init_steps >= 0 and init_lr > 0, got {self.init_steps}, {self.init_lr}")
        if not 1 <= self.min_context <= self.max_context:
            raise ValueError(f"TrainConfig: need 1 <= min_context <= max_context, got {self.min_context}, {self.max_context}")


@dataclass
class StepLog:
    step: int
    loss: float
    mse: float
    latent: float
    params: float
    psnr: float  # of the prediction of every pixel, in [0, 1] units


@dataclass
class CNPStepLog:
    step: int
    loss: float  # the negative log-likelihood
    mse: float  # of the predicted mean, [-1, 1] units
    std: float  # mean predicted standard deviation, [-1, 1] units
    psnr: float  # of the predicted mean at every query pixel, in [0, 1] units


def mse_to_psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


class Trainer:
    """What every model's training shares: data, context sampling, Adam, clipping, the loop, checkpoints
    and exact resume. A subclass names its checkpoint `kind`, its model config type, and supplies
    `build_model`, `compute_loss` and `step_log`."""

    kind = ""
    description = ""  # for messages: "hypersiren prior"
    config_type: type = object

    def __init__(self, model_config, train_config: TrainConfig, images: Tensor, run_dir: Path):
        name = type(self).__name__
        if not isinstance(model_config, self.config_type):
            raise TypeError(f"{name}: expected a {self.config_type.__name__}, got {type(model_config).__name__}")
        if images.dim() != 4 or images.shape[-1] != model_config.value_dim:
            raise ValueError(
                f"{name}: expected images [N, H, W, {model_config.value_dim}] in [0, 1] for a model with "
                f"value_dim={model_config.value_dim}, got {tuple(images.shape)}"
            )
        n_pixels = images.shape[1] * images.shape[2]
        if train_config.max_context > n_pixels:
            raise ValueError(f"{name}: max_context={train_config.max_context} exceeds the {n_pixels} pixels per image")
        self.model_config, self.config, self.run_dir = model_config, train_config, Path(run_dir)
        torch.manual_seed(train_config.seed)
        self.model = self.build_model(model_config)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        self.generator = torch.Generator().manual_seed(train_config.seed)
        coords, values = image_to_points(images)
        self.coords, self.values = coords[:1], values * 2 - 1  # [1, N, 2] shared grid; values in [-1, 1]
        self.step = 0
        self.elapsed = 0.0  # seconds of training, summed over resumed segments
        self.start_info: dict | None = None  # what the data-driven start measured (noise, fit error), once it ran

    @staticmethod
    def build_model(config) -> nn.Module:
        raise NotImplementedError

    def compute_loss(self, context: Context, coords: Tensor, values: Tensor):
        """A loss record with a `total` to minimise, for query `coords [B, N, D]` and targets `values [B, N, C]`."""
        raise NotImplementedError

    def step_log(self, step: int, loss):
        raise NotImplementedError

    @property
    def initialised(self) -> bool:
        """Whether the data-driven start, if the config asks for one, has run."""
        return self.config.init_steps == 0 or self.start_info is not None

    def initialise(self) -> None:
        """The model's data-driven start (`init_steps`); a subclass whose model has one overrides this."""
        raise ValueError(f"{type(self).__name__}: init_steps={self.config.init_steps}, but this model has no "
                         "data-driven initialisation")

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "model_config": dataclasses.asdict(self.model_config),
            "train_config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "step": self.step,
            "elapsed": self.elapsed,
            "initialised": self.initialised,
            "start_info": self.start_info,
        }

    def load_state(self, state: dict) -> None:
        if state["model_config"] != dataclasses.asdict(self.model_config):
            raise ValueError("checkpoint was written for a different model configuration; resume with the same preset")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.start_info = state.get("start_info")

    def save(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self.state())

    def train_step(self):
        c = self.config
        index = torch.randint(0, self.values.shape[0], (c.batch_size,), generator=self.generator)
        values = self.values[index]  # [B, N, C]
        coords = self.coords.expand(c.batch_size, -1, -1)
        context = sample_context(coords, values, max_points=c.max_context, min_points=c.min_context,
                                 generator=self.generator)
        if c.query_points is not None and c.query_points < coords.shape[1]:
            coords, values, _ = fixed_context(coords, values, c.query_points, generator=self.generator)
        loss = self.compute_loss(context, coords, values)
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        if c.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_grad_norm)
        self.optimizer.step()
        self.step += 1
        return self.step_log(self.step, loss)

    def run(self, on_step: Callable | None = None) -> list:
        """Train until `steps` or the time budget; checkpoint every `checkpoint_every_s` and at the end."""
        c = self.config
        logs = []
        last_save = time.perf_counter()
        if not self.initialised:
            start = time.perf_counter()
            self.initialise()
            self.elapsed += time.perf_counter() - start
            self.save()
        while self.step < c.steps and (c.time_budget_s is None or self.elapsed < c.time_budget_s):
            start = time.perf_counter()
            entry = self.train_step()
            self.elapsed += time.perf_counter() - start
            if not math.isfinite(entry.loss):
                raise FloatingPointError(f"loss became {entry.loss} at step {entry.step}; the last good checkpoint "
                                         f"in {self.run_dir} is kept")
            logs.append(entry)
            if on_step is not None:
                on_step(entry)
            if time.perf_counter() - last_save >= c.checkpoint_every_s:
                self.save()
                last_save = time.perf_counter()
                log.info("checkpoint at step %d in %s", self.step, self.run_dir)
        self.save()
        log.info("finished at step %d (%.1f s of training); checkpoint in %s", self.step, self.elapsed, self.run_dir)
        return logs

    def preview(self, images: Tensor, *, context_points: int = 100, seed: int = 0, scale: int = 1) -> Tensor:
        """Rows context / prediction / truth for `images [K, H, W, C]` (fixed context pixels drawn from
        `seed`, not from the training generator) -> one image `[H', W', 3]` in [0, 1]."""
        training = self.model.training
        try:
            return preview_grid(model_predictor(self.model), images, context_points=context_points, seed=seed,
                                scale=scale)
        finally:
            self.model.train(training)

    @classmethod
    def resume(cls, run_dir: Path, images: Tensor, *, steps: int | None = None,
               time_budget_s: float | None = None):
        """Rebuild a run from its checkpoint; `steps` / `time_budget_s` may extend it."""
        state = load_checkpoint(Path(run_dir) / CHECKPOINT)
        if state.get("kind") != cls.kind:
            raise ValueError(f"checkpoint is of kind {state.get('kind')!r}, not a {cls.description}")
        return cls._from_state(state, run_dir, images, steps=steps, time_budget_s=time_budget_s)

    @classmethod
    def _from_state(cls, state: dict, run_dir: Path, images: Tensor, *, steps: int | None,
                    time_budget_s: float | None):
        config = TrainConfig(**state["train_config"])
        overrides = {k: v for k, v in (("steps", steps), ("time_budget_s", time_budget_s)) if v is not None}
        config = dataclasses.replace(config, **overrides)
        trainer = cls(cls.config_type(**state["model_config"]), config, images, run_dir)
        trainer.load_state(state)
        return trainer


class PriorTrainer(Trainer):
    """Trains a `HyperSiren` on `prior_loss`."""

    kind, description, config_type = "hypersiren.prior", "hypersiren prior", HyperSirenConfig

    @staticmethod
    def build_model(config: HyperSirenConfig) -> HyperSiren:
        return HyperSiren(config)

    def compute_loss(self, context: Context, coords: Tensor, values: Tensor) -> PriorLoss:
        c = self.config
        return prior_loss(self.model(context, coords), values, latent_weight=c.latent_weight,
                          param_weight=c.param_weight)

    def initialise(self) -> None:
        """`heads="basis"`: fit the SIREN to the probabilistic PCA of the training images."""
        hypernet = self.model.hypernet
        if not isinstance(hypernet, BasisHyperNetwork):
            super().initialise()
        info = hypernet.initialise(self.coords[0], self.values, steps=self.config.init_steps, lr=self.config.init_lr)
        self.start_info = {**info, "images": self.values.shape[0], "steps": self.config.init_steps}
        log.info("initialised from the principal components of %d images in %d steps: noise %.3g "
                 "(PPCA %.3g + fit %.3g)", self.values.shape[0], self.config.init_steps, info["noise"],
                 info["ppca_noise"], info["fit_error"])

    def step_log(self, step: int, loss: PriorLoss) -> StepLog:
        mse01 = loss.mse.item() / 4  # [-1, 1] units -> [0, 1] units
        return StepLog(step, loss.total.item(), loss.mse.item(), loss.latent.item(), loss.params.item(),
                       mse_to_psnr(mse01))


class CNPTrainer(Trainer):
    """Trains a `ConditionalNeuralProcess` on the Gaussian negative log-likelihood (`cnp_loss`), with the
    same data, context sampling and query subsampling as the prior. The prior's loss weights must be 0."""

    kind, description, config_type = "hypersiren.cnp", "conditional neural process", CNPConfig

    def __init__(self, model_config: CNPConfig, train_config: TrainConfig, images: Tensor, run_dir: Path):
        if train_config.latent_weight or train_config.param_weight:
            raise ValueError(
                f"CNPTrainer: expected latent_weight = param_weight = 0 (terms of the HyperSiren loss, which a CNP "
                f"does not have), got {train_config.latent_weight}, {train_config.param_weight}"
            )
        super().__init__(model_config, train_config, images, run_dir)

    @staticmethod
    def build_model(config: CNPConfig) -> ConditionalNeuralProcess:
        return ConditionalNeuralProcess(config)

    def compute_loss(self, context: Context, coords: Tensor, values: Tensor) -> CNPLoss:
        return cnp_loss(self.model(context, coords), values)

    def step_log(self, step: int, loss: CNPLoss) -> CNPStepLog:
        return CNPStepLog(step, loss.total.item(), loss.mse.item(), loss.std.item(), mse_to_psnr(loss.mse.item() / 4))


TRAINERS: dict[str, type[Trainer]] = {t.kind: t for t in (PriorTrainer, CNPTrainer)}


def make_trainer(model_config, train_config: TrainConfig, images: Tensor, run_dir: Path) -> Trainer:
    """The trainer for the model config's type: `HyperSirenConfig` -> `PriorTrainer`, `CNPConfig` -> `CNPTrainer`."""
    for trainer in TRAINERS.values():
        if isinstance(model_config, trainer.config_type):
            return trainer(model_config, train_config, images, run_dir)
    names = ", ".join(t.config_type.__name__ for t in TRAINERS.values())
    raise TypeError(f"make_trainer: expected a model config of type {names}, got {type(model_config).__name__}")


def resume_trainer(run_dir: Path, images: Tensor, *, steps: int | None = None,
                   time_budget_s: float | None = None) -> Trainer:
    """Resume a run of any model kind, chosen by its checkpoint's "kind"."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    if state.get("kind") not in TRAINERS:
        raise ValueError(f"resume_trainer: expected a checkpoint of kind {' or '.join(map(repr, TRAINERS))}, "
                         f"got {state.get('kind')!r}")
    return TRAINERS[state["kind"]]._from_state(state, run_dir, images, steps=steps, time_budget_s=time_budget_s)


def _load_model(path: str | Path, trainer: type[Trainer]):
    state = load_checkpoint(path)
    if state.get("kind") != trainer.kind:
        raise ValueError(f"{path}: checkpoint is of kind {state.get('kind')!r}, not a {trainer.description} "
                         f"({trainer.kind!r})")
    model_config = trainer.config_type(**state["model_config"])
    model = trainer.build_model(model_config)
    model.load_state_dict(state["model"])
    return model.eval(), state


def load_prior(path: str | Path) -> tuple[HyperSiren, dict]:
    """A trained `HyperSiren` from a checkpoint written by `PriorTrainer` (in eval mode), and the raw state."""
    return _load_model(path, PriorTrainer)


def load_cnp(path: str | Path) -> tuple[ConditionalNeuralProcess, dict]:
    """A trained `ConditionalNeuralProcess` from a checkpoint written by `CNPTrainer` (in eval mode), and the raw state."""
    return _load_model(path, CNPTrainer)


def run_images(run_config: dict, resolution: int | None = None) -> tuple[Tensor, Tensor]:
    """(training images, held-out images) of a run, from its `config.json` as written by
    `train/train_prior.py`; the held-out set is all of the images when the run held none out."""
    from .data import load_collection, square_resize

    images = square_resize(load_collection(run_config["data"], limit=run_config["limit"]),
                           resolution or run_config["resolution"])
    holdout = run_config["holdout"]
    train = images[: images.shape[0] - holdout]
    return train, images[images.shape[0] - holdout :] if holdout else images
