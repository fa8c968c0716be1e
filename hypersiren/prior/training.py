"""Training a prior (a `HyperSiren`, or the CNP baseline) on any modality's signals, with exact resume.

Each step draws a batch from the modality (`Modality.sample_batch`: signals, a context per signal and
query points with their targets) with one seeded `torch.Generator`, computes the model's loss and takes
an Adam step: `PriorTrainer` (the modality's supervised terms with the per-sample predicted SIRENs, plus
the reference's regularisers) or `CNPTrainer` (the Gaussian negative log-likelihood). The generator's
state, the model, the optimiser, the modality and its data configuration go into every checkpoint, so a
checkpoint alone rebuilds its run (`resume_trainer`), and a resumed run draws the same batches and, on
the CPU, reproduces the losses of an uninterrupted one. The generator stays on the CPU on every device.

Under torchrun (`ranks`, `prior.distributed`) every process draws the same global batch and computes
the loss on its share of it; the gradients are summed over the processes, so a step is the same for any
number of processes (up to float rounding) and a checkpoint, written by rank 0 alone, resumes with any.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor, nn

from ..devices import adam, autocast, check_precision, grad_scaler
from ..runs import CHECKPOINT, RunFolderError, load_kind, save_checkpoint
from .cnp import CNPConfig, ConditionalNeuralProcess, cnp_loss
from .distributed import Ranks, TrainingLoss, accumulate_gradients
from .hypernets import BasisHyperNetwork
from .losses import PriorLoss, prior_loss
from .modality import Batch, Modality, modality_from_state
from .model import HyperSiren, HyperSirenConfig
from .pca import probabilistic_pca, streamed_probabilistic_pca
from .predictors import model_predictor

log = logging.getLogger(__name__)

FORMAT = 2  # checkpoint layout version: 2 stores the modality and its data configuration


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 100
    lr: float = 5e-5
    clip_grad_norm: float | None = 1.0  # None: no clipping
    latent_weight: float = 0.1
    param_weight: float = 100.0
    min_context: int = 10  # context points per signal, drawn uniformly in [min_context, max_context]
    max_context: int = 200
    query_points: int | None = None  # points predicted per signal per step (random subset); None: all
    seed: int = 0
    checkpoint_every_s: float = 300.0  # also written at the end
    checkpoint_every_steps: int | None = None  # also every this many steps (None: by time only)
    time_budget_s: float | None = None  # stop early once this many seconds of training have run
    # heads="basis" only: Adam steps (at `init_lr`) that fit the SIREN to the training signals' principal
    # components before the first step (`BasisHyperNetwork.initialise`); they count towards the budget
    init_steps: int = 0
    init_lr: float = 1e-4
    # most signals a process computes at once: its share of `batch_size` is split into micro-batches whose
    # gradients add up (the step is the same, memory smaller); None: its whole share at once
    micro_batch: int | None = None
    # "float32", "bf16" (autocast in bfloat16, any device) or "fp16" (float16 with a gradient scaler, CUDA
    # only): what the forwards compute in (`devices.autocast`); parameters, gradients and losses stay float32
    precision: str = "float32"

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: need steps >= 0 and batch_size >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be positive, got {self.lr}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"TrainConfig: clip_grad_norm must be positive or None, got {self.clip_grad_norm}")
        if self.query_points is not None and self.query_points < 1:
            raise ValueError(f"TrainConfig: query_points must be >= 1 or None, got {self.query_points}")
        if self.init_steps < 0 or not self.init_lr > 0:
            raise ValueError(f"TrainConfig: need init_steps >= 0 and init_lr > 0, got {self.init_steps}, {self.init_lr}")
        if not 1 <= self.min_context <= self.max_context:
            raise ValueError(f"TrainConfig: need 1 <= min_context <= max_context, got {self.min_context}, {self.max_context}")
        if self.checkpoint_every_steps is not None and self.checkpoint_every_steps < 1:
            raise ValueError(f"TrainConfig: checkpoint_every_steps must be >= 1 or None, got "
                             f"{self.checkpoint_every_steps}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"TrainConfig: time_budget_s must be positive or None, got {self.time_budget_s}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"TrainConfig: micro_batch must be >= 1 or None, got {self.micro_batch}")
        check_precision(self.precision, where="TrainConfig")
        if not 0 <= self.seed < 2**63:  # non-negative and in 64 bits, as `--set`'s ints are
            raise ValueError(f"TrainConfig: seed must be an int in [0, 2**63), got {self.seed}")


class StepLog(NamedTuple):
    step: int
    loss: float  # the total minimised
    terms: dict[str, float]  # the loss terms and the modality's metrics (e.g. "mse", "psnr")


class Trainer:
    """What every model's training shares: data through the modality, Adam, clipping, the loop, checkpoints
    and exact resume. A subclass names its checkpoint `kind` and model config type, and supplies
    `build_model` and `compute_loss`. `ranks`: this process among several training together under torchrun
    (`distributed.Ranks`; default: a process alone)."""

    kind = ""
    description = ""  # for messages: "hypersiren prior"
    config_type: type = object

    def __init__(self, model_config, train_config: TrainConfig, modality: Modality, signals: Tensor, run_dir: Path,
                 *, device: torch.device | str | None = None, ranks: Ranks | None = None):
        name = type(self).__name__
        if not isinstance(model_config, self.config_type):
            raise TypeError(f"{name}: expected a {self.config_type.__name__}, got {type(model_config).__name__}")
        if not isinstance(modality, Modality):
            raise TypeError(f"{name}: expected a Modality, got {type(modality).__name__}")
        dims = (modality.coord_dim, modality.value_dim(signals))
        if (model_config.coord_dim, model_config.value_dim) != dims:
            raise ValueError(f"{name}: the {modality.name} signals have coord_dim={dims[0]} and value_dim={dims[1]}, "
                             f"the model config coord_dim={model_config.coord_dim} and "
                             f"value_dim={model_config.value_dim}")
        self.device = signals.device if device is None else torch.device(device)
        self.ranks = Ranks(device=self.device) if ranks is None else ranks
        if train_config.batch_size < self.ranks.world_size:
            raise ValueError(f"{name}: batch_size={train_config.batch_size} signals cannot be shared by "
                             f"{self.ranks.world_size} processes; every process needs at least one per step (use "
                             f"a batch size of at least {self.ranks.world_size} or fewer processes)")
        self.model_config, self.config, self.modality, self.run_dir = model_config, train_config, modality, Path(run_dir)
        check_precision(train_config.precision, self.device, where=name)
        self.scaler = grad_scaler(train_config.precision, self.device)  # fp16 only; its scale goes in the checkpoint
        torch.manual_seed(train_config.seed)
        self.model = self.build_model(model_config).to(self.device)
        self.optimizer = adam(self.model.parameters(), lr=train_config.lr)
        self.generator = torch.Generator().manual_seed(train_config.seed)
        self.train_set = modality.prepare(signals, train_config, self.device)
        self.num_signals = signals.shape[0]
        self.step = 0
        self.elapsed = 0.0  # seconds of training, summed over resumed segments
        self.start_info: dict | None = None  # what the data-driven start measured (noise, fit error), once it ran
        self._loss: nn.Module | None = None  # compute_loss as a module (DistributedDataParallel), from the first step

    @staticmethod
    def build_model(config) -> nn.Module:
        raise NotImplementedError

    def compute_loss(self, batch: Batch):
        """A loss record with a `total` to minimise and named scalar `terms`."""
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
            "format": FORMAT,
            **self.modality.state(),
            "model_config": dataclasses.asdict(self.model_config),
            "train_config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "start_info": self.start_info,
        }

    def load_state(self, state: dict) -> None:
        if state["model_config"] != dataclasses.asdict(self.model_config):
            raise ValueError("checkpoint was written for a different model configuration; resume with the same preset")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if self.scaler is not None and state.get("scaler"):  # absent: older checkpoints, or not trained in fp16
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.start_info = state["start_info"]

    def save(self) -> None:
        """Write the checkpoint atomically: if that fails (a full disk), `RunFolderError` and the previous one stays.
        Among several processes rank 0 alone writes (their states are the same)."""
        if not self.ranks.main:
            return
        path = self.run_dir / CHECKPOINT
        try:
            save_checkpoint(path, self.state())
        except OSError as error:
            raise RunFolderError(f"cannot write the checkpoint of step {self.step} to {path} "
                                 f"({error.strerror or error}); the previous one, if any, is kept") from error

    def train_step(self) -> StepLog:
        """One Adam step on a batch of `batch_size` signals. Every process draws the whole batch and computes
        the loss on its rows, in micro-batches of `micro_batch` (`distributed.accumulate_gradients`); the
        gradients, and so the step, are those of the whole batch. The forwards run in `precision`; under
        fp16 the scaler skips a step whose gradients are not finite (a non-finite loss still stops `run`)."""
        c = self.config
        batch = self.modality.sample_batch(self.train_set, c.batch_size, c, self.generator)
        if self._loss is None:  # wrapped after the data-driven start, which changes the parameters
            self._loss = self.ranks.parallel(TrainingLoss(self.model, self.compute_loss), batch, c.batch_size)
        self.optimizer.zero_grad(set_to_none=True)
        totals = accumulate_gradients(self._loss, batch, batch_size=c.batch_size, micro_batch=c.micro_batch,
                                      ranks=self.ranks, autocast=lambda: autocast(c.precision, self.device),
                                      scaler=self.scaler)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if c.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_grad_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.step += 1
        total, terms = totals()  # summed over the processes while they stepped
        finite = all(math.isfinite(value) for value in terms.values())  # else `run` stops, naming the bad terms
        return StepLog(self.step, total, {**terms, **(self.modality.step_metrics(terms) if finite else {})})

    def run(self, on_step: Callable[[StepLog], None] | None = None, *,
            stop: Callable[[], bool] | None = None) -> list[StepLog]:
        """Train until `steps`, the time budget, or `stop()` is true between steps (e.g. on SIGINT:
        `runs.stop_requests`); checkpoint every `checkpoint_every_s` seconds, every `checkpoint_every_steps`
        steps and at the end. Among several processes, rank 0's `stop()` and time budget decide for all."""
        c = self.config
        logs = []
        last_save = time.perf_counter()
        if not self.initialised:
            start = time.perf_counter()
            self.initialise()  # on every process alike (an error stops all), then rank 0's result for all
            self.ranks.copy_from_main(self.model)
            self.start_info = self.ranks.share(self.start_info)
            self.elapsed += time.perf_counter() - start
            self.save()
        while self.step < c.steps:
            stopping, out_of_time = self.ranks.decide(stop is not None and stop(),
                                                      c.time_budget_s is not None and self.elapsed >= c.time_budget_s)
            if out_of_time:
                break
            if stopping:
                log.info("stop requested at step %d", self.step)
                break
            start = time.perf_counter()
            entry = self.train_step()
            self.elapsed += time.perf_counter() - start
            if not math.isfinite(entry.loss):  # the loss of the whole batch: every process stops here
                bad = [name for name, value in entry.terms.items() if not math.isfinite(value)]
                raise FloatingPointError(f"loss became {entry.loss} at step {entry.step} (non-finite terms: "
                                         f"{', '.join(bad) or 'none'}); the last good checkpoint in {self.run_dir} "
                                         "is kept")
            logs.append(entry)
            if on_step is not None:
                on_step(entry)
            by_steps = c.checkpoint_every_steps is not None and self.step % c.checkpoint_every_steps == 0
            if by_steps or time.perf_counter() - last_save >= c.checkpoint_every_s:  # rank 0's clock: only it writes
                self.save()
                last_save = time.perf_counter()
                log.info("checkpoint at step %d in %s", self.step, self.run_dir)
        self.save()
        log.info("finished at step %d (%.1f s of training); checkpoint in %s", self.step, self.elapsed, self.run_dir)
        return logs

    def preview(self, signals: Tensor, *, context_points: int = 100, seed: int = 0) -> Tensor:
        """The modality's picture of `signals` completed from `context_points` each (drawn from `seed`, not
        from the training generator) -> one image `[H, W, 3]` in [0, 1]."""
        training = self.model.training
        try:
            return self.modality.preview(model_predictor(self.model), signals.to(self.device),
                                         context_points=context_points, seed=seed)
        finally:
            self.model.train(training)


