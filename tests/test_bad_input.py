"""Bad input everywhere: a listed corpus of corrupt, truncated and wrong files and values, run through the real
scripts and the library.

`CORPUS` lists the script cases: each must end its script with exit status 2, stderr ending in one
`SCRIPT: error: MESSAGE` line that names the file or value, and no traceback. Every case runs in-process as
`python SCRIPT ARGS` runs it (`runpy` runs the script's `__main__` block); the cases marked `subprocess` run
again as real processes (all at once: each spends seconds importing torch). `LIBRARY` takes the same files
through the library's readers, which raise ValueError or TypeError naming the file, never an error from deep
inside numpy, torch or a file-format package; `VALUES` does the same for bad values given to the library.
Cases marked `known_gap` fail today for a reason outside this file's reach (written in the case); they are
strict xfails, so fixing the gap turns them into failures that ask for the mark to go.
"""

import argparse
import io
import logging
import os
import re
import runpy
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

import hypersiren as hs
from hypersiren.config import (finite_float, non_negative_float, non_negative_int, parse_field_overrides,
                               parse_overrides, positive_float, positive_int, random_seed)
from hypersiren.fitting import FitConfig
from hypersiren.io import (load_audio, load_celeba, load_image, load_image_array, load_mesh, load_oriented_points,
                           load_video)
from hypersiren.latent import LatentSet, load_latents, save_latents
from hypersiren.modalities.image import ImageData
from hypersiren.modalities.image.inpaint import inpaint_figure
from hypersiren.modalities.shape.data import ShapeData, load_occupancy_npz, load_oriented_npz, load_shapes
from hypersiren.prior import Context, HyperSirenConfig, TrainConfig, fixed_context, get_preset, sample_context
from hypersiren.prior.commands import train_prior
from hypersiren.prior.training import FORMAT, load_prior
from hypersiren.runs import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}

# ------------------------------------------------------------------------------------------ the files


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png() -> bytes:
    """A PNG header claiming 30000 x 30000 pixels (Pillow refuses it as a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def wav_bytes(*, channels: int = 1, rate: int = 8000, bits: int = 16, data: bytes = b"\0\0" * 64,
              format_tag: int = 1) -> bytes:
    """A RIFF wave file written by hand, so its header can say anything."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def damaged_member() -> bytes:
    """An `.npz` whose zip directory is intact but whose `images` member has a damaged header (bad CRC)."""
    data = npz_bytes(images=np.zeros((2, 4, 4, 1), np.uint8))
    return data.replace(b"'descr'", b"'dxscr'", 1)


