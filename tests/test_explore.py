"""evaluate/explore.py end to end, run the way a user runs it, on a tiny prior trained on the packaged faces.

The subcommands are independent once the run and its latents exist, so they run two at a time.
"""

import argparse
import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hypersiren as hs
from hypersiren.latent import (
    decode_and_render,
    fit_gaussian,
    fit_pca,
    load_latent_prior,
    load_latents,
)

ROOT = Path(__file__).resolve().parents[1]
EXPLORE = ROOT / "evaluate" / "explore.py"
S = 16  # the run's resolution and the panel size of the figures
PAD = 2

pytestmark = pytest.mark.slow  # real subprocesses training real runs: a minute or more


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def ok(result):
    assert result.returncode == 0, result.stderr
    return result


def png(path) -> torch.Tensor:
    """[H, W] in [0, 1] (the figures of a grey prior are grey)."""
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)


def panel(image: torch.Tensor, row: int, col: int) -> torch.Tensor:
    return image[row * (S + PAD) : row * (S + PAD) + S, col * (S + PAD) : col * (S + PAD) + S]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 1-step prior on 96 faces at 16x16 (4 held out), its latents, and every subcommand's result."""
    tmp = tmp_path_factory.mktemp("explore")
    ok(run(ROOT / "train" / "train_prior.py", "--preset", "tiny", "--data", "faces", "--holdout", "4", "--steps", "1",
           "--batch-size", "4", "--set", f"data.resolution={S}", "--out", tmp / "run"))
    ckpt = tmp / "run" / "checkpoint.pt"
    ok(run(EXPLORE, "encode", "--checkpoint", ckpt, "--out", tmp / "latents.pt"))
    commands = {
        "encode_npz": ("encode", "--split", "heldout", "--context", "20", "--out", tmp / "heldout.npz"),
        "interpolate": ("interpolate", "--pair", "0", "1", "--steps", "4", "--size", S, "--out", tmp / "interp.png"),
        "sample": ("sample", "--latents", tmp / "latents.pt", "--count", "5", "--columns", "3", "--temperature", "0",
                   "--size", S, "--out", tmp / "sample.png"),
        "sample_pca": ("sample", "--fit", "pca", "--components", "3", "--count", "4", "--size", S,
                       "--out", tmp / "sample_pca.png"),
        "directions": ("directions", "--latents", tmp / "latents.pt", "--components", "2", "--sigmas", "-1", "0", "1",
                       "--size", S, "--out", tmp / "directions.png"),
        "neighbours": ("neighbours", "--latents", tmp / "latents.pt", "--count", "2", "--k", "3", "--size", S,
                       "--out", tmp / "neighbours.png"),
        "export": ("export", "--index", "2", "--size", "24", "--out", tmp / "face2.pt"),
        "projector": ("projector", "--latents", tmp / "latents.pt", "--out", tmp / "projector"),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, EXPLORE, args[0], "--checkpoint", ckpt, *args[1:])
                   for name, args in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    with torch.no_grad():
        prior = load_latent_prior(ckpt)
    return tmp, ckpt, prior, results


