"""Data-parallel training: 2 processes under torchrun (gloo) take the steps of 1 process on the same global
batch, a checkpoint resumes with another number of processes, a stop stops every process together; and
the pieces those rest on (shards of a batch, micro-batches, losses that add up over parts of a batch)."""

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren.modalities.image import ImageData, ImageModality
from hypersiren.modalities.shape import ShapeData, ShapeModality
from hypersiren.prior import (Batch, CNPConfig, CNPTrainer, Context, HyperSirenConfig, PriorTrainer, Ranks,
                              TrainConfig, join_torchrun)
from hypersiren.prior.distributed import (TrainingLoss, accumulate_gradients, shard_rows, slice_rows,
                                          unused_parameters)
from hypersiren.runs import CHECKPOINT, Interrupted, load_checkpoint

from support import smooth_images

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "train" / "train_prior.py"
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")

# 1 and 2 processes agree to float32 rounding, not bit for bit: the batch's gradient is summed in another order
# (two halves, then the all-reduce). The gradients, seen in Adam's moments, agree to about 1e-6 of each tensor's
# largest entry (measured); GRADIENT_RTOL allows 10 times that, and a shard counted twice or weighted wrongly
# would be off by tens of percent. Parameters differ more where a gradient entry is tiny: Adam divides each by
# its own running size, so an entry near its eps (1e-8) passes its rounding into the update almost undiminished
# (measured: up to 1.1e-6 after 2 or 10 steps of lr 3e-4, not growing). ATOL = lr / 30 allows that, while a
# wrong step moves nearly every parameter by about lr.
RTOL, ATOL, GRADIENT_RTOL = 1e-5, 1e-5, 1e-5


# -- the pieces, in one process -------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, world_size", [(1, 1), (5, 1), (5, 2), (6, 3), (7, 4), (9, 2)])
@pytest.mark.parametrize("micro_batch", [None, 1, 2, 3])
def test_shards_cover_the_batch_once_in_order(batch_size, world_size, micro_batch):
    parts = [shard_rows(batch_size, rank, world_size, micro_batch) for rank in range(world_size)]
    rows = [row for rank in parts for part in rank for row in range(part.start, part.stop)]
    assert rows == list(range(batch_size))
    sizes = [sum(part.stop - part.start for part in rank) for rank in parts]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert all(0 < part.stop - part.start <= (micro_batch or batch_size) for rank in parts for part in rank)


def test_bad_shards():
    with pytest.raises(ValueError, match="a global batch of 2 signals cannot give each of 3 processes one"):
        shard_rows(2, 0, 3)
    with pytest.raises(ValueError, match="expected 0 <= rank < world_size, got 2, 2"):
        shard_rows(4, 2, 2)
    with pytest.raises(ValueError, match="micro_batch must be >= 1 or None, got 0"):
        shard_rows(4, 0, 2, 0)
    with pytest.raises(ValueError, match="TrainConfig: micro_batch must be >= 1 or None, got 0"):
        TrainConfig(micro_batch=0)
    with pytest.raises(ValueError, match="Ranks: expected 0 <= rank < world_size, got rank=1, world_size=1"):
        Ranks(rank=1)


def test_slice_rows_cuts_nested_records_and_refuses_shared_tensors():
    coords = torch.rand(4, 5, 2)
    context = Context(coords, torch.rand(4, 5, 1), torch.ones(4, 5, dtype=torch.bool))  # normals None
    batch = Batch(context, coords, torch.rand(4, 5, 1))
    part = slice_rows(batch, slice(1, 3), 4)
    assert isinstance(part, Batch) and isinstance(part.context, Context) and part.context.normals is None
    assert torch.equal(part.context.values, context.values[1:3]) and torch.equal(part.coords, coords[1:3])
    assert slice_rows(batch, slice(0, 4), 4) is batch
    with pytest.raises(ValueError, match=r"expected every tensor of the batch to be batch-first \[4, ...\] .* "
                                         r"got \(1, 5, 2\)"):
        slice_rows(Batch(context, coords[:1], batch.values), slice(0, 2), 4)
    with pytest.raises(TypeError, match="slice_rows: expected a NamedTuple of batch-first tensors, got dict"):
        slice_rows({"coords": coords}, slice(0, 2), 4)


