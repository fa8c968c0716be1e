"""Single-signal fitting: every task reaches a stated metric on a small signal; inputs are checked."""

import json
import logging
import math

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.fitting import (
    FitConfig,
    extract_mesh,
    fit_signal,
    learning_rate,
    load_siren,
    load_task,
    preset_config,
    signals,
)
from hypersiren.fitting.tasks import derivatives, image_derivative_targets

SMALL = dict(hidden_dim=64, depth=4, image_every=1000, log_every=5)


def fit(tmp_path, task, *, input=None, preset="default", **fields):
    config = preset_config(task, preset, **{**SMALL, **fields})
    metrics = fit_signal(config, tmp_path / task, input=input, progress=False, preset=preset)
    return metrics, tmp_path / task


def smooth_image(path, size=32):
    rows, cols = hs.grid((size, size)).reshape(size, size, 2).unbind(-1)
    image = 0.5 + 0.4 * torch.sin(2.5 * rows + 1) * torch.cos(2 * cols - 0.5)
    signals.save_image(path, image.unsqueeze(-1).numpy())
    return path


def test_image_fit_reaches_psnr_and_writes_the_run_folder(tmp_path):
    metrics, run = fit(tmp_path, "image", size=32, steps=60)
    assert metrics["psnr"] > 35 and metrics["steps"] == 60 and metrics["task"] == "image"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["psnr"] == pytest.approx(metrics["psnr"]) and saved["seconds"] > 0
    assert json.loads((run / "config.json").read_text())["fit"]["size"] == 32
    assert list(run.glob("events.out.tfevents.*"))
    png = signals.load_image(run / "reconstruction.png")
    truth = signals.packaged_image("camera", size=32)
    assert png.shape == (32, 32, 1) and 10 * math.log10(1 / np.mean((png - truth) ** 2)) > 33
    siren = load_siren(run / "siren.pt")  # the saved network renders the same image
    rendered = (siren(hs.grid((32, 32))).clamp(-1, 1) + 1) / 2
    assert np.abs(rendered.detach().numpy().reshape(32, 32, 1) - png).max() < 1 / 255 + 1e-6


def test_image_fit_of_a_colour_file(tmp_path):
    rgb = signals.packaged_image("astronaut", size=24)
    path = signals.save_image(tmp_path / "astronaut.png", rgb)
    metrics, run = fit(tmp_path, "image", input=path, size=24, steps=80)
    assert metrics["psnr"] > 30
    assert signals.load_image(run / "reconstruction.png").shape == (24, 24, 3)


def test_audio_fit_of_a_wav_file(tmp_path):
    signals.save_audio(tmp_path / "tone.wav", signals.tone_sequence(rate=4000, seconds=0.5), 4000)
    metrics, run = fit(tmp_path, "audio", input=tmp_path / "tone.wav", steps=150)
    assert metrics["psnr"] > 30
    samples, rate = signals.load_audio(run / "reconstruction.wav")
    assert rate == 4000 and samples.shape == (2000,)


def test_video_fit_of_a_frames_array(tmp_path):
    frames = signals.moving_crop_video(signals.packaged_image("astronaut", size=64), frames=4, size=16)
    np.save(tmp_path / "clip.npy", (frames * 255).round().astype(np.uint8))
    metrics, run = fit(tmp_path, "video", input=tmp_path / "clip.npy", steps=150, batch_points=0)
    assert metrics["psnr"] > 30
    assert signals.load_video(run / "reconstruction.npy").shape == (4, 16, 16, 3)
    decoded = signals.load_video(run / "reconstruction.mp4")
    assert decoded.shape == (4, 16, 16, 3) and np.abs(decoded - frames).mean() < 0.06  # lossy H.264


@pytest.mark.parametrize("task,steps,min_psnr", [("poisson_grad", 300, 26), ("poisson_lapl", 300, 25),
                                                 ("poisson_blend", 300, 26)])
def test_poisson_fits_reach_psnr_after_the_free_offset(tmp_path, task, steps, min_psnr):
    image = smooth_image(tmp_path / "smooth.png") if task == "poisson_lapl" else None
    low = dict(w0_first=10.0) if task == "poisson_lapl" else {}  # a smooth image wants lower frequencies
    metrics, run = fit(tmp_path, task, input=image, size=32, steps=steps, **low)
    assert metrics["psnr"] > min_psnr
    assert signals.load_image(run / "reconstruction.png").shape == (32, 32, 1)


