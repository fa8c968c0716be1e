"""Signals that need no file: scikit-image's packaged images, and generated audio, video and shapes.

They are the default inputs of single-signal fits and small, fixed data for tests. Each comes in
the form its file reader would return (`load_image`, `load_audio`, `load_video`, `load_oriented_points`).
"""

from __future__ import annotations

import numpy as np

from .images import square_resize, unit_image

TONES_HZ = (262.0, 330.0, 392.0, 523.0)  # C4, E4, G4, C5
TONE_PEAK = 0.8  # peak amplitude of `tone_sequence`


def packaged_image(name: str, *, size: int | None = None, grey: bool = False) -> np.ndarray:
    """A scikit-image sample image (`camera`, `astronaut`, `coffee`, ...) as `load_image` returns it:
    float32 `[H, W, C]` in [0, 1], centre-cropped and resized to `size x size` by `square_resize`."""
    from PIL import Image
    from skimage import data

    array = getattr(data, name, None)
    array = array() if callable(array) and name[0] != "_" else None
    if not isinstance(array, np.ndarray) or array.ndim not in (2, 3):
        raise ValueError(f"packaged_image: scikit-image has no sample image {name!r}")
    image = Image.fromarray(array)
    pixels = np.asarray(image.convert("L" if grey or array.ndim == 2 else "RGB"))
    return unit_image(pixels, size=size)


def tone_sequence(*, rate: int = 8000, seconds: float = 1.0) -> np.ndarray:
    """Four tones (`TONES_HZ`) one after the other, then their chord, each with smooth on/off ramps:
    float32 `[rate * seconds]` in [-1, 1] with peak `TONE_PEAK`."""
    t = np.arange(int(rate * seconds)) / rate
    slot = seconds / (len(TONES_HZ) + 1)
    signal = np.zeros_like(t)
    for i, tones in enumerate([(f,) for f in TONES_HZ] + [TONES_HZ]):
        inside = (t >= i * slot) & (t < (i + 1) * slot)
        envelope = np.sin(np.pi * (t[inside] - i * slot) / slot) ** 2
        signal[inside] = envelope * sum(np.sin(2 * np.pi * f * t[inside]) for f in tones) / len(tones)
    return (TONE_PEAK * signal / np.abs(signal).max()).astype(np.float32)


def moving_crop_video(image: np.ndarray, *, frames: int = 12, size: int = 48) -> np.ndarray:
    """A square window (half the image's shorter side) panning diagonally across an image `[H, W, C]`
    in [0, 1] -> float32 `[frames, size, size, C]`, each crop resized by `square_resize`."""
    h, w = image.shape[:2]
    side = min(h, w) // 2
    crops = []
    for t in range(frames):
        top = round(t * (h - side) / max(frames - 1, 1))
        left = round(t * (w - side) / max(frames - 1, 1))
        crops.append(image[top : top + side, left : left + side])
    pixels = (np.clip(np.stack(crops), 0, 1) * 255).round().astype(np.uint8)  # [T, side, side, C]
    return square_resize(pixels, size).numpy()


def torus_points(count: int = 20_000, *, major: float = 0.6, minor: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform by area on a torus around the z axis, and their outward unit normals: float32
    `[count, 3]` each."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 2 * np.pi, count * 2)
    v = rng.uniform(0, 2 * np.pi, count * 2)
    keep = rng.uniform(0, major + minor, count * 2) < major + minor * np.cos(v)  # area element ~ R + r cos v
    u, v = u[keep][:count], v[keep][:count]
    normals = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    centres = np.stack([major * np.cos(u), major * np.sin(u), np.zeros_like(u)], axis=1)
    return (centres + minor * normals).astype(np.float32), normals.astype(np.float32)
