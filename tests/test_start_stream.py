"""A basis prior's start streamed from disk and over processes: `streamed_probabilistic_pca`,
`io.stream_collection`, `modalities.image.stream_start` and the trainer's start by `Modality.start_chunks`
give the PPCA of the in-memory route (`probabilistic_pca`), bad collections give errors naming the file,
and two real gloo processes find what one finds."""

import dataclasses

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.io import load_collection, square_resize, stream_collection
from hypersiren.modalities.image import ImageData, ImageModality, stream_start
from hypersiren.modalities.shape import ShapeData, ShapeModality
from hypersiren.modalities.shape.modality import ShapeTrainingSet
from hypersiren.prior import (PPCA, HyperSiren, HyperSirenConfig, PriorTrainer, Ranks, TrainConfig, probabilistic_pca,
                              streamed_probabilistic_pca)

from support import in_gloo_processes

BASIS = HyperSirenConfig(value_dim=3, latent_dim=4, siren_hidden=16, siren_depth=3, heads="basis", encoder="posterior",
                         w0_first=10.0, w0=10.0)


def waves(n=30, side=10, channels=3, seed=0) -> np.ndarray:
    """uint8 images `[n, side, side + 2, channels]` of smooth random waves (a few strong components)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side + 2), indexing="ij")
    freq, phase = rng.uniform(0, 3, (n, 2, channels)), rng.uniform(0, 6, (n, 1, 1, channels))
    field = np.sin(freq[:, None, None, 0] * y[..., None] + freq[:, None, None, 1] * x[..., None] + phase)
    return np.round((field + 1) * 127.5).astype(np.uint8)


def write_shards(folder, images, size) -> list:
    folder.mkdir()
    paths = [folder / f"part-{i:03d}.npy" for i in range(0, len(images), size)]
    for path, first in zip(paths, range(0, len(images), size)):
        np.save(path, images[first : first + size])
    return paths


def write_image_folder(folder, images) -> None:
    folder.mkdir()
    for i, image in enumerate(images):
        hs.io.save_image(folder / f"{i:03d}.png", image / 255.0)


def in_memory_start(images: np.ndarray, resolution: int, latent_dim: int) -> PPCA:
    """The trainer's values of `images` (`ImageModality.prepare`) and their in-memory PPCA."""
    config = TrainConfig(min_context=1, max_context=4)
    values = ImageModality(ImageData()).prepare(square_resize(images, resolution), config, torch.device("cpu")).values
    return probabilistic_pca(values, latent_dim)


def assert_same_ppca(found: PPCA, expected: PPCA, *, atol=1e-5):
    """Equal PPCAs; the in-memory route keeps eigh's sign of each component, the streamed one fixes it."""
    torch.testing.assert_close(found.mean, expected.mean, rtol=0, atol=atol)
    signs = (found.basis * expected.basis).sum((0, 1)).sign()  # [Z]
    torch.testing.assert_close(found.basis, expected.basis * signs, rtol=0, atol=atol)
    assert found.noise == pytest.approx(expected.noise, rel=1e-6)


# --- the numerics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [20, 200])  # fewer signals than values (Gram matrix in memory) and more
@pytest.mark.parametrize("method", ["dense", "randomized"])
def test_streamed_ppca_is_the_in_memory_ppca(n, method):
    g = torch.Generator().manual_seed(0)
    values = torch.randn(n, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 30 * 2, generator=g,
                                                                            dtype=torch.float64)
    values = (values + 0.01 * torch.randn(n, 60, generator=g, dtype=torch.float64) + 3).reshape(n, 30, 2)
    expected = probabilistic_pca(values, 4)
    for chunk in (7, n):
        found = streamed_probabilistic_pca(values.split(chunk), 4, method=method)
        assert found.basis.dtype == torch.float64
        assert_same_ppca(found, expected, atol=1e-9)


def test_streamed_ppca_refuses_bad_chunks():
    values = torch.randn(10, 6, 2)
    with pytest.raises(ValueError, match=r"expected chunks \[n, 6, 2\], got \(3, 5, 2\)"):
        streamed_probabilistic_pca([values, torch.randn(3, 5, 2)], 2)
    with pytest.raises(ValueError, match=r"expected chunks \[n, P, C\], got \(10, 12\)"):
        streamed_probabilistic_pca([values.flatten(1)], 2)
    with pytest.raises(ValueError, match="streamed_probabilistic_pca: no chunks"):
        streamed_probabilistic_pca(iter([]), 2)
    with pytest.raises(ValueError, match="streamed_probabilistic_pca: 9 components need more than 10 signals of 12"):
        streamed_probabilistic_pca(values.split(4), 9)


# --- streaming a collection from disk ---------------------------------------------------------------

