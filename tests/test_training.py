"""Prior training: it learns, it resumes exactly, and run folders and checkpoints are safe."""

import dataclasses

import pytest
import torch

from hypersiren.modalities.image import ImageData, ImageModality
from hypersiren.prior import (Batch, BasisHyperNetwork, Context, HyperSirenConfig, PriorTrainer, TrainConfig,
                              load_prior, model_predictor, resume_trainer)
from hypersiren.runs import CHECKPOINT, load_checkpoint, prepare_run_dir, save_checkpoint

from support import smooth_images

IMAGES = ImageModality(ImageData())  # the tests pass their signals in memory

TINY_MODEL = HyperSirenConfig(value_dim=1, latent_dim=32, encoder_hidden=32, encoder_depth=2, siren_hidden=32,
                              siren_depth=3, head_hidden=32, heads="low_rank", rank=32)


def test_tiny_prior_overfits_a_handful_of_images(tmp_path):
    config = TrainConfig(steps=300, batch_size=4, lr=1e-3, min_context=5, max_context=20,
                         latent_weight=0.0, param_weight=0.0, checkpoint_every_s=1e9)
    trainer = PriorTrainer(TINY_MODEL, config, IMAGES, smooth_images(), tmp_path)
    logs = trainer.run()
    first = sum(log.terms["mse"] for log in logs[:10]) / 10
    last = sum(log.terms["mse"] for log in logs[-10:]) / 10
    assert last < first / 10, f"mse {first:.4f} -> {last:.4f}"
    assert (tmp_path / CHECKPOINT).is_file()


def test_resume_continues_exactly(tmp_path):
    config = TrainConfig(steps=6, batch_size=3, lr=1e-3, min_context=4, max_context=12, checkpoint_every_s=1e9)
    images = smooth_images()
    straight = [log.loss for log in PriorTrainer(TINY_MODEL, config, IMAGES, images, tmp_path / "a").run()]

    first = PriorTrainer(TINY_MODEL, TrainConfig(**{**config.__dict__, "steps": 3}), IMAGES, images,
                         tmp_path / "b")
    head = [log.loss for log in first.run()]
    resumed = resume_trainer(tmp_path / "b", signals=images, steps=6)
    assert resumed.step == 3
    tail = [log.loss for log in resumed.run()]
    assert head + tail == straight  # bit-identical on the CPU


BASIS_MODEL = HyperSirenConfig(value_dim=1, latent_dim=3, siren_hidden=16, siren_depth=3, heads="basis",
                               encoder="posterior", w0_first=10.0, w0=10.0)


def test_basis_prior_starts_from_pca_once_and_resumes_exactly(tmp_path, monkeypatch):
    images = smooth_images(n=12)
    config = TrainConfig(steps=4, batch_size=3, lr=1e-4, min_context=4, max_context=12, latent_weight=0.0,
                         param_weight=0.0, init_steps=20, init_lr=1e-3, checkpoint_every_s=1e9)
    straight = [log.loss for log in PriorTrainer(BASIS_MODEL, config, IMAGES, images, tmp_path / "a").run()]
    calls = []
    original = BasisHyperNetwork.fit_start
    monkeypatch.setattr(BasisHyperNetwork, "fit_start",
                        lambda self, *args, **kwargs: calls.append(1) or original(self, *args, **kwargs))
    head = [log.loss for log in PriorTrainer(BASIS_MODEL, dataclasses.replace(config, steps=2), IMAGES, images,
                                             tmp_path / "b").run()]
    resumed = resume_trainer(tmp_path / "b", signals=images, steps=4)
    tail = [log.loss for log in resumed.run()]
    assert calls == [1]  # the resumed run does not start over
    assert head + tail == straight
    # steps=0: the data-driven start alone, checkpointed; from all pixels it reconstructs about as well
    # as the projection on the top 3 principal components
    only = PriorTrainer(BASIS_MODEL, dataclasses.replace(config, steps=0, init_steps=400), IMAGES, images,
                        tmp_path / "c")
    assert only.run() == []
    state = load_checkpoint(tmp_path / "c" / CHECKPOINT)
    assert state["start_info"]["steps"] == 400 and state["step"] == 0 and state["elapsed"] > 0
    flat = only.train_set.values.flatten(1)
    centred = flat - flat.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    pca_error = (centred - centred @ vt[:3].T @ vt[:3]).square().mean().item()
    with torch.no_grad():
        error = only.compute_loss(_full_batch(only)).terms["mse"].item()
    assert error < 1.5 * pca_error + 1e-3, (error, pca_error)