IMAGES = ImageModality(ImageData())
SHAPES = ShapeModality(ShapeData(count=6, points=300))
LOW_RANK = HyperSirenConfig(value_dim=1, latent_dim=8, encoder_hidden=16, encoder_depth=2, siren_hidden=16,
                            siren_depth=3, head_hidden=16, heads="low_rank", rank=8)
BASIS = dict(value_dim=1, latent_dim=3, siren_hidden=16, siren_depth=3, heads="basis", encoder="posterior",
             w0_first=10.0, w0=10.0)
TRAIN = TrainConfig(batch_size=6, min_context=4, max_context=20, query_points=24, latent_weight=0.1, param_weight=10.0)
CNP = CNPConfig(value_dim=1, hidden=16, representation_dim=16, encoder_depth=2, decoder_depth=2)
CASES = {  # trainer, model config, modality, train config
    "image low-rank prior": (PriorTrainer, LOW_RANK, IMAGES, TRAIN),
    "image basis prior": (PriorTrainer, HyperSirenConfig(**BASIS), IMAGES, TRAIN),
    "image cnp": (CNPTrainer, CNP, IMAGES, dataclasses.replace(TRAIN, latent_weight=0.0, param_weight=0.0)),
    "shape basis prior": (PriorTrainer, HyperSirenConfig(**{**BASIS, "coord_dim": 3}), SHAPES, TRAIN),
}


@functools.cache
def shapes() -> torch.Tensor:
    return SHAPES.load("train")


def make(case: str, run_dir: Path):
    trainer_type, model, modality, config = CASES[case]
    signals = (smooth_images(6) if modality is IMAGES else shapes()).double()
    return trainer_type(model, config, modality, signals, run_dir)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("world_size, micro_batch", [(1, 1), (2, None), (3, 1), (4, 2)])
def test_parts_of_a_batch_add_up_to_its_loss_and_gradient(case, world_size, micro_batch, float64, tmp_path):
    """Every loss is a mean over signals, so the parts' losses and gradients, weighted by their share of the
    batch as `accumulate_gradients` weighs them and averaged over processes as DDP does, are the batch's."""
    trainer = make(case, tmp_path)
    c = trainer.config
    batch = trainer.modality.sample_batch(trainer.train_set, c.batch_size, c, torch.Generator().manual_seed(1))
    params = dict(trainer.model.named_parameters())
    whole = trainer.compute_loss(batch)
    whole.total.backward()
    expected = {name: p.grad.clone() for name, p in params.items() if p.grad is not None}
    loss = TrainingLoss(trainer.model, trainer.compute_loss)
    total, terms, summed = 0.0, {}, {}
    for rank in range(world_size):
        trainer.model.zero_grad(set_to_none=True)
        part_total, part_terms = accumulate_gradients(loss, batch, batch_size=c.batch_size, micro_batch=micro_batch,
                                                      ranks=Ranks(rank, world_size))()
        total += part_total
        terms = {k: terms.get(k, 0.0) + v for k, v in part_terms.items()}
        for name, p in params.items():
            if p.grad is not None:
                summed[name] = summed.get(name, 0) + p.grad / world_size  # DDP's average
    assert total == pytest.approx(whole.total.item(), rel=1e-12)
    assert terms == pytest.approx({k: v.item() for k, v in whole.terms.items()}, rel=1e-12, abs=1e-15)
    assert summed.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(summed[name], expected[name], rtol=1e-10, atol=1e-13, msg=name)


