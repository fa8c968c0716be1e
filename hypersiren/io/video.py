"""Video files: mp4 (any format FFmpeg decodes, through PyAV, so no system ffmpeg is needed) and frame
arrays (`.npy`, `.npz`), in and out.

Frames are float32 `[T, H, W, C]` in [0, 1], `C = 1` (grey) or 3.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._files import error_text, existing_file, finite_samples, open_numpy_file

ARRAY_SUFFIXES = (".npy", ".npz")
MP4_QUALITY = "18"  # libx264 constant rate factor of `save_video`: visually lossless


def load_video(path: str | os.PathLike, *, max_frames: int | None = None) -> np.ndarray:
    """A video file -> float32 `[T, H, W, C]` in [0, 1] (at most `max_frames` frames).

    Frame arrays: `.npy`, or `.npz` with an array `frames` or exactly one array; uint8 (0..255) or
    floats in [0, 1]; `[T, H, W]` is taken as grey. Anything else is decoded as a video (RGB).
    """
    path = existing_file(path, "load_video")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"load_video: max_frames must be >= 1 or None, got {max_frames!r}")
    frames = _load_frame_array(path) if path.suffix.lower() in ARRAY_SUFFIXES else _decode(path, max_frames)
    return finite_samples(frames[:max_frames], path, "load_video")


def _load_frame_array(path: Path) -> np.ndarray:
    with open_numpy_file(path, "load_video") as loaded:
        if isinstance(loaded, np.ndarray):  # .npy
            frames = loaded
        elif "frames" not in loaded.files and len(loaded.files) != 1:
            raise ValueError(f"load_video: {path} must hold an array 'frames' or exactly one array, it has "
                             f"{loaded.files}")
        else:
            frames = loaded["frames" if "frames" in loaded.files else loaded.files[0]]
    if frames.ndim == 3:  # [T, H, W]: grey
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"load_video: expected frames [T, H, W, C] with C = 1 or 3 in {path}, got {frames.shape}")
    if frames.dtype != np.uint8 and frames.dtype.kind != "f":
        raise ValueError(f"load_video: expected uint8 (0..255) or float (0..1) frames in {path}, got {frames.dtype}")
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    finite_samples(frames, path, "load_video")
    low, high = float(frames.min()), float(frames.max())
    if low < 0 or high > 1:
        raise ValueError(f"load_video: float frames must lie in [0, 1], but {path} holds values in [{low:g}, {high:g}]"
                         "; scale them (uint8 frames are read as 0..255)")
    return frames.astype(np.float32)


def _decode(path: Path, max_frames: int | None) -> np.ndarray:
    import av

    def undecodable(error: Exception) -> ValueError:
        return ValueError(f"load_video: cannot decode {path} as a video ({error_text(error)})")

    try:
        container = av.open(str(path))
    except Exception as error:  # PyAV raises FFmpeg's errors, and others for damaged files
        raise undecodable(error) from error
    frames = []
    with container:
        if not container.streams.video:
            kinds = ", ".join(stream.type for stream in container.streams) or "none"
            raise ValueError(f"load_video: {path} has no video stream (its streams: {kinds})")
        try:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))  # [H, W, 3] uint8
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except Exception as error:
            raise undecodable(error) from error
    if not frames:
        raise ValueError(f"load_video: {path} holds no video frames")
    return np.stack(frames).astype(np.float32) / 255.0


def save_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25) -> Path:
    """`[T, H, W, C]` floats in [0, 1] (clipped) -> an H.264 mp4 (`.mp4`) or a uint8 frames array
    (`.npy`, exact); returns the path. Grey frames are written as RGB; odd sides are padded by one
    edge row / column for the mp4 (yuv420p needs even sides)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"save_video: expected frames [T, H, W, C] with C = 1 or 3, got shape {frames.shape}")
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".npy"):
        raise ValueError(f"save_video: expected a .mp4 or .npy path, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if path.suffix.lower() == ".npy":
        np.save(path, array)
        return path
    import av

    h, w = array.shape[1:3]
    array = np.pad(array, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        stream.options = {"crf": MP4_QUALITY}
        for frame in array:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
