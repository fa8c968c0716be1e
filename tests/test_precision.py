"""Mixed precision: bf16 autocast (any device) and fp16 with a gradient scaler (CUDA) in training, evaluation
and fitting stay close to float32, keep float32 parameters and losses, resume exactly, and are refused
clearly where they cannot run."""

import dataclasses
import logging
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hypersiren.devices import PRECISIONS, autocast, check_precision, grad_scaler
from hypersiren.fitting import FitConfig, fit_signal, preset_config
from hypersiren.forward import siren_forward
from hypersiren.modalities.image import ImageData, ImageModality
from hypersiren.params import SirenParams
from hypersiren.prior import (BasisHyperNetwork, Context, HyperSirenConfig, PriorTrainer, TrainConfig, get_preset,
                              model_predictor, resume_trainer)
from hypersiren.prior.refine import RefineConfig, refined_predictor
from hypersiren.runs import CHECKPOINT, load_checkpoint, save_checkpoint

from support import smooth_images

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ImageModality(ImageData())
# the `tiny` preset's model (low-rank heads) on grey 8 x 8 images
TINY = dataclasses.replace(get_preset("tiny").model, value_dim=1)
CONFIG = TrainConfig(steps=6, batch_size=4, lr=3e-4, min_context=5, max_context=30, checkpoint_every_s=1e9)


# ------------------------------------------------------------------------------------------- the helper


def test_autocast_and_scaler_per_precision():
    assert PRECISIONS[0] == "float32"
    with autocast("float32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert grad_scaler("float32", "cpu") is None and grad_scaler("bf16", "cpu") is None


@pytest.mark.parametrize("call", [lambda: check_precision("fp16", "cpu"), lambda: autocast("fp16", "cpu"),
                                  lambda: grad_scaler("fp16", torch.device("cpu"))])
def test_fp16_on_the_cpu_is_refused(call):
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device, got cpu: float16 autocast on cpu is slow or "
                                         "unsupported for training.*use 'bf16'"):
        call()


@pytest.mark.parametrize("make", [lambda: TrainConfig(precision="half"), lambda: FitConfig(precision="bfloat16"),
                                  lambda: check_precision("fp32")])
def test_unknown_precisions_are_refused_with_the_choices(make):
    with pytest.raises(ValueError, match="unknown precision .*; choose one of float32, bf16, fp16"):
        make()


def test_trainer_and_fit_refuse_fp16_on_the_cpu(tmp_path):
    with pytest.raises(ValueError, match="PriorTrainer: precision 'fp16' needs a CUDA device, got cpu"):
        PriorTrainer(TINY, dataclasses.replace(CONFIG, precision="fp16"), IMAGES, smooth_images(8), tmp_path)
    with pytest.raises(ValueError, match="fit_signal: precision 'fp16' needs a CUDA device"):
        fit_signal(FitConfig(precision="fp16"), tmp_path / "fit", device="cpu", progress=False)
    assert not (tmp_path / "fit").exists()  # refused before the run folder


# --------------------------------------------------------------------------------------- the core path


def test_siren_under_bf16_autocast_returns_float32_with_close_gradients(generator):
    shapes = ((32, 2), (32, 32), (32, 32), (1, 32))
    weights = tuple((torch.rand(3, *s, generator=generator) * 2 - 1) / s[1] for s in shapes)
    biases = tuple(torch.rand(3, s[0], generator=generator) * 0.2 - 0.1 for s in shapes)
    coords = torch.rand(3, 50, 2, generator=generator) * 2 - 1

    def run(precision, graph):
        params = SirenParams(tuple(w.clone().requires_grad_() for w in weights),
                             tuple(b.clone().requires_grad_() for b in biases))
        with autocast(precision, "cpu"):
            out = siren_forward(params, coords, w0_first=10.0, w0=10.0, higher_order=graph)  # graph: autograd's path
        out.square().sum().backward()
        return out, [p.grad for p in params.weights + params.biases]

    exact, exact_grads = run("float32", False)
    for graph in (False, True):  # the fused backward and autograd's agree on what bf16 gives
        out, grads = run("bf16", graph)
        assert out.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads)
        torch.testing.assert_close(out, exact, atol=0.05 * exact.abs().max().item(), rtol=0)
        for g, e in zip(grads, exact_grads):
            assert (g - e).norm() < 0.05 * e.norm()