class PriorTrainer(Trainer):
    """Trains a `HyperSiren` on its modality's supervised loss plus the regularisers (`prior_loss`)."""

    kind, description, config_type = "hypersiren.prior", "hypersiren prior", HyperSirenConfig

    @staticmethod
    def build_model(config: HyperSirenConfig) -> HyperSiren:
        return HyperSiren(config)

    def compute_loss(self, batch: Batch) -> PriorLoss:
        c = self.config
        return prior_loss(self.modality.loss(self.model, batch), latent_weight=c.latent_weight,
                          param_weight=c.param_weight)

    def initialise(self) -> None:
        """`heads="basis"`: fit the SIREN to the probabilistic PCA of the training signals. One process, or
        fewer signals than values per signal: the in-memory PPCA (`probabilistic_pca`), in every process
        alike. Signals left on disk (`Modality.streams`), or several processes and more signals: each process
        streams its consecutive share in chunks
        (`Modality.start_chunks`) and the moments are summed over them (`streamed_probabilistic_pca`: the
        single-process basis up to the sign of each component and float rounding)."""
        hypernet = self.model.hypernet
        if not isinstance(hypernet, BasisHyperNetwork):
            super().initialise()
        count, latent_dim, world_size = self.num_signals, self.model_config.latent_dim, self.ranks.world_size
        if latent_dim >= count - 1:  # checked before the start targets, which may take minutes to compute
            raise ValueError(f"PriorTrainer: a basis prior of latent_dim={latent_dim} needs more than "
                             f"{latent_dim + 1} training signals, got {count} (train on more, or set "
                             f"model.latent_dim below {count - 1})")
        if count < world_size:
            raise ValueError(f"PriorTrainer: the PCA start gives each of {world_size} processes a share of the "
                             f"{count} training signals; train on at least {world_size} or use fewer processes")
        # signals left on disk, or several processes and more signals than values per signal (one signal's,
        # probed only then): stream
        streamed = self.modality.streams(self.train_set) or (world_size > 1 and count >= next(
            self.modality.start_chunks(self.train_set, rows=slice(0, 1), chunk=1)[1])[0].numel())
        if streamed:  # each process streams its share and the D x D moments are summed (the basis up to signs)
            rows = self.ranks.rows(count)[0]
            coords = self.modality.start_chunks(self.train_set, rows=slice(0, 1), chunk=1)[0]
            start = streamed_probabilistic_pca(lambda: self.modality.start_chunks(self.train_set, rows=rows)[1],
                                               latent_dim, distributed=self.ranks.joined)  # read again to sketch
        else:  # the whole PPCA in memory, by every process alike (with fewer signals than values: the cheap
            # N x N Gram matrix), the single process's start exactly
            coords, values = self.modality.start_targets(self.train_set)
            start = probabilistic_pca(values, latent_dim)
        info = hypernet.fit_start(coords, start, steps=self.config.init_steps, lr=self.config.init_lr)
        self.start_info = {**info, "signals": count, "steps": self.config.init_steps}
        log.info("initialised from the principal components of %d signals in %d steps: noise %.3g "
                 "(PPCA %.3g + fit %.3g)", count, self.config.init_steps, info["noise"],
                 info["ppca_noise"], info["fit_error"])