def huge_npy() -> bytes:
    """An `.npy` header claiming 10^15 bytes, followed by 16."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000, 1000, 1), }"
    header += " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 16


IMAGES = np.random.default_rng(2).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
PLY_HEADER = ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
              "element face 1\nproperty list uchar int vertex_indices\nend_header\n")


def oriented(points: np.ndarray, **extra) -> bytes:
    return npz_bytes(points=points, normals=np.ones_like(points), **extra)


def nan_points() -> np.ndarray:
    points = np.random.default_rng(3).normal(size=(2, 8, 3)) * 0.3
    points[1, 5, 2] = np.nan
    return points


FILES: dict[str, Callable[[], bytes]] = {  # name: what it holds
    # images
    "truncated.png": lambda: png_bytes()[:60],
    "garbage.png": lambda: b"\x89PNG\r\n\x1a\n" + np.random.default_rng(4).bytes(200),
    "bomb.png": bomb_png,
    "truncated.jpg": lambda: jpeg_bytes()[: len(jpeg_bytes()) // 2],
    # image arrays
    "float_images.npz": lambda: npz_bytes(images=IMAGES / 255.0),
    "complex_images.npz": lambda: npz_bytes(images=IMAGES.astype(np.complex64)),
    "wrong_ndim.npz": lambda: npz_bytes(images=IMAGES.reshape(4, -1)),
    "wrong_key.npz": lambda: npz_bytes(pictures=IMAGES),
    "truncated.npz": lambda: npz_bytes(images=IMAGES)[:300],
    "damaged_member.npz": damaged_member,
    "zero_size.npy": lambda: npy_bytes(np.zeros((2, 0, 8, 3), np.uint8)),
    "npy_as.npz": lambda: npy_bytes(IMAGES),
    "huge_header.npy": huge_npy,
    "faces8.npz": lambda: npz_bytes(images=IMAGES[..., :1]),  # a good file, for bad settings
    # audio
    "truncated.wav": lambda: wav_bytes()[:30],
    "float16.wav": lambda: wav_bytes(bits=16, format_tag=3),  # 16-bit floats: a sample width scipy does not read
    "adpcm.wav": lambda: wav_bytes(bits=4, format_tag=2),
    "zero_rate.wav": lambda: wav_bytes(rate=0),
    "no_channels.wav": lambda: wav_bytes(channels=0),
    "inf.wav": lambda: wav_bytes(bits=32, format_tag=3, data=np.array([0.0, np.inf] * 8, np.float32).tobytes()),
    # video
    "garbage.mp4": lambda: np.random.default_rng(5).bytes(2000),
    "empty.mp4": lambda: b"",
    "audio_only.mp4": lambda: wav_bytes(data=np.zeros(800, np.int16).tobytes()),
    "frames_0_255.npy": lambda: npy_bytes(IMAGES.astype(np.float32)),
    "nan_frames.npy": lambda: npy_bytes(np.full((2, 4, 4, 1), np.nan, np.float32)),
    "complex_frames.npz": lambda: npz_bytes(frames=np.zeros((2, 4, 4, 3), np.complex64)),
    # meshes and oriented points
    "garbage.obj": lambda: np.random.default_rng(6).bytes(300),
    "garbage.ply": lambda: b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\n",
    "garbage.off": lambda: b"OFF\n3 1 0\n1 2\n",
    "empty.obj": lambda: b"",
    "faces_out_of_range.obj": lambda: b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
    "faces_out_of_range.ply": lambda: (PLY_HEADER + "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n").encode(),
    "flat.off": lambda: b"OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n",
    "nan_vertices.obj": lambda: b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
    "nan.xyz": lambda: b"0 0 0 0 0 1\n1 0 0 nan 0 1\n",
    "empty.xyz": lambda: b"# no points\n",
    "complex_points.npz": lambda: oriented(np.zeros((5, 3), np.complex128)),
    "nan_points.npz": lambda: oriented(nan_points()),
    "no_shapes.npz": lambda: oriented(np.zeros((0, 8, 3))),
    "text_split.npz": lambda: oriented(np.random.default_rng(7).normal(size=(2, 8, 3)) * 0.3,
                                       split=np.array(["a", "b"])),
    "occ_text.npz": lambda: npz_bytes(occ64=np.full((1, 2, 2, 2), "a")),
    "occ_empty.npz": lambda: npz_bytes(occ64=np.zeros((0, 4, 4, 4), bool)),
    "occ_bad_ids.npz": lambda: npz_bytes(occ64=np.ones((1, 2, 2, 2), bool), model_id=np.array("x")),
    # latents files
    "latents_meta_not_json.npz": lambda: npz_bytes(kind=np.array("hypersiren.latents"), latents=np.zeros((2, 8)),
                                                   ids=np.array(["a", "b"]), meta=np.array("not json")),
    "latents_text.npz": lambda: npz_bytes(kind=np.array("hypersiren.latents"), latents=np.full((2, 8), "a"),
                                          ids=np.array(["a", "b"]), meta=np.array("{}")),
    "latents_meta_list.npz": lambda: npz_bytes(kind=np.array("hypersiren.latents"), latents=np.zeros((2, 8)),
                                               ids=np.array(["a", "b"]), meta=np.array("[1, 2]")),
}
MESH_FOLDERS = {"meshes_garbage": "garbage.obj", "meshes_out_of_range": "faces_out_of_range.ply"}


def write_checkpoints(folder: Path) -> None:
    """Files of other kinds and formats where a prior's checkpoint is expected."""
    save_checkpoint(folder / "newer_format.pt", {"kind": "hypersiren.prior", "format": 99})
    save_checkpoint(folder / "cnp_kind.pt", {"kind": "hypersiren.cnp", "format": FORMAT})
    save_checkpoint(folder / "no_model_config.pt", {"kind": "hypersiren.prior", "format": FORMAT, "modality": "image",
                                                    "data": {"source": "faces"}})
    save_checkpoint(folder / "unknown_model_field.pt", {"kind": "hypersiren.prior", "format": FORMAT,
                                                        "modality": "image", "data": {"source": "faces"},
                                                        "model_config": {"depth": 3}, "model": {}})
    save_checkpoint(folder / "latents_no_ids.pt", {"kind": "hypersiren.latents", "latents": torch.zeros(2, 3),
                                                   "meta": {}})
    siren = hs.Siren(2, 1, hidden_dim=4, depth=2)
    hs.export_siren(siren.params(), folder / "exported_siren.pt", config=siren.config)
    save_latents(folder / "latents.pt", LatentSet(torch.zeros(2, 3), ("a", "b"), {}))


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    for name, content in FILES.items():
        (folder / name).write_bytes(content())
    for name, file in MESH_FOLDERS.items():
        (folder / name).mkdir()
        (folder / name / file).write_bytes((folder / file).read_bytes())
    write_checkpoints(folder)
    return folder