def test_stream_collection_reads_shards_files_and_folders_as_load_collection(tmp_path):
    images = waves(23)
    write_shards(tmp_path / "shards", images, 5)
    np.save(tmp_path / "one.npy", images)
    write_image_folder(tmp_path / "pictures", images[:9])
    expected = square_resize(images, 8)
    for source in (tmp_path / "shards", tmp_path / "one.npy"):
        whole = torch.cat(list(stream_collection(source, 8, chunk=4)))
        torch.testing.assert_close(whole, expected, rtol=0, atol=0)
        np.testing.assert_array_equal(load_collection(source), images)
        # limit, holdout and three processes' consecutive shares, as `ImageData` takes them
        shares = [torch.cat(list(stream_collection(source, 8, chunk=3, limit=20, holdout=2, rank=r, world_size=3)))
                  for r in range(3)]
        assert [len(s) for s in shares] == [6, 6, 6]
        torch.testing.assert_close(torch.cat(shares), expected[:18], rtol=0, atol=0)
    pictures = torch.cat(list(stream_collection(tmp_path / "pictures", 8, chunk=2)))
    torch.testing.assert_close(pictures, square_resize(load_collection(tmp_path / "pictures"), 8), rtol=0, atol=0)
    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)  # CelebA's layout: the test split is 3, 6
    for i in range(1, 7):
        hs.io.save_image(tmp_path / "celeba" / "img_align_celeba" / f"{i:06d}.png", images[i] / 255.0)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("".join(f"{i:06d}.png {(i - 1) % 3}\n"
                                                                         for i in range(1, 7)))
    celeba = torch.cat(list(stream_collection(tmp_path / "celeba", 8, split="test", chunk=1)))
    torch.testing.assert_close(celeba, expected[[3, 6]], rtol=0, atol=0)
    faces = torch.cat(list(stream_collection("faces", 12, chunk=40, limit=50)))
    torch.testing.assert_close(faces, square_resize(load_collection("faces", limit=50), 12), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["shards", "pictures"])
def test_stream_start_is_the_trainers_start_of_the_same_images(tmp_path, kind):
    images = waves(30, side=10 if kind == "shards" else 8)
    if kind == "shards":
        write_shards(tmp_path / kind, images, 7)
    else:
        write_image_folder(tmp_path / kind, images)
    expected = in_memory_start(images[:26], 6, 4)  # 4 held out
    assert_same_ppca(stream_start(tmp_path / kind, 6, 4, chunk=5, holdout=4, method="dense"), expected)
    trainer_data = ImageModality(ImageData(source=str(tmp_path / kind), resolution=6, holdout=4)).load("train")
    torch.testing.assert_close(trainer_data, square_resize(images[:26], 6), rtol=0, atol=0)


