"""The shape modality's data layer: generated shapes, point files, mesh folders, occupancy grids, splits."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hypersiren.geometry import Mesh
from hypersiren.io import save_mesh
from hypersiren.modalities.shape import (ShapeData, capsule_mesh, ellipsoid_mesh, generate_shapes, load_mesh_folder,
                                         load_occupancy_npz, load_oriented_npz, load_shapes, load_split,
                                         normalise_shape, torus_mesh)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the checkout
MODELNET = DATA / "modelnet40_person" / "modelnet40_person_pc10k.npz"
SHAPENET = DATA / "shapenet_mini" / "shapenet_10class_occ.npz"


@pytest.fixture(scope="module")
def generated():
    return generate_shapes(6, 500, 0)


def write_points(path, count=5, size=40, *, with_split=True, scale=1.0, **overrides):
    """An oriented-point `.npz` of `count` random unit-sphere clouds `[count, size, 3]` (times `scale`)."""
    rng = np.random.default_rng(1)
    points = rng.normal(size=(count, size, 3))
    points /= np.linalg.norm(points, axis=-1, keepdims=True).max(1, keepdims=True)  # max radius 1
    arrays = dict(points=(points * scale).astype(np.float32),
                  normals=rng.normal(size=(count, size, 3)).astype(np.float32), names=np.array([f"s{i}" for i in range(count)]))
    if with_split:
        arrays["split"] = np.array([0] * (count - 2) + [1, 1], dtype=np.int8)
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


# ------------------------------------------------------------------------------------------- generated


def test_generated_shapes_are_unit_oriented_point_clouds(generated):
    shapes = generated.shapes
    assert shapes.shape == (6, 500, 6) and shapes.dtype == torch.float32
    assert torch.allclose(shapes[..., :3].norm(dim=-1).amax(1), torch.ones(6), atol=1e-5)
    assert torch.allclose(shapes[..., 3:].norm(dim=-1), torch.ones(6, 500), atol=1e-5)
    assert generated.names[:3] == ("torus_000", "ellipsoid_001", "capsule_002")
    assert generated.split is None and generated.centre.shape == (6, 3) and generated.scale.shape == (6,)


def test_generated_normals_point_outwards(generated):
    for index, name in enumerate(generated.names):
        points, normals = generated.shapes[index, :, :3].double(), generated.shapes[index, :, 3:].double()
        if name.startswith("torus"):  # outward = away from the nearest point of the tube's centre circle
            radial = points[:, :2].norm(dim=1)
            major = (radial.max() + radial.min()) / 2
            tube = torch.cat([points[:, :2] * (major / radial)[:, None], torch.zeros(len(points), 1,
                                                                                     dtype=points.dtype)], 1)
            assert ((normals * (points - tube)).sum(1) > 0).all(), name
        else:  # convex about the origin: ellipsoids and capsules
            assert ((normals * points).sum(1) > 0).all(), name


def test_generated_shapes_are_deterministic_and_vary_with_the_seed(generated):
    again, other = generate_shapes(6, 500, 0), generate_shapes(6, 500, 1)
    assert torch.equal(again.shapes, generated.shapes) and torch.equal(again.scale, generated.scale)
    assert not torch.allclose(other.scale, generated.scale)
    assert torch.equal(generate_shapes(2, 500, 0).shapes, generated.shapes[:2])  # a prefix of a longer draw


def test_generated_meshes_wind_outwards():
    import trimesh

    for mesh in (torus_mesh(1.0, 0.3), ellipsoid_mesh(np.array([1.0, 0.5, 0.3]), 0.6), capsule_mesh(0.3, 1.0)):
        solid = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        assert solid.is_watertight and solid.is_winding_consistent and solid.volume > 0


@pytest.mark.parametrize("count, points", [(0, 10), (2, 0)])
def test_generate_shapes_checks_its_sizes(count, points):
    with pytest.raises(ValueError, match="must be a positive int"):
        generate_shapes(count, points, 0)


def test_load_shapes_generated_respects_count_and_limit():
    assert load_shapes(ShapeData(points=100, count=5)).shapes.shape == (5, 100, 6)
    assert load_shapes(ShapeData(points=100, count=5, limit=2)).shapes.shape == (2, 100, 6)
    assert load_split(ShapeData(points=50, count=5, holdout=2), "heldout").shape == (2, 50, 6)


@pytest.mark.parametrize("field, value, match", [
    ("points", 0, "points must be a positive int"), ("count", True, "count must be a positive int"),
    ("seed", -1, "seed must be an int >= 0"), ("source", "", "source must be a non-empty string"),
    ("orient", 1, "orient must be true or false")])
def test_shape_data_checks_its_ranges(field, value, match):
    with pytest.raises(ValueError, match=match):
        ShapeData(**{field: value})


def test_normalise_shape_rejects_a_point():
    with pytest.raises(ValueError, match="all points coincide"):
        normalise_shape(np.ones((4, 3)), "probe")


# ---------------------------------------------------------------------------------------- point files


def test_oriented_npz_round_trip_and_its_split(tmp_path):
    path = write_points(tmp_path / "clouds.npz")
    collection = load_oriented_npz(path, points=30, seed=0)
    assert collection.shapes.shape == (5, 30, 6) and collection.names == ("s0", "s1", "s2", "s3", "s4")
    assert torch.allclose(collection.shapes[..., 3:].norm(dim=-1), torch.ones(5, 30), atol=1e-5)
    assert torch.equal(collection.scale, torch.ones(5)) and torch.equal(collection.centre, torch.zeros(5, 3))
    with np.load(path) as archive:  # the subset is a subset of each shape's points
        source = torch.from_numpy(archive["points"])
    assert (collection.shapes[1, :, None, :3] - source[1]).norm(dim=-1).amin(1).max() < 1e-6
    data = ShapeData(source=str(path), points=30)
    assert torch.equal(load_split(data, "train"), collection.shapes[:3])
    assert torch.equal(load_split(data, "heldout"), collection.shapes[3:])
    assert torch.equal(load_split(data, "all"), collection.shapes)
    with pytest.raises(ValueError, match="has its own split"):
        load_split(ShapeData(source=str(path), points=30, holdout=1), "train")
    with pytest.raises(ValueError, match="no heldout shapes"):
        load_split(ShapeData(source=str(path), points=30, limit=2), "heldout")
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(data, "test")


def test_oriented_npz_makes_mixed_normals_consistent_unless_told_not_to(tmp_path):
    rng = np.random.default_rng(2)
    sphere = rng.normal(size=(2, 800, 3))
    sphere /= np.linalg.norm(sphere, axis=-1, keepdims=True)  # outward normals = the points
    mixed = sphere * rng.choice([-1.0, 1.0], size=(2, 800, 1))  # faces of mixed winding, as in ModelNet40
    path = tmp_path / "mixed.npz"
    np.savez(path, points=sphere.astype(np.float32), normals=mixed.astype(np.float32))
    oriented = load_shapes(ShapeData(source=str(path), points=800))
    assert torch.allclose(oriented.shapes[..., 3:], oriented.shapes[..., :3], atol=1e-5)
    kept = load_shapes(ShapeData(source=str(path), points=800, orient=False))
    assert torch.allclose(kept.shapes[..., 3:], torch.from_numpy(mixed).float(), atol=1e-5)


def test_oriented_npz_scales_large_shapes_and_keeps_the_transform(tmp_path):
    path = write_points(tmp_path / "big.npz", with_split=False, scale=10.0)
    collection = load_oriented_npz(path, points=40, seed=0)
    assert torch.allclose(collection.shapes[..., :3].norm(dim=-1).amax(1), torch.ones(5), atol=1e-5)
    with np.load(path) as archive:
        source = torch.from_numpy(archive["points"])
    restored = collection.shapes[..., :3] * collection.scale[:, None, None] + collection.centre[:, None]
    assert torch.allclose(restored, source, atol=1e-4)  # all points, kept in order
    assert load_split(ShapeData(source=str(path), points=40, holdout=2), "train").shape == (3, 40, 6)


def bad_arrays():
    nan, zero = np.zeros((5, 40, 3), np.float32), np.ones((5, 40, 3), np.float32)
    nan[3, 7, 1], zero[2, 5] = np.nan, 0.0
    return [
        (dict(normals=None), "has no array 'normals'; it has \\['names', 'points', 'split'\\]"),
        (dict(points=np.zeros((5, 40, 2))), "expected points and normals \\[S, P, 3\\].*\\(5, 40, 2\\)"),
        (dict(points=nan), "points of shape 3 .* contain NaN or inf"),
        (dict(normals=zero), "shape 2 .* has 1 zero-length normals"),
        (dict(split=np.array([0, 1, 2, 0, 1])), "split .* must hold 0 \\(train\\) or 1 \\(test\\), got values \\[2\\]"),
        (dict(split=np.zeros(4)), "expected split \\[S\\] with S=5"),
    ]


@pytest.mark.parametrize("overrides, match", bad_arrays())
def test_oriented_npz_errors(tmp_path, overrides, match):
    path = write_points(tmp_path / "bad.npz", **overrides)
    with pytest.raises(ValueError, match=match):
        load_oriented_npz(path, points=10, seed=0)


def test_oriented_npz_needs_enough_points_and_a_file(tmp_path):
    with pytest.raises(ValueError, match="has 40 points per shape, fewer than points=50"):
        load_oriented_npz(write_points(tmp_path / "few.npz"), points=50, seed=0)
    with pytest.raises(FileNotFoundError, match="load_oriented_npz: no file at"):
        load_oriented_npz(tmp_path / "missing.npz", points=10, seed=0)


def test_oriented_npz_rejects_a_collapsed_shape(tmp_path):
    points = np.full((5, 40, 3), 5.0, np.float32)
    with pytest.raises(ValueError, match="shape 0 .* all points coincide"):
        load_oriented_npz(write_points(tmp_path / "dot.npz", points=points), points=10, seed=0)


# ---------------------------------------------------------------------------------------- mesh folders


def distance_to_faces(points, mesh):
    """Distance `[N]` from each point `[N, 3]` to the nearest face plane whose triangle contains the point's
    projection (infinite when none does): zero for points on the mesh."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))  # [F, 3] each
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    offset = points[:, None] - a  # [N, F, 3]
    height = np.einsum("nfi,fi->nf", offset, normal)  # [N, F]
    inside = np.ones(height.shape, bool)
    for start, end in ((a, b), (b, c), (c, a)):  # the projection lies on the inner side of every edge
        inside &= np.einsum("nfi,fi->nf", np.cross(end - start, points[:, None] - start), normal) >= -1e-6
    return np.where(inside, np.abs(height), np.inf).min(1)