def test_poisson_targets_are_the_derivatives_in_coordinate_units():
    n = 64
    rows, cols = hs.grid((n, n)).reshape(n, n, 2).double().unbind(-1)
    image = (torch.sin(2 * rows) * torch.cos(3 * cols)).numpy()
    inner = (slice(2, -2), slice(2, -2))
    lap = image_derivative_targets(image, "laplacian", 0.0)[..., 0]
    assert np.abs(lap - (-13 * image))[inner].max() < 0.02
    grad = image_derivative_targets(image, "gradient", 0.0)
    expected = torch.stack([2 * torch.cos(2 * rows) * torch.cos(3 * cols),
                            -3 * torch.sin(2 * rows) * torch.sin(3 * cols)], -1).numpy()
    assert np.abs(grad - expected)[inner].max() < 0.02


def test_sdf_fit_of_a_sphere_point_cloud_within_a_chamfer_bound(tmp_path):
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(4000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    np.savetxt(tmp_path / "sphere.xyz", np.concatenate([0.5 * normals + 0.1, normals], axis=1))
    metrics, run = fit(tmp_path, "sdf", input=tmp_path / "sphere.xyz", steps=100, batch_points=1000,
                       mesh_resolution=48, w0_first=5.0)  # a smooth shape: low first-layer frequency
    assert metrics["chamfer_rel_diagonal"] < 0.01 and metrics["normal_consistency"] > 0.99
    import trimesh

    mesh = trimesh.load(run / "mesh.ply")
    radii = np.linalg.norm(mesh.vertices - 0.1, axis=1)  # in the input's units: centre 0.1, radius 0.5
    assert abs(np.median(radii) - 0.5) < 0.02


def test_helmholtz_and_wave_residuals_fall(tmp_path):
    for task, fields in (("helmholtz", dict(batch_points=1000)), ("wave", dict(batch_points=1000, initial_points=500))):
        config = preset_config(task, **{**SMALL, **fields, "steps": 60})
        torch.manual_seed(config.seed)
        initial = load_task(config).metrics(hs.Siren(*((2, 2) if task == "helmholtz" else (3, 1)), hidden_dim=64, depth=4))
        metrics = fit_signal(config, tmp_path / task, progress=False)
        assert metrics["residual"] < 0.8 * initial["residual"], (task, initial, metrics)
    assert metrics["initial_error"] < 0.12  # wave: the initial pulse (peak 1) is matched
    assert (tmp_path / "helmholtz" / "field.png").is_file() and (tmp_path / "wave" / "field.mp4").is_file()


def test_task_losses_are_the_same_with_autograd_derivatives():
    for task in ("poisson_lapl", "sdf", "helmholtz", "wave"):
        config = preset_config(task, hidden_dim=32, depth=3, batch_points=64, initial_points=16, size=16)
        tasks = load_task(config), load_task(FitConfig(**{**config.__dict__, "derivatives": "autograd"}))
        torch.manual_seed(0)
        siren = hs.Siren(tasks[0].in_dim, tasks[0].out_dim, hidden_dim=32, depth=3)
        losses, grads = [], []
        for t in tasks:
            loss = t.loss(siren.params(), t.sample(torch.Generator().manual_seed(0)))["total"]
            losses.append(loss)
            grads.append([torch.zeros_like(p) if g is None else g  # unused: the last bias in a Laplacian loss
                          for p, g in zip(siren.parameters(), torch.autograd.grad(loss, list(siren.parameters()),
                                                                                  allow_unused=True))])
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item() + 1e-12)


def test_autograd_hessian_diagonal_route_equals_closed_form():
    siren = hs.Siren(3, 2, hidden_dim=16, depth=3).double()
    x = torch.rand(1, 7, 3, dtype=torch.float64) * 2 - 1
    closed = derivatives(siren.params(), x, FitConfig(), hessian_diagonal=True)
    auto = derivatives(siren.params(), x, FitConfig(derivatives="autograd"), hessian_diagonal=True)
    for a, b in zip(closed, auto):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_chunked_marching_cubes_equals_one_slab_and_finds_the_sphere():
    def sphere(points):
        return points.norm(dim=-1) - 0.6

    whole = extract_mesh(sphere, resolution=40, chunk=100)
    chunked = extract_mesh(sphere, resolution=40, chunk=3, batch_points=500)
    assert len(chunked.faces) == len(whole.faces) and len(chunked.vertices) == len(whole.vertices)
    assert np.abs(np.sort(chunked.vertices, axis=0) - np.sort(whole.vertices, axis=0)).max() < 1e-6
    assert np.abs(np.linalg.norm(chunked.vertices, axis=1) - 0.6).max() < 0.01
    import trimesh

    assert trimesh.Trimesh(chunked.vertices, chunked.faces).is_watertight  # the slabs were welded


