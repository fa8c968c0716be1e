"""Shape completion and its scoring: contexts, the corrected field, the single-SIREN baseline, the
protocol's tables, winding numbers, banded marching cubes and the eval_shapes.py script."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren.geometry import extract_mesh, winding_number
from hypersiren.modalities.shape.completion import (CompletionConfig, FitConfig, corrected_field, fitted_completer,
                                                    prior_completer)
from hypersiren.modalities.shape.protocol import (context_points, draw_context, evaluate_shapes, markdown_tables,
                                                  retrieval, score)
from hypersiren.prior import Context, HyperSirenConfig
from hypersiren.prior.model import HyperSiren

ROOT = Path(__file__).resolve().parents[1]


def sphere(count: int, radius: float = 0.7, seed: int = 0) -> torch.Tensor:
    """Oriented points of a sphere `[count, 6]`."""
    normals = torch.randn(count, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    normals = normals / normals.norm(dim=1, keepdim=True)
    return torch.cat([radius * normals, normals], dim=1).float()


def sphere_field(radius: float):
    return lambda x: x.norm(dim=-1) - radius


def test_contexts_are_fixed_by_seed_and_index_and_nested():
    shape = sphere(2000)
    small, large = (draw_context(shape, m, seed=3, index=1) for m in (100, 300))
    assert small.coords.shape == (1, 100, 3) and small.normals.shape == (1, 100, 3)
    torch.testing.assert_close(large.coords[:, :100], small.coords)  # the 100 are among the 300
    assert not torch.equal(draw_context(shape, 100, seed=3, index=2).coords, small.coords)
    torch.testing.assert_close(draw_context(shape, 100, seed=3, index=1).coords, small.coords)
    assert draw_context(shape, 10, seed=0, index=0, normals=False).normals is None
    with pytest.raises(ValueError, match="2500 context points asked for, but the shape has 2000"):
        draw_context(shape, 2500, seed=0, index=0)
    with pytest.raises(ValueError, match=r"expected one shape's oriented points \[P, 6\], got \(2000, 3\)"):
        draw_context(shape[:, :3], 10, seed=0, index=0)


def test_winding_number_is_one_inside_and_zero_outside_despite_flipped_normals():
    points = sphere(4000).numpy()
    queries = np.random.default_rng(0).uniform(-1.2, 1.2, size=(3000, 3))
    radius = np.linalg.norm(queries, axis=1)
    normals = points[:, 3:].copy()
    normals[::20] *= -1  # every 20th normal wrong
    w = winding_number(points[:, :3], normals, queries)
    assert np.abs(w[radius < 0.6] - 0.9).max() < 0.15  # 10% flipped: 0.9 of the full dipole sum
    assert np.abs(w[radius > 0.8]).max() < 0.1
    assert np.abs(winding_number(points[:, :3], points[:, 3:], queries)[radius < 0.6] - 1).max() < 0.05
    with pytest.raises(ValueError, match=r"winding_number: expected queries \[N, 3\] with N >= 1, got \(4, 2\)"):
        winding_number(points[:, :3], normals, np.zeros((4, 2)))


def test_banded_marching_cubes_equals_the_full_grid_and_evaluates_less():
    calls = []

    def field(x):
        calls.append(len(x))
        return sphere_field(0.6)(x) + 0.05 * torch.sin(5 * x[:, 0])

    full = extract_mesh(field, resolution=64)
    full_count, calls[:] = sum(calls), []
    banded = extract_mesh(field, resolution=64, band=4)
    # the same surface: the same vertices (up to order) and as many faces
    order = lambda v: v[np.lexsort(v.T)]
    np.testing.assert_allclose(order(banded.vertices), order(full.vertices), atol=1e-6)
    assert len(banded.faces) == len(full.faces)
    assert sum(calls) < full_count / 3
    with pytest.raises(ValueError, match="expected band >= 2 with resolution // band >= 2, got band=40"):
        extract_mesh(field, resolution=64, band=40)


def test_scores_of_an_exact_sphere_and_of_point_baselines():
    shape = sphere(20_000, radius=0.7)
    context = draw_context(shape, 1000, seed=0, index=0)
    results = evaluate_shapes(shape[None], fields={"exact": lambda c: sphere_field(0.7),
                                                   "too small": lambda c: sphere_field(0.5)},
                              points={"context points": context_points}, sizes=(1000,), resolution=64)
    exact, small, points = (results[k]["1000"] for k in ("exact", "too small", "context points"))
    # the sampling floor: half the mean gap of 20,000 reference and of 30,000 mesh points on this sphere,
    # 0.5 sqrt(area / n) averaged over the two sides = 0.0080
    floor = (0.5 * math.sqrt(4 * math.pi * 0.49 / 20_000) + 0.5 * math.sqrt(4 * math.pi * 0.49 / 30_000)) / 2
    assert exact["chamfer"] < 1.15 * floor and exact["normal_consistency"] > 0.999 and exact["fscore"] > 0.99
    assert small["chamfer"] == pytest.approx(0.2, abs=0.01) and small["fscore"] == 0  # 0.2 away everywhere
    # the context alone: distance 0 from its points, the mean gap of 1000 points from the rest
    assert points["chamfer"] == pytest.approx(score(*context_points(context), shape.numpy())["chamfer"])
    assert exact["mesh_s"] > 0 and points["mesh_s"] == 0 and exact["failed"] == 0
    assert len(exact["per_shape"]["chamfer"]) == 1
    empty = evaluate_shapes(shape[None], fields={"none": lambda c: (lambda x: x.norm(dim=-1) + 1)}, sizes=(10,),
                            resolution=16)["none"]["10"]
    assert empty["failed"] == 1 and math.isinf(empty["chamfer"])
    table = markdown_tables(results)
    assert "M = 1000 context points" in table and "| exact | 0.00" in table


def test_retrieval_returns_the_training_shape_nearest_to_the_context():
    train = torch.stack([sphere(500, radius=r, seed=i) for i, r in enumerate((0.3, 0.6, 0.9))])
    context = draw_context(sphere(500, radius=0.62, seed=7), 50, seed=0, index=0)
    points, normals = retrieval(train)(context)
    np.testing.assert_array_equal(points, train[1, :, :3].numpy())


def test_the_correction_leaves_an_exact_prior_alone_and_moves_a_wrong_one_onto_the_context():
    shape = sphere(4000, radius=0.7)
    context = draw_context(shape, 500, seed=0, index=0)
    probe = torch.randn(2000, 3, generator=torch.Generator().manual_seed(1))
    probe = 0.7 * probe / probe.norm(dim=1, keepdim=True)  # points of the true surface
    exact = corrected_field(sphere_field(0.7), context)(probe)
    # residuals and gradient errors are zero: nothing to correct, and the prior is trusted up to
    # `trusted_cut` spacings from the points; beyond that (the sampling's rare wide gaps) the field is held
    # `distance - trusted_cut * spacing` off zero
    from scipy.spatial import cKDTree

    points = context.coords[0].numpy()
    spacing = np.median(cKDTree(points).query(points, k=2)[0][:, 1])
    beyond = torch.as_tensor(cKDTree(points).query(probe.numpy())[0] - CompletionConfig().trusted_cut * spacing)
    assert exact[beyond <= 0].abs().max() < 1e-4 and (exact.abs() - beyond.clamp_min(0)).abs().max() < 1e-4
    assert (beyond > 0).double().mean() < 0.01  # theory for uniform points: 2^(-3^2) = 0.2% of the surface
    wrong = sphere_field(0.55)  # off by 0.15 everywhere
    for ctx in (context, Context(context.coords, context.values, context.mask, None)):  # with and without normals
        fixed = corrected_field(wrong, ctx)(probe)
        assert fixed.abs().mean() < 0.005 < 0.1 < wrong(probe).abs().mean()  # measured 0.0015
    # free space: a spurious blob of the prior far from every context point disappears
    blob = lambda x: torch.minimum(sphere_field(0.7)(x), (x - torch.tensor([0.0, 0.0, 0.95])).norm(dim=-1) - 0.15)
    outside = torch.tensor([[0.0, 0.0, 0.95]])
    assert blob(outside) < 0 and corrected_field(blob, context)(outside) > 0
    with pytest.raises(ValueError, match="CompletionConfig: cut must be positive, got 0"):
        CompletionConfig(cut=0)
    with pytest.raises(ValueError, match="CompletionConfig: trusted_cut must be >= cut, got 1.0 < 1.5"):
        CompletionConfig(trusted_cut=1.0)
    with pytest.raises(ValueError, match=r"corrected_field: expected the context of one shape, coords \[1, M, 3\]"):
        corrected_field(wrong, Context(context.coords.expand(2, -1, -1), context.values.expand(2, -1, -1),
                                       context.mask.expand(2, -1), None))


def test_a_prior_completer_decodes_the_context_and_a_fitted_siren_learns_the_sphere():
    torch.manual_seed(0)
    model = HyperSiren(HyperSirenConfig(coord_dim=3, value_dim=1, heads="low_rank", rank=8, latent_dim=8,
                                        encoder_hidden=16, encoder_depth=2, siren_hidden=16, siren_depth=3,
                                        head_hidden=16, context_normals=True)).eval()
    context = draw_context(sphere(1000), 200, seed=0, index=0)
    field = prior_completer(model, CompletionConfig(correct=False))(context)
    params = model.decode(model.encode(context))
    x = torch.rand(50, 3)
    torch.testing.assert_close(field(x), model.render(params, x[None])[0, :, 0])
    with pytest.raises(ValueError, match="reads context normals .* but the context has none"):
        model.encode(Context(context.coords, context.values, context.mask, None))
    fitted = fitted_completer(FitConfig(seconds=4.0, hidden=64, depth=3))(context)
    probe = sphere(1000, seed=5)[:, :3]
    assert fitted(probe).abs().mean() < 0.05  # the surface found to a few percent of the radius in seconds


@pytest.mark.slow
def test_eval_shapes_scores_a_tiny_prior_against_the_baselines(tmp_path):
    from hypersiren.prior.commands import train_prior

    sys.path.insert(0, str(ROOT / "evaluate"))
    import eval_shapes

    run = tmp_path / "run"
    train_prior(preset="shapes_tiny", out=run, overrides=["data.count=24", "data.points=1500", "data.holdout=3",
                                                          "train.init_steps=150"], image_every=0, progress=False)
    out = tmp_path / "eval.json"
    report = eval_shapes.main(eval_shapes.parse_args([
        "--checkpoint", str(run / "checkpoint.pt"), "--context", "100", "300", "--fit-seconds", "1",
        "--resolution", "48", "--meshes", str(tmp_path / "meshes"), "--device", "cpu", "--out", str(out)]))
    methods = report["methods"]
    assert set(methods) == {"prior", "prior + context", "SIREN fit (1 s)", "context points", "retrieval"}
    assert json.loads(out.read_text())["shapes"] == 3 and out.with_suffix(".md").exists()
    for m in ("100", "300"):
        assert methods["prior + context"][m]["chamfer"] < 0.035  # measured about 0.02 (1500-point references)
        assert methods["prior + context"][m]["chamfer"] < methods["context points"][m]["chamfer"]
    assert len(list((tmp_path / "meshes" / "context300").glob("*.ply"))) == 3
