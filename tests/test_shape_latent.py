"""ShapePrior, the shape modality's latent adapter, and every evaluate/explore.py subcommand on a shape prior.

The fast tests use analytic signed distances and an untrained prior; the slow ones train one tiny basis prior
per module (the `shapes_tiny` model with 8 basis functions, started from the PCA of 12 generated shapes of
1,000 points: about 6 s on one thread) and run the script's `main` in process on its checkpoint.
"""

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hypersiren as hs
from hypersiren.geometry import sample_surface
from hypersiren.io import load_mesh, save_mesh
from hypersiren.latent import (PICTURE_DISTANCE, export_extras, load_latent_prior, load_latents, nearest,
                               signal_distances)
from hypersiren.modalities.shape import SHAPE_PRESETS, ShapeData, ShapeModality, ShapePrior, generate_shapes
from hypersiren.modalities.shape.latent import EMPTY, IMAGE_SIZE, SURFACE_POINTS
from hypersiren.params import SirenParams
from hypersiren.prior import HyperSiren
from hypersiren.prior.commands import train_prior

ROOT = Path(__file__).resolve().parents[1]
TINY = dataclasses.replace(SHAPE_PRESETS["shapes_tiny"].model, latent_dim=8)  # 8 < the 12 training shapes
S, PAD = IMAGE_SIZE, 2  # explore's default panel size is the adapter's picture size


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny SIREN on a busy 2-core machine: a second thread only adds waiting (10x slower renders measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sphere_values(side: int, radius: float = 0.5) -> torch.Tensor:
    """The signed distance to a sphere at `ShapePrior.query_coords(side)`: `[1, side^3, 1]`."""
    return (hs.grid((side, side, side)).norm(dim=-1) - radius)[None, :, None]


def untrained(**kwargs) -> ShapePrior:
    torch.manual_seed(0)
    return ShapePrior(HyperSiren(TINY), **kwargs)


def drawn(picture: torch.Tensor) -> float:
    """Fraction of a picture's pixels that are not white background."""
    return float((picture < 0.99).any(-1).float().mean())


def png(path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)


def panel(image: torch.Tensor, row: int, col: int) -> torch.Tensor:
    return image[row * (S + PAD) : row * (S + PAD) + S, col * (S + PAD) : col * (S + PAD) + S]


# ------------------------------------------------------------------------------- fast: no training


def test_to_signals_puts_oriented_points_on_the_zero_level_set():
    side = 32
    prior = untrained(resolution=side)
    cloud = prior.to_signals(sphere_values(side))  # [1, SURFACE_POINTS, 6]
    assert cloud.shape == (1, SURFACE_POINTS, 6) and cloud.dtype == torch.float32
    points, normals = cloud[0, :, :3], cloud[0, :, 3:]
    step = 2 / (side - 1)
    assert (points.norm(dim=-1) - 0.5).abs().max() < step / 4  # marching cubes on a smooth field: well inside a cell
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(SURFACE_POINTS))
    assert (normals * points / points.norm(dim=-1, keepdim=True)).sum(-1).min() > 0.98  # outward
    assert prior.query_coords(side).shape == (side ** 3, 3) and prior.query_coords().shape == (side ** 3, 3)


def test_a_field_with_no_surface_gives_nan_points_a_grey_picture_and_no_encoding(caplog):
    prior = untrained(resolution=16)
    values = torch.cat([sphere_values(16), torch.ones(1, 16 ** 3, 1)])  # a sphere, then nothing
    with caplog.at_level("WARNING"):
        clouds = prior.to_signals(values)
    assert clouds[0].isfinite().all() and clouds[1].isnan().all()
    assert "shapes [1] have no surface on the 16^3 grid" in caplog.text
    pictures = prior.to_images(clouds)
    assert drawn(pictures[0]) > 0.05 and (pictures[1] == EMPTY).all()
    distances = prior.distance(clouds, clouds)
    assert distances[0, 0] == 0 and torch.isinf(distances[1]).all() and torch.isinf(distances[:, 1]).all()
    with pytest.raises(ValueError, match=r"ShapePrior.encode: shapes \[1\] hold NaN or inf"):
        prior.encode(clouds)


