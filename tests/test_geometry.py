"""`hypersiren.geometry`: the batched SDF loss (analytic fields, batch == per-sample loop, closed form ==
autograd), meshing, the surface sampler and surface distances on hand-computed cases."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import hypersiren as hs
import hypersiren.fitting
from hypersiren.diff import siren_derivatives
from hypersiren.geometry import (
    Mesh,
    SdfBatch,
    SdfLossConfig,
    extract_mesh,
    face_areas_and_normals,
    orient_normals,
    oriented_point_sdf,
    sample_surface,
    sdf_loss,
    sdf_loss_terms,
    surface_distance,
)
from hypersiren.params import stack_params

W0 = 10.0  # first-layer frequency of the test SIRENs: smooth enough for SDFs

# --- the SDF loss -----------------------------------------------------------------------------------


def sphere_batch(batch: int, m: int, k: int, generator: torch.Generator, radius: float = 0.5) -> SdfBatch:
    directions = torch.randn(batch, m, 3, generator=generator, dtype=torch.float64)
    normals = directions / directions.norm(dim=-1, keepdim=True)
    off_surface = torch.rand(batch, k, 3, generator=generator, dtype=torch.float64) * 2 - 1
    return SdfBatch(radius * normals, normals, off_surface)


def test_exact_sphere_sdf_has_only_the_off_surface_term(generator):
    radius, config = 0.5, SdfLossConfig()
    batch = sphere_batch(2, 40, 30, generator, radius)
    points = torch.cat([batch.surface, batch.off_surface], dim=1)  # [B, M + K, 3]
    values = points.norm(dim=-1) - radius  # the exact SDF of the sphere
    gradients = points / points.norm(dim=-1, keepdim=True)
    loss = sdf_loss_terms(values, gradients, batch.normals, config)
    for term in (loss.surface, loss.normal, loss.eikonal):
        torch.testing.assert_close(term, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    by_hand = 100 * torch.exp(-100 * (batch.off_surface.norm(dim=-1) - radius).abs()).mean(1)
    torch.testing.assert_close(loss.off_surface, by_hand)
    torch.testing.assert_close(loss.total, by_hand)
    # twice the SDF: the surface still fits and the normals align, but |grad| = 2 everywhere
    doubled = sdf_loss_terms(2 * values, 2 * gradients, batch.normals, config)
    torch.testing.assert_close(doubled.eikonal, torch.full((2,), 50.0, dtype=torch.float64))
    # flipped normals: 1 - cos = 2 on every surface point
    flipped = sdf_loss_terms(values, gradients, -batch.normals, config)
    torch.testing.assert_close(flipped.normal, torch.full((2,), 200.0, dtype=torch.float64))
    # the surface term is the weighted mean |f| on the surface points only
    shifted = sdf_loss_terms(values + 0.01, gradients, batch.normals, config)
    torch.testing.assert_close(shifted.surface, torch.full((2,), 30.0, dtype=torch.float64))


def sirens(count: int) -> list[hs.Siren]:
    torch.manual_seed(0)
    return [hs.Siren(3, 1, hidden_dim=16, depth=3, w0_first=W0).double() for _ in range(count)]


@pytest.mark.parametrize("derivatives", ["closed_form", "autograd"])
def test_batched_sdf_loss_equals_the_loop_of_single_shapes(generator, derivatives):
    modules = sirens(3)
    batch = sphere_batch(3, 20, 25, generator)
    batched = sdf_loss(stack_params(modules), batch, w0_first=W0, w0=30.0, derivatives=derivatives)
    assert batched.total.shape == (3,)
    grads = torch.autograd.grad(batched.total.sum(), [p for m in modules for p in m.parameters()])
    per_module = len(list(modules[0].parameters()))  # a weight and a bias per layer
    for b, module in enumerate(modules):
        one = SdfBatch(*(t[b : b + 1] for t in batch))
        single = sdf_loss(module.params(), one, w0_first=W0, w0=30.0, derivatives=derivatives)
        for name in single._fields:
            torch.testing.assert_close(getattr(batched, name)[b], getattr(single, name)[0], rtol=1e-12, atol=1e-12)
        single_grads = torch.autograd.grad(single.total.sum(), list(module.parameters()))
        for got, want in zip(grads[per_module * b : per_module * (b + 1)], single_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_sdf_loss_derivatives_equal_autograd(generator):
    modules = sirens(2)
    params = stack_params(modules)
    batch = sphere_batch(2, 15, 10, generator)
    coords = torch.cat([batch.surface, batch.off_surface], dim=1).requires_grad_(True)
    closed = siren_derivatives(params, coords, w0_first=W0, w0=30.0, laplacian=False)
    values = hs.siren_forward(params, coords, w0_first=W0, w0=30.0)
    (autograd,) = torch.autograd.grad(values.sum(), coords)
    torch.testing.assert_close(closed.jacobian[..., 0, :], autograd, rtol=1e-10, atol=1e-12)
    jacrev = torch.func.vmap(torch.func.jacrev(lambda x: modules[0](x)))(coords[0].detach())  # [N, 1, 3]
    torch.testing.assert_close(closed.jacobian[0], jacrev, rtol=1e-10, atol=1e-12)
    losses = [sdf_loss(params, batch, w0_first=W0, w0=30.0, derivatives=d) for d in ("closed_form", "autograd")]
    torch.testing.assert_close(losses[0].total, losses[1].total, rtol=1e-12, atol=1e-12)
    parameters = [p for m in modules for p in m.parameters()]
    for a, b in zip(*(torch.autograd.grad(loss.total.sum(), parameters) for loss in losses)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sdf_loss_errors_name_the_problem(generator):
    params = stack_params(sirens(2))
    batch = sphere_batch(2, 4, 4, generator)
    with pytest.raises(ValueError, match="sdf_loss: derivatives must be one of"):
        sdf_loss(params, batch, w0_first=W0, w0=30.0, derivatives="numeric")
    with pytest.raises(ValueError, match=r"sdf_loss: expected SIRENs 3 -> 1, got 2 -> 1"):
        sdf_loss(hs.Siren(2, 1).params(), batch, w0_first=W0, w0=30.0)
    with pytest.raises(ValueError, match=r"sdf_loss: expected surface \[2, M, 3\] .*got \(3, 4, 3\)"):
        sdf_loss(params, sphere_batch(3, 4, 4, generator), w0_first=W0, w0=30.0)
    with pytest.raises(ValueError, match=r"sdf_loss: expected off_surface \[2, M, 3\] with at least one point"):
        sdf_loss(params, batch._replace(off_surface=batch.off_surface[:, :0]), w0_first=W0, w0=30.0)
    with pytest.raises(ValueError, match="sdf_loss: expected one normal per surface point"):
        sdf_loss(params, batch._replace(normals=batch.normals[:, :3]), w0_first=W0, w0=30.0)
    values, gradients = torch.zeros(2, 8), torch.zeros(2, 8, 3)
    with pytest.raises(ValueError, match=r"sdf_loss_terms: expected values \[B, N\] and gradients \[B, N, 3\]"):
        sdf_loss_terms(values, gradients[:, :7], batch.normals)
    with pytest.raises(ValueError, match=r"sdf_loss_terms: expected normals \[B, M, 3\] with B = 2 and 0 < M < N = 8"):
        sdf_loss_terms(values, gradients, torch.zeros(2, 8, 3))
    with pytest.raises(ValueError, match="SdfLossConfig: eikonal_weight must be >= 0"):
        SdfLossConfig(eikonal_weight=-1.0)
    with pytest.raises(ValueError, match="SdfLossConfig: off_surface_sharpness must be positive"):
        SdfLossConfig(off_surface_sharpness=0.0)


# --- meshing ----------------------------------------------------------------------------------------


def sphere(points):
    return points.norm(dim=-1) - 0.6


def test_chunked_marching_cubes_equals_one_slab_and_finds_the_sphere():
    whole = extract_mesh(sphere, resolution=40, chunk=100)
    chunked = extract_mesh(sphere, resolution=40, chunk=3, batch_points=500)
    assert len(chunked.faces) == len(whole.faces) and len(chunked.vertices) == len(whole.vertices)
    assert np.abs(np.sort(chunked.vertices, axis=0) - np.sort(whole.vertices, axis=0)).max() < 1e-6
    assert np.abs(np.linalg.norm(chunked.vertices, axis=1) - 0.6).max() < 0.01
    import trimesh

    assert trimesh.Trimesh(chunked.vertices, chunked.faces).is_watertight  # the slabs were welded
    _, normals = face_areas_and_normals(chunked)
    centres = chunked.vertices[chunked.faces].mean(1)
    assert ((normals * centres).sum(1) > 0).all()  # faces wind outwards, where the SDF grows


def test_chunked_marching_cubes_never_evaluates_the_whole_grid_at_once():
    sizes = []

    def plane(points):
        sizes.append(points.shape[0])
        return points[:, 0] - 0.1

    mesh = extract_mesh(plane, resolution=64, chunk=8, batch_points=1 << 20)
    assert max(sizes) == 64 * 64 and len(mesh.faces) > 0  # one grid plane per call, never the 64^3 grid


def test_marching_cubes_on_a_device(device):
    seen = []

    def field(points):
        seen.append(points.device)
        return sphere(points)

    mesh = extract_mesh(field, resolution=24, device=device)
    assert {d.type for d in seen} == {device.type} and len(mesh.faces) > 0
    assert len(extract_mesh(lambda p: sphere(p) + 10, resolution=8).faces) == 0  # no crossing: empty mesh
    with pytest.raises(ValueError, match="extract_mesh: expected resolution >= 2, chunk >= 1 and batch_points >= 1"):
        extract_mesh(sphere, resolution=1)


# --- the surface sampler ----------------------------------------------------------------------------

# two triangles: area 2 in the plane z = 0 (normal +z), area 0.5 in the plane x = 5 (normal -x)
TWO_FACES = Mesh(np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [5, 0, 0], [5, 0, 1], [5, 1, 0]], np.float32),
                 np.array([[0, 1, 2], [3, 4, 5]], np.int64))


def test_surface_samples_lie_on_the_faces_with_their_unit_normals():
    points, normals = sample_surface(TWO_FACES, 4000, seed=1)
    assert points.shape == normals.shape == (4000, 3) and points.dtype == normals.dtype == np.float32
    on_first = (np.abs(points[:, 2]) < 1e-6) & (points[:, 0] >= -1e-6) & (points[:, 1] >= -1e-6) \
        & (points[:, 0] + points[:, 1] <= 2 + 1e-5)
    on_second = (np.abs(points[:, 0] - 5) < 1e-6) & (points[:, 1] >= -1e-6) & (points[:, 2] >= -1e-6) \
        & (points[:, 1] + points[:, 2] <= 1 + 1e-5)
    assert (on_first ^ on_second).all()
    np.testing.assert_allclose(normals[on_first], np.tile([0, 0, 1], (on_first.sum(), 1)))
    np.testing.assert_allclose(normals[on_second], np.tile([-1, 0, 0], (on_second.sum(), 1)))
    assert abs(on_first.mean() - 0.8) < 0.03  # by area: 2 / (2 + 0.5)
    inside = points[on_first]  # uniform on the triangle: mean at its centroid (2/3, 2/3)
    np.testing.assert_allclose(inside[:, :2].mean(0), [2 / 3, 2 / 3], atol=0.03)
    again, _ = sample_surface(TWO_FACES, 4000, seed=1)
    np.testing.assert_array_equal(points, again)


def test_areas_and_normals_of_faces():
    area, normals = face_areas_and_normals(TWO_FACES)
    np.testing.assert_allclose(area, [2.0, 0.5])
    np.testing.assert_allclose(normals, [[0, 0, 1], [-1, 0, 0]])


def test_sampler_errors_name_the_problem():
    with pytest.raises(ValueError, match="sample_surface: count must be a positive int, got 0"):
        sample_surface(TWO_FACES, 0)
    with pytest.raises(ValueError, match="sample_surface: the mesh has no faces"):
        sample_surface(Mesh(TWO_FACES.vertices, np.zeros((0, 3), np.int64)), 10)
    with pytest.raises(ValueError, match=r"sample_surface: face indices must lie in \[0, 6\), got \[0, 6\]"):
        sample_surface(Mesh(TWO_FACES.vertices, np.array([[0, 1, 6]])), 10)
    with pytest.raises(ValueError, match=r"sample_surface: expected vertices \[V, 3\] and faces \[F, 3\]"):
        sample_surface(Mesh(TWO_FACES.vertices[:, :2], TWO_FACES.faces), 10)
    with pytest.raises(ValueError, match="sample_surface: the mesh's 1 faces have no area"):
        sample_surface(Mesh(TWO_FACES.vertices, np.array([[0, 1, 1]])), 10)


# --- distances --------------------------------------------------------------------------------------


def test_surface_distance_on_a_hand_computed_case():
    points = np.array([[0, 0, 0], [2, 0, 0]], float)
    normals = np.array([[0, 0, 1], [1, 0, 0]], float)
    reference = np.array([[0, 0, 0], [0, 1, 0], [0, 3, 0]], float)
    reference_normals = np.array([[0, 0, -1], [0, 1, 0], [0.6, 0.8, 0]], float)
    d = surface_distance(points, normals, reference, reference_normals, threshold=1.5)
    # points -> reference: 0 and 2 (mean 1); reference -> points: 0, 1 and 3 (mean 4/3)
    assert d.chamfer == pytest.approx((1 + 4 / 3) / 2)
    # |cos| points -> nearest reference: 1, 0; reference -> nearest point (all the origin): 1, 0, 0
    assert d.normal_consistency == pytest.approx((1 / 2 + 1 / 3) / 2)
    # within 1.5: 1 of 2 points (precision 1/2), 2 of 3 reference points (recall 2/3)
    assert (d.precision, d.recall) == pytest.approx((1 / 2, 2 / 3))
    assert d.fscore == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))  # 4/7
    at_edge = surface_distance(points, normals, reference, reference_normals, threshold=1.0)
    assert at_edge.recall == pytest.approx(2 / 3)  # a distance equal to the threshold counts


def test_surface_distance_of_a_set_to_itself_and_to_a_far_set():
    points, normals = sample_surface(TWO_FACES, 300, seed=0)
    same = surface_distance(points, normals, points, -normals)  # the sign of a normal does not count
    assert (same.chamfer, same.normal_consistency, same.fscore) == pytest.approx((0, 1, 1))
    far = surface_distance(points, normals, points + 1000, normals, threshold=1.0)
    assert far.chamfer == pytest.approx(1000 * np.sqrt(3), rel=0.01) and far.fscore == 0.0


def test_surface_distance_errors_name_the_problem():
    good = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"surface_distance: expected points \[P, 3\] with P >= 1, got shape \(2, 2\)"):
        surface_distance(np.zeros((2, 2)), good, good, good)
    with pytest.raises(ValueError, match=r"surface_distance: expected reference_normals \[P, 3\] with P >= 1, got shape \(0, 3\)"):
        surface_distance(good, good, good, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="surface_distance: expected one normal per point, got 2 points with 3 normals"):
        surface_distance(good, np.zeros((3, 3)), good, good)
    with pytest.raises(ValueError, match="surface_distance: threshold must be positive, got 0"):
        surface_distance(good, good, good, good, threshold=0)


# --- layering ---------------------------------------------------------------------------------------


def test_geometry_and_io_do_not_import_fitting_and_fitting_reexports_geometry():
    package = Path(hs.__file__).parent
    for folder in ("geometry", "io"):
        for path in (package / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                    assert not any("fitting" in name for name in names), f"{path} imports fitting"
    for name in ("Mesh", "extract_mesh", "surface_distance", "sample_surface"):
        assert getattr(hypersiren.fitting, name) is getattr(hypersiren.geometry, name)


def test_oriented_point_sdf_approximates_the_sphere_and_signs_by_the_normals():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20_000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)  # the unit sphere; outward normals = points
    queries = rng.uniform(-1.5, 1.5, size=(2_000, 3))
    exact = np.linalg.norm(queries, axis=1) - 1
    approx = oriented_point_sdf(points, points, queries)
    assert np.all(np.sign(approx[np.abs(exact) > 0.05]) == np.sign(exact[np.abs(exact) > 0.05]))
    assert np.abs(approx - exact).max() < 0.03  # at most about the gap between 20k samples of the sphere
    flipped = oriented_point_sdf(points, -points, queries)  # all normals inward: winding number -1 inside
    np.testing.assert_array_equal(flipped, approx)
    noisy = points.copy()
    noisy[::50] *= -1  # every 50th normal wrong: the winding number keeps the sign
    assert np.all(np.sign(oriented_point_sdf(points, noisy, queries))[np.abs(exact) > 0.05]
                  == np.sign(exact[np.abs(exact) > 0.05]))
    with pytest.raises(ValueError, match=r"oriented_point_sdf: expected queries \[N, 3\] with N >= 1, got \(4, 2\)"):
        oriented_point_sdf(points, points, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"oriented_point_sdf: expected normals \(20000, 3\) like the points"):
        oriented_point_sdf(points, points[:5], queries)


def _torus_samples(rng, count: int, major: float, minor: float) -> tuple[np.ndarray, np.ndarray]:
    """Points with outward normals on a torus about the y axis (angles uniform: not area-uniform, which the
    orientation does not need)."""
    around, tube = rng.uniform(0, 2 * np.pi, size=(2, count))
    ring = np.stack([np.cos(around), np.zeros(count), np.sin(around)], 1)  # [count, 3]
    normals = np.cos(tube)[:, None] * ring + np.sin(tube)[:, None] * np.array([0.0, 1.0, 0.0])
    return major * ring + minor * normals, normals


def test_orient_normals_makes_flipped_normals_consistent_and_outward():
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(3000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    torus, torus_normals = _torus_samples(rng, 3000, 0.6, 0.06)  # a thin tube, like an arm
    points = np.concatenate([sphere, torus + np.array([0.0, -2.0, 0.0])])  # two parts
    truth = np.concatenate([sphere, torus_normals])
    signs = rng.choice([-1.0, 1.0], size=(len(points), 1))  # half of the normals flipped at random
    oriented = orient_normals(points, truth * signs)
    np.testing.assert_array_equal(oriented, truth)  # every sign right, both sides of the plate outward
    np.testing.assert_array_equal(orient_normals(points, -truth), truth)  # all inward: every part turned out
    with pytest.raises(ValueError, match=r"orient_normals: expected normals \(6000, 3\) like the points"):
        orient_normals(points, truth[:5])