def test_micro_batches_take_the_same_steps(tmp_path):
    config = dataclasses.replace(TRAIN, steps=3, lr=1e-3, checkpoint_every_s=1e9)
    whole = PriorTrainer(LOW_RANK, config, IMAGES, smooth_images(6), tmp_path / "whole")
    parts = PriorTrainer(LOW_RANK, dataclasses.replace(config, micro_batch=4), IMAGES, smooth_images(6),
                         tmp_path / "parts")
    losses = [[log.loss for log in trainer.run()] for trainer in (whole, parts)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    torch.testing.assert_close(parts.model.state_dict(), whole.model.state_dict(), rtol=RTOL, atol=ATOL)


def test_unused_parameters_are_found_and_gradients_cleared(tmp_path):
    basis_with_set_encoder = HyperSirenConfig(**{**BASIS, "encoder": "set"})  # its noise serves only the posterior
    for model, unused in ((basis_with_set_encoder, ["model.hypernet.log_noise"]), (LOW_RANK, [])):
        trainer = PriorTrainer(model, TRAIN, IMAGES, smooth_images(6), tmp_path)
        batch = IMAGES.sample_batch(trainer.train_set, 2, TRAIN, torch.Generator().manual_seed(0))
        loss = TrainingLoss(trainer.model, trainer.compute_loss)
        assert unused_parameters(loss, batch) == unused
        assert all(p.grad is None for p in trainer.model.parameters())


def test_single_process_ranks_and_bad_torchrun_settings(tmp_path, monkeypatch):
    ranks = Ranks()
    assert ranks.main and ranks.share({"a": 1}) == {"a": 1} and ranks.decide(1, 0) == (True, False)
    assert ranks.on_main(lambda: 3) == 3
    with pytest.raises(KeyError, match="raised on rank 0"):
        ranks.on_main(lambda: {}["raised on rank 0"])
    other = Ranks(rank=1, world_size=2)  # not joined: `share` stands in for rank 0's broadcast
    assert other.on_main(lambda: pytest.fail("only rank 0 runs it")) is None
    for shared, raised, message in ((FileExistsError, FileExistsError, "^folder exists$"),
                                    (Interrupted, RuntimeError, "^rank 0 failed: Interrupted: folder exists$")):
        monkeypatch.setattr(Ranks, "share", lambda self, value, shared=shared: (shared, "folder exists"))
        with pytest.raises(raised, match=message):
            other.on_main(lambda: None)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="PriorTrainer: batch_size=2 signals cannot be shared by 4 processes"):
        PriorTrainer(LOW_RANK, dataclasses.replace(TRAIN, batch_size=2), IMAGES, smooth_images(6), tmp_path,
                     ranks=Ranks(0, 4))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with join_torchrun(torch.device("cpu")) as alone:
        assert alone == Ranks() and not alone.joined
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="WORLD_SIZE, LOCAL_RANK not set while other torchrun variables are"):
        with join_torchrun(torch.device("cpu")):
            pass
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match="each process trains on cuda:LOCAL_RANK; pass --device cuda, not cuda:1"):
        with join_torchrun(torch.device("cuda:1")):
            pass
    monkeypatch.setenv("LOCAL_RANK", "64")
    with pytest.raises(ValueError, match="local rank 64 needs cuda:64, but this machine has .* CUDA device"):
        with join_torchrun(torch.device("cuda")):
            pass
    with pytest.raises(ValueError, match="runs on CUDA devices .NCCL. or the CPU .gloo., not on meta"):
        with join_torchrun(torch.device("meta")):
            pass


# -- real processes: torchrun with gloo on the CPU -------------------------------------------------------------