def test_to_images_draws_rgb_pictures_in_the_unit_range():
    shapes = generate_shapes(3, 500, 0).shapes  # [3, 500, 6]
    prior = untrained(image_size=48)
    pictures = prior.to_images(shapes)
    assert pictures.shape == (3, 48, 48, 3) and pictures.dtype == torch.float32
    assert pictures.min() >= 0 and pictures.max() <= 1
    assert all(0.05 < drawn(p) < 0.9 for p in pictures)  # a shape on a white background
    assert (pictures[0] != pictures[1]).any()


def test_distance_is_the_symmetric_chamfer_l1():
    a = torch.tensor([[[0.0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 1]]])  # two points
    b = torch.tensor([[[0.0, 0, 0, 0, 0, 1]]])  # one of them
    prior = untrained()
    # a -> b: 0 and 1, mean 0.5; b -> a: 0; Chamfer-L1 (0.5 + 0) / 2
    torch.testing.assert_close(prior.distance(a, b), torch.tensor([[0.25]], dtype=torch.float64))
    torch.testing.assert_close(prior.distance(b, a), torch.tensor([[0.25]], dtype=torch.float64))
    shapes = generate_shapes(4, 300, 0).shapes
    found = nearest(signal_distances(prior, shapes, shapes).values, k=2)
    assert found.indices[:, 0].tolist() == [0, 1, 2, 3] and (found.distances[:, 0] == 0).all()


def test_export_extras_refuses_a_siren_without_a_surface(tmp_path):
    prior = untrained()
    params = prior.decode(torch.zeros(1, 8))
    nothing = SirenParams(params.weights, (*params.biases[:-1], params.biases[-1] + 100.0))  # positive everywhere
    with pytest.raises(ValueError, match="ShapePrior.export_extras: the SIREN has no surface"):
        prior.export_extras(nothing, tmp_path / "none.pt")
    assert not (tmp_path / "none.ply").exists()
    with pytest.raises(ValueError, match=r"expected one SIREN \(batch shape \(1,\)\), got \(2,\)"):
        prior.export_extras(prior.decode(torch.zeros(2, 8)), tmp_path / "two.pt")


def test_the_generic_hooks_default_to_pictures_and_nothing():
    class Pictures:  # an adapter without the optional members
        def to_images(self, signals):
            return signals

    a, b = torch.rand(2, 4, 4, 1), torch.rand(3, 4, 4, 1)
    name, values = signal_distances(Pictures(), a, b)
    expected = (a[:, None] - b[None]).square().flatten(2).mean(-1).sqrt().double()  # root mean square per value
    assert name == PICTURE_DISTANCE == "rmse"
    torch.testing.assert_close(values, expected)
    assert export_extras(Pictures(), None, "x.pt") == {}
    with pytest.raises(ValueError, match=r"signal_distances: expected signals \[Q, \.\.\.\] and \[R, \.\.\.\] with "
                                         r"Q, R >= 1, got \(0, 4, 4, 1\)"):
        signal_distances(Pictures(), a[:0], b)
    with pytest.raises(ValueError, match=r"the pictures of the two sets differ in size, \(4, 4, 1\) and \(2, 2, 1\)"):
        signal_distances(Pictures(), a, b[:, :2, :2])

    class Wrong(Pictures):
        def distance(self, a, b):
            return torch.zeros(len(b), len(a))

    with pytest.raises(ValueError, match=r"signal_distances: Wrong.distance returned \(3, 2\), expected \[2, 3\]"):
        signal_distances(Wrong(), a, b)
    assert signal_distances(Wrong(), a, a).name == "distance"  # no distance_name: a plain name
    with pytest.raises(ValueError, match=r"nearest: expected distances \[Q, R\] with R >= 1, got \(2, 0\)"):
        nearest(torch.zeros(2, 0))
    with pytest.raises(ValueError, match=r"nearest: k must be an int in 1..3 \(the number of references\), got 4"):
        nearest(torch.zeros(2, 3), k=4)
    name, values = signal_distances(untrained(), generate_shapes(2, 100, 0).shapes, generate_shapes(3, 100, 0).shapes)
    assert name == "chamfer" and values.shape == (2, 3)