SMALL = ("data.resolution=8", "train.min_context=4", "train.max_context=16", "model.latent_dim=8", "model.rank=8",
         "model.encoder_hidden=16", "model.encoder_depth=2", "model.siren_hidden=16", "model.siren_depth=3",
         "model.head_hidden=16")  # the tiny preset, smaller


@pytest.fixture(scope="module")
def prior(tmp_path_factory) -> Path:
    """A real image prior (one step of `tiny` on 8x8 images): its folder is `prior_run`."""
    folder = tmp_path_factory.mktemp("prior")
    np.savez(folder / "faces.npz", images=IMAGES[..., :1])
    train_prior(preset="tiny", out=folder / "prior_run", overrides=list(SMALL),
                shortcuts={"steps": 1, "batch_size": 2},
                data_shortcuts={"data": str(folder / "faces.npz"), "holdout": 1},
                image_every=0, progress=False)
    return folder / "prior_run" / "checkpoint.pt"


# ------------------------------------------------------------------------------------------ script cases


class Case(NamedTuple):
    id: str
    script: str  # relative to the repository root
    args: tuple[str, ...]  # "{bad}": the corpus folder; "{out}": a new output path; "{prior}": a trained prior
    names: str  # what the error line names: the file or the value
    subprocess: bool = False  # also run as a real process
    known_gap: str | None = None  # why it still fails (a strict xfail)


def fit(task: str, file: str, *, subprocess: bool = False) -> Case:
    return Case(f"fit_signal-{task}-{file}", "train/fit_signal.py",
                ("--task", task, "--input", f"{{bad}}/{file}", "--steps", "1", "--out", "{out}"), file, subprocess)


def train(source: str, *extra: str, preset: str = "tiny", names: str | None = None, subprocess: bool = False) -> Case:
    return Case(f"train_prior-{preset}-{source}", "train/train_prior.py",
                ("--preset", preset, "--data", f"{{bad}}/{source}", "--steps", "1", *extra, "--out", "{out}"),
                names or source, subprocess)


def setting(script: str, value: str, names: str, *, subprocess: bool = False) -> Case:
    if script == "train_prior":
        args = ("--preset", "tiny", "--data", "faces", "--steps", "1", "--set", value, "--out", "{out}")
    else:
        args = ("--task", "image", "--steps", "1", "--set", value, "--out", "{out}")
    return Case(f"{script}-set-{value}", f"train/{script}.py", args, names, subprocess)