def test_mesh_folder_keeps_the_transform_to_the_original_mesh(tmp_path):
    originals = {"a_torus": torus_mesh(1.0, 0.4), "b_capsule": capsule_mesh(0.5, 1.0)}
    for (name, mesh), shift in zip(originals.items(), (3.0, -7.0)):
        save_mesh(tmp_path / f"{name}.ply", Mesh(mesh.vertices * 4 + shift, mesh.faces))
    (tmp_path / "notes.txt").write_text("not a mesh")
    collection = load_mesh_folder(tmp_path, points=300, seed=0)
    assert collection.names == ("a_torus", "b_capsule") and collection.shapes.shape == (2, 300, 6)
    assert torch.allclose(collection.shapes[..., :3].norm(dim=-1).amax(1), torch.ones(2), atol=1e-5)
    for index, (mesh, shift) in enumerate(zip(originals.values(), (3.0, -7.0))):
        restored = collection.shapes[index, :, :3] * collection.scale[index] + collection.centre[index]
        distance = distance_to_faces(restored.double().numpy(), Mesh(mesh.vertices * 4.0 + shift, mesh.faces))
        assert distance.max() < 4e-4  # float32 round-off at coordinates up to ~10
    assert load_shapes(ShapeData(source=str(tmp_path), points=300, limit=1)).names == ("a_torus",)