@pytest.mark.parametrize("normals", [False, True], ids=["values", "values and normals"])
def test_posterior_under_bf16_autocast_is_float32_and_close(normals, generator):
    dims = 3 if normals else 2
    net = BasisHyperNetwork(8, ((32, dims), (32, 32), (1, 32)), w0_first=10.0, w0=10.0)
    coords = torch.rand(4, 40, dims, generator=generator) * 2 - 1
    values = torch.sin(3 * coords[..., :1]) * torch.cos(2 * coords[..., 1:2])
    mask = torch.ones(4, 40, dtype=torch.bool)
    mask[1, 25:] = False
    context = Context(coords, values, mask,
                      nn.functional.normalize(coords, dim=-1) if normals else None)  # normals of spheres
    mean, cov = net.posterior(context)
    with autocast("bf16", "cpu"):
        low_mean, low_cov = net.posterior(context)
    assert low_mean.dtype == low_cov.dtype == torch.float32
    # the features are bfloat16 (3 significant digits); the normal equations on them float32
    assert (low_mean - mean).norm() < 0.05 * mean.norm()
    assert (low_cov - cov).norm() < 0.05 * cov.norm()


# -------------------------------------------------------------------------------------------- training


def test_bf16_training_stays_close_to_float32_with_float32_parameters(tmp_path):
    images = smooth_images(8)
    exact = PriorTrainer(TINY, CONFIG, IMAGES, images, tmp_path / "float32").run()
    trainer = PriorTrainer(TINY, dataclasses.replace(CONFIG, precision="bf16"), IMAGES, images, tmp_path / "bf16")
    low = trainer.run()
    assert all(isinstance(log.loss, float) for log in low)
    for a, b in zip(exact, low):
        assert abs(a.loss - b.loss) < 0.01 * a.loss, (a.loss, b.loss)  # measured: 0.03 %
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(v.dtype == torch.float32 for s in trainer.optimizer.state.values() for v in s.values() if v.dim())
    state = load_checkpoint(tmp_path / "bf16" / CHECKPOINT)
    assert state["train_config"]["precision"] == "bf16" and state["scaler"] is None


def test_bf16_training_of_a_basis_prior_runs_its_posterior_in_float32(tmp_path):
    config = HyperSirenConfig(value_dim=1, latent_dim=3, siren_hidden=16, siren_depth=3, heads="basis",
                              encoder="posterior", w0_first=10.0, w0=10.0)
    train = dataclasses.replace(CONFIG, steps=3, latent_weight=0.0, param_weight=0.0, precision="bf16")
    exact = PriorTrainer(config, dataclasses.replace(train, precision="float32"), IMAGES, smooth_images(8),
                         tmp_path / "a").run()
    low = PriorTrainer(config, train, IMAGES, smooth_images(8), tmp_path / "b").run()
    for a, b in zip(exact, low):
        assert abs(a.loss - b.loss) < 0.01 * a.loss, (a.loss, b.loss)  # measured: 0.2 %


def test_bf16_run_resumes_bit_identically(tmp_path):
    config = dataclasses.replace(CONFIG, precision="bf16")
    images = smooth_images(8)
    straight = [log.loss for log in PriorTrainer(TINY, config, IMAGES, images, tmp_path / "a").run()]
    head = [log.loss for log in PriorTrainer(TINY, dataclasses.replace(config, steps=3), IMAGES, images,
                                             tmp_path / "b").run()]
    resumed = resume_trainer(tmp_path / "b", signals=images, steps=6)
    assert resumed.config.precision == "bf16"
    assert head + [log.loss for log in resumed.run()] == straight  # bit-identical on the CPU