CORPUS = [
    # images and image collections
    fit("image", "truncated.png", subprocess=True),
    fit("image", "garbage.png"),
    fit("image", "bomb.png"),
    fit("image", "truncated.jpg"),
    train("float_images.npz", subprocess=True),
    train("complex_images.npz"),
    train("wrong_ndim.npz"),
    train("wrong_key.npz"),
    train("truncated.npz"),
    train("damaged_member.npz"),
    train("zero_size.npy"),
    train("npy_as.npz"),
    train("huge_header.npy"),
    # audio
    fit("audio", "truncated.wav"),
    fit("audio", "float16.wav", subprocess=True),
    fit("audio", "adpcm.wav"),
    fit("audio", "zero_rate.wav"),
    fit("audio", "no_channels.wav"),
    fit("audio", "inf.wav"),
    # video
    fit("video", "garbage.mp4", subprocess=True),
    fit("video", "empty.mp4"),
    fit("video", "audio_only.mp4"),
    fit("video", "frames_0_255.npy"),
    fit("video", "nan_frames.npy"),
    fit("video", "complex_frames.npz"),
    # meshes and oriented points
    fit("sdf", "garbage.obj"),
    fit("sdf", "garbage.ply"),
    fit("sdf", "garbage.off"),
    fit("sdf", "empty.obj"),
    fit("sdf", "faces_out_of_range.obj", subprocess=True),
    fit("sdf", "faces_out_of_range.ply"),
    fit("sdf", "flat.off"),
    fit("sdf", "nan_vertices.obj"),
    fit("sdf", "nan.xyz"),
    fit("sdf", "empty.xyz"),
    fit("sdf", "complex_points.npz"),
    train("meshes_garbage", preset="shapes_tiny", names="garbage.obj"),
    train("meshes_out_of_range", preset="shapes_tiny", names="faces_out_of_range.ply"),
    train("nan_points.npz", "--set", "data.points=4", preset="shapes_tiny"),
    train("no_shapes.npz", preset="shapes_tiny"),
    train("text_split.npz", "--set", "data.points=4", preset="shapes_tiny"),
    train("occ_text.npz", preset="shapes_tiny"),
    train("occ_empty.npz", preset="shapes_tiny"),
    # values: unknown presets, keys and subcommands, out-of-range and non-finite numbers
    Case("train_prior-unknown-preset", "train/train_prior.py", ("--preset", "nope", "--out", "{out}"), "'nope'"),
    Case("fit_signal-unknown-preset", "train/fit_signal.py", ("--task", "image", "--preset", "nope", "--out", "{out}"),
         "'nope'"),
    Case("fit_signal-unknown-task", "train/fit_signal.py", ("--task", "nope", "--out", "{out}"), "'nope'"),
    setting("train_prior", "train.lrr=1", "'train.lrr'", subprocess=True),
    setting("train_prior", "trian.lr=1", "'trian'"),
    setting("train_prior", "train.lr=inf", "'inf'"),
    setting("train_prior", "train.lr=nan", "'nan'"),
    setting("train_prior", "train.seed=99999999999999999999", "'99999999999999999999'"),
    setting("train_prior", "data.resolution=0", "resolution"),
    setting("train_prior", "model.heads=wide", "'wide'"),
    setting("train_prior", "train.min_context", "'train.min_context'"),
    setting("fit_signal", "lrr=1", "'lrr'"),
    setting("fit_signal", "lr=nan", "'nan'"),
    setting("fit_signal", "lr=-1", "lr"),
    setting("fit_signal", "task=audio", "task=audio"),
    Case("fit_signal-unknown-device", "train/fit_signal.py", ("--task", "image", "--device", "nope", "--out", "{out}"),
         "'nope'"),
    Case("fit_signal-zero-steps", "train/fit_signal.py", ("--task", "image", "--steps", "0", "--out", "{out}"), "'0'"),
    Case("train_prior-more-context-than-pixels", "train/train_prior.py",
         ("--preset", "tiny", "--data", "{bad}/faces8.npz", "--holdout", "0", "--steps", "1", "--batch-size", "2",
          "--image-every", "0", "--out", "{out}",
          *(arg for item in SMALL if "max_context" not in item for arg in ("--set", item)),
          "--set", "train.max_context=5000"), "max_context=5000"),
    Case("explore-unknown-subcommand", "evaluate/explore.py", ("frobnicate", "--checkpoint", "x.pt"), "'frobnicate'",
         subprocess=True),
    Case("eval_prior-negative-seed", "evaluate/eval_prior.py",
         ("--checkpoint", "x.pt", "--seed", "-1", "--out", "{out}"), "'-1'"),
    Case("inpaint-zero-count", "evaluate/inpaint.py", ("--checkpoint", "x.pt", "--count", "0", "--out", "{out}"),
         "'0'"),
    Case("explore-temperature-nan", "evaluate/explore.py",
         ("sample", "--checkpoint", "x.pt", "--temperature", "nan", "--out", "{out}"), "'nan'"),
    Case("eval_shapes-zero-context", "evaluate/eval_shapes.py",
         ("--checkpoint", "x.pt", "--context", "100", "0", "--out", "{out}"), "'0'"),
    # checkpoints of another kind, format or modality
    Case("eval_prior-newer-format", "evaluate/eval_prior.py",
         ("--checkpoint", "{bad}/newer_format.pt", "--out", "{out}"), "newer_format.pt", subprocess=True),
    Case("explore-newer-format", "evaluate/explore.py",
         ("encode", "--checkpoint", "{bad}/newer_format.pt", "--out", "{out}"), "newer_format.pt"),
    Case("eval_prior-exported-siren", "evaluate/eval_prior.py",
         ("--checkpoint", "{bad}/exported_siren.pt", "--out", "{out}"), "exported_siren.pt"),
    Case("inpaint-cnp-checkpoint", "evaluate/inpaint.py", ("--checkpoint", "{bad}/cnp_kind.pt", "--out", "{out}"),
         "cnp_kind.pt"),
    Case("complete_shape-latents-file", "evaluate/complete_shape.py",
         ("--checkpoint", "{bad}/latents.pt", "--out", "{out}"), "latents.pt"),
    Case("eval_shapes-png-as-checkpoint", "evaluate/eval_shapes.py",
         ("--checkpoint", "{bad}/truncated.png", "--out", "{out}"), "truncated.png"),
    Case("complete_shape-image-prior", "evaluate/complete_shape.py", ("--checkpoint", "{prior}", "--out", "{out}"),
         "prior_run"),
    Case("eval_shapes-image-prior", "evaluate/eval_shapes.py", ("--checkpoint", "{prior}", "--out", "{out}"),
         "prior_run"),
    # bad data given to a trained prior
    Case("inpaint-truncated-image", "evaluate/inpaint.py",
         ("--checkpoint", "{prior}", "--image", "{bad}/truncated.png", "--out", "{out}"), "truncated.png"),
    Case("explore-float-images", "evaluate/explore.py",
         ("encode", "--checkpoint", "{prior}", "--data", "{bad}/float_images.npz", "--out", "{out}"),
         "float_images.npz"),
    Case("explore-more-context-than-pixels", "evaluate/explore.py",
         ("encode", "--checkpoint", "{prior}", "--context", "5000", "--out", "{out}"), "5000"),
    Case("eval_prior-complex-images", "evaluate/eval_prior.py",
         ("--checkpoint", "{prior}", "--data", "{bad}/complex_images.npz", "--out", "{out}"), "complex_images.npz"),
    # checkpoints and latents files missing or garbling an entry, a seed beyond 64 bits, a script's bad option
    Case("eval_prior-no-model-config", "evaluate/eval_prior.py",
         ("--checkpoint", "{bad}/no_model_config.pt", "--out", "{out}"), "no_model_config.pt"),
    Case("explore-latents-meta-not-json", "evaluate/explore.py",
         ("sample", "--checkpoint", "{prior}", "--latents", "{bad}/latents_meta_not_json.npz", "--out", "{out}"),
         "latents_meta_not_json.npz"),
    Case("explore-latents-text", "evaluate/explore.py",
         ("sample", "--checkpoint", "{prior}", "--latents", "{bad}/latents_text.npz", "--out", "{out}"),
         "latents_text.npz"),
    Case("train_prior-seed-beyond-64-bits", "train/train_prior.py",
         ("--preset", "tiny", "--data", "faces", "--steps", "1", "--seed", "99999999999999999999", "--out", "{out}"),
         "99999999999999999999"),
    Case("demo-unknown-device", "train/demo.py", ("--device", "nope", "--out", "{out}"), "'nope'"),
]


