"""The CNP baseline (model, training, resume, evaluation row), `--set` overrides, and TensorBoard image grids."""

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.config import apply_overrides, parse_field_overrides, parse_overrides
from hypersiren.modalities.image import (ImageData, ImageModality, completion_grid, context_image, evaluate,
                                         mean_image_predictor, preview_grid)
from hypersiren.prior import (CNPConfig, CNPPrediction, CNPTrainer, ConditionalNeuralProcess, Context, HyperSirenConfig,
                              PriorTrainer, TrainConfig, cnp_loss, load_cnp, load_prior, make_trainer, model_predictor,
                              resume_trainer)
from hypersiren.prior.commands import train_prior
from hypersiren.runs import CHECKPOINT, load_checkpoint, save_checkpoint

IMAGES = ImageModality(ImageData())  # the tests pass their images in memory

ROOT = Path(__file__).resolve().parents[1]
SMALL = CNPConfig(value_dim=1, hidden=32, representation_dim=32, encoder_depth=3, decoder_depth=3)
CNP_TRAIN = TrainConfig(steps=6, batch_size=3, lr=3e-3, clip_grad_norm=None, latent_weight=0.0, param_weight=0.0,
                        min_context=4, max_context=12, checkpoint_every_s=1e9)


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second thread only adds waiting, a lot of it when the CPU is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ramps(n=4, side=8):
    """Grey linear ramps in n directions, `[n, side, side, 1]` in [0.1, 0.9]: which one it is shows in a few pixels."""
    angles = torch.arange(n) * 2 * math.pi / n
    g = hs.grid((side, side)).reshape(side, side, 2)
    ramp = torch.cos(angles)[:, None, None] * g[..., 0] + torch.sin(angles)[:, None, None] * g[..., 1]
    return (0.5 + 0.4 * ramp).unsqueeze(-1)


def random_context(batch=3, m=20, seed=0, channels=3):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(batch, m, 2, generator=g, dtype=torch.float64) * 2 - 1
    values = torch.rand(batch, m, channels, generator=g, dtype=torch.float64) * 2 - 1
    return Context(coords, values, torch.ones(batch, m, dtype=torch.bool))


# --- the model -----------------------------------------------------------------------------------------

def test_cnp_is_invariant_to_point_order_and_masked_padding():
    torch.manual_seed(0)
    model = ConditionalNeuralProcess(CNPConfig(hidden=32, representation_dim=16)).double()
    context, query = random_context(), hs.grid((5, 5), dtype=torch.float64).expand(3, -1, -1)
    pred = model(context, query)
    assert pred.values.shape == pred.std.shape == (3, 25, 3) and pred.representation.shape == (3, 16)
    assert (pred.std >= 0.1).all()
    perm = torch.randperm(20)
    shuffled = Context(context.coords[:, perm], context.values[:, perm], context.mask[:, perm])
    torch.testing.assert_close(model(shuffled, query).values, pred.values, rtol=0, atol=1e-12)
    junk = random_context(m=7, seed=1)
    padded = Context(torch.cat([context.coords, junk.coords], 1), torch.cat([context.values, junk.values * 100], 1),
                     torch.cat([context.mask, torch.zeros(3, 7, dtype=torch.bool)], 1))
    torch.testing.assert_close(model(padded, query).values, pred.values, rtol=0, atol=1e-12)
    extra = padded._replace(mask=torch.ones(3, 27, dtype=torch.bool))
    assert (model.encode(extra) - pred.representation).abs().max() > 1e-3