class CNPTrainer(Trainer):
    """Trains a `ConditionalNeuralProcess` on the Gaussian negative log-likelihood (`cnp_loss`) of the
    modality's target values, with the same batches as the prior. The prior's loss weights must be 0."""

    kind, description, config_type = "hypersiren.cnp", "conditional neural process", CNPConfig

    def __init__(self, model_config: CNPConfig, train_config: TrainConfig, modality: Modality, signals: Tensor,
                 run_dir: Path, *, device: torch.device | str | None = None, ranks: Ranks | None = None):
        if train_config.latent_weight or train_config.param_weight:
            raise ValueError(
                f"CNPTrainer: expected latent_weight = param_weight = 0 (terms of the HyperSiren loss, which a CNP "
                f"does not have), got {train_config.latent_weight}, {train_config.param_weight}"
            )
        super().__init__(model_config, train_config, modality, signals, run_dir, device=device, ranks=ranks)

    @staticmethod
    def build_model(config: CNPConfig) -> ConditionalNeuralProcess:
        return ConditionalNeuralProcess(config)

    def compute_loss(self, batch: Batch):
        return cnp_loss(self.model(batch.context, batch.coords), batch.values)


TRAINERS: dict[str, type[Trainer]] = {t.kind: t for t in (PriorTrainer, CNPTrainer)}