def train(*args, processes: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    """`train/train_prior.py ARGS` in 1 process, or in 2 under torchrun; one thread per process."""
    launcher = TORCHRUN if processes == 2 else ()
    result = subprocess.run([sys.executable, *launcher, SCRIPT, *map(str, args)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def parameters(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / CHECKPOINT)["model"]


def assert_same_training(run: Path, reference: Path, *, moved_from: Path | None = None) -> None:
    """Same step and generator, and to float32 rounding the same gradients (Adam's moments) and parameters;
    with `moved_from`, parameters that training moved by far more than the tolerance."""
    state, expected = load_checkpoint(run / CHECKPOINT), load_checkpoint(reference / CHECKPOINT)
    assert state["step"] == expected["step"] and torch.equal(state["generator"], expected["generator"])
    torch.testing.assert_close(state["model"], expected["model"], rtol=RTOL, atol=ATOL)
    moments = [(index, name, entries[name], expected["optimizer"]["state"][index][name])
               for index, entries in state["optimizer"]["state"].items() for name in ("exp_avg", "exp_avg_sq")]
    for index, name, value, reference_value in moments:
        gap = (value - reference_value).abs().max().item()
        assert gap <= GRADIENT_RTOL * reference_value.abs().max().item(), (index, name, gap)
    if moved_from is not None:
        start = parameters(moved_from)
        assert max((state["model"][k] - start[k]).abs().max().item() for k in start) > 10 * ATOL


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "images.npz"
    np.savez(path, images=np.random.default_rng(0).integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8))
    return path


def image_run(images: Path, out: Path, steps: int, *extra) -> list:
    # no clipping: a gradient wrongly scaled as a whole would be clipped back to the same step
    return ["--preset", "tiny", "--data", images, "--set", "data.resolution=16", "--set", "train.clip_grad_norm=None",
            "--batch-size", 6, "--steps", steps, "--image-every", 0, "--out", out, *extra]


@pytest.mark.slow
def test_two_processes_train_as_one_and_checkpoints_resume_with_either(images, tmp_path):
    """The `tiny` image prior, global batch 6: 2 steps in 2 processes (3 signals each, in micro-batches of 2
    and 1) equal 2 steps in 1 process; that checkpoint resumed by 1 process, and the 1-process one resumed
    by 2, reach the parameters of 4 steps in 1 process."""
    one, two = tmp_path / "one", tmp_path / "two"
    train(*image_run(images, tmp_path / "start", 0))
    train(*image_run(images, one, 2))
    train(*image_run(images, two, 2, "--micro-batch", 2), processes=2)
    assert_same_training(two, one, moved_from=tmp_path / "start")
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 2
    assert len(list(two.glob("events.out.tfevents.*"))) == 1 and not (two / "run.lock").exists()  # rank 0 alone
    assert json.loads((two / "config.json").read_text())["train"]["micro_batch"] == 2

    shutil.copytree(one, tmp_path / "one_then_two")
    train("--out", one, "--resume", "--steps", 4)  # the reference: 4 steps in 1 process
    train("--out", two, "--resume", "--steps", 4)
    assert_same_training(two, one)
    train("--out", tmp_path / "one_then_two", "--resume", "--steps", 4, processes=2)
    assert_same_training(tmp_path / "one_then_two", one)


@pytest.mark.slow
def test_two_processes_train_a_shape_prior_with_its_data_driven_start_as_one(tmp_path):
    """`shapes_tiny` (a basis prior: its PCA start runs in every process, rank 0's result is kept) for 3
    steps at a global batch of 4."""
    args = ["--preset", "shapes_tiny", "--set", "data.count=8", "--set", "data.points=500", "--set",
            "model.latent_dim=4", "--set", "train.init_steps=10", "--set", "train.min_context=20", "--set",
            "train.max_context=100", "--set", "train.query_points=64", "--set", "train.lr=1e-3", "--batch-size", 4,
            "--image-every", 0]
    train(*args, "--steps", 0, "--out", tmp_path / "start")
    train(*args, "--steps", 3, "--out", tmp_path / "one")
    train(*args, "--steps", 3, "--out", tmp_path / "two", processes=2)
    assert_same_training(tmp_path / "two", tmp_path / "one", moved_from=tmp_path / "start")
    assert load_checkpoint(tmp_path / "two" / CHECKPOINT)["start_info"]["steps"] == 10


@pytest.mark.slow
def test_sigterm_stops_every_process_after_the_same_step_with_a_checkpoint(images, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, *TORCHRUN, SCRIPT, *map(str, image_run(images, out, 100_000)), "--set",
               "train.checkpoint_every_steps=5"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT).exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)  # to torchrun, which passes it on to each process
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    stops = [line for line in stderr.splitlines() if "stopped by SIGTERM at step" in line]
    assert len(stops) == 2, stderr[-4000:]  # both processes, after the same step
    step = load_checkpoint(out / CHECKPOINT)["step"]
    assert all(f"at step {step} with a checkpoint" in line for line in stops) and 5 <= step < 100_000
    assert not (out / "run.lock").exists()