def test_cnp_loss_is_the_gaussian_negative_log_likelihood():
    g = torch.Generator().manual_seed(0)
    mean, std, target = torch.randn(2, 5, 3, generator=g), torch.rand(2, 5, 3, generator=g) + 0.1, torch.randn(2, 5, 3)
    loss = cnp_loss(CNPPrediction(mean, std, torch.zeros(2, 4)), target)
    expected = -torch.distributions.Normal(mean, std).log_prob(target).sum(-1).mean()
    torch.testing.assert_close(loss.terms["nll"], expected)
    torch.testing.assert_close(loss.total, expected)
    torch.testing.assert_close(loss.terms["mse"], (mean - target).square().mean())
    torch.testing.assert_close(loss.terms["std"], std.mean())
    with pytest.raises(ValueError, match=r"cnp_loss: expected target \(2, 5, 3\) like the prediction, got \(2, 5, 1\)"):
        cnp_loss(CNPPrediction(mean, std, torch.zeros(2, 4)), target[..., :1])


def test_cnp_input_errors():
    model = ConditionalNeuralProcess(CNPConfig(hidden=8, representation_dim=8))
    context = random_context(channels=3)._replace(coords=torch.rand(3, 20, 2), values=torch.rand(3, 20, 3))
    with pytest.raises(ValueError, match=r"ConditionalNeuralProcess: samples \[1\] have no valid context point"):
        model.encode(context._replace(mask=torch.ones(3, 20, dtype=torch.bool).index_fill(0, torch.tensor([1]), False)))
    with pytest.raises(ValueError, match=r"ConditionalNeuralProcess: expected context coords \[B, M, 2\] and values "
                                         r"\[B, M, 3\], got \(3, 20, 2\) and \(3, 20, 1\)"):
        model.encode(context._replace(values=context.values[..., :1]))
    with pytest.raises(ValueError, match=r"ConditionalNeuralProcess: expected a bool mask \(3, 20\)"):
        model.encode(context._replace(mask=torch.ones(3, 20)))
    with pytest.raises(ValueError, match=r"ConditionalNeuralProcess.decode: expected query coords \[B, N, 2\] with "
                                         r"B=3, got \(2, 9, 2\)"):
        model(context, torch.rand(2, 9, 2))
    with pytest.raises(ValueError, match="CNPConfig: hidden must be a positive int, got 0"):
        CNPConfig(hidden=0)
    with pytest.raises(ValueError, match=r"CNPConfig: min_std must be in \(0, 1\), got 1.5"):
        CNPConfig(min_std=1.5)
    with pytest.raises(TypeError, match="model_predictor: expected a HyperSiren or a ConditionalNeuralProcess, got Linear"):
        model_predictor(torch.nn.Linear(2, 2))


# --- training ------------------------------------------------------------------------------------------

def test_tiny_cnp_overfits_a_handful_of_images(tmp_path):
    images = ramps()
    config = TrainConfig(steps=60, batch_size=8, lr=3e-3, clip_grad_norm=None, latent_weight=0.0, param_weight=0.0,
                         min_context=5, max_context=20, checkpoint_every_s=1e9)
    trainer = CNPTrainer(SMALL, config, IMAGES, images, tmp_path)
    before = evaluate(model_predictor(trainer.model), images, sizes=("10",))["mse"]["10"]
    trainer.model.train()
    trainer.run()
    after = evaluate(model_predictor(trainer.model), images, sizes=("10",))["mse"]["10"]
    mean_image = evaluate(mean_image_predictor(images), images, sizes=("10",))["mse"]["10"]
    # 10 pixels tell the ramps apart: the mse falls 5x in 60 steps, to a third of the mean image's
    assert after < before / 5 and after < mean_image / 3, f"mse {before:.4f} -> {after:.4f} (mean image {mean_image:.4f})"


def test_cnp_checkpoint_round_trip_and_exact_resume(tmp_path):
    images = ramps()
    straight = [log.loss for log in CNPTrainer(SMALL, CNP_TRAIN, IMAGES, images, tmp_path / "a").run()]
    first = make_trainer(SMALL, TrainConfig(**{**CNP_TRAIN.__dict__, "steps": 3}), IMAGES, images,
                         tmp_path / "b")
    assert isinstance(first, CNPTrainer)
    head = [log.loss for log in first.run()]
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["kind"] == "hypersiren.cnp"
    resumed = resume_trainer(tmp_path / "b", signals=images, steps=6)
    assert isinstance(resumed, CNPTrainer) and resumed.step == 3
    assert head + [log.loss for log in resumed.run()] == straight  # bit-identical on the CPU

    model, modality, state = load_cnp(tmp_path / "b" / CHECKPOINT)
    assert state["step"] == 6 and not model.training and modality.data == IMAGES.data
    context = random_context(channels=1)
    context = Context(context.coords.float(), context.values.float(), context.mask)
    query = hs.grid((4, 4)).expand(3, -1, -1)
    torch.testing.assert_close(model(context, query).values, resumed.model(context, query).values, rtol=0, atol=0)