@pytest.fixture(scope="module")
def explore():
    """The script as a module, for its error paths (in process: no second start-up)."""
    spec = importlib.util.spec_from_file_location("explore", EXPLORE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_encode_writes_named_latents_in_both_formats(tiny):
    tmp, ckpt, prior, results = tiny
    latents = load_latents(tmp / "latents.pt")
    assert latents.latents.shape == (96, 64) and latents.ids[:2] == ("train/0", "train/1")
    assert latents.meta == {"checkpoint": str(ckpt), "data": None, "split": None, "context": "full", "seed": 0}
    train = prior.load_signals()
    with torch.no_grad():
        torch.testing.assert_close(latents.latents[:8], prior.encode(train[:8]), rtol=0, atol=1e-6)
    ok(results["encode_npz"])
    heldout = load_latents(tmp / "heldout.npz")
    assert heldout.latents.shape == (4, 64) and heldout.ids == ("heldout/0", "heldout/1", "heldout/2", "heldout/3")
    assert heldout.meta["context"] == 20 and heldout.meta["split"] == "heldout"


def test_interpolate_rows_agree_at_the_ends(tiny):
    tmp, _, prior, results = tiny
    ok(results["interpolate"])
    image = png(tmp / "interp.png")
    assert image.shape == (3 * S + 2 * PAD, 4 * S + 3 * PAD)
    train = prior.load_signals()
    with torch.no_grad():
        direct = prior.to_images(prior.render(prior.decode(prior.encode(train[:2])), resolution=S))[..., 0]
    for col, which in ((0, 0), (3, 1)):
        for row in (0, 1):  # latent space, weight space: both the direct decode
            torch.testing.assert_close(panel(image, row, col), direct[which], rtol=0, atol=1.01 / 255)
        assert panel(image, 2, col).max() == 0  # no difference at the ends
    assert "largest difference" in results["interpolate"].stdout


def test_sample_at_temperature_zero_is_the_mean_latents_decode(tiny):
    tmp, _, prior, results = tiny
    ok(results["sample"])
    image = png(tmp / "sample.png")
    assert image.shape == (2 * S + PAD, 3 * S + 2 * PAD)  # 5 samples in rows of 3
    mean = fit_gaussian(load_latents(tmp / "latents.pt").latents).mean
    with torch.no_grad():
        expected = prior.to_images(decode_and_render(prior, mean[None], resolution=S))[0, ..., 0]
    for i in range(5):
        torch.testing.assert_close(panel(image, i // 3, i % 3), expected, rtol=0, atol=1.01 / 255)
    assert panel(image, 1, 2).min() == 1  # the unused slot is blank
    ok(results["sample_pca"])
    pca_image = png(tmp / "sample_pca.png")
    assert pca_image.shape == (S, 4 * S + 3 * PAD)
    assert (panel(pca_image, 0, 0) - panel(pca_image, 0, 1)).abs().max() > 0  # temperature 1: distinct samples


def test_directions_sweep_through_the_mean(tiny):
    tmp, _, prior, results = tiny
    ok(results["directions"])
    image = png(tmp / "directions.png")
    assert image.shape == (2 * S + PAD, 3 * S + 2 * PAD)
    pca = fit_pca(load_latents(tmp / "latents.pt").latents, components=2)
    with torch.no_grad():
        mean = prior.to_images(decode_and_render(prior, pca.mean[None], resolution=S))[0, ..., 0]
        plus = prior.to_images(decode_and_render(prior, (pca.mean + pca.std[1] * pca.components[1])[None],
                                                 resolution=S))[0, ..., 0]
    for row in (0, 1):
        torch.testing.assert_close(panel(image, row, 1), mean, rtol=0, atol=1.01 / 255)
    torch.testing.assert_close(panel(image, 1, 2), plus, rtol=0, atol=1.01 / 255)
    assert "explained variance" in results["directions"].stdout


def test_neighbours_lists_the_nearest_training_images(tiny):
    tmp, _, prior, results = tiny
    ok(results["neighbours"])
    assert png(tmp / "neighbours.png").shape == (2 * S + PAD, 4 * S + 3 * PAD)
    report = json.loads((tmp / "neighbours.json").read_text())
    assert len(report["samples"]) == 2 and report["data_nearest_other_rmse_median"] > 0
    train = prior.load_signals()
    for sample in report["samples"]:
        assert len(sample["neighbours"]) == 3 and all(i.startswith("train/") for i in sample["neighbours"])
        assert sample["rmse"] == sorted(sample["rmse"])
    # the panels right of a sample are its neighbours, upsampled from the data (S = the run's resolution)
    image = png(tmp / "neighbours.png")
    first = int(report["samples"][0]["neighbours"][0].split("/")[1])
    torch.testing.assert_close(panel(image, 0, 1), train[first, ..., 0], rtol=0, atol=0.51 / 255)


def test_export_writes_a_plain_siren_that_renders_the_prediction(tiny):
    tmp, _, prior, results = tiny
    ok(results["export"])
    siren = hs.load_exported_siren(tmp / "face2.pt")
    assert isinstance(siren, hs.Siren) and siren.config == prior.siren
    train = prior.load_signals()
    coords = hs.grid((24, 24))
    with torch.no_grad():
        params = prior.decode(prior.encode(train[2:3]))
        torch.testing.assert_close(siren(coords)[None], prior.model.render(params, coords[None]), rtol=0, atol=1e-5)
        expected = ((siren(coords) + 1) / 2).clamp(0, 1).reshape(24, 24)
    torch.testing.assert_close(png(tmp / "face2.png"), expected, rtol=0, atol=0.51 / 255)
    assert torch.load(tmp / "face2.pt", weights_only=True)["meta"]["id"] == "train/2"


def test_projector_writes_an_embedding_with_thumbnails(tiny):
    tmp, _, _, results = tiny
    ok(results["projector"])
    config = (tmp / "projector" / "projector_config.pbtxt").read_text()
    assert "sprite" in config and f"single_image_dim: {S}" in config
    tensors = np.loadtxt(tmp / "projector" / "00000" / "latents" / "tensors.tsv", dtype=np.float32)
    assert torch.equal(torch.from_numpy(tensors), load_latents(tmp / "latents.pt").latents)
    labels = (tmp / "projector" / "00000" / "latents" / "metadata.tsv").read_text().split()
    assert labels[:2] == ["train/0", "train/1"] and len(labels) == 96


def test_clear_errors(tiny, explore):
    tmp, ckpt, _, _ = tiny
    with pytest.raises(argparse.ArgumentTypeError, match="expected 'full' or a positive number of context points"):
        explore.context_size("many")
    with pytest.raises(FileNotFoundError, match="load_latents: no latents file at"):
        explore.main(explore.parse_args(["sample", "--checkpoint", str(ckpt), "--latents", str(tmp / "missing.pt"),
                                         "--out", str(tmp / "x.png")]))
    with pytest.raises(ValueError, match="--pair 96 is not an index of the 96 images of the split"):
        explore.main(explore.parse_args(["interpolate", "--checkpoint", str(ckpt), "--pair", "0", "96",
                                         "--out", str(tmp / "x.png")]))
    with pytest.raises(ValueError, match="holds latents of size 3, but the prior's are 64"):
        hs.latent.save_latents(tmp / "small.pt", hs.latent.LatentSet(torch.zeros(2, 3), ("a", "b"), {}))
        explore.main(explore.parse_args(["directions", "--checkpoint", str(ckpt), "--latents", str(tmp / "small.pt"),
                                         "--out", str(tmp / "x.png")]))
    with pytest.raises(ValueError, match="--components applies to --fit pca"):
        explore.main(explore.parse_args(["sample", "--checkpoint", str(ckpt), "--components", "3",
                                         "--out", str(tmp / "x.png")]))
    with pytest.raises(SystemExit):  # argparse's usage error: "expected a positive int, got '0'"
        explore.parse_args(["sample", "--checkpoint", str(ckpt), "--columns", "0", "--out", str(tmp / "x.png")])
    with pytest.raises(ValueError, match="--index 200 is not an index of the 96 images of the split"):
        explore.main(explore.parse_args(["export", "--checkpoint", str(ckpt), "--index", "200",
                                         "--out", str(tmp / "x.pt")]))
    heldout = load_latents(tmp / "heldout.npz")  # relabelled as encoded from the training split
    hs.latent.save_latents(tmp / "heldout_as_train.npz", heldout._replace(meta={**heldout.meta, "split": None}))
    with pytest.raises(ValueError, match="heldout_as_train.npz holds 4 latents, but its data has 96 signals"):
        explore.main(explore.parse_args(["directions", "--checkpoint", str(ckpt), "--latents",
                                         str(tmp / "heldout_as_train.npz"), "--out", str(tmp / "x.png")]))
    with pytest.raises(ValueError, match="is a file of kind 'hypersiren.siren'.*load_exported_siren"):
        explore.main(explore.parse_args(["sample", "--checkpoint", str(tmp / "face2.pt"), "--out", str(tmp / "y.png")]))
    with pytest.raises(ValueError, match="of kind None, .*a plain state_dict"):
        torch.save(hs.Siren(2, 1).state_dict(), tmp / "plain.pt")
        explore.main(explore.parse_args(["encode", "--checkpoint", str(tmp / "plain.pt"), "--out", str(tmp / "z.pt")]))
