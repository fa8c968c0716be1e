"""Safe loading: every reader of checkpoints, latents files, exported SIRENs and data arrays refuses a file
carrying pickled Python objects, with a message naming the file, and runs none of its code; a file that is
merely unreadable is told apart; exported SIRENs carry a format version; scripts end on such files with one
line and exit status 2.

Each crafted file is live: a test first shows that an unsafe load (`weights_only=False`, `allow_pickle=True`,
`pickle.load`) creates the marker folder, then that every hypersiren reader leaves it uncreated."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.config import run_main
from hypersiren.export import SIREN_FORMAT, SIREN_KIND
from hypersiren.io import load_image_array, load_oriented_points, load_torch_file, load_video
from hypersiren.latent import load_latent_prior, load_latents
from hypersiren.modalities.image.data import load_images
from hypersiren.modalities.shape.data import ShapeData, load_occupancy_npz, load_oriented_npz, load_shapes
from hypersiren.prior.training import load_model, load_prior, resume_trainer
from hypersiren.runs import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def refused(path: Path) -> str:
    return f"refusing to load .*{path.name}: it carries pickled Python objects"


class Payload:
    """Unpickling it creates the folder `marker`: a harmless stand-in for `os.system`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def assert_live(path: Path, marker: Path, unsafe_load) -> None:
    """`unsafe_load(path)` runs the file's code (the marker appears); the marker is removed again."""
    try:
        unsafe_load(path)
    except Exception:  # the loader may fail after unpickling: the code has run by then
        pass
    assert marker.is_dir(), f"the crafted {path.name} did not run its code when loaded unsafely"
    marker.rmdir()


# ---------------------------------------------------------------------------------------- torch files

TORCH_FILES = ("torch_zip", "torch_legacy", "pickle_protocol_0", "pickle_protocol_2", "pickle_protocol_5")


@pytest.fixture(params=TORCH_FILES)
def torch_payload(request, tmp_path) -> tuple[Path, Path]:
    """A `checkpoint.pt` carrying a `Payload` next to a plausible kind, and its marker (not yet created)."""
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "marker"
    state = {"kind": "hypersiren.prior", "format": 2, "model": Payload(marker)}
    if request.param == "torch_zip":
        torch.save(state, path)
    elif request.param == "torch_legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(state, protocol=int(request.param[-1])))
    plain_pickle = request.param.startswith("pickle")
    assert_live(path, marker, lambda p: pickle.loads(p.read_bytes()) if plain_pickle else
                torch.load(p, weights_only=False))
    return path, marker


TORCH_LOADERS = {
    "load_checkpoint": load_checkpoint,
    "load_torch_file": lambda path: load_torch_file(path, "a test file"),
    "load_prior": load_prior,
    "load_model": load_model,
    "resume_trainer": lambda path: resume_trainer(path.parent),
    "load_latent_prior": load_latent_prior,
    "load_latents": load_latents,
    "load_exported_siren": hs.load_exported_siren,
}


@pytest.mark.parametrize("loader", TORCH_LOADERS.values(), ids=TORCH_LOADERS)
def test_torch_files_with_pickled_code_are_refused_unrun(torch_payload, loader):
    path, marker = torch_payload
    with pytest.raises(ValueError, match=refused(path)):
        loader(path)
    assert not marker.exists()


def truncated_checkpoint(path: Path) -> bytes:
    torch.save({"weight": torch.zeros(8)}, path)
    return path.read_bytes()[:100]