def test_load_signals_reads_splits_sources_and_single_mesh_files(tmp_path):
    modality = ShapeModality(ShapeData(count=6, points=200, holdout=2))
    prior = ShapePrior(HyperSiren(TINY), modality=modality)
    assert prior.load_signals().shape == (4, 200, 6) and prior.load_signals(split="heldout").shape == (2, 200, 6)
    assert prior.load_signals("generated").shape == (6, 200, 6)  # every shape of the source, the run's points
    mesh = hs.modalities.shape.torus_mesh(0.8, 0.3)
    save_mesh(tmp_path / "torus.obj", mesh)
    one = prior.load_signals(str(tmp_path / "torus.obj"))
    assert one.shape == (1, 200, 6) and one[0, :, :3].norm(dim=-1).max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="ShapePrior.load_signals: split='train' selects from the run's own data"):
        prior.load_signals("generated", split="train")
    with pytest.raises(ValueError, match="ShapePrior.load_signals: split must be one of train, heldout, all"):
        prior.load_signals(split="test")
    with pytest.raises(ValueError, match="ShapePrior.load_signals: this prior has no data configuration"):
        untrained().load_signals()
    (tmp_path / "notes.txt").write_text("not a shape")
    with pytest.raises(ValueError, match="ShapePrior.load_signals: load_shapes: cannot read"):
        prior.load_signals(str(tmp_path / "notes.txt"))


def test_bad_inputs_name_the_expected_shape():
    prior = untrained(resolution=8)
    points = torch.zeros(2, 100, 3)
    for call, where in ((lambda: prior.encode(points), "encode"), (lambda: prior.to_images(points), "to_images"),
                        (lambda: prior.distance(points, points), "distance")):
        with pytest.raises(ValueError, match=rf"ShapePrior.{where}: expected oriented point clouds \[B, P, 6\] "
                                             r".*got \(2, 100, 3\)"):
            call()
    with pytest.raises(ValueError, match=r"ShapePrior.encode: context_size must be an int in 1..100"):
        prior.encode(torch.zeros(2, 100, 6), context_size=101)
    with pytest.raises(ValueError, match=r"ShapePrior.to_signals: expected signed distances \[B, 512, 1\] on the "
                                         r"8\^3 grid, got \(1, 4096, 1\)"):
        prior.to_signals(sphere_values(16))
    with pytest.raises(ValueError, match=r"ShapePrior.render: expected SIRENs with batch shape \(B,\), got \(\)"):
        prior.render(prior.decode(torch.zeros(1, 8)).map(lambda t: t[0]))
    with pytest.raises(ValueError, match="ShapePrior.render: resolution must be an int >= 2, got 1"):
        prior.render(prior.decode(torch.zeros(1, 8)), resolution=1)
    with pytest.raises(ValueError, match="ShapePrior: image_size must be an int >= 8, got 4"):
        untrained(image_size=4)
    image_model = HyperSiren(dataclasses.replace(TINY, coord_dim=2))
    with pytest.raises(ValueError, match="ShapePrior: expected a prior of signed distances over 3-D coordinates"):
        ShapePrior(image_model)
    assert isinstance(ShapeModality(ShapeData()).latent_prior(HyperSiren(TINY)), ShapePrior)


# ------------------------------------------------------------------ slow: a trained prior and the script


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny shape prior trained by the library's train command: 12 training and 4 held-out shapes."""
    out = tmp_path_factory.mktemp("shape_run") / "run"
    train_prior(preset="shapes_tiny", out=out, overrides=["data.count=16", "data.points=1000", "model.latent_dim=8"],
                data_shortcuts={"holdout": 4}, image_every=0, progress=False)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def prior(run):
    loaded = load_latent_prior(run)
    assert isinstance(loaded, ShapePrior) and loaded.latent_dim == 8 and loaded.resolution == 64
    return loaded