def test_cnp_trainer_and_loader_errors(tmp_path):
    with pytest.raises(ValueError, match=r"CNPTrainer: expected latent_weight = param_weight = 0 .* got 0.1, 100.0"):
        CNPTrainer(SMALL, TrainConfig(min_context=4, max_context=12), IMAGES, ramps(), tmp_path)
    with pytest.raises(TypeError, match="PriorTrainer: expected a HyperSirenConfig, got CNPConfig"):
        PriorTrainer(SMALL, CNP_TRAIN, IMAGES, ramps(), tmp_path)
    with pytest.raises(TypeError, match="make_trainer: expected a model config of type HyperSirenConfig, CNPConfig, "
                                        "got dict"):
        make_trainer({}, CNP_TRAIN, IMAGES, ramps(), tmp_path)
    CNPTrainer(SMALL, CNP_TRAIN, IMAGES, ramps(), tmp_path / "cnp").save()
    with pytest.raises(ValueError, match=r"is a file of kind 'hypersiren.cnp', expected a hypersiren prior "
                                         r"\('hypersiren.prior'\)"):
        load_prior(tmp_path / "cnp" / CHECKPOINT)
    with pytest.raises(ValueError, match=r"holds a image conditional neural process, expected a shape one"):
        load_cnp(tmp_path / "cnp" / CHECKPOINT, modality="shape")
    save_checkpoint(tmp_path / CHECKPOINT, {"kind": "something.else"})
    with pytest.raises(ValueError, match=r"expected a conditional neural process \('hypersiren.cnp'\)"):
        load_cnp(tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match=r"resume_trainer: .* is a file of kind 'something.else', expected a "
                                         r"hypersiren prior \('hypersiren.prior'\) or conditional neural process"):
        resume_trainer(tmp_path, signals=ramps())


# --- figures -------------------------------------------------------------------------------------------

def test_context_image_and_completion_grid():
    coords = hs.grid((4, 4))[[0, 5, 15]].unsqueeze(0)  # pixels (0, 0), (1, 1), (3, 3)
    values = torch.tensor([[[1.0], [-1.0], [0.0]]])
    mask = torch.tensor([[True, True, False]])  # the last point is padding
    image = context_image(coords, values, mask, 4, 4)[0, ..., 0]
    expected = torch.full((4, 4), 0.5)
    expected[0, 0], expected[1, 1] = 1.0, 0.0
    assert torch.equal(image, expected)
    grid = completion_grid(torch.rand(2, 4, 4, 1), torch.rand(2, 4, 4, 1), torch.rand(2, 4, 4, 1), scale=3, pad=1)
    assert grid.shape == (3 * 13 - 1, 2 * 13 - 1, 3)
    preview = preview_grid(mean_image_predictor(ramps()), ramps(), context_points=500)  # more than the 64 pixels
    assert preview.shape == (3 * 9 - 1, 4 * 9 - 1, 3) and torch.equal(preview[-8:, :8], ramps()[0].expand(8, 8, 3))
    with pytest.raises(ValueError, match=r"context_image: expected coords \[B, M, 2\], values \[B, M, C\] and mask"):
        context_image(coords, values, mask[:, :2], 4, 4)
    with pytest.raises(ValueError, match="completion_grid: expected three image batches"):
        completion_grid(torch.rand(2, 4, 4, 1), torch.rand(2, 4, 4, 1), torch.rand(1, 4, 4, 1))
    with pytest.raises(ValueError, match="completion_grid: expected an integer scale >= 1, got 0"):
        completion_grid(*[torch.rand(2, 4, 4, 1)] * 3, scale=0)
    with pytest.raises(ValueError, match=r"preview_grid: expected images \[K, H, W, C\]"):
        preview_grid(mean_image_predictor(ramps()), ramps()[0])


