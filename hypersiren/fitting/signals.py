"""Single signals on disk and back: images, audio, video, oriented point clouds and meshes.

Loaders return float arrays with documented ranges and raise a clear error naming the file for a
missing, unreadable, empty or non-finite input. Writers produce the task artefacts (PNG, wav, mp4,
PLY).

Dependencies: Pillow (images), scipy.io.wavfile (wav), PyAV (mp4; FFmpeg bindings, so no system
ffmpeg is needed), trimesh (OBJ / PLY / OFF meshes and PLY export).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _existing(path: str | os.PathLike, caller: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: no file at {path}")
    return path


def _finite(array: np.ndarray, path: Path | str, caller: str) -> np.ndarray:
    if array.size == 0:
        raise ValueError(f"{caller}: {path} holds no samples")
    if not np.isfinite(array).all():
        raise ValueError(f"{caller}: {path} contains {int((~np.isfinite(array)).sum())} non-finite values (NaN or inf)")
    return array


# --- images ----------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike, *, size: int | None = None, grey: bool | None = None) -> np.ndarray:
    """An image file -> float32 `[H, W, C]` in [0, 1], `C = 1` for grey images (or `grey=True`), else 3.

    `size` centre-crops to a square and resizes to `size x size` (antialiased bilinear).
    """
    from PIL import Image, UnidentifiedImageError

    path = _existing(path, "load_image")
    try:
        with Image.open(path) as im:
            mode = "L" if (grey if grey is not None else im.mode in ("L", "LA", "I", "I;16", "1")) else "RGB"
            im = im.convert(mode)
            if size is not None:
                side = min(im.size)
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR, reducing_gap=None)
            array = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"load_image: cannot read {path} as an image ({error})") from error
    return array[..., None] if array.ndim == 2 else array


def packaged_image(name: str, *, size: int | None = None, grey: bool = False) -> np.ndarray:
    """A scikit-image sample image (`camera`, `astronaut`, `coffee`, ...) as `load_image` returns it."""
    from PIL import Image
    from skimage import data

    if not hasattr(data, name):
        raise ValueError(f"packaged_image: scikit-image has no sample image {name!r}")
    array = np.asarray(getattr(data, name)())
    im = Image.fromarray(array)
    if grey and im.mode != "L":
        im = im.convert("L")
    if size is not None:
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR, reducing_gap=None)
    out = np.asarray(im, dtype=np.float32) / 255.0
    return out[..., None] if out.ndim == 2 else out


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """`[H, W, C]` floats in [0, 1] (clipped) -> an 8-bit PNG."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path


