"""Single-signal fitting: every task reaches a stated metric on a small signal; inputs are checked."""

import json
import math

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.fitting import FitConfig, fit_signal, learning_rate, load_siren, load_task, preset_config
from hypersiren.fitting.tasks import Task, derivatives, image_derivative_targets
from hypersiren.geometry import SdfLossConfig, sdf_loss
from hypersiren.io import (
    load_audio,
    load_image,
    load_video,
    moving_crop_video,
    packaged_image,
    save_audio,
    save_image,
    tone_sequence,
)

SMALL = dict(hidden_dim=64, depth=4, image_every=1000, log_every=5)


def fit(tmp_path, task, *, source=None, preset="default", device="cpu", **fields):
    config = preset_config(task, preset, **{**SMALL, **fields})
    metrics = fit_signal(config, tmp_path / task, source=source, device=device, progress=False, preset=preset)
    return metrics, tmp_path / task


def smooth_image(path, size=32):
    rows, cols = hs.grid((size, size)).reshape(size, size, 2).unbind(-1)
    image = 0.5 + 0.4 * torch.sin(2.5 * rows + 1) * torch.cos(2 * cols - 0.5)
    save_image(path, image.unsqueeze(-1).numpy())
    return path


def test_image_fit_reaches_psnr_and_writes_the_run_folder(tmp_path):
    metrics, run = fit(tmp_path, "image", size=32, steps=60)
    assert metrics["psnr"] > 35 and metrics["steps"] == 60 and metrics["task"] == "image"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["psnr"] == pytest.approx(metrics["psnr"]) and saved["seconds"] > 0
    assert json.loads((run / "config.json").read_text())["fit"]["size"] == 32
    assert list(run.glob("events.out.tfevents.*"))
    png = load_image(run / "reconstruction.png")
    truth = packaged_image("camera", size=32)
    assert png.shape == (32, 32, 1) and 10 * math.log10(1 / np.mean((png - truth) ** 2)) > 33
    siren = load_siren(run / "siren.pt")  # the saved network renders the same image
    rendered = (siren(hs.grid((32, 32))).clamp(-1, 1) + 1) / 2
    assert np.abs(rendered.detach().numpy().reshape(32, 32, 1) - png).max() < 1 / 255 + 1e-6


def test_image_fit_of_a_colour_file(tmp_path):
    rgb = packaged_image("astronaut", size=24)
    path = save_image(tmp_path / "astronaut.png", rgb)
    metrics, run = fit(tmp_path, "image", source=path, size=24, steps=80)
    assert metrics["psnr"] > 30
    assert load_image(run / "reconstruction.png").shape == (24, 24, 3)


def test_audio_fit_of_a_wav_file(tmp_path):
    save_audio(tmp_path / "tone.wav", tone_sequence(rate=4000, seconds=0.5), 4000)
    metrics, run = fit(tmp_path, "audio", source=tmp_path / "tone.wav", steps=150)
    assert metrics["psnr"] > 30
    samples, rate = load_audio(run / "reconstruction.wav")
    assert rate == 4000 and samples.shape == (2000,)


def test_video_fit_of_a_frames_array(tmp_path):
    frames = moving_crop_video(packaged_image("astronaut", size=64), frames=4, size=16)
    np.save(tmp_path / "clip.npy", (frames * 255).round().astype(np.uint8))
    metrics, run = fit(tmp_path, "video", source=tmp_path / "clip.npy", steps=150, batch_points=None)
    assert metrics["psnr"] > 30
    assert load_video(run / "reconstruction.npy").shape == (4, 16, 16, 3)
    decoded = load_video(run / "reconstruction.mp4")
    assert decoded.shape == (4, 16, 16, 3) and np.abs(decoded - frames).mean() < 0.06  # lossy H.264


@pytest.mark.parametrize("task,steps,min_psnr", [("poisson_grad", 300, 26), ("poisson_lapl", 300, 25),
                                                 ("poisson_blend", 300, 26)])
