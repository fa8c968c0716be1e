"""Image collection loaders and the square resize."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hypersiren.io import (load_celeba, load_image_array, load_image_folder, load_packaged_faces,
                             square_resize)

CELEBA64 = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba64" / "celeba64_train.npz"


def random_images(n=3, h=10, w=14, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def test_npz_round_trip_and_errors(tmp_path):
    images = random_images()
    np.savez(tmp_path / "faces.npz", images=images)
    assert np.array_equal(load_image_array(tmp_path / "faces.npz"), images)
    np.savez(tmp_path / "other.npz", pixels=images)
    with pytest.raises(ValueError, match=r"has no array 'images'; it has \['pixels'\]"):
        load_image_array(tmp_path / "other.npz")
    np.savez(tmp_path / "float.npz", images=images.astype(np.float32))
    with pytest.raises(ValueError, match="expected uint8 pixel values, got float32"):
        load_image_array(tmp_path / "float.npz")
    np.savez(tmp_path / "shape.npz", images=images[..., :2])
    with pytest.raises(ValueError, match=r"expected images \[N, H, W, C\] with C = 1 or 3, got shape \(3, 10, 14, 2\)"):
        load_image_array(tmp_path / "shape.npz")
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_image_array(tmp_path / "missing.npz")


def test_image_folder(tmp_path):
    images = random_images()
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    assert np.array_equal(load_image_folder(tmp_path), images)  # PNG is lossless
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="differ in size"):
        load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no folder at"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "big.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*big.png"):
        load_image_folder(tmp_path)


def test_celeba_layout_and_split(tmp_path):
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    lines = []
    for i in range(1, 7):
        Image.fromarray(np.full((218, 178, 3), i * 30, np.uint8)).save(folder / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {(i - 1) % 3}")
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    test = load_celeba(tmp_path, "test")
    assert test.shape == (2, 218, 178, 3)
    assert abs(int(test[0].mean()) - 90) <= 2 and abs(int(test[1].mean()) - 180) <= 2  # images 3 and 6
    (folder / "000006.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000006.jpg is listed in list_eval_partition.txt but missing"):
        load_celeba(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="missing .*list_eval_partition.txt; expected CelebA's aligned layout"):
        load_celeba(tmp_path / "img_align_celeba")
    with pytest.raises(ValueError, match="split must be one of"):
        load_celeba(tmp_path, "holdout")


def test_packaged_faces():
    faces = load_packaged_faces()
    assert faces.shape == (100, 25, 25, 1) and faces.dtype == np.uint8
    assert 40 < faces.mean() < 200 and faces.std() > 20  # real pictures, not blank


def test_square_resize_crops_the_centre_and_averages():
    image = np.zeros((1, 4, 8, 1), dtype=np.uint8)
    image[0, :, 2:6] = 255  # the centre square is white, the sides black
    assert torch.equal(square_resize(image, 4), torch.ones(1, 4, 4, 1))
    # the filter is symmetric, so a linear ramp stays linear: interior pixels take the ramp's value
    # at their centres (input columns 2.5 and 4.5 of 0..7)
    ramp = np.tile((np.arange(8) * 32).astype(np.uint8), (8, 1))[None, ..., None]
    small = square_resize(ramp, 4)[0, :, :, 0]
    torch.testing.assert_close(small[1:3, 1:3], torch.tensor([[80.0, 144.0], [80.0, 144.0]]) / 255)
    torch.testing.assert_close(square_resize(np.full((2, 9, 9, 3), 77, np.uint8), 4), torch.full((2, 4, 4, 3), 77 / 255))
    with pytest.raises(ValueError, match="resolution must be a positive int"):
        square_resize(image, 0)


@pytest.mark.skipif(not CELEBA64.exists(), reason="shared CelebA sample not present")
def test_shared_celeba64_loads():
    images = load_image_array(CELEBA64)
    assert images.shape[1:] == (64, 64, 3) and images.shape[0] >= 1000
    assert square_resize(images[:8], 32).shape == (8, 32, 32, 3)
