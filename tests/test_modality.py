"""A modality the library does not know: 1-D waves defined here, trained by train/train_prior.py's code path,
scored by evaluate/eval_prior.py and taken through every evaluate/explore.py subcommand. Nothing generic
in hypersiren names it: it plugs in through `Modality`, `register_modality` and `register_presets` alone."""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.prior import (Batch, Context, DataConfig, HyperSirenConfig, Modality, Preset, SupervisedLoss,
                              TrainConfig, fixed_context, get_modality, load_prior, register_modality,
                              register_presets, sample_context, split_signals, value_mse)
from hypersiren.runs import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STRIP = 6  # rows of the picture of a wave


@dataclass(frozen=True)
class WaveData(DataConfig):
    source: str = "waves"  # generated: `count` sines of random frequency and phase
    count: int = 40
    length: int = 32
    seed: int = 0


class WaveSet(NamedTuple):
    coords: torch.Tensor  # [1, L, 1]
    values: torch.Tensor  # [N, L, 1]


class WavePrior:
    """The latent adapter: signals are waves `[B, L, 1]` in [-1, 1]; pictures are grey strips."""

    def __init__(self, model, modality):
        self.model, self.modality = model, modality

    latent_dim = property(lambda self: self.model.config.latent_dim)
    siren = property(lambda self: self.model.config.siren)
    resolution = property(lambda self: self.modality.data.length)

    def encode(self, signals, *, context_size=None, generator=None):
        coords, values = hs.signal_to_points(signals, spatial_dims=1)
        if context_size is None:
            return self.model.encode(Context(coords, values, torch.ones(coords.shape[:2], dtype=torch.bool)))
        return self.model.encode(fixed_context(coords, values, context_size, generator=generator))

    def decode(self, latent):
        return self.model.decode(latent)

    def query_coords(self, resolution=None):
        return hs.grid((resolution or self.resolution,))

    def to_signals(self, values, *, resolution=None):
        return values

    def render(self, params, *, resolution=None):
        coords = self.query_coords(resolution).expand(params.batch_shape[0], -1, -1)
        return self.to_signals(self.model.render(params, coords), resolution=resolution)

    def to_images(self, signals):
        return ((signals.unsqueeze(1) + 1) / 2).clamp(0, 1).expand(-1, STRIP, -1, -1)  # [B, STRIP, L, 1]

    def load_signals(self, source=None, *, split=None):
        return self.modality.load(split or "train")


