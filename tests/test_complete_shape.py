"""`evaluate/complete_shape.py`: a tiny shape prior completes held-out shapes from 300 points into a
figure, watertight meshes in the data's own coordinates and Chamfer distances; bad inputs fail clearly."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from hypersiren.geometry import Mesh
from hypersiren.io import load_mesh
from hypersiren.modalities.shape import ShapeData, load_collection, load_split
from hypersiren.modalities.shape.protocol import MESH_BOUND, complete_mesh, draw_context
from hypersiren.prior.commands import train_prior

ROOT = Path(__file__).resolve().parents[1]
DATA = ShapeData(count=21, points=2000, holdout=3)  # held out: torus_018, ellipsoid_019, capsule_020
RESOLUTION, VIEWS, SIZE = 32, 2, 40
STEP = 2 * MESH_BOUND / (RESOLUTION - 1)  # marching-cubes cell, stored units
# Chamfer-L1 (stored units) of the completions from 300 points, measured: 0.015 to 0.021 (0.023 from 100
# points; the same at 128^3: against 2,000 reference points it is mostly their spacing). Another held-out
# shape in place of the completion scores 0.19 to 0.47.
CHAMFER_BOUND = 0.03
# Input coordinates of the --data copy: stored units times 40, moved far from the origin
SCALE, SHIFT = 40.0, np.array([100.0, -20.0, 5.0])


def load_script():
    spec = importlib.util.spec_from_file_location("complete_shape", ROOT / "evaluate" / "complete_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """`shapes_tiny` on 18 generated shapes of 2,000 points, a 100-step start: about 5 s."""
    out = tmp_path_factory.mktemp("shape_run")
    overrides = [f"data.{field}={getattr(DATA, field)}" for field in ("count", "points", "holdout")]
    train_prior(preset="shapes_tiny", out=out, overrides=overrides + ["train.init_steps=100"], image_every=0,
                progress=False)
    return out / "checkpoint.pt"


def run(script, *argv) -> list[dict]:
    return script.main(script.parse_args([*map(str, argv), "--device", "cpu"]))


def bounding_box_gap(path: Path, points: np.ndarray) -> float:
    """The largest difference between the corners of a mesh file's bounding box and of points `[P, 3]`."""
    vertices = load_mesh(path).vertices.astype(np.float64)
    return float(np.abs(np.stack([vertices.min(0) - points.min(0), vertices.max(0) - points.max(0)])).max())


def test_load_collection_gives_the_split_with_each_shape_transform():
    collection, index = load_collection(DATA, "heldout")
    assert index.tolist() == [18, 19, 20] and collection.names[18] == "torus_018"
    assert torch.equal(collection.shapes[index], load_split(DATA, "heldout"))
    assert collection.centre.shape == (21, 3) and collection.scale.shape == (21,) and (collection.scale > 0).all()


def test_a_surface_just_beyond_the_unit_sphere_meshes_closed():
    """Stored shapes reach radius 1 and completions pass it a little, so the protocol's grid reaches further:
    a sphere of radius 1.02 (a [-1, 1]^3 grid cuts 6 holes in it) comes out watertight."""
    context = draw_context(torch.rand(20, 6), 10, seed=0, index=0)
    mesh = complete_mesh(lambda context: (lambda points: points.norm(dim=-1) - 1.02), context, resolution=32)[0]
    assert trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).is_watertight
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1.02).max() < 1e-3


@pytest.mark.slow  # completes, meshes and renders 2 shapes: 1 s on an idle 2-core CPU, 15 s on a busy one
def test_completions_figure_meshes_and_distances(script, checkpoint, tmp_path, capsys):
    out = tmp_path / "complete"
    results = run(script, "--checkpoint", checkpoint, "--index", 0, 2, "--resolution", RESOLUTION, "--views", VIEWS,
                  "--size", SIZE, "--out", out)
    printed = capsys.readouterr().out
    assert [r["name"] for r in results] == ["torus_018", "capsule_020"]
    chamfers = [float(c) for c in re.findall(r"Chamfer-L1 ([0-9.]+)", printed)]
    assert chamfers == pytest.approx([r["chamfer"] for r in results], abs=1e-4)
    assert max(chamfers) < CHAMFER_BOUND, printed

    with Image.open(out / "completion.png") as written:
        figure = np.asarray(written.convert("RGB"), dtype=np.float64) / 255
    # 2 rows of SIZE with a 2-pixel gap; context | completion | truth, each VIEWS views of SIZE
    assert figure.shape == (2 * SIZE + 2, 3 * VIEWS * SIZE, 3)
    for top in (0, SIZE + 2):
        for left in range(0, 3 * VIEWS * SIZE, SIZE):  # every view of every panel shows something
            assert (figure[top: top + SIZE, left: left + SIZE] < 0.9).mean() > 0.02, (top, left)

    collection, rows = load_collection(DATA, "heldout")
    for result in results:
        row = int(rows[result["index"]])
        path = out / f"{result['index']:03d}.ply"
        assert result["mesh"] == str(path)
        mesh = trimesh.load(path, process=False)
        assert len(mesh.faces) > 1000 and mesh.is_watertight, (path, len(mesh.faces))
        # the data's coordinates (the generated meshes'): the stored points mapped back; the mesh's box lies
        # within one marching-cubes cell of theirs (measured: at most 0.36 of one)
        scale = float(collection.scale[row])
        points = collection.shapes[row, :, :3].double().numpy() * scale + collection.centre[row].double().numpy()
        assert bounding_box_gap(path, points) < STEP * scale