@pytest.mark.parametrize("content", [b"", b"hello", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", truncated_checkpoint, "npz"],
                         ids=["empty", "text", "png", "truncated", "npz"])
def test_unreadable_torch_files_are_told_apart_from_pickled_code(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "npz":
        with open(path, "wb") as f:
            np.savez(f, images=np.zeros((2, 4, 4, 1), np.uint8))
    else:
        path.write_bytes(content(tmp_path / "full.pt") if callable(content) else content)
    with pytest.raises(ValueError, match="cannot read .*checkpoint.pt as a hypersiren checkpoint") as info:
        load_checkpoint(path)
    assert "pickled" not in str(info.value)


def test_plain_data_still_loads(tmp_path):
    state = {"kind": "x", "format": 1, "weights": torch.arange(6.0).reshape(2, 3), "ids": ["a", "b"],
             "meta": {"seed": 0, "lr": 1e-3, "flag": True, "none": None, "pair": (1, 2)},
             "generator": torch.Generator().manual_seed(3).get_state(), "state_dict": hs.Siren(2, 1).state_dict()}
    save_checkpoint(tmp_path / "ok.pt", state)
    loaded = load_torch_file(tmp_path / "ok.pt", "a test file")
    assert loaded["ids"] == ["a", "b"] and loaded["meta"] == state["meta"]
    torch.testing.assert_close(loaded["weights"], state["weights"])
    assert loaded["state_dict"].keys() == state["state_dict"].keys()


# ---------------------------------------------------------------------------------------- numpy files

ARRAY_KEYS = ("kind", "latents", "ids", "meta", "images", "frames", "points", "normals", "occ64")


def write_numpy_payload(path: Path, marker: Path, what: str) -> None:
    """An `.npz` whose every array a reader looks for is an object array, an `.npy` object array, or a
    plain pickle under the array file's name."""
    if what == "object_npz":
        with open(path, "wb") as f:
            np.savez(f, **{key: np.array([Payload(marker)], dtype=object) for key in ARRAY_KEYS})
    elif what == "object_npy":
        with open(path, "wb") as f:
            np.save(f, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(pickle.dumps({"images": Payload(marker)}))


def unsafe_numpy_load(path: Path) -> None:
    loaded = np.load(path, allow_pickle=True)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        loaded["images"]


def shape_source(path: Path):
    return load_shapes(ShapeData(source=str(path), points=4))


NUMPY_LOADERS = {  # name: (reader, the suffixes it takes)
    "load_latents": (load_latents, (".npz",)),
    "load_image_array": (load_image_array, (".npz", ".npy")),
    "load_images": (lambda path: load_images(path, 8, 1), (".npz", ".npy")),
    "load_video": (load_video, (".npz", ".npy")),
    "load_oriented_points": (load_oriented_points, (".npz",)),
    "load_oriented_npz": (lambda path: load_oriented_npz(path, points=4, seed=0), (".npz",)),
    "load_occupancy_npz": (lambda path: load_occupancy_npz(path, points=4, seed=0), (".npz",)),
    "load_shapes": (shape_source, (".npz",)),
}
NUMPY_CASES = [(name, what, suffix) for name, (_, suffixes) in NUMPY_LOADERS.items()
               for what, suffix in (("object_npz", ".npz"), ("object_npy", ".npy"), ("pickle", ".npz"),
                                    ("pickle", ".npy")) if suffix in suffixes]


@pytest.mark.parametrize("name, what, suffix", NUMPY_CASES, ids=[f"{n}-{w}{s}" for n, w, s in NUMPY_CASES])
def test_array_files_with_pickled_objects_are_refused_unrun(tmp_path, name, what, suffix):
    path, marker = tmp_path / f"data{suffix}", tmp_path / "marker"
    write_numpy_payload(path, marker, what)
    assert_live(path, marker, unsafe_numpy_load if what != "pickle" else lambda p: pickle.loads(p.read_bytes()))
    with pytest.raises(ValueError, match=refused(path)):
        NUMPY_LOADERS[name][0](path)
    assert not marker.exists()


def test_the_refusal_names_the_reader_and_junk_is_told_apart(tmp_path):
    path = tmp_path / "latents.npz"
    write_numpy_payload(path, tmp_path / "marker", "object_npz")
    with pytest.raises(ValueError, match=f"^load_latents: {refused(path)}"):
        load_latents(path)
    (tmp_path / "junk.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="load_latents: cannot read .*junk.npz as a latents file: not an .npy or "
                                         r".npz file$"):
        load_latents(tmp_path / "junk.npz")


# ---------------------------------------------------------------------------------------- exported SIRENs


@pytest.fixture
def exported(tmp_path) -> tuple[Path, hs.Siren]:
    siren = hs.Siren(2, 1, hidden_dim=8, depth=3)
    hs.export_siren(siren.params(), tmp_path / "siren.pt", config=siren.config, meta={"id": "x"})
    return tmp_path / "siren.pt", siren


def rewrite(path: Path, **changes) -> None:
    """The file at `path` with entries changed (None: removed)."""
    state = torch.load(path, weights_only=True)
    state.update(changes)
    save_checkpoint(path, {key: value for key, value in state.items() if value is not None})


def test_exported_sirens_carry_their_format(exported):
    path, siren = exported
    assert SIREN_FORMAT == 1 and torch.load(path, weights_only=True)["format"] == SIREN_FORMAT
    coords = hs.grid((5, 7))
    torch.testing.assert_close(hs.load_exported_siren(path)(coords), siren(coords))


def test_unversioned_exports_are_read_as_format_1(exported):
    path, siren = exported
    rewrite(path, format=None)
    assert "format" not in torch.load(path, weights_only=True)
    coords = hs.grid((5, 7))
    torch.testing.assert_close(hs.load_exported_siren(path)(coords), siren(coords))


@pytest.mark.parametrize("version, message", [
    (2, r"has exported-SIREN format 2, this hypersiren reads format 1 \(written by a newer hypersiren: upgrade\)"),
    (0, "has exported-SIREN format 0, this hypersiren reads format 1$"),
    ("1", "has exported-SIREN format '1', this hypersiren reads format 1$"),
])
def test_exports_of_another_format_are_refused(exported, version, message):
    path, _ = exported
    rewrite(path, format=version)
    with pytest.raises(ValueError, match=f"load_exported_siren: .*siren.pt {message}"):
        hs.load_exported_siren(path)


@pytest.mark.parametrize("kind", ["hypersiren.prior", "hypersiren.latents", None])
def test_files_of_another_kind_are_not_exported_sirens(tmp_path, kind):
    save_checkpoint(tmp_path / "other.pt", {"kind": kind, "format": 2, "model": {}})
    with pytest.raises(ValueError, match=f"load_exported_siren: .*other.pt is a file of kind {kind!r}, "
                                         f"expected {SIREN_KIND!r}"):
        hs.load_exported_siren(tmp_path / "other.pt")


# ---------------------------------------------------------------------------------------- scripts


def test_run_main_turns_bad_input_into_exit_status_2(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tool.py"])

    def bad_input(args):
        raise ValueError("the message")

    with pytest.raises(SystemExit) as info:
        run_main(bad_input, None)
    assert info.value.code == 2 and capsys.readouterr().err == "tool.py: error: the message\n"
    assert run_main(lambda args: args + 1, 1) == 2

    def bug(args):
        raise RuntimeError("a bug keeps its traceback")

    with pytest.raises(RuntimeError, match="a bug keeps its traceback"):
        run_main(bug, None)


def test_a_script_refuses_pickled_code_with_one_line_and_exit_status_2(tmp_path):
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "marker"
    torch.save({"kind": "hypersiren.prior", "format": 2, "model": Payload(marker)}, path)
    result = subprocess.run([sys.executable, str(ROOT / "evaluate" / "explore.py"), "encode", "--checkpoint",
                             str(path), "--out", str(tmp_path / "latents.pt")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("explore.py: error: refusing to load "), result.stderr
    assert str(path) in lines[0] and "pickled Python objects" in lines[0]
    assert not marker.exists() and not (tmp_path / "latents.pt").exists()
