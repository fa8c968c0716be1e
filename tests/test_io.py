"""Single-signal files (`hypersiren.io`): images, audio, video, oriented points and meshes round-trip,
fitting and priors resize images the same way, and bad files give errors that name the problem."""

import logging

import numpy as np
import pytest
import torch

from hypersiren.geometry import Mesh
from hypersiren.io import (
    load_audio,
    load_image,
    load_mesh,
    load_oriented_points,
    load_video,
    moving_crop_video,
    normalise_points,
    packaged_image,
    save_audio,
    save_image,
    save_mesh,
    save_video,
    square_resize,
    tone_sequence,
    torus_points,
    unit_image,
)

# --- images -----------------------------------------------------------------------------------------


def test_load_image_resizes_as_square_resize_does(tmp_path):
    """One resize path: a file loaded at a size equals the priors' `square_resize` of its pixels."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)  # landscape
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    loaded = load_image(tmp_path / "rgb.png", size=12)
    expected = square_resize(pixels[None], 12)[0].numpy()
    assert loaded.shape == (12, 12, 3) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, expected)
    # the crop is centred: columns 5..34 of the 40
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png", size=30), pixels[:, 5:35] / np.float32(255))


def test_packaged_image_resizes_as_square_resize_does():
    from skimage import data

    camera = packaged_image("camera", size=20)
    np.testing.assert_array_equal(camera, square_resize(data.camera()[None], 20)[0].numpy())
    assert packaged_image("astronaut", size=8).shape == (8, 8, 3)
    assert packaged_image("astronaut", size=8, grey=True).shape == (8, 8, 1)


def test_image_round_trip_and_grey_detection(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, size=(5, 7, 1)).astype(np.float32) / 255
    save_image(tmp_path / "grey.png", image)
    np.testing.assert_array_equal(load_image(tmp_path / "grey.png"), image)  # exact at 8 bits
    assert load_image(tmp_path / "grey.png", grey=False).shape == (5, 7, 3)
    save_image(tmp_path / "rgb.png", np.repeat(image, 3, axis=-1))
    assert load_image(tmp_path / "rgb.png").shape == (5, 7, 3)
    assert load_image(tmp_path / "rgb.png", grey=True).shape == (5, 7, 1)
    assert unit_image(np.full((2, 3), 255, np.uint8)).tolist() == [[[1.0]] * 3] * 2


def test_image_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_image: no file at .*missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "noise.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="load_image: cannot read .*noise.png as an image"):
        load_image(tmp_path / "noise.png")
    with pytest.raises(ValueError, match="unit_image: size must be a positive int or None, got 0"):
        unit_image(np.zeros((4, 4), np.uint8), size=0)
    with pytest.raises(ValueError, match="unit_image: expected uint8 pixel values"):
        unit_image(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"save_image: expected an image \[H, W, C\] with C = 1 or 3, got shape \(4, 4\)"):
        save_image(tmp_path / "flat.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="packaged_image: scikit-image has no sample image 'nothing'"):
        packaged_image("nothing")


# --- audio ------------------------------------------------------------------------------------------


def test_audio_round_trip_at_16_bits(tmp_path):
    samples = tone_sequence(rate=4000, seconds=0.25)
    assert samples.shape == (1000,) and np.abs(samples).max() == pytest.approx(0.8)
    save_audio(tmp_path / "tone.wav", samples, 4000)
    loaded, rate = load_audio(tmp_path / "tone.wav")
    # half a step of rounding, plus the scales' mismatch: 1.0 is written as 32767 and 32767 read as 32767 / 32768
    assert rate == 4000 and loaded.shape == (1000,) and np.abs(loaded - samples).max() < 1.5 / 32767


def test_stereo_wav_is_mixed_down_with_a_note(tmp_path, caplog):
    from scipy.io import wavfile

    left, right = np.full(100, 0.5, np.float32), np.full(100, -0.1, np.float32)
    wavfile.write(tmp_path / "stereo.wav", 8000, np.stack([left, right], 1))
    with caplog.at_level(logging.INFO):
        samples, rate = load_audio(tmp_path / "stereo.wav")
    assert samples.shape == (100,) and np.allclose(samples, 0.2) and rate == 8000
    assert "mixing them down to mono" in caplog.text


def test_integer_wav_is_scaled_to_unit_range(tmp_path):
    from scipy.io import wavfile

    wavfile.write(tmp_path / "int.wav", 8000, np.array([-32768, 0, 16384, 32767], np.int16))
    samples, _ = load_audio(tmp_path / "int.wav")
    np.testing.assert_allclose(samples, [-1, 0, 0.5, 32767 / 32768], atol=1e-6)
    wavfile.write(tmp_path / "uint8.wav", 8000, np.array([0, 128, 255], np.uint8))
    np.testing.assert_allclose(load_audio(tmp_path / "uint8.wav")[0], [-1, 0, 127 / 128], atol=1e-6)


def test_audio_errors_name_the_problem(tmp_path):
    from scipy.io import wavfile

    with pytest.raises(FileNotFoundError, match="load_audio: no file at"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="load_audio: cannot read .*empty.wav as a wav file"):
        load_audio(tmp_path / "empty.wav")
    wavfile.write(tmp_path / "silent.wav", 8000, np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="load_audio: .*silent.wav holds no samples"):
        load_audio(tmp_path / "silent.wav")
    wavfile.write(tmp_path / "nan.wav", 8000, np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="load_audio: .*nan.wav contains 1 non-finite values"):
        load_audio(tmp_path / "nan.wav")
    with pytest.raises(ValueError, match=r"save_audio: expected mono samples \[T\], got shape \(4, 2\)"):
        save_audio(tmp_path / "stereo.wav", np.zeros((4, 2)), 8000)


# --- video ------------------------------------------------------------------------------------------


def test_video_round_trips_through_npy_npz_and_mp4(tmp_path):
    frames = moving_crop_video(packaged_image("astronaut", size=64), frames=4, size=16)
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.float32
    save_video(tmp_path / "clip.npy", frames)
    np.testing.assert_allclose(load_video(tmp_path / "clip.npy"), frames, atol=0.5 / 255 + 1e-7)  # 8-bit
    np.savez(tmp_path / "clip.npz", frames=frames)
    np.testing.assert_array_equal(load_video(tmp_path / "clip.npz", max_frames=2), frames[:2])
    save_video(tmp_path / "clip.mp4", frames)
    decoded = load_video(tmp_path / "clip.mp4")
    assert decoded.shape == (4, 16, 16, 3) and np.abs(decoded - frames).mean() < 0.06  # lossy H.264
    grey = frames[..., :1]
    save_video(tmp_path / "odd.mp4", grey[:, :15, :13])  # odd sides are padded for yuv420p
    assert load_video(tmp_path / "odd.mp4").shape == (4, 16, 14, 3)


def test_video_errors_name_the_problem(tmp_path):
    np.save(tmp_path / "bad.npy", np.full((2, 4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="load_video: .*bad.npy contains 96 non-finite values"):
        load_video(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"load_video: expected frames \[T, H, W, C\] with C = 1 or 3"):
        load_video(tmp_path / "flat.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 2, 2)), b=np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"must hold an array 'frames' or exactly one array, it has \['a', 'b'\]"):
        load_video(tmp_path / "two.npz")
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match="load_video: cannot decode .*junk.mp4 as a video"):
        load_video(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="load_video: max_frames must be >= 1 or None, got 0"):
        load_video(tmp_path / "flat.npy", max_frames=0)
    with pytest.raises(FileNotFoundError, match="load_video: no file at"):
        load_video(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match=r"save_video: expected frames \[T, H, W, C\] with C = 1 or 3, got shape \(2, 2\)"):
        save_video(tmp_path / "x.mp4", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="save_video: expected a .mp4 or .npy path"):
        save_video(tmp_path / "x.avi", np.zeros((1, 2, 2, 3)))


# --- oriented points and meshes ---------------------------------------------------------------------

TETRAHEDRON = Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
                   np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64))  # outward winding


def test_oriented_points_from_text_npz_and_mesh_files(tmp_path):
    points, normals = torus_points(500)
    np.savetxt(tmp_path / "torus.xyz", np.concatenate([points, 2 * normals], axis=1))
    loaded, unit = load_oriented_points(tmp_path / "torus.xyz")
    np.testing.assert_allclose(loaded, points, atol=1e-6)
    np.testing.assert_allclose(unit, normals, atol=1e-6)  # normalised on loading
    np.savez(tmp_path / "torus.npz", points=points, normals=normals)
    np.testing.assert_array_equal(load_oriented_points(tmp_path / "torus.npz")[0], points)

    save_mesh(tmp_path / "tetra.ply", TETRAHEDRON)
    mesh = load_mesh(tmp_path / "tetra.ply")
    np.testing.assert_array_equal(mesh.vertices, TETRAHEDRON.vertices)
    np.testing.assert_array_equal(mesh.faces, TETRAHEDRON.faces)
    surface, face_normals = load_oriented_points(tmp_path / "tetra.ply", samples=400, seed=3)
    assert surface.shape == face_normals.shape == (400, 3)
    on_a_face = np.isclose(surface, 0, atol=1e-6).any(1) | np.isclose(surface.sum(1), 1, atol=1e-5)
    assert on_a_face.all() and (surface > -1e-6).all()
    centroid = TETRAHEDRON.vertices.mean(0)
    assert ((surface - centroid) * face_normals).sum(1).min() > 0  # outward


def test_normalise_points_centres_and_scales_the_longest_side():
    points = np.array([[0, 0, 0], [4, 2, 1], [2, 1, 3]], np.float64)
    normalised, centre, scale = normalise_points(points, extent=0.5)
    np.testing.assert_allclose(centre, [2, 1, 1.5])
    assert scale == pytest.approx(0.25)  # longest half-side 2 -> 0.5
    np.testing.assert_allclose(normalised, (points - centre) * scale, atol=1e-7)
    assert normalised.dtype == np.float32 and np.abs(normalised).max() == pytest.approx(0.5)


def test_mesh_and_point_errors_name_the_problem(tmp_path):
    (tmp_path / "cloud.xyz").write_text("0 0 0 1 0\n1 1 1 0 1\n")
    with pytest.raises(ValueError, match="expected 6 columns 'x y z nx ny nz'.*got 5 columns"):
        load_oriented_points(tmp_path / "cloud.xyz")
    (tmp_path / "nan.xyz").write_text("0 0 nan 1 0 0\n1 1 1 0 1 0\n")
    with pytest.raises(ValueError, match="load_oriented_points: .*nan.xyz contains 1 non-finite values"):
        load_oriented_points(tmp_path / "nan.xyz")
    (tmp_path / "words.xyz").write_text("a b c d e f\n")
    with pytest.raises(ValueError, match="load_oriented_points: cannot parse .*words.xyz as numbers"):
        load_oriented_points(tmp_path / "words.xyz")
    (tmp_path / "flat.xyz").write_text("0 0 0 0 0 0\n1 1 1 0 1 0\n")
    with pytest.raises(ValueError, match="load_oriented_points: 1 zero-length normals in .*flat.xyz"):
        load_oriented_points(tmp_path / "flat.xyz")
    np.savez(tmp_path / "points.npz", points=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"points.npz lacks arrays \['normals'\]"):
        load_oriented_points(tmp_path / "points.npz")
    np.savez(tmp_path / "shape.npz", points=np.zeros((2, 2)), normals=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"expected points \[P, 3\] and normals \[P, 3\]"):
        load_oriented_points(tmp_path / "shape.npz")
    with pytest.raises(FileNotFoundError, match="load_oriented_points: no file at"):
        load_oriented_points(tmp_path / "missing.obj")
    with pytest.raises(ValueError, match="load_mesh: expected a .obj/.ply/.off/.stl file"):
        load_mesh(tmp_path / "cloud.xyz")
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(ValueError, match="load_mesh: cannot read .*broken.ply as a mesh"):
        load_mesh(tmp_path / "broken.ply")
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(ValueError, match="load_mesh: .*points.obj has no faces"):
        load_mesh(tmp_path / "points.obj")
    with pytest.raises(ValueError, match="save_mesh: expected a .obj/.ply/.off/.stl path"):
        save_mesh(tmp_path / "mesh.txt", TETRAHEDRON)
    with pytest.raises(ValueError, match="save_mesh: the mesh for .*empty.ply has no faces"):
        save_mesh(tmp_path / "empty.ply", Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)))
    with pytest.raises(ValueError, match="normalise_points: all points coincide"):
        normalise_points(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"normalise_points: expected points \[P, D\] with P >= 1"):
        normalise_points(np.zeros((0, 3)))


def test_generated_signals_are_deterministic_and_in_range():
    points, normals = torus_points(300, seed=4)
    again, _ = torus_points(300, seed=4)
    np.testing.assert_array_equal(points, again)
    radial = np.linalg.norm(points[:, :2], axis=1)
    np.testing.assert_allclose(np.hypot(radial - 0.6, points[:, 2]), 0.25, atol=1e-5)  # on the torus
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
    video = moving_crop_video(np.linspace(0, 1, 40 * 40).reshape(40, 40, 1).astype(np.float32), frames=3, size=8)
    assert video.shape == (3, 8, 8, 1) and 0 <= video.min() and video.max() <= 1
    assert video[0].mean() < video[-1].mean()  # the window moves towards the bright corner
    assert torch.is_tensor(square_resize(np.zeros((1, 4, 4, 1), np.uint8), 2))