@pytest.mark.slow  # completes, meshes and renders 1 shape twice: as long as the test above
def test_meshes_return_to_the_coordinates_of_a_data_file(script, checkpoint, tmp_path, capsys):
    """The held-out shapes saved far from the unit sphere complete as before (here from points without
    normals), and their meshes come back there."""
    shapes = load_split(DATA, "heldout").double().numpy()  # [3, 2000, 6]
    path = tmp_path / "far.npz"
    np.savez(path, points=shapes[..., :3] * SCALE + SHIFT, normals=shapes[..., 3:])
    options = ("--index", 1, "--no-normals", "--resolution", RESOLUTION, "--views", 1, "--size", SIZE)
    before = run(script, "--checkpoint", checkpoint, *options, "--out", tmp_path / "unit")
    after = run(script, "--checkpoint", checkpoint, "--data", path, *options, "--out", tmp_path / "far")
    assert after[0]["name"] == "shape_001" and after[0]["chamfer"] == pytest.approx(before[0]["chamfer"], abs=1e-3)
    assert bounding_box_gap(Path(after[0]["mesh"]), shapes[1, :, :3] * SCALE + SHIFT) < STEP * SCALE
    printed = capsys.readouterr().out
    assert "context (300 points) | completed surface" in printed and "no surface" not in printed


def test_bad_inputs_fail_clearly(script, checkpoint, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--index 3 7 out of range: the run's held-out split of generated has 3 "
                                         r"shapes, so an index is between 0 and 2"):
        run(script, "--checkpoint", checkpoint, "--index", 0, 3, 7, "--out", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no file or folder at"):
        run(script, "--checkpoint", checkpoint, "--data", tmp_path / "missing.npz", "--out", tmp_path / "x")
    with pytest.raises(ValueError, match=r"--context 5000 exceeds the 2000 points of each shape of generated "
                                         r"\(data.points of the run\)"):
        run(script, "--checkpoint", checkpoint, "--context", 5000, "--out", tmp_path / "x")
    with pytest.raises(SystemExit):
        script.parse_args(["--checkpoint", str(checkpoint), "--views", "0", "--out", str(tmp_path / "x")])
    assert "argument --views: expected a positive int, got '0'" in capsys.readouterr().err

    images = np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "faces.npz", images=images)
    image_run = tmp_path / "image_run"
    train_prior(preset="tiny", out=image_run, overrides=["data.resolution=16"], data_shortcuts={"data": str(
        tmp_path / "faces.npz")}, shortcuts={"steps": 1, "batch_size": 2}, image_every=0, progress=False)
    with pytest.raises(ValueError, match="holds a prior of the 'image' modality, not a shape prior .*inpaint.py"):
        run(script, "--checkpoint", image_run / "checkpoint.pt", "--out", tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written before the checks


def test_a_completion_without_surface_is_reported_and_not_written(script, checkpoint, tmp_path, capsys, monkeypatch):
    empty = Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64))
    monkeypatch.setattr(script, "complete_mesh", lambda *args, **kwargs: (empty, 0.0, 0.0))
    results = run(script, "--checkpoint", checkpoint, "--index", 2, "--views", 1, "--size", SIZE,
                  "--out", tmp_path / "none")
    assert results[0]["chamfer"] == float("inf") and results[0]["mesh"] is None
    printed = capsys.readouterr().out
    assert "Chamfer-L1 inf" in printed and "no surface: no mesh written" in printed
    assert sorted(path.name for path in (tmp_path / "none").iterdir()) == ["completion.png"]