def test_poisson_fits_reach_psnr_after_the_free_offset(tmp_path, task, steps, min_psnr):
    image = smooth_image(tmp_path / "smooth.png") if task == "poisson_lapl" else None
    low = dict(w0_first=10.0) if task == "poisson_lapl" else {}  # a smooth image wants lower frequencies
    metrics, run = fit(tmp_path, task, source=image, size=32, steps=steps, **low)
    assert metrics["psnr"] > min_psnr
    assert load_image(run / "reconstruction.png").shape == (32, 32, 1)


def test_poisson_targets_are_the_derivatives_in_coordinate_units():
    n = 64
    rows, cols = hs.grid((n, n)).reshape(n, n, 2).double().unbind(-1)
    image = (torch.sin(2 * rows) * torch.cos(3 * cols)).numpy()
    inner = (slice(2, -2), slice(2, -2))
    lap = image_derivative_targets(image, "laplacian", None)[..., 0]
    assert np.abs(lap - (-13 * image))[inner].max() < 0.02
    grad = image_derivative_targets(image, "gradient", None)
    expected = torch.stack([2 * torch.cos(2 * rows) * torch.cos(3 * cols),
                            -3 * torch.sin(2 * rows) * torch.sin(3 * cols)], -1).numpy()
    assert np.abs(grad - expected)[inner].max() < 0.02