def marked(cases: list[Case]) -> list:
    return [pytest.param(case, id=case.id, marks=pytest.mark.xfail(reason=case.known_gap, strict=True))
            if case.known_gap else pytest.param(case, id=case.id) for case in cases]


def arguments(case: Case, bad: Path, out: Path, prior: Path | None) -> list[str]:
    fill = {"{bad}": str(bad), "{out}": str(out), "{prior}": str(prior)}
    return [re.sub(r"\{bad\}|\{out\}|\{prior\}", lambda m: fill[m.group(0)], arg) for arg in case.args]


def assert_one_clear_line(case: Case, status: int, stderr: str) -> None:
    """Exit status 2 and, last on stderr, the only `error:` line (argparse may print its usage above it), naming
    `case.names`; no traceback."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert status == 2, f"exit status {status}, expected 2; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    prefix = re.escape(Path(case.script).name) + r"( \w+)?: error: "  # a subcommand's usage error names it too
    assert lines and re.match(prefix, lines[-1]), stderr
    assert sum(": error: " in line for line in lines) == 1, stderr
    assert case.names in lines[-1], f"the error line does not name {case.names!r}: {lines[-1]}"


def needs_prior(case: Case) -> bool:
    return any("{prior}" in arg for arg in case.args)


@pytest.mark.parametrize("case", marked(CORPUS))
def test_scripts_end_bad_input_with_one_line_and_status_2(case, bad, request, tmp_path, monkeypatch, capsys):
    if "mp4" in case.id:
        pytest.importorskip("av", reason="the video reader (PyAV) is not installed")
    trained = request.getfixturevalue("prior") if needs_prior(case) else None
    capsys.readouterr()  # whatever the fixtures printed
    monkeypatch.setattr(sys, "argv", [str(ROOT / case.script), *arguments(case, bad, tmp_path / "out", trained)])
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)  # the scripts' own; pytest captures logs
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(ROOT / case.script), run_name="__main__")
    assert_one_clear_line(case, ended.value.code, capsys.readouterr().err)


SUBPROCESS = [case for case in CORPUS if case.subprocess]


@pytest.fixture(scope="module")
def processes(bad, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every `SUBPROCESS` case run as `python SCRIPT ARGS`, all at once."""
    folder = tmp_path_factory.mktemp("processes")
    running = {case.id: subprocess.Popen([sys.executable, str(ROOT / case.script),
                                          *arguments(case, bad, folder / case.id, None)],
                                         cwd=folder, env=ONE_THREAD, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
               for case in SUBPROCESS}
    done = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done


@pytest.mark.parametrize("case", marked(SUBPROCESS))
def test_scripts_run_as_processes_print_no_traceback(case, processes):
    if "mp4" in case.id:
        pytest.importorskip("av", reason="the video reader (PyAV) is not installed")
    result = processes[case.id]
    assert_one_clear_line(case, result.returncode, result.stderr)


def test_the_corpus_covers_every_script_and_has_unique_ids():
    assert len({case.id for case in CORPUS}) == len(CORPUS)
    scripts = {case.script for case in CORPUS}
    assert scripts == {f"train/{p.name}" for p in (ROOT / "train").glob("*.py")} | {
        f"evaluate/{p.name}" for p in (ROOT / "evaluate").glob("*.py")}
    assert 6 <= len(SUBPROCESS) <= 10  # each costs seconds of start-up


# ------------------------------------------------------------------------------------------ the library


def shapes_of(path: Path):
    return load_oriented_npz(path, points=4, seed=0)


def shapes_in(folder: Path):
    return load_shapes(ShapeData(source=str(folder)))


def occupancy_of(path: Path):
    return load_occupancy_npz(path, points=4, seed=0)


LIBRARY = [  # (reader, file, what the message says besides the file's name)
    (load_image, "truncated.png", "load_image: cannot read image file .* as an image"),
    (load_image, "garbage.png", "load_image: cannot read image file .* as an image"),
    (load_image, "bomb.png", "DecompressionBombError"),
    (load_image, "truncated.jpg", "load_image: cannot read image file .* as an image"),
    (load_image_array, "float_images.npz", r"expected uint8 pixel values, got float64 \(from floats in \[0, 1\]"),
    (load_image_array, "complex_images.npz", "expected uint8 pixel values, got complex64"),
    (load_image_array, "wrong_ndim.npz", r"expected images \[N, H, W, C\] with C = 1 or 3, got shape \(4, 192\)"),
    (load_image_array, "wrong_key.npz", r"has no array 'images'; it has \['pictures'\]"),
    (load_image_array, "truncated.npz", "cannot read .* as a numpy .npy or .npz file: BadZipFile"),
    (load_image_array, "damaged_member.npz", "cannot read array 'images' of .* as a numpy .npy or .npz file"),
    (load_image_array, "zero_size.npy", r"expected images of at least 1x1 pixels, got shape \(2, 0, 8, 3\)"),
    (load_image_array, "npy_as.npz", "it holds a single .npy array, which its suffix does not say"),
    (load_image_array, "huge_header.npy", "cannot read .* as a numpy .npy or .npz file"),
    (load_audio, "truncated.wav", "load_audio: cannot read .* as a wav file"),
    (load_audio, "float16.wav", "load_audio: cannot read .* as a wav file"),
    (load_audio, "adpcm.wav", "load_audio: cannot read .* as a wav file"),
    (load_audio, "zero_rate.wav", "has a sample rate of 0 Hz"),
    (load_audio, "no_channels.wav", "load_audio: cannot read .* as a wav file"),
    (load_audio, "inf.wav", r"contains 8 non-finite values \(NaN or inf\)"),
    (load_video, "garbage.mp4", "load_video: cannot decode .* as a video"),
    (load_video, "empty.mp4", "load_video: cannot decode .* as a video"),
    (load_video, "audio_only.mp4", r"has no video stream \(its streams: audio\)"),
    (load_video, "frames_0_255.npy", r"float frames must lie in \[0, 1\], but .* holds values in \[\d+, 255\]"),
    (load_video, "nan_frames.npy", "contains 32 non-finite values"),
    (load_video, "complex_frames.npz", r"expected uint8 \(0..255\) or float \(0..1\) frames in .*, got complex64"),
    (load_mesh, "garbage.obj", "load_mesh: "),
    (load_mesh, "garbage.ply", "load_mesh: cannot read .* as a mesh"),
    (load_mesh, "garbage.off", "load_mesh: "),
    (load_mesh, "empty.obj", "load_mesh: "),
    (load_mesh, "faces_out_of_range.obj", "load_mesh: "),
    (load_mesh, "faces_out_of_range.ply", "load_mesh: faces of .* index vertices 0 to 7, but it has 3 vertices"),
    (load_mesh, "nan_vertices.obj", "load_mesh: "),
    (load_oriented_points, "flat.off", "sample_surface: the mesh's 1 faces have no area"),
    (load_oriented_points, "nan.xyz", "contains 1 non-finite values"),
    (load_oriented_points, "empty.xyz", "holds no points"),
    (load_oriented_points, "complex_points.npz", "expected real numbers for points in .*, got dtype complex128"),
    (shapes_of, "nan_points.npz", "points of shape 1 in .* contain NaN or inf"),
    (shapes_of, "no_shapes.npz", r"holds no shapes \(points \(0, 8, 3\)\)"),
    (shapes_of, "text_split.npz", "split in .* must hold 0 .train. or 1 .test., got dtype <U1"),
    (shapes_in, "meshes_garbage", "load_mesh: "),
    (shapes_in, "meshes_out_of_range", "load_mesh: faces of .* index vertices 0 to 7"),
    (occupancy_of, "occ_text.npz", "expected occ64 of booleans or 0 / 1 numbers in .*, got dtype <U1"),
    (occupancy_of, "occ_empty.npz", "holds no grids in occ64"),
    (occupancy_of, "occ_bad_ids.npz", r"expected model_id \[S\] with a name per grid in .*, got \(\)"),
    (load_prior, "newer_format.pt", r"has checkpoint format 99, this hypersiren reads format \d+ \(upgrade"),
    (load_prior, "cnp_kind.pt", "is a file of kind 'hypersiren.cnp', expected a hypersiren prior"),
    (load_prior, "exported_siren.pt", "is a file of kind 'hypersiren.siren'"),
    (load_prior, "latents.pt", "is a file of kind 'hypersiren.latents'"),
    (load_prior, "truncated.png", "cannot read .* as a hypersiren checkpoint"),
    (load_prior, "no_model_config.pt", "holds no 'model_config' and no 'model' entry, so it cannot rebuild"),
    (load_prior, "unknown_model_field.pt", "holds a hypersiren prior this hypersiren cannot rebuild: .*'depth'"),
    (load_latents, "latents_meta_not_json.npz", r"holds a meta that is not JSON \(Expecting value"),
    (load_latents, "latents_meta_list.npz", "holds a meta that is not a JSON object: '\\[1, 2\\]'"),
    (load_latents, "latents_text.npz", r"holds latents <U1 \(2, 8\) and ids .*, expected latents \[N, Z\] of floats"),
    (load_latents, "latents_no_ids.pt", r"is of kind 'hypersiren.latents' but lacks its latents \(a tensor\), ids"),
]


@pytest.mark.parametrize("reader, file, message", LIBRARY,
                         ids=[f"{reader.__name__}-{file}" for reader, file, _ in LIBRARY])
def test_library_readers_refuse_bad_files_naming_them(bad, reader, file, message):
    if file.endswith(".mp4"):
        pytest.importorskip("av", reason="the video reader (PyAV) is not installed")
    with pytest.raises((ValueError, TypeError), match=message) as info:
        reader(bad / file)
    assert file in str(info.value) and len(str(info.value).splitlines()) == 1, str(info.value)


def image_points(batch: int = 2, side: int = 4):
    return hs.image_to_points(torch.rand(batch, side, side, 1, generator=torch.Generator().manual_seed(0)))


def with_nan(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor[0, 1, 0] = float("nan")
    return tensor


def empty_context() -> Context:
    coords, values = image_points()
    return Context(coords[:, :3], values[:, :3], torch.zeros(2, 3, dtype=torch.bool))


TINY_MODEL = HyperSirenConfig(value_dim=1, latent_dim=4, encoder_hidden=8, encoder_depth=2, siren_hidden=8,
                              siren_depth=2, head_hidden=8, head_depth=2, rank=4)
SECTIONS = {"data": ImageData, "model": HyperSirenConfig, "train": TrainConfig}
VALUES = [  # (id, call, error type, message): bad values given to the library
    ("context-more-points-than-the-signal", lambda: fixed_context(*image_points(), 17), ValueError,
     "k=17 context points asked for, but each signal has N=16 points"),
    ("context-zero-points", lambda: sample_context(*image_points(), max_points=0, min_points=0), ValueError,
     "need 1 <= min_points <= max_points <= N=16"),
    ("context-float-count", lambda: fixed_context(*image_points(), 2.5), TypeError, "k must be an int, got 2.5"),
    ("context-nan-values", lambda: fixed_context(image_points()[0], with_nan(image_points()[1]), 3), ValueError,
     r"fixed_context: values hold 1 non-finite values \(NaN or inf\)"),
    ("context-inf-coords", lambda: sample_context(image_points()[0] / 0, image_points()[1], max_points=4,
                                                  min_points=1), ValueError, "coords hold .* non-finite values"),
    ("context-empty-set", lambda: hs.HyperSiren(TINY_MODEL)(empty_context(), image_points()[0]), ValueError,
     r"samples \[0, 1\] have no valid context point"),
    ("override-unknown-key", lambda: parse_overrides(["train.lrr=1"], SECTIONS), ValueError,
     "unknown field 'train.lrr' of TrainConfig; did you mean 'train.lr'"),
    ("override-nan", lambda: parse_overrides(["train.lr=nan"], SECTIONS), ValueError,
     "expected float for train.lr, got 'nan'"),
    ("override-int-beyond-64-bits", lambda: parse_overrides([f"train.seed={2**64}"], SECTIONS), ValueError,
     "expected int for train.seed"),
    ("train-negative-seed", lambda: TrainConfig(seed=-1), ValueError,
     r"TrainConfig: seed must be an int in \[0, 2\*\*63\), got -1"),
    ("override-unhashable-literal", lambda: parse_field_overrides(["source={[1]: 2}"], FitConfig), ValueError,
     r"expected tuple\[float, float\] for source, got '\{\[1\]: 2\}'"),
    ("override-not-a-string", lambda: parse_overrides([3], SECTIONS), TypeError, "expected KEY=VALUE strings, got 3"),
    ("unknown-preset", lambda: get_preset("celeba31"), ValueError, "unknown preset 'celeba31'; did you mean"),
    ("unflatten-wrong-size", lambda: hs.SirenParams.unflatten(torch.zeros(3, 10), ((4, 2), (1, 4))), ValueError,
     r"expected flat \[..., 17\]"),
    ("unflatten-layers-that-do-not-chain", lambda: hs.SirenParams.unflatten(torch.zeros(27), ((4, 2), (3, 5))),
     ValueError, "layer 1 takes 5 inputs but layer 0 gives 4 outputs"),
    ("unflatten-not-a-tensor", lambda: hs.SirenParams.unflatten(np.zeros(17), ((4, 2), (1, 4))), TypeError,
     "expected flat as a tensor, got ndarray"),
    ("resize-float-images", lambda: hs.io.square_resize(IMAGES / 255.0, 4), ValueError,
     r"expected uint8 pixel values, got float64 \(from floats in \[0, 1\]"),
    ("resize-a-tensor", lambda: hs.io.square_resize(torch.zeros(1, 4, 4, 1, dtype=torch.uint8), 4), TypeError,
     "expected images as a numpy array, got Tensor"),
    ("resize-no-pixels", lambda: hs.io.square_resize(np.zeros((1, 0, 4, 3), np.uint8), 4), ValueError,
     "expected images of at least 1x1 pixels"),
]


@pytest.mark.parametrize("call, error, message", [v[1:] for v in VALUES], ids=[v[0] for v in VALUES])
def test_library_refuses_bad_values_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("option, text, message", [
    (positive_int, "0", "expected a positive int, got '0'"),
    (positive_int, "2.5", "expected a positive int, got '2.5'"),
    (non_negative_int, "-1", "expected an int >= 0, got '-1'"),
    (random_seed, str(2**32), f"expected a seed, an int in \\[0, {2**32}\\), got '{2**32}'"),
    (finite_float, "inf", "expected a finite number, got 'inf'"),
    (positive_float, "0", "expected a positive number, got '0'"),
    (positive_float, "nan", "expected a positive number, got 'nan'"),
    (non_negative_float, "-0.5", "expected a number >= 0, got '-0.5'"),
])
def test_option_types_refuse_out_of_range_values(option, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        option(text)


def test_celeba_partition_lines_are_checked(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg\n")
    with pytest.raises(ValueError, match=r"load_celeba: line 2 of .*list_eval_partition.txt reads '000002.jpg'; "
                                         "expected a file name and its split 0, 1 or 2"):
        load_celeba(tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 2\n")
    with pytest.raises(ValueError, match="load_celeba: .*list_eval_partition.txt lists no train images"):
        load_celeba(tmp_path)


def test_inpaint_figure_refuses_no_images_and_a_bad_size(prior, tmp_path):
    loaded = load_prior(prior)
    images = loaded.modality.load("all")
    with pytest.raises(ValueError, match="inpaint_figure: size must be a positive int, got 0"):
        inpaint_figure(loaded.model, loaded.modality, images, tmp_path / "x.png", size=0)
    with pytest.raises(ValueError, match="inpaint_figure: no images to complete"):
        inpaint_figure(loaded.model, loaded.modality, images[:0], tmp_path / "x.png")