def test_bad_collections_give_errors_naming_the_file(tmp_path):
    images = waves(12)
    paths = write_shards(tmp_path / "shards", images, 5)
    np.save(paths[1], images[5:10, :, :-1])  # another width
    with pytest.raises(ValueError, match=r"stream_collection: shard .*part-005.npy holds images of \(10, 11, 3\), "
                                         r"but .*part-000.npy holds \(10, 12, 3\)"):
        stream_collection(tmp_path / "shards", 8)
    np.save(paths[1], images[5:10].astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"part-005.npy: expected uint8 pixel values, got float32 \(from floats"):
        stream_collection(tmp_path / "shards", 8)
    np.save(paths[1], np.array([None] * 5, dtype=object))
    with pytest.raises(ValueError, match="refusing to load .*part-005.npy: it carries pickled Python objects"):
        stream_collection(tmp_path / "shards", 8)
    paths[1].write_bytes(paths[0].read_bytes()[:300])  # truncated
    with pytest.raises(ValueError, match=r"stream_collection: cannot read .*part-005.npy as an .npy array of images"):
        stream_collection(tmp_path / "shards", 8)
    np.savez(tmp_path / "images.npz", images=images)
    with pytest.raises(ValueError, match=r"cannot stream .*images.npz: expected an .npy array"):
        stream_collection(tmp_path / "images.npz", 8)
    with pytest.raises(FileNotFoundError, match=r"stream_collection: no image data at .*missing"):
        stream_collection(tmp_path / "missing", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"stream_collection: no .npy shards or .png/.jpg/.jpeg/.bmp files in .*empty"):
        stream_collection(tmp_path / "empty", 8)
    write_image_folder(tmp_path / "mixed", images[:3])
    np.save(tmp_path / "mixed" / "more.npy", images)
    with pytest.raises(ValueError, match=r"mixed holds both .npy shards and image files"):
        stream_collection(tmp_path / "mixed", 8)
    write_image_folder(tmp_path / "sizes", images[:3])
    hs.io.save_image(tmp_path / "sizes" / "003.png", np.zeros((4, 4, 3)))
    stream = stream_collection(tmp_path / "sizes", 8, chunk=3)
    next(stream)  # the first chunk is fine; the odd image is found when its chunk is decoded
    with pytest.raises(ValueError, match=r"stream_collection: .*003.png is 4x4 pixels, but .*000.png is 12x10"):
        next(stream)
    write_image_folder(tmp_path / "broken", images[:3])
    (tmp_path / "broken" / "003.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"stream_collection: cannot read image file .*003.png as an image"):
        list(stream_collection(tmp_path / "broken", 8, chunk=2))
    with pytest.raises(ValueError, match="too few to give each of 4 processes one"):
        stream_collection(paths[0], 8, limit=5, holdout=2, world_size=4, rank=0)
    with pytest.raises(ValueError, match="chunk must be a positive int, got 0"):
        stream_collection(paths[0], 8, chunk=0)
    with pytest.raises(ValueError, match="expected 0 <= rank < world_size, got rank=2, world_size=2"):
        stream_collection(paths[0], 8, rank=2, world_size=2)


# --- the trainer's start ----------------------------------------------------------------------------

def test_trainer_start_by_chunks_is_the_start_from_probabilistic_pca(tmp_path):
    images = square_resize(waves(20, side=8), 8)
    config = TrainConfig(steps=0, batch_size=4, min_context=4, max_context=12, latent_weight=0.0, param_weight=0.0,
                         init_steps=30, init_lr=1e-3, checkpoint_every_s=1e9)
    modality = ImageModality(ImageData())
    torch.manual_seed(0)
    trainer = PriorTrainer(BASIS, config, modality, images, tmp_path)
    values = trainer.train_set.values
    expected = probabilistic_pca(values, BASIS.latent_dim)
    coords, chunks = modality.start_chunks(trainer.train_set, rows=slice(5, 20), chunk=4)
    assert [len(c) for c in chunks] == [4, 4, 4, 3]
    for rows in ([slice(0, 20)], [slice(0, 7), slice(7, 20)]):  # one process, or two shares
        parts = [chunk for share in rows for chunk in modality.start_chunks(trainer.train_set, rows=share, chunk=3)[1]]
        assert_same_ppca(streamed_probabilistic_pca(parts, BASIS.latent_dim, method="dense"), expected, atol=1e-6)
    torch.manual_seed(0)
    old = HyperSiren(BASIS)  # the same initial weights as the trainer's model
    old_info = old.hypernet.initialise(coords, values, steps=30, lr=1e-3)  # the in-memory route
    trainer.initialise()
    for (name, p), q in zip(trainer.model.named_parameters(), old.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    assert trainer.start_info["signals"] == 20
    assert trainer.start_info["ppca_noise"] == pytest.approx(old_info["ppca_noise"], rel=1e-6)


def test_trainer_start_needs_a_share_of_the_signals_for_every_process(tmp_path):
    config = TrainConfig(steps=0, batch_size=4, min_context=2, max_context=8, init_steps=1)
    images = square_resize(waves(3, side=4), 4)
    trainer = PriorTrainer(dataclasses.replace(BASIS, latent_dim=1), config, ImageModality(ImageData()), images,
                           tmp_path, ranks=Ranks(0, 4))
    with pytest.raises(ValueError, match="gives each of 4 processes a share of the 3 training signals"):
        trainer.initialise()


def test_shape_start_chunks_compute_only_their_rows():
    g = torch.Generator().manual_seed(0)
    normals = torch.nn.functional.normalize(torch.randn(5, 64, 3, generator=g), dim=-1)
    train_set = ShapeTrainingSet(0.5 * normals, normals)  # spheres of radius 1/2
    modality = ShapeModality(ShapeData(count=5, points=64))
    coords, values = modality.start_targets(train_set)
    shared, chunks = modality.start_chunks(train_set, rows=slice(1, 5), chunk=3)
    torch.testing.assert_close(shared, coords, rtol=0, atol=0)
    parts = list(chunks)
    assert [len(p) for p in parts] == [3, 1]
    torch.testing.assert_close(torch.cat(parts), values[1:], rtol=0, atol=0)


# --- two real processes -----------------------------------------------------------------------------

def _stream_share(rank: int, root: str) -> tuple:
    found = stream_start(f"{root}/shards", 6, 4, chunk=4, method="dense")
    try:  # a bad image in process 1's share: both processes stop, neither waits for the other
        stream_start(f"{root}/pictures", 6, 2, chunk=2)
        return found, None
    except ValueError as error:
        return found, str(error)


def test_two_processes_streaming_their_shares_find_the_start_of_one(tmp_path):
    images = waves(25)
    write_shards(tmp_path / "shards", images, 6)
    write_image_folder(tmp_path / "pictures", images[:8])
    (tmp_path / "pictures" / "006.png").write_bytes(b"not an image")  # in the second half
    results = in_gloo_processes(_stream_share, str(tmp_path), folder=tmp_path)
    expected = stream_start(tmp_path / "shards", 6, 4, chunk=4, method="dense")
    assert_same_ppca(expected, in_memory_start(images, 6, 4))
    for rank in range(2):
        assert_same_ppca(results[rank][0], expected, atol=1e-6)
    assert "cannot read image file" in results[1][1] and "006.png" in results[1][1]
    assert "process(es) [1] failed while streaming their share" in results[0][1]