def test_mesh_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_mesh_folder: no folder at"):
        load_mesh_folder(tmp_path / "nowhere", points=10, seed=0)
    with pytest.raises(ValueError, match="empty mesh folder"):
        load_mesh_folder(tmp_path, points=10, seed=0)
    (tmp_path / "broken.obj").write_text("f 1 2 3\nthis is not a mesh\n")
    with pytest.raises(ValueError, match="broken.obj"):
        load_mesh_folder(tmp_path, points=10, seed=0)


def test_mesh_folder_names_a_mesh_without_area(tmp_path):
    save_mesh(tmp_path / "flat.ply", Mesh(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], np.float32),
                                          np.array([[0, 1, 2]], np.int64)))
    with pytest.raises(ValueError, match="flat.ply.*no area"):
        load_mesh_folder(tmp_path, points=10, seed=0)


# ------------------------------------------------------------------------------------- occupancy grids


def ball_grids(size=32):
    index = np.arange(size) - (size - 1) / 2
    radius = np.sqrt(sum(axis**2 for axis in np.meshgrid(index, index, index, indexing="ij")))
    return np.stack([radius < size * 0.4, radius < size * 0.3])  # [2, R, R, R]


def test_occupancy_ball_loads_to_the_unit_sphere_with_outward_normals(tmp_path):
    np.savez(tmp_path / "balls.npz", occ64=ball_grids(), model_id=np.array(["big", "small"]))
    collection = load_shapes(ShapeData(source=str(tmp_path / "balls.npz"), points=400))
    assert collection.shapes.shape == (2, 400, 6) and collection.names == ("big", "small")
    points, normals = collection.shapes[..., :3], collection.shapes[..., 3:]
    assert (points.norm(dim=-1) > 0.85).all() and torch.allclose(points.norm(dim=-1).amax(1), torch.ones(2))
    assert ((normals * points).sum(-1) > 0).all()
    assert ((normals * points).sum(-1) / points.norm(dim=-1)).mean() > 0.9
    assert torch.allclose(collection.centre, torch.full((2, 3), 15.5), atol=0.5)  # voxel-index units