def test_precision_may_change_on_resume_and_old_checkpoints_load(tmp_path):
    images = smooth_images(8)
    PriorTrainer(TINY, dataclasses.replace(CONFIG, steps=2), IMAGES, images, tmp_path).run()
    path = tmp_path / CHECKPOINT
    state = load_checkpoint(path)
    del state["scaler"]  # as written before mixed precision
    del state["train_config"]["precision"]
    save_checkpoint(path, state)
    resumed = resume_trainer(tmp_path, signals=images, steps=4, precision="bf16")
    assert resumed.config.precision == "bf16" and resumed.step == 2
    assert len(resumed.run()) == 2
    assert load_checkpoint(path)["train_config"]["precision"] == "bf16"


# ------------------------------------------------------------------------------------------ evaluation


def test_predictors_under_bf16_return_float32_close_to_float32(tmp_path, generator):
    trainer = PriorTrainer(TINY, CONFIG, IMAGES, smooth_images(8), tmp_path)
    trainer.run()
    model = trainer.model
    coords = torch.rand(2, 64, 2, generator=generator) * 2 - 1
    context = Context(coords[:, :20], torch.rand(2, 20, 1, generator=generator) * 2 - 1,
                      torch.ones(2, 20, dtype=torch.bool))
    for make in (lambda p: model_predictor(model, precision=p),
                 lambda p: refined_predictor(model, RefineConfig(steps=2, residual=True), IMAGES, precision=p)):
        exact = make("float32")(context, coords)
        low = make("bf16")(context, coords)
        assert low.dtype == torch.float32
        assert (low - exact).abs().max() < 0.05 * exact.abs().max() + 1e-3


# --------------------------------------------------------------------------------------------- fitting


def test_bf16_image_fit_reaches_its_psnr(tmp_path):
    results = {}
    for precision in ("float32", "bf16"):
        config = preset_config("image", "default", size=32, steps=60, hidden_dim=64, depth=4, image_every=1000,
                               precision=precision)
        results[precision] = fit_signal(config, tmp_path / precision, progress=False)["psnr"]
    # measured: 42.2 dB in float32, 40.4 dB in bf16 (w0 = 30 amplifies the rounding of the first layer)
    assert results["bf16"] > 37.0, results
    assert results["float32"] > results["bf16"] - 0.5, results


# --------------------------------------------------------------------------------------------- scripts


@pytest.mark.parametrize("script, args", [
    ("train/train_prior.py", ["--preset", "tiny", "--precision", "half", "--out", "OUT"]),
    ("evaluate/eval_prior.py", ["--checkpoint", "CKPT", "--precision", "fp32", "--out", "OUT.json"]),
    ("train/fit_signal.py", ["--task", "image", "--precision", "float16", "--out", "OUT"]),
    ("train/fit_signal.py", ["--task", "image", "--precision", "fp16", "--device", "cpu", "--out", "OUT"]),
])
def test_scripts_refuse_bad_precisions_with_status_2(script, args, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), *(str(tmp_path / a) if a.isupper() else a for a in args)])
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert ended.value.code == 2
    assert "precision" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_trains_and_resumes(precision, tmp_path):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    images = smooth_images(8)
    config = dataclasses.replace(CONFIG, precision=precision)
    exact = PriorTrainer(TINY, dataclasses.replace(config, precision="float32"), IMAGES, images, tmp_path / "a",
                         device="cuda").run()
    head = PriorTrainer(TINY, dataclasses.replace(config, steps=3), IMAGES, images, tmp_path / "b", device="cuda")
    logs = head.run()
    state = load_checkpoint(tmp_path / "b" / CHECKPOINT)
    assert (state["scaler"] is not None) == (precision == "fp16")
    resumed = resume_trainer(tmp_path / "b", signals=images, steps=6, device="cuda")
    logs += resumed.run()
    assert all(p.dtype == torch.float32 for p in resumed.model.parameters())
    for a, b in zip(exact, logs):
        assert np.isfinite(b.loss) and abs(a.loss - b.loss) < 0.05 * a.loss, (a.loss, b.loss)