@register_modality
class WaveModality(Modality):
    name, data_type, coord_dim = "wave", WaveData, 1

    def load(self, split="train"):
        d = self.data
        g = torch.Generator().manual_seed(d.seed)
        freq, phase = 1 + torch.rand(d.count, 1, generator=g), 6 * torch.rand(d.count, 1, generator=g)
        x = hs.grid((d.length,))[:, 0]
        return split_signals(torch.sin(freq * 2 * x + phase).unsqueeze(-1), d.holdout, split)  # [N, L, 1]

    def value_dim(self, signals):
        return signals.shape[-1]

    def prepare(self, signals, train_config, device):
        coords, values = hs.signal_to_points(signals.to(device), spatial_dims=1)
        return WaveSet(coords[:1], values)

    def sample_batch(self, train_set, batch_size, train_config, generator):
        index = torch.randint(0, train_set.values.shape[0], (batch_size,), generator=generator)
        values, coords = train_set.values[index], train_set.coords.expand(batch_size, -1, -1)
        context = sample_context(coords, values, max_points=train_config.max_context,
                                 min_points=train_config.min_context, generator=generator)
        return Batch(context, coords, values)

    def loss(self, model, batch):
        prediction = model(batch.context, batch.coords)
        mse = value_mse(prediction, batch.values)
        return SupervisedLoss(prediction, mse, {"mse": mse})

    def start_targets(self, train_set):
        return train_set.coords[0], train_set.values

    def preview(self, predict, signals, *, context_points=100, seed=0):
        coords, values = hs.signal_to_points(signals, spatial_dims=1)
        context = fixed_context(coords, values, min(context_points, coords.shape[1]),
                                generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            rows = torch.cat([predict(context, coords), values])  # predictions above the truth
        return ((rows + 1) / 2).clamp(0, 1).expand(-1, -1, 3)  # [2K, L, 3]

    def evaluate(self, predict, signals, *, seed=0):
        coords, values = hs.signal_to_points(signals, spatial_dims=1)
        mse = {}
        for k in (4, 16):
            context = fixed_context(coords, values, k, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                mse[str(k)] = (predict(context, coords) - values).square().mean().item()
        return {"mse": mse}

    def baselines(self, train_signals):
        mean = train_signals.mean(0, keepdim=True)
        return {"mean wave": lambda context, coords: mean.expand(coords.shape[0], -1, -1)}

    def report(self, results):
        return "\n".join(f"| {name} | " + " | ".join(f"{v:.5f}" for v in r["mse"].values()) + " |"
                         for name, r in results.items())

    def residual_correction(self, context, residuals, coords):
        out = []
        for b in range(coords.shape[0]):
            order = context.coords[b, :, 0].argsort()  # np.interp needs increasing points
            out.append(np.interp(coords[b, :, 0].numpy(), context.coords[b, order, 0].numpy(),
                                 residuals[b, order, 0].numpy()))
        return torch.from_numpy(np.stack(out)).to(coords.dtype).unsqueeze(-1)

    def latent_prior(self, model):
        return WavePrior(model, self)


register_presets({"waves_test": Preset(
    "wave", WaveData(holdout=8),
    HyperSirenConfig(heads="basis", encoder="posterior", latent_dim=6, siren_hidden=32, siren_depth=3,
                     w0_first=10.0, w0=10.0),
    TrainConfig(steps=3, batch_size=4, lr=1e-5, min_context=2, max_context=8, latent_weight=0.0, param_weight=0.0,
                init_steps=150, init_lr=3e-3, checkpoint_every_s=1e9),
)})


def load_script(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_wave", ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_modality_defined_outside_the_library_trains_evaluates_and_explores(tmp_path):
    train, evaluate, explore = (load_script(f) for f in
                                ("train/train_prior.py", "evaluate/eval_prior.py", "evaluate/explore.py"))
    run = tmp_path / "run"
    metrics = train.main(train.parse_args(["--preset", "waves_test", "--image-every", "2", "--device", "cpu",
                                           "--out", str(run)]))
    assert metrics["steps"] == 3 and metrics["start"]["signals"] == 32
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["modality"] == "wave" and state["data"] == {"source": "waves", "holdout": 8, "limit": None,
                                                             "count": 40, "length": 32, "seed": 0}
    prior = load_prior(run / "checkpoint.pt")  # the checkpoint alone rebuilds model, modality and data
    assert isinstance(prior.modality, WaveModality) and prior.modality.data == WaveData(holdout=8)
    assert get_modality("wave") is WaveModality

    report = evaluate.main(evaluate.parse_args(["--checkpoint", str(run / "checkpoint.pt"), "--residual",
                                                "--device", "cpu", "--out", str(tmp_path / "eval.json")]))
    assert report["modality"] == "wave" and report["signals"] == 8 and set(report["mse"]) == {"4", "16"}
    mean = report["baselines"]["mean wave"]["mse"]
    # the prior knows the family (measured 0.0049 and 0.00002 against the mean wave's 0.50)
    assert report["mse"]["4"] < 0.05 * mean["4"] and report["mse"]["16"] < 1e-3 * mean["16"], (report["mse"], mean)
    assert "| mean wave |" in (tmp_path / "eval.md").read_text()

    ckpt = ["--checkpoint", str(run / "checkpoint.pt"), "--device", "cpu"]
    explore.main(explore.parse_args(["encode", *ckpt, "--out", str(tmp_path / "latents.pt")]))
    latents = ["--latents", str(tmp_path / "latents.pt")]
    for command in (["interpolate", "--pair", "0", "1", "--steps", "3", "--size", "8"],
                    ["sample", *latents, "--count", "3", "--size", "8"],
                    ["directions", *latents, "--components", "2", "--size", "8"],
                    ["neighbours", *latents, "--count", "2", "--k", "2", "--size", "8"],
                    ["export", "--index", "1", "--size", "16"],
                    ["projector", *latents]):
        out = tmp_path / command[0] / ("out" if command[0] == "projector" else f"{command[0]}.png")
        if command[0] == "export":
            out = tmp_path / "export" / "wave1.pt"
        explore.main(explore.parse_args([command[0], *ckpt, *command[1:], "--out", str(out)]))
        assert out.exists(), command[0]
    siren = hs.load_exported_siren(tmp_path / "export" / "wave1.pt")
    wave = prior.modality.load("train")[1:2]
    with torch.no_grad():
        rendered = siren(hs.grid((32,)))  # the exported SIREN is the prior's completion of wave 1
        encoded = prior.model.render(prior.model.decode(WavePrior(prior.model, prior.modality).encode(wave)),
                                     hs.grid((32,))[None])[0]
    torch.testing.assert_close(rendered, encoded, rtol=0, atol=1e-5)
    assert json.loads((tmp_path / "neighbours" / "neighbours.json").read_text())["samples"]


def test_registering_a_modality_twice_or_without_a_data_type_is_an_error():
    class Other(WaveModality):
        pass

    with pytest.raises(ValueError, match="a modality named 'wave' is already registered"):
        register_modality(Other)

    class Nameless(Modality):
        pass

    with pytest.raises(TypeError, match="Nameless needs a name and a data_type deriving from DataConfig"):
        register_modality(Nameless)
    with pytest.raises(TypeError, match="WaveModality: expected data of type WaveData, got DataConfig"):
        WaveModality(DataConfig(source="x"))
    with pytest.raises(NotImplementedError, match="the 'wave' modality does not provide a data-driven start"):
        Modality.start_targets(WaveModality(WaveData()), None)