def make_trainer(model_config, train_config: TrainConfig, modality: Modality, signals: Tensor, run_dir: Path,
                 *, device: torch.device | str | None = None, ranks: Ranks | None = None) -> Trainer:
    """The trainer for the model config's type: `HyperSirenConfig` -> `PriorTrainer`, `CNPConfig` -> `CNPTrainer`."""
    for trainer in TRAINERS.values():
        if isinstance(model_config, trainer.config_type):
            return trainer(model_config, train_config, modality, signals, run_dir, device=device, ranks=ranks)
    names = ", ".join(t.config_type.__name__ for t in TRAINERS.values())
    raise TypeError(f"make_trainer: expected a model config of type {names}, got {type(model_config).__name__}")


def _checked_state(path: Path, kinds: tuple[str, ...], modality: str | None, where: str) -> dict:
    """A checkpoint's state, refused with a clear message unless its kind is one of `kinds`, its format is
    this version's and (when given) its modality is `modality`."""
    expected = " or ".join(f"{TRAINERS[k].description} ({k!r})" if k in TRAINERS else repr(k) for k in kinds)
    state = load_kind(path, kinds, where, expected=f"a {expected}")
    if state.get("format") != FORMAT:
        raise ValueError(f"{where}: {path} has checkpoint format {state.get('format')!r}, this hypersiren reads "
                         f"format {FORMAT}" + (" (it was written by an earlier version: retrain it)"
                                               if state.get("format") is None else " (upgrade hypersiren)"))
    if modality is not None and state.get("modality") != modality:
        raise ValueError(f"{where}: {path} holds a {state.get('modality')} {TRAINERS[state['kind']].description}, "
                         f"expected a {modality} one")
    return state