@pytest.fixture(scope="module")
def explored(run, tmp_path_factory):
    """Every subcommand of evaluate/explore.py on the checkpoint, through its `main`: {name: report}."""
    spec = importlib.util.spec_from_file_location("explore_shapes", ROOT / "evaluate" / "explore.py")
    explore = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(explore)
    tmp = tmp_path_factory.mktemp("explore_shapes")
    latents = ["--latents", str(tmp / "latents.pt")]
    commands = {
        "encode": ["encode", "--out", tmp / "latents.pt"],
        "encode_heldout": ["encode", "--split", "heldout", "--context", "100", "--out", tmp / "heldout.npz"],
        "interpolate": ["interpolate", "--pair", "0", "1", "--steps", "3", "--out", tmp / "interpolate.png"],
        "sample": ["sample", *latents, "--count", "3", "--columns", "3", "--out", tmp / "sample.png"],
        "sample_pca": ["sample", *latents, "--fit", "pca", "--components", "2", "--count", "2", "--temperature", "0",
                       "--out", tmp / "sample_pca.png"],
        "directions": ["directions", *latents, "--components", "2", "--sigmas", "-1", "0", "1",
                       "--out", tmp / "directions.png"],
        "neighbours": ["neighbours", *latents, "--count", "2", "--k", "3", "--out", tmp / "neighbours.png"],
        "export": ["export", "--index", "1", "--size", "48", "--out", tmp / "shape1.pt"],
        "projector": ["projector", *latents, "--out", tmp / "projector"],
    }
    reports = {name: explore.main(explore.parse_args([args[0], "--checkpoint", str(run), "--device", "cpu",
                                                      *map(str, args[1:])]))
               for name, args in commands.items()}
    return tmp, reports


@pytest.mark.slow
def test_round_trip_reconstructs_the_encoded_shapes(prior):
    """encode -> decode -> render lands near each shape: its mean Chamfer-L1 (measured 0.039 on the training
    shapes, 0.043 held out) is within 1.75x of the floor that an exact surface sampled with 2,048 points has
    against the 1,000 stored ones (measured 0.029), and below the median distance from a training shape to
    its nearest other one (0.069): each shape is recovered, not just the family's average."""
    train, heldout = prior.load_signals(), prior.load_signals(split="heldout")
    dense = generate_shapes(16, SURFACE_POINTS, 0).shapes  # the same 16 surfaces, sampled like a render
    floor = prior.distance(dense[:12], train).diag().mean()
    others = (prior.distance(train, train) + torch.eye(12, dtype=torch.float64) * 1e9).min(1).values.median()
    with torch.no_grad():
        rendered = prior.render(prior.decode(prior.encode(train)))
        held = prior.render(prior.decode(prior.encode(heldout, context_size=300,
                                                      generator=torch.Generator().manual_seed(0))))
    assert rendered.shape == (12, SURFACE_POINTS, 6) and rendered.isfinite().all()
    for clouds, truth in ((rendered, train), (held, heldout)):
        chamfer = prior.distance(clouds, truth).diag()
        assert chamfer.mean() < 1.75 * floor and chamfer.mean() < others and chamfer.max() < 2.5 * floor, (
            chamfer, floor, others)
    torch.testing.assert_close(rendered[:, :, 3:].norm(dim=-1), torch.ones(12, SURFACE_POINTS))
    # the banded render meshes the same grid values as to_signals of the full grid
    params = prior.decode(prior.encode(train[:1]))
    with torch.no_grad():
        full = prior.to_signals(prior.model.render(params, prior.query_coords(32)[None]), resolution=32)
        assert prior.distance(prior.render(params, resolution=32), full)[0, 0] < 1e-4