# --- audio -----------------------------------------------------------------------------------------


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A wav file -> (float32 mono samples `[T]`, sample rate). Integer formats are scaled to [-1, 1];
    stereo and multi-channel files are mixed down to mono (the mean of the channels), with a log note."""
    from scipy.io import wavfile

    path = _existing(path, "load_audio")
    try:
        rate, samples = wavfile.read(path)
    except (ValueError, EOFError, OSError) as error:
        raise ValueError(f"load_audio: cannot read {path} as a wav file ({error})") from error
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        samples = (samples.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    samples = samples.astype(np.float32)
    if samples.ndim == 2:
        log.info("load_audio: %s has %d channels; mixing them down to mono", path, samples.shape[1])
        samples = samples.mean(1)
    return _finite(samples, path, "load_audio"), int(rate)


def tone_sequence(*, rate: int = 8000, seconds: float = 1.0) -> np.ndarray:
    """The default audio signal: four tones (262, 330, 392, 523 Hz) one after the other, then a chord,
    with smooth on/off ramps; float32 `[rate * seconds]` in [-1, 1]."""
    t = np.arange(int(rate * seconds)) / rate
    notes = (262.0, 330.0, 392.0, 523.0)
    slot = seconds / (len(notes) + 1)
    signal = np.zeros_like(t)
    for i, freq in enumerate((*notes, None)):
        inside = (t >= i * slot) & (t < (i + 1) * slot)
        local = t[inside] - i * slot
        envelope = np.sin(np.pi * local / slot) ** 2
        freqs = notes if freq is None else (freq,)
        signal[inside] = envelope * sum(np.sin(2 * np.pi * f * t[inside]) for f in freqs) / len(freqs)
    return (0.8 * signal / np.abs(signal).max()).astype(np.float32)


def save_audio(path: str | os.PathLike, samples: np.ndarray, rate: int) -> Path:
    """Float samples `[T]` in [-1, 1] (clipped) -> a 16-bit mono wav."""
    from scipy.io import wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(samples, -1, 1) * 32767).round().astype(np.int16))
    return path


# --- video -----------------------------------------------------------------------------------------


def load_video(path: str | os.PathLike, *, max_frames: int | None = None) -> np.ndarray:
    """An mp4 (any format FFmpeg decodes) or a frames array (`.npy`, or `.npz` with an array `frames`
    or a single array) ->
    float32 `[T, H, W, C]` in [0, 1]. Arrays may be uint8 (0..255) or floats in [0, 1]; `[T, H, W]`
    is taken as grey."""
    path = _existing(path, "load_video")
    if path.suffix in (".npy", ".npz"):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                key = "frames" if "frames" in archive.files else archive.files[0] if len(archive.files) == 1 else None
                if key is None:
                    raise ValueError(f"load_video: {path} must hold an array 'frames' or exactly one array, "
                                     f"it has {archive.files}")
                frames = archive[key]
        else:
            frames = np.load(path, allow_pickle=False)
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
            raise ValueError(f"load_video: expected frames [T, H, W, C] with C = 1 or 3 in {path}, got {frames.shape}")
        frames = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float32)
    else:
        import av

        try:
            with av.open(str(path)) as container:
                frames = []
                for frame in container.decode(video=0):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if max_frames is not None and len(frames) >= max_frames:
                        break
        except (av.error.FFmpegError, ValueError) as error:
            raise ValueError(f"load_video: cannot decode {path} as a video ({error})") from error
        if not frames:
            raise ValueError(f"load_video: {path} holds no video frames")
        frames = np.stack(frames).astype(np.float32) / 255.0
    return _finite(frames[:max_frames], path, "load_video")


def moving_crop_video(image: np.ndarray, *, frames: int = 12, size: int = 48) -> np.ndarray:
    """The default video: a square window panning diagonally across an image `[H, W, C]` ->
    `[frames, size, size, C]`."""
    h, w = image.shape[:2]
    side = min(h, w) // 2
    from PIL import Image

    out = []
    for t in range(frames):
        top = round(t * (h - side) / max(frames - 1, 1))
        left = round(t * (w - side) / max(frames - 1, 1))
        crop = (image[top : top + side, left : left + side] * 255).round().astype(np.uint8)
        im = Image.fromarray(crop[..., 0] if crop.shape[-1] == 1 else crop).resize((size, size), Image.BILINEAR)
        array = np.asarray(im, dtype=np.float32) / 255.0
        out.append(array[..., None] if array.ndim == 2 else array)
    return np.stack(out)


def save_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25) -> Path:
    """`[T, H, W, C]` floats in [0, 1] -> an H.264 mp4 (`.mp4`) or a uint8 frames array (`.npy`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if path.suffix == ".npy":
        np.save(path, array)
        return path
    import av

    h, w = array.shape[1:3]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sides
    array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w + pad_w, h + pad_h, "yuv420p"
        stream.options = {"crf": "18"}
        for frame in array:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --- point clouds and meshes -----------------------------------------------------------------------

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl")


def load_oriented_points(path: str | os.PathLike, *, samples: int = 100_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Surface points and unit normals `[P, 3]`, `[P, 3]` (float32) from an oriented point cloud
    (text, one `x y z nx ny nz` per line) or a mesh (`.obj/.ply/.off/.stl`, sampled uniformly by area
    to `samples` points with their face normals)."""
    path = _existing(path, "load_oriented_points")
    if path.suffix.lower() in MESH_SUFFIXES:
        points, normals = _sample_mesh(path, samples, seed)
    else:
        try:
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise ValueError(f"load_oriented_points: cannot parse {path} as numbers ({error})") from error
        if table.shape[1] != 6:
            raise ValueError(f"load_oriented_points: expected 6 columns 'x y z nx ny nz' in {path}, "
                             f"got {table.shape[1]} columns")
        points, normals = table[:, :3], table[:, 3:]
    _finite(points, path, "load_oriented_points")
    _finite(normals, path, "load_oriented_points")
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    if (lengths < 1e-12).any():
        raise ValueError(f"load_oriented_points: {int((lengths < 1e-12).sum())} zero-length normals in {path}")
    return points.astype(np.float32), (normals / lengths).astype(np.float32)


def _sample_mesh(path: Path, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many exception types for malformed files
        raise ValueError(f"load_oriented_points: cannot read {path} as a mesh ({error})") from error
    if len(mesh.faces) == 0:
        raise ValueError(f"load_oriented_points: {path} has no faces to sample")
    points, faces = trimesh.sample.sample_surface(mesh, samples, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals[faces])


def normalise_points(points: np.ndarray, *, extent: float = 0.9) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre a point set at its bounding-box centre and scale it uniformly (keeping its aspect) so
    that its longest half-side is `extent`. Returns (points, centre, scale) with
    `normalised = (points - centre) * scale`."""
    low, high = points.min(0), points.max(0)
    centre = (low + high) / 2
    half = float((high - low).max()) / 2
    if half <= 0:
        raise ValueError("normalise_points: all points coincide")
    scale = extent / half
    return ((points - centre) * scale).astype(np.float32), centre, scale


def torus_points(count: int = 20_000, *, major: float = 0.6, minor: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The default shape: points and outward normals on a torus around the z axis (area-uniform)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 2 * np.pi, count * 2)
    v = rng.uniform(0, 2 * np.pi, count * 2)
    keep = rng.uniform(0, major + minor, count * 2) < major + minor * np.cos(v)  # area element ~ R + r cos v
    u, v = u[keep][:count], v[keep][:count]
    normals = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    centres = np.stack([major * np.cos(u), major * np.sin(u), np.zeros_like(u)], axis=1)
    return (centres + minor * normals).astype(np.float32), normals.astype(np.float32)


def save_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a triangle mesh (`.ply`, `.obj` or `.off`)."""
    import trimesh

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(vertices=vertices, faces=faces, process=False).export(path)
    return path
