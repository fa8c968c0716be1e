"""Audio files: mono wav in and out (scipy.io.wavfile).

Samples are float32 in [-1, 1]: integer formats are scaled by their range, multi-channel files mixed
down to the mean of their channels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ._files import error_text, existing_file, finite_samples

log = logging.getLogger(__name__)

WAV_PEAK = 32767  # the largest 16-bit sample: `save_audio` maps 1.0 to it


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A wav file -> (float32 mono samples `[T]`, sample rate in Hz).

    Integer formats map their full range onto [-1, 1) (int16: -32768 -> -1, 16384 -> 0.5); stereo and
    multi-channel files are mixed down to mono (the mean of the channels), with a log note.
    """
    from scipy.io import wavfile

    path = existing_file(path, "load_audio")
    try:
        rate, samples = wavfile.read(path)
    except Exception as error:  # scipy raises several types for a bad file: ValueError, EOFError, struct.error, ...
        raise ValueError(f"load_audio: cannot read {path} as a wav file ({error_text(error)})") from error
    finite_samples(samples, path, "load_audio")  # no samples or channels, NaN, inf or beyond float32
    if rate < 1:
        raise ValueError(f"load_audio: {path} has a sample rate of {rate} Hz")
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        middle, half_range = (info.max + 1 + info.min) / 2, (info.max - info.min + 1) / 2  # uint8: 128, 128
        samples = (samples.astype(np.float64) - middle) / half_range
    if samples.ndim == 2:
        log.info("load_audio: %s has %d channels; mixing them down to mono", path, samples.shape[1])
        samples = samples.mean(1, dtype=np.float64)
    return samples.astype(np.float32), int(rate)


def save_audio(path: str | os.PathLike, samples: np.ndarray, rate: int) -> Path:
    """Float samples `[T]` in [-1, 1] (clipped) -> a 16-bit mono wav at `rate` Hz; returns the path."""
    from scipy.io import wavfile

    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"save_audio: expected mono samples [T], got shape {samples.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(samples, -1, 1) * WAV_PEAK).round().astype(np.int16))
    return path
