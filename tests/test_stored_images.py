"""Training on images left on disk (`ImageData(stream=True)`, `StoredImages`): they read what `load_split`
reads into memory, the trainer takes the same steps and the basis start the same PPCA without holding the
collection, the scripts run on them, and bad settings give errors that say what to change."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren.io import square_resize
from hypersiren.modalities.image import ImageData, ImageModality, load_split
from hypersiren.modalities.image.data import StoredImages
from hypersiren.prior import HyperSirenConfig, PriorTrainer, TrainConfig, make_trainer, probabilistic_pca
from hypersiren.runs import load_checkpoint

from test_start_stream import assert_same_ppca, waves, write_image_folder, write_shards

ROOT = Path(__file__).resolve().parents[1]
LOW_RANK = HyperSirenConfig(value_dim=3, latent_dim=8, encoder_hidden=16, encoder_depth=2, siren_hidden=16,
                            siren_depth=3, heads="low_rank", head_hidden=16, rank=4, w0_first=10.0, w0=10.0)
BASIS = HyperSirenConfig(value_dim=3, latent_dim=4, siren_hidden=16, siren_depth=3, heads="basis", encoder="posterior",
                         w0_first=10.0, w0=10.0)


@pytest.fixture
def shards(tmp_path) -> tuple[Path, np.ndarray]:
    images = waves(40, side=10)
    write_shards(tmp_path / "shards", images, 7)
    return tmp_path / "shards", images


@pytest.mark.parametrize("kind", ["shards", "pictures", "faces"])
def test_stored_images_read_what_load_split_reads(tmp_path, kind):
    if kind == "faces":
        source = "faces"
    else:
        images, source = waves(30, side=8), str(tmp_path / kind)
        if kind == "shards":
            write_shards(tmp_path / kind, images, 4)
        else:
            write_image_folder(tmp_path / kind, images)
    data = dict(source=source, resolution=6, holdout=5, limit=27)
    for split in ("train", "all"):
        memory, stored = load_split(ImageData(**data), split), load_split(ImageData(**data, stream=True), split)
        assert isinstance(stored, StoredImages) and stored.shape == memory.shape and len(stored) == len(memory)
        torch.testing.assert_close(stored[:], memory, rtol=0, atol=0)
        torch.testing.assert_close(stored[3:9], memory[3:9], rtol=0, atol=0)
        torch.testing.assert_close(stored[torch.tensor([5, 0, 5, -1])], memory[[5, 0, 5, -1]], rtol=0, atol=0)
        torch.testing.assert_close(stored[2], memory[2], rtol=0, atol=0)
        torch.testing.assert_close(torch.cat(list(stored.chunks(slice(4, 20), chunk=5))), memory[4:20], rtol=0, atol=0)
        torch.testing.assert_close(stored.mean_image(), memory.mean(0, keepdim=True), rtol=1e-6, atol=1e-7)
        assert stored.to("meta")[[1, 2]].device == torch.device("meta") and stored[:2].device == torch.device("cpu")
    heldout = load_split(ImageData(**data, stream=True), "heldout")  # read into memory: evaluation needs it whole
    torch.testing.assert_close(heldout, load_split(ImageData(**data), "heldout"), rtol=0, atol=0)


def test_bad_stream_settings_say_what_to_change(tmp_path, shards):
    folder, images = shards
    np.savez(tmp_path / "faces.npz", images=images)
    with pytest.raises(ValueError, match=r"cannot stream .*faces.npz: expected an .npy array"):
        load_split(ImageData(source=str(tmp_path / "faces.npz"), stream=True), "train")
    with pytest.raises(ValueError, match=r"with holdout=0 they would be all 40 .* set data.holdout"):
        load_split(ImageData(source=str(folder), stream=True), "heldout")
    with pytest.raises(ValueError, match="holdout=40 must leave at least one of the 40 signals"):
        load_split(ImageData(source=str(folder), holdout=40, stream=True), "train")
    with pytest.raises(ValueError, match="stream must be true or false, got 'yes'"):
        ImageData(stream="yes")
    stored = load_split(ImageData(source=str(folder), stream=True), "train")
    with pytest.raises(IndexError, match="an index out of the 40 images"):
        stored[torch.tensor([3, 40])]


def _trainer(tmp_path, name, signals, model, **train):
    config = TrainConfig(steps=3, batch_size=5, lr=1e-3, min_context=2, max_context=20, latent_weight=0.0,
                         param_weight=0.0, checkpoint_every_s=1e9, **train)
    modality = ImageModality(ImageData(resolution=10))
    return make_trainer(model, config, modality, signals, tmp_path / name, device="cpu")


def test_training_on_stored_images_takes_the_same_steps(tmp_path, shards):
    folder, images = shards
    stored = load_split(ImageData(source=str(folder), resolution=10, holdout=4, stream=True), "train")
    memory = square_resize(images[:36], 10)
    runs = {}
    for name, signals in (("memory", memory), ("stored", stored)):
        trainer = _trainer(tmp_path, name, signals, LOW_RANK)
        trainer.run()
        runs[name] = trainer
    assert isinstance(runs["stored"].train_set.values, StoredImages)  # never read whole into the training set
    for (key, a), b in zip(runs["memory"].model.state_dict().items(), runs["stored"].model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=key)
    fresh = _trainer(tmp_path, "fresh", memory, LOW_RANK).model.state_dict()
    assert any(not torch.equal(fresh[key], value) for key, value in runs["memory"].model.state_dict().items())


def test_basis_start_on_stored_images_streams_the_in_memory_ppca(tmp_path, shards, monkeypatch):
    folder, images = shards
    stored = load_split(ImageData(source=str(folder), resolution=10, holdout=4, stream=True), "train")
    starts = []
    trainer = _trainer(tmp_path, "basis", stored, BASIS, init_steps=2, init_lr=1e-3)
    original = type(trainer.model.hypernet).fit_start
    monkeypatch.setattr(type(trainer.model.hypernet), "fit_start",
                        lambda self, coords, start, **kw: starts.append(start) or original(self, coords, start, **kw))
    monkeypatch.setattr(ImageModality, "start_targets", lambda *a: pytest.fail("the whole collection was read"))
    assert isinstance(trainer, PriorTrainer)
    trainer.initialise()
    values = ImageModality(ImageData()).prepare(square_resize(images[:36], 10), trainer.config, torch.device("cpu")).values
    assert_same_ppca(starts[0], probabilistic_pca(values, 4))


def test_train_and_evaluate_scripts_on_images_left_on_disk(tmp_path, shards):
    folder, _ = shards
    run = tmp_path / "run"
    common = [sys.executable, str(ROOT / "train" / "train_prior.py"), "--preset", "faces", "--data", str(folder),
              "--holdout", "6", "--out", str(run), "--image-every", "0", "--set", "data.stream=true",
              "--set", "train.init_steps=20", "--set", "model.latent_dim=8"]
    done = subprocess.run(common, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["data"]["stream"] is True and state["start_info"]["signals"] == 34
    report = tmp_path / "eval.json"
    done = subprocess.run([sys.executable, str(ROOT / "evaluate" / "eval_prior.py"), "--checkpoint",
                           str(run / "checkpoint.pt"), "--out", str(report)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mean image" in report.with_suffix(".md").read_text()