# --- `--set` overrides ---------------------------------------------------------------------------------

SECTIONS = {"model": HyperSirenConfig, "train": TrainConfig}


def test_overrides_convert_to_the_field_types():
    parsed = parse_overrides(["train.lr=3e-4", "train.steps=10", "train.clip_grad_norm=None", "model.w0=10",
                              "model.heads=low_rank", "train.query_points=256"], SECTIONS)
    assert parsed == {"model": {"w0": 10.0, "heads": "low_rank"},
                      "train": {"lr": 3e-4, "steps": 10, "clip_grad_norm": None, "query_points": 256}}
    assert type(parsed["model"]["w0"]) is float
    configs = apply_overrides({"model": HyperSirenConfig(), "train": TrainConfig()}, ["train.batch_size=7"])
    assert configs["train"] == TrainConfig(batch_size=7) and configs["model"] == HyperSirenConfig()

    @dataclass(frozen=True)
    class Example:
        flag: bool = False
        sizes: tuple[int, ...] = (1,)
        pair: tuple[float, str] = (0.0, "a")
        names: list[str] | None = None

    assert parse_field_overrides(["flag=true", "sizes=(2, 3)", "pair=(1, 'b')", "names=['x', 'y']"], Example) == \
        {"flag": True, "sizes": (2, 3), "pair": (1.0, "b"), "names": ["x", "y"]}
    with pytest.raises(ValueError, match=r"parse_field_overrides: expected tuple\[int, ...\] for sizes, got '\(1, 2.5\)'"):
        parse_field_overrides(["sizes=(1, 2.5)"], Example)


@pytest.mark.parametrize("pair, message", [
    ("train.lrr=1", r"unknown field 'train.lrr' of TrainConfig; did you mean 'train.lr'\?"),
    ("trian.lr=1", r"unknown section 'trian' in 'trian.lr'; did you mean 'train.lr'\?"),
    ("lr=1", r"expected SECTION.FIELD=VALUE with SECTION one of model, train, got 'lr=1'; did you mean 'train.lr'\?"),
    ("train.xyzzy=1", r"unknown field 'train.xyzzy' of TrainConfig \(known: steps, batch_size, "),
    ("train.steps=1.5", r"expected int for train.steps, got '1.5'"),
    ("train.clip_grad_norm=big", r"expected float \| None for train.clip_grad_norm, got 'big'"),
    ("train.steps", r"expected KEY=VALUE, got 'train.steps'"),
])
def test_override_errors(pair, message):
    with pytest.raises(ValueError, match="parse_overrides: " + message):
        parse_overrides([pair], SECTIONS)


def test_override_errors_flat_and_range_checks():
    with pytest.raises(ValueError, match=r"parse_field_overrides: unknown field 'stpes' of TrainConfig; did you mean 'steps'\?"):
        parse_field_overrides(["stpes=3"], TrainConfig)
    with pytest.raises(ValueError, match="parse_field_overrides: expected bool for flag, got 'maybe'"):
        @dataclass
        class Flag:
            flag: bool = False

        parse_field_overrides(["flag=maybe"], Flag)
    with pytest.raises(ValueError, match="TrainConfig: lr must be positive, got -1.0"):
        apply_overrides({"train": TrainConfig()}, ["train.lr=-1"])
    with pytest.raises(TypeError, match="parse_overrides: expected a dataclass type, got"):
        parse_overrides(["a.b=1"], {"a": dict})
    with pytest.raises(TypeError, match="parse_overrides: expected a field of a type the command line can set, got"):
        @dataclass
        class Odd:
            table: dict = None

        parse_field_overrides(["table={}"], Odd)