def _full_batch(trainer):
    values = trainer.train_set.values
    coords = trainer.train_set.coords.expand(values.shape[0], -1, -1)
    return Batch(Context(coords, values, torch.ones(values.shape[:2], dtype=torch.bool)), coords, values)


def test_init_steps_need_a_model_with_a_data_driven_start(tmp_path):
    config = TrainConfig(steps=1, batch_size=2, min_context=2, max_context=8, init_steps=5)
    with pytest.raises(ValueError, match="init_steps=5, but this model has no data-driven initialisation"):
        PriorTrainer(TINY_MODEL, config, IMAGES, smooth_images(), tmp_path).run()
    with pytest.raises(ValueError, match="need init_steps >= 0 and init_lr > 0"):
        TrainConfig(init_steps=-1)


def test_checkpoint_is_of_the_right_kind(tmp_path):
    save_checkpoint(tmp_path / CHECKPOINT, {"kind": "something.else", "model_config": {}})
    with pytest.raises(ValueError, match="is a file of kind 'something.else', expected a hypersiren prior"):
        resume_trainer(tmp_path, signals=smooth_images())
    save_checkpoint(tmp_path / CHECKPOINT, {"kind": "hypersiren.prior", "model_config": {}})
    with pytest.raises(ValueError, match="has checkpoint format None, .* written by an earlier version: retrain"):
        resume_trainer(tmp_path, signals=smooth_images())
    save_checkpoint(tmp_path / CHECKPOINT, {"kind": "hypersiren.prior", "format": 99})
    with pytest.raises(ValueError, match="has checkpoint format 99, this hypersiren reads format 2 .upgrade"):
        resume_trainer(tmp_path, signals=smooth_images())


def test_bad_training_inputs(tmp_path):
    with pytest.raises(ValueError, match="the image signals have coord_dim=2 and value_dim=3, the model config "
                                         "coord_dim=2 and value_dim=1"):
        PriorTrainer(TINY_MODEL, TrainConfig(), IMAGES, torch.rand(4, 8, 8, 3), tmp_path)
    with pytest.raises(ValueError, match=r"ImageModality: expected images \[N, H, W, C\] with C = 1 or 3"):
        PriorTrainer(TINY_MODEL, TrainConfig(), IMAGES, torch.rand(4, 64, 1), tmp_path)
    with pytest.raises(TypeError, match="PriorTrainer: expected a Modality, got str"):
        PriorTrainer(TINY_MODEL, TrainConfig(), "image", smooth_images(), tmp_path)
    with pytest.raises(ValueError, match="max_context=200 exceeds the 64 pixels per image"):
        PriorTrainer(TINY_MODEL, TrainConfig(), IMAGES, smooth_images(), tmp_path)
    with pytest.raises(ValueError, match="need 1 <= min_context <= max_context"):
        TrainConfig(min_context=50, max_context=20)


