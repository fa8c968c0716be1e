"""The prior machinery, generic over kinds of signal: context sets, encoders, hypernetworks, the
`HyperSiren` model, PCA starts, losses, refinement, the CNP baseline, training with exact resume, and
the `Modality` interface through which each kind of signal plugs in, and data-parallel training over
processes started by torchrun (see docs/architecture.md)."""

from .cnp import CNPConfig, CNPLoss, CNPPrediction, ConditionalNeuralProcess, cnp_loss
from .context import fixed_context, prefix_context, sample_context
from .distributed import Ranks, join_torchrun
from .encoders import SetEncoder, relu_mlp
from .hypernets import BasisHyperNetwork, LowRankHyperNetwork, PerTensorHyperNetwork
from .losses import PriorLoss, SupervisedLoss, prior_loss, value_mse
from .modality import (MODALITIES, Batch, DataConfig, Modality, Predictor, get_modality, modality_from_state,
                       register_modality, split_signals)
from .model import HyperSiren, HyperSirenConfig
from .pca import (PPCA, Moments, principal_components, probabilistic_pca, sketched_principal_components,
                  streamed_moments, streamed_principal_components, streamed_probabilistic_pca, top_eigenpairs)
from .predictors import model_predictor
from .presets import PRESETS, Preset, get_preset, register_presets
from .refine import RefineConfig, refine, refined_predictor
from .training import (TRAINERS, CNPTrainer, LoadedModel, PriorTrainer, StepLog, Trainer, TrainConfig, load_cnp,
                       load_model, load_prior, make_trainer, resume_trainer)
from .types import Context, Prediction, check_context, masked_mean

__all__ = [
    "MODALITIES", "PRESETS", "PPCA", "TRAINERS", "Moments",
    "BasisHyperNetwork", "Batch", "CNPConfig", "CNPLoss", "CNPPrediction", "CNPTrainer", "ConditionalNeuralProcess",
    "Context", "DataConfig", "HyperSiren", "HyperSirenConfig", "LoadedModel", "LowRankHyperNetwork", "Modality",
    "PerTensorHyperNetwork", "Prediction", "Predictor", "Preset", "PriorLoss", "PriorTrainer", "Ranks", "RefineConfig",
    "SetEncoder", "StepLog", "SupervisedLoss", "TrainConfig", "Trainer",
    "check_context", "cnp_loss", "fixed_context", "get_modality", "get_preset", "join_torchrun", "load_cnp",
    "load_model", "load_prior", "make_trainer", "masked_mean", "modality_from_state", "model_predictor",
    "prefix_context", "principal_components", "prior_loss", "probabilistic_pca", "sketched_principal_components",
    "streamed_moments",
    "streamed_principal_components", "streamed_probabilistic_pca", "top_eigenpairs", "refine", "refined_predictor",
    "register_modality", "register_presets", "relu_mlp", "resume_trainer", "sample_context", "split_signals",
    "value_mse",
]