def test_chunked_marching_cubes_never_evaluates_the_whole_grid_at_once():
    sizes = []

    def plane(points):
        sizes.append(points.shape[0])
        return points[:, 0] - 0.1

    mesh = extract_mesh(plane, resolution=64, chunk=8, batch_points=1 << 20)
    assert max(sizes) == 64 * 64 and len(mesh.faces) > 0  # one grid plane per call, never the 64^3 grid


def test_stereo_wav_is_mixed_down_with_a_note(tmp_path, caplog):
    from scipy.io import wavfile

    left, right = np.full(100, 0.5, np.float32), np.full(100, -0.1, np.float32)
    wavfile.write(tmp_path / "stereo.wav", 8000, np.stack([left, right], 1))
    with caplog.at_level(logging.INFO):
        samples, rate = signals.load_audio(tmp_path / "stereo.wav")
    assert samples.shape == (100,) and np.allclose(samples, 0.2) and rate == 8000
    assert "mixing them down to mono" in caplog.text


def test_integer_wav_is_scaled_to_unit_range(tmp_path):
    from scipy.io import wavfile

    wavfile.write(tmp_path / "int.wav", 8000, np.array([-32768, 0, 16384, 32767], np.int16))
    samples, _ = signals.load_audio(tmp_path / "int.wav")
    np.testing.assert_allclose(samples, [-1, 0, 0.5, 32767 / 32768], atol=1e-6)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_image: no file at"):
        load_task(preset_config("image"), tmp_path / "missing.png")
    (tmp_path / "cloud.xyz").write_text("0 0 0 1 0\n1 1 1 0 1\n")
    with pytest.raises(ValueError, match="expected 6 columns 'x y z nx ny nz'.*got 5 columns"):
        signals.load_oriented_points(tmp_path / "cloud.xyz")
    (tmp_path / "nan.xyz").write_text("0 0 nan 1 0 0\n1 1 1 0 1 0\n")
    with pytest.raises(ValueError, match="non-finite values"):
        signals.load_oriented_points(tmp_path / "nan.xyz")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read .*empty.wav as a wav file"):
        signals.load_audio(tmp_path / "empty.wav")
    from scipy.io import wavfile

    wavfile.write(tmp_path / "silent.wav", 8000, np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="silent.wav holds no samples"):
        signals.load_audio(tmp_path / "silent.wav")
    (tmp_path / "noise.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read .*noise.png as an image"):
        signals.load_image(tmp_path / "noise.png")
    np.save(tmp_path / "bad.npy", np.full((2, 4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="non-finite values"):
        signals.load_video(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected frames \[T, H, W, C\]"):
        signals.load_video(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="takes no input file"):
        load_task(preset_config("wave"), tmp_path / "x")
    with pytest.raises(ValueError, match="task 'image' has presets"):
        preset_config("image", "fast")
    with pytest.raises(ValueError, match="unknown FitConfig fields"):
        preset_config("image", lr_max=1.0)
    with pytest.raises(ValueError, match="FitConfig: velocity must be"):
        FitConfig(velocity="random")


def test_non_finite_loss_stops_with_the_model_saved(tmp_path):
    config = preset_config("image", **{**SMALL, "size": 16, "steps": 50, "lr": 1e30})
    with pytest.raises(FloatingPointError, match="the last finite model is in"):
        fit_signal(config, tmp_path / "run", progress=False)
    assert load_siren(tmp_path / "run" / "siren.pt").hidden_dim == 64


def test_presets_and_learning_rate_schedule():
    paper = preset_config("image", "paper")
    assert (paper.hidden_dim, paper.depth, paper.w0_first, paper.w0, paper.lr, paper.lr_final) == (256, 5, 30, 30, 1e-4, None)
    assert preset_config("audio", "paper").w0_first == 3000
    assert preset_config("video", "paper").hidden_dim == 1024 and preset_config("video", "paper").batch_fraction == 0.0038
    assert preset_config("sdf", "paper").sdf_weights == (3e3, 1e2, 1e2, 5e1)
    assert preset_config("wave", "paper").hidden_dim == 512 and preset_config("helmholtz", "paper").lr == 2e-5
    config = FitConfig(lr=1e-3, lr_final=1e-5, steps=100)
    assert learning_rate(config, 0) == pytest.approx(1e-3) and learning_rate(config, 100) == pytest.approx(1e-5)
    assert learning_rate(config, 50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(paper, 400) == 1e-4