# --- the scripts ---------------------------------------------------------------------------------------

def load_script(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_prior_set_and_image_summaries_and_eval_with_a_cnp_row(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, evaluate_script = load_script("train/train_prior.py"), load_script("evaluate/eval_prior.py")
    np.savez(tmp_path / "tiny.npz", images=np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8))
    common = ["--data", str(tmp_path / "tiny.npz"), "--set", "data.resolution=16", "--holdout", "2", "--batch-size", "2"]
    train.main(train.parse_args([*common, "--preset", "tiny", "--steps", "3", "--image-every", "2", "--image-count", "2",
                                 "--set", "model.rank=8", "--set", "train.lr=1e-3", "--out", str(tmp_path / "prior")]))
    config = json.loads((tmp_path / "prior" / "config.json").read_text())
    assert config["model"]["rank"] == 8 and config["train"]["lr"] == 1e-3 and config["kind"] == "hypersiren.prior"
    events = EventAccumulator(str(tmp_path / "prior"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["preview/context_prediction_truth"]
    shown = events.Images("preview/context_prediction_truth")
    assert [image.step for image in shown] == [2, 3]  # every 2 steps and at the end
    assert (shown[0].height, shown[0].width) == (3 * 129 - 1, 2 * 129 - 1)  # 16 px panels at 8x, 1 px gaps

    train.main(train.parse_args([*common, "--preset", "cnp_tiny", "--steps", "2", "--image-every", "0",
                                 "--set", "model.hidden=16", "--set", "model.representation_dim=16",
                                 "--out", str(tmp_path / "cnp")]))
    assert load_checkpoint(tmp_path / "cnp" / CHECKPOINT)["kind"] == "hypersiren.cnp"
    report = evaluate_script.main(evaluate_script.parse_args([
        "--checkpoint", str(tmp_path / "prior" / CHECKPOINT), "--cnp", str(tmp_path / "cnp" / CHECKPOINT),
        "--out", str(tmp_path / "eval.json")]))
    assert set(report["baselines"]) == {"mean image", "interpolation", "cnp"}
    assert set(report["baselines"]["cnp"]["mse"]) == {"10", "100", "half", "full"}
    assert "| cnp |" in (tmp_path / "eval.md").read_text()

    with pytest.raises(ValueError, match=r"parse_overrides: unknown field 'train.lrate' of TrainConfig; "
                                         r"did you mean 'train.lr'\?"):
        train.main(train.parse_args([*common, "--set", "train.lrate=1", "--out", str(tmp_path / "bad")]))
    assert not (tmp_path / "bad").exists()  # checked before the run folder is made
    with pytest.raises(ValueError, match=r"train_prior: train.steps given both by --set and by its own flag"):
        train.main(train.parse_args([*common, "--set", "train.steps=3", "--steps", "4", "--out", str(tmp_path / "bad")]))
    with pytest.raises(ValueError, match="train_prior: expected --image-every >= 0, --image-count >= 1 and "
                                         "--image-context >= 1, got 250, 0 and 100"):
        train_prior(preset="tiny", out=tmp_path / "bad", image_count=0)  # the script's --image-count refuses 0 itself
    with pytest.raises(ValueError, match="train_prior: --set changes a new run's configuration"):
        train.main(train.parse_args(["--resume", "--set", "train.lr=1", "--out", str(tmp_path / "cnp")]))
    other = tmp_path / "other"
    state = load_checkpoint(tmp_path / "cnp" / CHECKPOINT)
    save_checkpoint(other / "checkpoint.pt", {**state, "data": {**state["data"], "holdout": 1}})
    with pytest.raises(ValueError, match=r"eval_prior: expected the CNP to train on the prior's data, got "
                                         r"different holdout \(prior 2, cnp 1\)"):
        evaluate_script.main(evaluate_script.parse_args([
            "--checkpoint", str(tmp_path / "prior" / CHECKPOINT), "--cnp", str(other / "checkpoint.pt"),
            "--out", str(tmp_path / "e.json")]))