def test_sdf_fit_of_a_sphere_point_cloud_within_a_chamfer_bound(tmp_path):
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(4000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    np.savetxt(tmp_path / "sphere.xyz", np.concatenate([0.5 * normals + 0.1, normals], axis=1))
    metrics, run = fit(tmp_path, "sdf", source=tmp_path / "sphere.xyz", steps=100, batch_points=1000,
                       mesh_resolution=48, w0_first=5.0)  # a smooth shape: low first-layer frequency
    assert metrics["chamfer_rel_diagonal"] < 0.01 and metrics["normal_consistency"] > 0.99
    # within 1% of the diagonal (0.03 here, under the 48^3 grid's spacing of 0.04): 0.82 measured
    assert metrics["fscore"] > 0.7
    import trimesh

    mesh = trimesh.load(run / "mesh.ply")
    radii = np.linalg.norm(mesh.vertices - 0.1, axis=1)  # in the input's units: centre 0.1, radius 0.5
    assert abs(np.median(radii) - 0.5) < 0.02
    outward = (mesh.face_normals * (mesh.triangles_center - 0.1)).sum(1)
    assert (outward > 0).mean() > 0.99  # faces wind outwards


# Helmholtz: after 80 steps at lr 1e-3 the fit is at relative error 0.82 from the free-space solution
# (i/4) H0(k r) (measured). A zero field scores 1.0; the same fit with the source's sign flipped scores
# 1.28, with k instead of k^2 in the equation 1.31; a random SIREN 1.89. (A flipped absorbing layer is
# not told apart this early: 0.83, also after 400 steps.)
HELMHOLTZ_MAX_RELATIVE_ERROR = 0.9
# Wave: after 120 steps at lr 1e-3 the initial-value error is 0.71 of a zero field's (0.063 against the
# pulse's RMS 0.089, measured); a random SIREN scores 0.104, so a bound must be relative to the zero field.
WAVE_MAX_INITIAL_ERROR_VS_ZERO = 0.85


def test_helmholtz_and_wave_residuals_fall(tmp_path):
    runs = {"helmholtz": dict(batch_points=1000, steps=80, lr=1e-3, lr_final=None),
            "wave": dict(batch_points=1000, initial_points=500, steps=120, lr=1e-3, lr_final=None)}
    initial, final, tasks = {}, {}, {}
    for task, fields in runs.items():
        config = preset_config(task, **{**SMALL, **fields})
        torch.manual_seed(config.seed)
        siren = hs.Siren(*((2, 2) if task == "helmholtz" else (3, 1)), hidden_dim=64, depth=4)
        tasks[task] = load_task(config)
        initial[task] = tasks[task].metrics(siren)
        final[task] = fit_signal(config, tmp_path / task, progress=False)
        assert final[task]["residual"] < 0.8 * initial[task]["residual"], (task, initial[task], final[task])
    assert initial["helmholtz"]["relative_error"] > 1.5  # the metric is not small by construction
    assert final["helmholtz"]["relative_error"] < HELMHOLTZ_MAX_RELATIVE_ERROR, final["helmholtz"]
    wave = tasks["wave"]
    zero_field = wave.pulse(wave.eval_initial[:, 1:]).square().mean().sqrt().item()  # its initial_error
    assert final["wave"]["initial_error"] < WAVE_MAX_INITIAL_ERROR_VS_ZERO * zero_field, (zero_field, final["wave"])
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


def test_fit_input_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_image: no file at"):
        load_task(preset_config("image"), tmp_path / "missing.png")
    with pytest.raises(ValueError, match="takes no input file"):
        load_task(preset_config("wave"), tmp_path / "x")
    with pytest.raises(ValueError, match="only poisson_blend takes a second input, task 'image'"):
        load_task(preset_config("image", size=8), None, tmp_path / "b.png")
    with pytest.raises(ValueError, match="task 'image' has presets"):
        preset_config("image", "fast")
    with pytest.raises(ValueError, match="unknown FitConfig fields"):
        preset_config("image", lr_max=1.0)
    with pytest.raises(ValueError, match="image_derivative_targets: kind must be 'gradient' or 'laplacian'"):
        image_derivative_targets(np.zeros((4, 4)), "hessian", None)
    with pytest.raises(ValueError, match="image_derivative_targets: scale must be positive or None, got 0"):
        image_derivative_targets(np.zeros((4, 4)), "gradient", 0)


@pytest.mark.parametrize("fields,message", [
    (dict(velocity="random"), "FitConfig: velocity must be"),
    (dict(task="colour"), "FitConfig: task must be one of"),
    (dict(derivatives="numeric"), "FitConfig: derivatives must be one of"),
    (dict(steps=0), "FitConfig: steps must be >= 1"),
    (dict(lr=0.0), "FitConfig: lr must be positive"),
    (dict(batch_points=0), r"FitConfig: batch_points must be positive or None \(none\), got 0"),
    (dict(grad_clip=0.0), "FitConfig: grad_clip must be positive or None"),
    (dict(target_scale=-1.0), "FitConfig: target_scale must be positive or None"),
    (dict(batch_fraction=0.0), r"FitConfig: batch_fraction must be in \(0, 1\] or None"),
    (dict(batch_points=10, batch_fraction=0.5), r"FitConfig: set batch_points \(10\) or batch_fraction \(0.5\), not both"),
    (dict(task="wave"), "FitConfig: task 'wave' draws batch_points random points per step"),
    (dict(task="helmholtz", batch_points=None), "FitConfig: task 'helmholtz' draws batch_points"),
    (dict(pml_width=1.0), "FitConfig: pml_width must be in"),
    (dict(source_fraction=1.0), r"FitConfig: source_fraction must be in \[0, 1\)"),
    (dict(sdf_normal_weight=-1.0), "FitConfig: sdf_normal_weight must be >= 0"),
    (dict(sdf_off_surface_sharpness=0.0), "FitConfig: sdf_off_surface_sharpness must be positive"),
    (dict(fscore_threshold=0.0), "FitConfig: fscore_threshold must be positive"),
])
def test_fit_config_rejects_bad_values(fields, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**fields)


def test_none_means_none_for_batch_points_batch_fraction_and_grad_clip(tmp_path):
    total = 1000
    assert Task(FitConfig()).batch_size(total) == total  # neither: every point
    assert Task(FitConfig(batch_points=64)).batch_size(total) == 64
    assert Task(FitConfig(batch_points=5000)).batch_size(total) == total
    assert Task(FitConfig(batch_fraction=0.0038)).batch_size(total) == 4
    assert Task(FitConfig(batch_fraction=1e-6)).batch_size(total) == 1
    assert FitConfig().grad_clip is None and FitConfig().target_scale is None
    metrics, _ = fit(tmp_path, "image", size=8, steps=3, grad_clip=None)  # no clipping runs
    assert metrics["steps"] == 3


def test_sdf_task_loss_is_the_batched_geometry_loss_with_one_shape():
    config = preset_config("sdf", hidden_dim=32, depth=3, batch_points=50)
    task = load_task(config)
    batch = task.sample(torch.Generator().manual_seed(0))
    assert batch.surface.shape == (1, 50, 3) and batch.off_surface.shape == (1, 50, 3)
    siren = hs.Siren(3, 1, hidden_dim=32, depth=3, w0_first=config.w0_first)
    terms = task.loss(siren.params(), batch)
    expected = sdf_loss(siren.params(), batch, w0_first=config.w0_first, w0=config.w0, config=config.sdf_loss)
    for name in ("total", "surface", "off_surface", "normal", "eikonal"):
        torch.testing.assert_close(terms[name], getattr(expected, name)[0])


# `camera` at 16 x 16 and a 64-wide SIREN: 12.4 dB after one step, 44.4 dB after 40 on the CPU (measured)
DEVICE_FIT_MIN_PSNR = 38.0


def test_image_fit_on_a_device(tmp_path, device):
    metrics, run = fit(tmp_path, "image", size=16, steps=40, device=device)
    assert metrics["device"] == str(device) and metrics["psnr"] > DEVICE_FIT_MIN_PSNR
    assert json.loads((run / "config.json").read_text())["device"] == str(device)
    siren = load_siren(run / "siren.pt")  # saved on the CPU whatever the device
    assert next(siren.parameters()).device.type == "cpu"
    png = load_image(run / "reconstruction.png")
    assert png.shape == (16, 16, 1)


def test_fit_signal_checks_its_device_and_a_prebuilt_task(tmp_path):
    config = preset_config("image", **{**SMALL, "size": 8, "steps": 2})
    with pytest.raises(ValueError, match="resolve_device: unknown device 'gpu7'"):
        fit_signal(config, tmp_path / "a", device="gpu7", progress=False)
    task = load_task(config)
    with pytest.raises(ValueError, match="pass either a pre-built task or its source files, not both"):
        fit_signal(config, tmp_path / "b", task=task, source=tmp_path / "x.png", progress=False)
    with pytest.raises(ValueError, match="the pre-built task was made for 'image' on cpu"):
        fit_signal(FitConfig(**{**config.__dict__, "steps": 3}), tmp_path / "c", task=task, progress=False)
    with pytest.raises(ValueError, match="time_budget_s must be positive or None, got 0"):
        fit_signal(config, tmp_path / "d", time_budget_s=0, progress=False)
    assert fit_signal(config, tmp_path / "e", task=task, progress=False)["steps"] == 2


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
    sdf = preset_config("sdf", "paper").sdf_loss
    assert (sdf.surface_weight, sdf.off_surface_weight, sdf.normal_weight, sdf.eikonal_weight) == (3e3, 1e2, 1e2, 5e1)
    assert sdf.off_surface_sharpness == 100 and sdf == SdfLossConfig()
    assert preset_config("wave", "paper").hidden_dim == 512 and preset_config("helmholtz", "paper").lr == 2e-5
    config = FitConfig(lr=1e-3, lr_final=1e-5, steps=100)
    assert learning_rate(config, 0) == pytest.approx(1e-3) and learning_rate(config, 100) == pytest.approx(1e-5)
    assert learning_rate(config, 50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(paper, 400) == 1e-4
    assert learning_rate(config, 10, elapsed=5.0, time_budget_s=10.0) == pytest.approx((1e-3 + 1e-5) / 2)