@pytest.mark.slow
def test_every_subcommand_writes_its_outputs(prior, explored):
    tmp, reports = explored
    train = prior.load_signals()
    latents = load_latents(tmp / "latents.pt")
    assert latents.latents.shape == (12, 8) and latents.ids[:2] == ("train/0", "train/1")
    with torch.no_grad():
        torch.testing.assert_close(latents.latents, prior.encode(train), rtol=0, atol=1e-5)  # "full": deterministic
    heldout = load_latents(tmp / "heldout.npz")
    assert heldout.latents.shape == (4, 8) and heldout.meta["context"] == 100

    image = png(tmp / "interpolate.png")
    assert image.shape == (3 * S + 2 * PAD, 3 * S + 2 * PAD, 3)
    for col in (0, 2):  # the ends: one SIREN each way, so one picture; no difference
        assert 0.02 < drawn(panel(image, 0, col)) < 0.9
        torch.testing.assert_close(panel(image, 0, col), panel(image, 1, col), rtol=0, atol=0)
        assert panel(image, 2, col).max() == 0
    assert reports["interpolate"]["max_difference"] >= 0

    for name, rows, columns in (("sample", 1, 3), ("sample_pca", 1, 2), ("directions", 2, 3)):
        image = png(tmp / f"{name}.png")
        assert image.shape == (rows * S + (rows - 1) * PAD, columns * S + (columns - 1) * PAD, 3), name
        panels = [panel(image, r, c) for r in range(rows) for c in range(columns)]
        # a shape, or the grey of a decode with no surface: a linear prior over 12 signed distance fields has
        # some away from its training latents (here 1 of the 3 samples and the +1 std end of a direction)
        assert all(0.02 < drawn(p) < 0.9 or (p - EMPTY).abs().max() < 1 / 255 for p in panels), name
        assert any(0.02 < drawn(p) < 0.9 for p in panels), name
    at_zero = png(tmp / "sample_pca.png")  # temperature 0: the mean latent twice
    torch.testing.assert_close(panel(at_zero, 0, 0), panel(at_zero, 0, 1), rtol=0, atol=0)
    directions = png(tmp / "directions.png")
    torch.testing.assert_close(panel(directions, 0, 1), panel(directions, 1, 1), rtol=0, atol=0)  # both the mean
    assert (panel(directions, 0, 0) != panel(directions, 0, 2)).any()

    report = json.loads((tmp / "neighbours.json").read_text())
    assert report == reports["neighbours"] and report["data_nearest_other_chamfer_median"] > 0
    for sample in report["samples"]:
        assert len(sample["neighbours"]) == 3 and all(i.startswith("train/") for i in sample["neighbours"])
        if sample["chamfer"][0] is None:  # a sample with no surface is comparable with nothing
            assert sample["chamfer"] == [None] * 3
        else:
            assert sample["chamfer"] == sorted(sample["chamfer"]) and 0 < sample["chamfer"][0] < 0.5
    assert any(sample["chamfer"][0] is not None for sample in report["samples"])
    image = png(tmp / "neighbours.png")
    assert image.shape == (2 * S + PAD, 4 * S + 3 * PAD, 3)
    first = int(report["samples"][0]["neighbours"][0].split("/")[1])
    expected = prior.to_images(train[first : first + 1])[0]
    torch.testing.assert_close(panel(image, 0, 1), expected, rtol=0, atol=0.51 / 255)  # the neighbour itself

    siren = hs.load_exported_siren(tmp / "shape1.pt")
    assert isinstance(siren, hs.Siren) and siren.config == prior.siren
    assert reports["export"] == {"out": str(tmp / "shape1.pt"), "mesh": str(tmp / "shape1.ply"),
                                 "png": str(tmp / "shape1.png")}
    mesh = load_mesh(tmp / "shape1.ply")
    assert len(mesh.faces) > 1000 and np.abs(mesh.vertices).max() <= 1
    points, normals = sample_surface(mesh, SURFACE_POINTS, seed=0)
    exported = torch.from_numpy(np.concatenate([points, normals], axis=1))[None]
    assert prior.distance(exported, train[1:2])[0, 0] < 0.08  # the prediction for shape 1 (round trip's bound)
    picture = png(tmp / "shape1.png")
    assert picture.shape == (S, S, 3) and 0.02 < drawn(picture) < 0.9

    config = (tmp / "projector" / "projector_config.pbtxt").read_text()
    assert "sprite" in config and f"single_image_dim: {S}" in config
    labels = (tmp / "projector" / "00000" / "latents" / "metadata.tsv").read_text().split()
    assert labels[:2] == ["train/0", "train/1"] and len(labels) == 12


@pytest.mark.slow
def test_neighbours_by_chamfer_find_a_training_shape_itself_first(prior):
    train = prior.load_signals()
    name, distances = signal_distances(prior, train[[5, 0, 11]], train)
    found = nearest(distances, k=2)
    assert name == "chamfer" and found.indices[:, 0].tolist() == [5, 0, 11]
    assert (found.distances[:, 0] == 0).all() and (found.distances[:, 1] > 0.03).all()