def resume_trainer(run_dir: Path, *, steps: int | None = None, time_budget_s: float | None = None,
                   micro_batch: int | None = None, precision: str | None = None,
                   device: torch.device | str | None = None, signals: Tensor | None = None,
                   ranks: Ranks | None = None) -> Trainer:
    """Resume a run from its checkpoint alone (model kind, modality and data are stored there); `steps` /
    `time_budget_s` may extend it and `micro_batch` change how much a process computes at once (not the
    steps). `precision` may change too, like the device: it is how a step is computed, not what the run
    is (an fp16 run of a GPU goes on in bf16 or float32 on a CPU); the resumed steps are then close to,
    no longer bit-identical with, those of the old precision, and a new fp16 scaler starts afresh.
    `signals`: the training signals, when the run was given them in memory rather than loaded from its data
    configuration. `ranks`: the processes that continue it (any number; the checkpoint does not depend on
    how many wrote it)."""
    state = _checked_state(Path(run_dir) / CHECKPOINT, tuple(TRAINERS), None, "resume_trainer")
    trainer_type = TRAINERS[state["kind"]]
    modality = modality_from_state(state, f"resume_trainer: {run_dir}")
    config = TrainConfig(**state["train_config"])
    overrides = {k: v for k, v in (("steps", steps), ("time_budget_s", time_budget_s), ("micro_batch", micro_batch),
                                   ("precision", precision)) if v is not None}
    signals = modality.load("train") if signals is None else signals
    if device is not None:
        signals = signals.to(device)
    trainer = trainer_type(trainer_type.config_type(**state["model_config"]), dataclasses.replace(config, **overrides),
                           modality, signals, run_dir, device=device, ranks=ranks)
    trainer.load_state(state)
    return trainer


class LoadedModel(NamedTuple):
    model: Any  # a HyperSiren or a ConditionalNeuralProcess, in eval mode
    modality: Modality  # rebuilt from the checkpoint's data configuration
    state: dict  # the raw checkpoint


def load_model(path: str | Path, *, kind: str | tuple[str, ...] = tuple(TRAINERS), modality: str | None = None,
               device: torch.device | str = "cpu") -> LoadedModel:
    """A trained model of one of `kinds` (and, when given, of `modality`) from its checkpoint, on `device`."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    state = _checked_state(Path(path), kinds, modality, "load_model")
    trainer_type = TRAINERS[state["kind"]]
    missing = [key for key in ("model_config", "model") if not isinstance(state.get(key), dict)]
    if missing:
        raise ValueError(f"load_model: {path} holds no {' and no '.join(map(repr, missing))} entry, so it cannot "
                         f"rebuild a {trainer_type.description}: it was not written by hypersiren's training")
    try:
        model = trainer_type.build_model(trainer_type.config_type(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as error:  # fields unknown or out of range; weights that do not fit
        reason = " ".join(str(error).split())  # on one line: torch lists missing and unexpected weights on several
        raise ValueError(f"load_model: {path} holds a {trainer_type.description} this hypersiren cannot rebuild: "
                         f"{reason}") from error
    return LoadedModel(model.to(device).eval(), modality_from_state(state, str(path)), state)


def load_prior(path: str | Path, *, modality: str | None = None, device: torch.device | str = "cpu") -> LoadedModel:
    """A trained `HyperSiren` from a checkpoint written by `PriorTrainer`."""
    return load_model(path, kind=PriorTrainer.kind, modality=modality, device=device)


def load_cnp(path: str | Path, *, modality: str | None = None, device: torch.device | str = "cpu") -> LoadedModel:
    """A trained `ConditionalNeuralProcess` from a checkpoint written by `CNPTrainer`."""
    return load_model(path, kind=CNPTrainer.kind, modality=modality, device=device)