def test_occupancy_packed_grids_unpack_like_the_dense_ones(tmp_path):
    grids = np.zeros((1, 128, 128, 128), bool)
    grids[0, 40:90, 30:100, 50:70] = True
    np.savez(tmp_path / "box.npz", occ128_packed=np.packbits(grids.reshape(1, -1), axis=1))
    collection = load_occupancy_npz(tmp_path / "box.npz", points=200, seed=0, key="occ128_packed")
    points, normals = collection.shapes[0, :, :3], collection.shapes[0, :, 3:]
    assert ((normals * points).sum(-1) > 0).all()
    assert torch.allclose(collection.centre[0], torch.tensor([64.5, 64.5, 59.5]), atol=0.6)


@pytest.mark.parametrize("arrays, key, match", [
    (dict(occ64=np.zeros((1, 4, 4, 5), bool)), "occ64", "expected occ64 \\[S, R, R, R\\].*\\(1, 4, 4, 5\\)"),
    (dict(occ64=np.zeros((1, 4, 4, 4), bool)), "occ64", "shape 0 of occ64 .* has no occupied voxel"),
    (dict(occ64=np.ones((1, 4, 4, 4), bool)), "occ32", "key must be one of occ64, occ128_packed, got 'occ32'"),
    (dict(occ64=np.ones((1, 4, 4, 4), bool)), "occ128_packed", "has no array 'occ128_packed'; it has \\['occ64'\\]"),
    (dict(occ128_packed=np.zeros((1, 100), np.uint8)), "occ128_packed", "expected occ128_packed \\[S, 262144\\]"),
])
def test_occupancy_errors(tmp_path, arrays, key, match):
    np.savez(tmp_path / "grids.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_occupancy_npz(tmp_path / "grids.npz", points=10, seed=0, key=key)
    with pytest.raises(FileNotFoundError, match="load_occupancy_npz: no file at"):
        load_occupancy_npz(tmp_path / "none.npz", points=10, seed=0)


# ------------------------------------------------------------------------------------------ dispatching


def test_unknown_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file or folder at .*a shape source is 'generated'"):
        load_shapes(ShapeData(source=str(tmp_path / "nothing.npz")))
    (tmp_path / "table.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="cannot read .*table.csv; a shape source is"):
        load_shapes(ShapeData(source=str(tmp_path / "table.csv")))
    np.savez(tmp_path / "other.npz", images=np.zeros(3))
    with pytest.raises(ValueError, match="has none of the arrays points, occ64, occ128_packed; it has \\['images'\\]"):
        load_shapes(ShapeData(source=str(tmp_path / "other.npz")))


# ------------------------------------------------------------------------------------ the shared data


@pytest.mark.skipif(not MODELNET.is_file(), reason="no ../shared/data beside the checkout")
def test_modelnet_person_loads_with_its_split():
    data = ShapeData(source=str(MODELNET), points=2048)
    train, heldout = load_split(data, "train"), load_split(data, "heldout")
    assert train.shape == (88, 2048, 6) and heldout.shape == (20, 2048, 6)
    assert train[..., :3].norm(dim=-1).max() < 1.01
    from scipy.spatial import cKDTree  # the stored normals of some people are half inward; loaded, they agree

    def opposed(shape):
        index = cKDTree(shape[:, :3]).query(shape[:, :3], k=9)[1][:, 1:]
        return float((np.einsum("pkd,pd->pk", shape[index, 3:], shape[:, 3:]) < 0).mean())

    raw = load_split(ShapeData(source=str(MODELNET), points=2048, orient=False), "train").numpy()
    assert max(opposed(shape) for shape in raw[:12]) > 0.3
    assert max(opposed(shape) for shape in train[:12].numpy()) < 0.1


@pytest.mark.skipif(not SHAPENET.is_file(), reason="no ../shared/data beside the checkout")
def test_shapenet_occupancy_loads():
    collection = load_shapes(ShapeData(source=str(SHAPENET), points=1000, limit=3))
    assert collection.shapes.shape == (3, 1000, 6) and len(collection.names[0]) == 32
    assert torch.allclose(collection.shapes[..., :3].norm(dim=-1).amax(1), torch.ones(3), atol=1e-5)
    assert ((collection.shapes[..., :3] * collection.shapes[..., 3:]).sum(-1).mean(1) > 0).all()