def test_run_folder_rules(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already exists and is not empty; pass --resume .* or --overwrite"):
        prepare_run_dir(run)
    with pytest.raises(FileNotFoundError, match="cannot resume: no checkpoint.pt"):
        prepare_run_dir(run, resume=True)
    assert not any(prepare_run_dir(run, overwrite=True).iterdir())


def test_failed_checkpoint_write_keeps_the_last_good_one(tmp_path):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"step": 1, "weights": torch.arange(1000.0)})
    good = path.read_bytes()

    class DiskFull(OSError):
        """The injected failure; its own type, so no other error raised on the way can pass for it."""

    during_write = []

    class Unsaveable:
        def __reduce__(self):  # runs inside torch.save, after the temporary file was created
            during_write.extend(sorted(p.name for p in tmp_path.iterdir()))
            raise DiskFull("disk full while pickling step 2")

    with pytest.raises(DiskFull, match="^disk full while pickling step 2$") as raised:
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(1000), "bad": Unsaveable()})
    assert raised.type is DiskFull  # the write's own error, not wrapped or replaced by the clean-up
    assert len(during_write) == 2 and CHECKPOINT in during_write  # a temporary file beside the good one
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left behind
    assert load_checkpoint(path)["step"] == 1


def test_query_subsampling_predicts_a_random_subset_and_still_learns(tmp_path):
    config = TrainConfig(steps=300, batch_size=4, lr=1e-3, min_context=5, max_context=20, query_points=16,
                         latent_weight=0.0, param_weight=0.0, checkpoint_every_s=1e9)
    trainer = PriorTrainer(TINY_MODEL, config, IMAGES, smooth_images(), tmp_path)
    seen = []
    original = trainer.model.forward

    def spy(context, coords):
        seen.append(coords.shape)
        return original(context, coords)

    trainer.model.forward = spy
    logs = trainer.run()
    assert set(seen) == {torch.Size([4, 16, 2])}
    assert sum(log.terms["mse"] for log in logs[-10:]) < sum(log.terms["mse"] for log in logs[:10]) / 5
    with pytest.raises(ValueError, match="query_points must be >= 1 or None"):
        TrainConfig(query_points=0)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(steps=10, batch_size=2, lr=1e-3, min_context=4, max_context=12, checkpoint_every_s=0.0)
    trainer = PriorTrainer(TINY_MODEL, config, IMAGES, smooth_images(), tmp_path)
    real_step = trainer.train_step

    def failing_step():
        entry = real_step()
        if entry.step == 3:
            return entry._replace(loss=float("nan"), terms={**entry.terms, "mse": float("nan")})
        return entry

    trainer.train_step = failing_step
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 3 \(non-finite terms: mse\); the last good checkpoint"):
        trainer.run()
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 2


def test_training_resume_and_evaluation_follow_the_device(tmp_path, device):
    """The same run on `device` draws the same batches (the generator stays on the CPU) and reaches the
    CPU's losses; its checkpoint loads onto the device and scores like the CPU model."""
    config = TrainConfig(steps=4, batch_size=3, lr=1e-3, min_context=4, max_context=12, checkpoint_every_s=1e9)
    images = smooth_images()
    cpu = PriorTrainer(TINY_MODEL, config, IMAGES, images, tmp_path / "cpu")
    expected = [log.loss for log in cpu.run()]
    there = PriorTrainer(TINY_MODEL, dataclasses.replace(config, steps=2), IMAGES, images.to(device),
                         tmp_path / "there", device=device)
    losses = [log.loss for log in there.run()]
    resumed = resume_trainer(tmp_path / "there", signals=images, steps=4, device=device)
    losses += [log.loss for log in resumed.run()]
    assert {p.device.type for p in resumed.model.parameters()} == {device.type}
    assert resumed.train_set.values.device.type == device.type and resumed.generator.device.type == "cpu"
    assert losses == pytest.approx(expected, rel=1e-4, abs=1e-6)
    loaded = load_prior(tmp_path / "there" / CHECKPOINT, device=device)
    scores = IMAGES.evaluate(model_predictor(loaded.model), images.to(device))
    reference = IMAGES.evaluate(model_predictor(cpu.model), images)
    assert scores["mse"] == pytest.approx(reference["mse"], rel=1e-4, abs=1e-7)
