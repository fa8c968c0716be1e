"""Properties searched by hypothesis: the file readers, the context sampler, the `--set` overrides and the
flatten / unflatten round trip either work or refuse their input with a ValueError / TypeError that names it.

Each property runs `EXAMPLES` examples (1000; the environment variable HYPERSIREN_HYPOTHESIS_EXAMPLES changes
it), derandomized so that every run tries the same inputs, with no example database written to disk.
"""

import dataclasses
import io
import math
import os
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hypersiren as hs
from hypersiren.config import apply_overrides, parse_field_overrides, parse_overrides
from hypersiren.fitting import FitConfig, preset_config
from hypersiren.io import load_audio, load_image, load_image_array, load_oriented_points, load_video
from hypersiren.modalities.shape.data import ShapeData, load_oriented_npz, load_shapes
from hypersiren.params import num_params, siren_layer_shapes
from hypersiren.prior import fixed_context, get_preset, prefix_context, sample_context

EXAMPLES = int(os.environ.get("HYPERSIREN_HYPOTHESIS_EXAMPLES", "1000"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def loads_or_refuses(read, path: Path, name: str):
    """`read(path)`, or None when it refused the file with a ValueError / TypeError naming it on one line. The
    share of each outcome shows in `pytest --hypothesis-show-statistics`."""
    try:
        result = read(path)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert path.name in message and len(message.splitlines()) == 1, message
        event(f"{name}: refused")
        return None
    event(f"{name}: loaded")
    return result


# ------------------------------------------------------------------------------------------ array files

DTYPES = ["uint8", "int16", "int64", "float16", "float32", "float64", "complex64", "bool", "<U2", "datetime64[s]",
          [("a", "u1"), ("b", "f4")]]
KEYS = ["images", "frames", "points", "normals", "split", "names", "occ64", "other"]


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(st.one_of(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
                           st.sampled_from([(2, 4, 4, 1), (2, 4, 4, 3), (3, 5, 3), (2, 6, 3), (1, 3, 3, 3)])))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def plausible(draw) -> dict[str, np.ndarray]:
    """Arrays of the shapes a reader takes (images, a point cloud, a shape collection), with values that are
    sometimes fine and sometimes not (NaN, inf, huge, zero)."""
    values = draw(st.sampled_from([st.floats(-2, 2, width=32), st.floats(0, 1, width=32), None]))

    def array(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
        return draw(hnp.arrays(np.dtype(dtype), shape, elements=values if dtype.startswith("float") else None))

    kind = draw(st.sampled_from(["images", "frames", "points", "shapes"]))
    sides = st.integers(1, 4)
    if kind in ("images", "frames"):
        shape = (draw(sides), draw(sides), draw(sides), draw(st.sampled_from([1, 3])))
        return {kind: array(shape, draw(st.sampled_from(["uint8", "float32", "float64"])))}
    shape = (draw(sides), 3) if kind == "points" else (draw(sides), draw(st.integers(1, 6)), 3)
    arrays_ = {"points": array(shape), "normals": array(shape)}
    if kind == "shapes" and draw(st.booleans()):
        arrays_["split"] = draw(hnp.arrays(np.int64, shape[:1], elements=st.integers(0, 2)))
    return arrays_


@st.composite
def array_files(draw) -> tuple[str, bytes]:
    """(suffix, bytes) of an `.npy` of one array or an `.npz` of a few (of any or of plausible shapes and
    values), sometimes saved under the other suffix."""
    buffer = io.BytesIO()
    if draw(st.booleans()):
        np.save(buffer, draw(arrays()))
        suffix = ".npy"
    else:
        contents = st.one_of(st.dictionaries(st.sampled_from(KEYS), arrays(), min_size=1, max_size=3), plausible())
        np.savez(buffer, **draw(contents))
        suffix = ".npz"
    if draw(st.integers(0, 9)) == 0:
        suffix = ".npz" if suffix == ".npy" else ".npy"
    return suffix, buffer.getvalue()


@PROPERTY
@given(file=array_files(), points=st.integers(1, 3))
def test_array_readers_load_well_formed_data_or_refuse_naming_the_file(folder, file, points):
    suffix, content = file
    path = folder / f"arrays{suffix}"
    path.write_bytes(content)
    images = loads_or_refuses(load_image_array, path, "load_image_array")
    if images is not None:
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] in (1, 3) and min(images.shape) > 0
    frames = loads_or_refuses(load_video, path, "load_video")
    if frames is not None:
        assert frames.dtype == np.float32 and frames.ndim == 4 and frames.shape[-1] in (1, 3)
        assert np.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    if suffix == ".npz":
        oriented = loads_or_refuses(load_oriented_points, path, "load_oriented_points")
        if oriented is not None:
            xyz, normals = oriented
            assert xyz.shape == normals.shape and xyz.shape[1] == 3 and np.isfinite(xyz).all()
            np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, rtol=1e-5)
        for name, read in (("load_oriented_npz", lambda p: load_oriented_npz(p, points=points, seed=0)),
                           ("load_shapes", lambda p: load_shapes(ShapeData(source=str(p), points=points)))):
            collection = loads_or_refuses(read, path, name)
            if collection is not None:
                assert collection.shapes.shape[1:] == (points, 6) and torch.isfinite(collection.shapes).all()
                assert collection.shapes[..., :3].norm(dim=-1).max() <= 1.01 + 1e-5


# ------------------------------------------------------------------------------------------ damaged files


def valid_files() -> dict[str, bytes]:
    """One small good file of each kind the readers take."""
    from PIL import Image
    from scipy.io import wavfile

    rng = np.random.default_rng(0)
    files = {}
    for suffix, form in ((".png", "PNG"), (".jpg", "JPEG")):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, form)
        files[suffix] = buffer.getvalue()
    buffer = io.BytesIO()
    wavfile.write(buffer, 8000, (rng.normal(size=64) * 1000).astype(np.int16))
    files[".wav"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, images=rng.integers(0, 256, (2, 4, 4, 1), dtype=np.uint8))
    files[".npz"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, rng.random((2, 4, 4, 3), dtype=np.float32))
    files[".npy"] = buffer.getvalue()
    files[".obj"] = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    files[".off"] = b"OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"
    files[".ply"] = (b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                     b"element face 4\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
                     b"0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n")
    files[".xyz"] = b"0 0 0 0 0 1\n1 0 0 1 0 0\n0 1 0 0 1 0\n"
    return files


VALID = valid_files()
READERS = {  # reader family: (suffixes, reader)
    "images": ((".png", ".jpg"), load_image),
    "arrays": ((".npz", ".npy"), load_image_array),
    "audio": ((".wav",), load_audio),
    "meshes": ((".obj", ".off", ".ply", ".xyz"), lambda path: load_oriented_points(path, samples=16)),
}


@st.composite
def damaged(draw, good_files: dict[str, bytes]) -> tuple[str, bytes]:
    """(suffix, bytes): one of the good files truncated, with bytes overwritten, with junk appended, or junk alone."""
    suffix = draw(st.sampled_from(sorted(good_files)))
    good = good_files[suffix]
    how = draw(st.sampled_from(["truncate", "overwrite", "append", "junk"]))
    if how == "truncate":
        return suffix, good[: draw(st.integers(0, len(good) - 1))]
    if how == "overwrite":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 8))):
            start = draw(st.integers(0, len(data) - 1))
            patch = draw(st.binary(min_size=1, max_size=4))
            data[start : start + len(patch)] = patch
        return suffix, bytes(data)
    if how == "append":
        return suffix, good + draw(st.binary(min_size=1, max_size=64))
    return suffix, draw(st.binary(max_size=256))


@pytest.mark.parametrize("family", READERS)
def test_readers_load_damaged_files_or_refuse_naming_them(folder, family):
    suffixes, read = READERS[family]

    @PROPERTY
    @given(file=damaged({suffix: VALID[suffix] for suffix in suffixes}))
    def check(file):
        suffix, content = file
        path = folder / f"{family}{suffix}"
        path.write_bytes(content)
        loads_or_refuses(read, path, suffix)

    check()


def test_damaged_videos_are_decoded_or_refused(folder):
    """The mp4 reader (FFmpeg through PyAV) on a good clip truncated, overwritten or extended, and on junk."""
    pytest.importorskip("av", reason="the video reader (PyAV) is not installed")
    hs.io.save_video(folder / "good.mp4", np.random.default_rng(0).random((3, 8, 8, 3)))

    @PROPERTY
    @given(file=damaged({".mp4": (folder / "good.mp4").read_bytes()}))
    def check(file):
        path = folder / "video.mp4"
        path.write_bytes(file[1])
        frames = loads_or_refuses(lambda p: load_video(p, max_frames=2), path, "load_video")
        if frames is not None:
            assert frames.ndim == 4 and np.isfinite(frames).all() and 0 <= frames.min() <= frames.max() <= 1

    check()


# ------------------------------------------------------------------------------------------ context sampler

COUNTS = st.one_of(st.integers(-2, 9), st.sampled_from([np.int64(3), True, 2.0, 2.5, None, "3", float("nan")]))


@PROPERTY
@given(batch=st.integers(0, 3), n=st.integers(0, 6), d=st.integers(1, 3), c=st.integers(1, 2),
       sampler=st.sampled_from(["sample", "fixed", "prefix"]), first=COUNTS, second=COUNTS,
       bad=st.sampled_from([None, float("nan"), float("inf"), -float("inf")]),
       where=st.sampled_from(["coords", "values"]),
       seed=st.integers(0, 2**32 - 1))
def test_context_samplers_give_valid_contexts_or_refuse(batch, n, d, c, sampler, first, second, bad, where, seed):
    """Point i of sample b has coords[..., 0] = i and values[..., 0] = 100 b + i, so pairing and distinctness
    can be read off the context."""
    index = torch.arange(n, dtype=torch.float64).expand(batch, n)  # [B, N]
    coords = torch.cat([index.unsqueeze(-1), torch.rand(batch, n, d - 1, dtype=torch.float64)], -1)  # [B, N, D]
    values = (index + 100 * torch.arange(batch).unsqueeze(1)).unsqueeze(-1).expand(batch, n, c).clone()  # [B, N, C]
    poisoned = bad is not None and batch * n > 0
    if poisoned:
        (coords if where == "coords" else values)[batch - 1, n - 1, 0] = bad
    generator = torch.Generator().manual_seed(seed)
    try:
        if sampler == "sample":
            context = sample_context(coords, values, max_points=first, min_points=second, generator=generator)
        elif sampler == "fixed":
            context = fixed_context(coords, values, first, generator=generator)
        else:
            context = prefix_context(coords, values, first)
    except (ValueError, TypeError):
        return
    assert not poisoned, "a NaN or inf was sampled into a context"
    m = context.mask.shape[1]
    assert context.coords.shape == (batch, m, d) and context.values.shape == (batch, m, c)
    assert context.mask.dtype == torch.bool and 1 <= m <= n
    rows = context.coords[..., 0].long()  # [B, M]: which point each context point is
    assert torch.equal(context.values[..., 0], rows + 100 * torch.arange(batch).unsqueeze(1))  # paired
    assert all(len(set(row.tolist())) == m for row in rows)  # distinct
    valid = context.mask.sum(1)
    assert torch.equal(context.mask, torch.arange(m) < valid.unsqueeze(1))  # the valid points come first
    if sampler == "sample":
        assert m == first and ((valid >= second) & (valid <= first)).all()
    else:
        assert m == first and context.mask.all()
    if sampler == "prefix":
        assert torch.equal(rows, torch.arange(m).expand(batch, m))


# ------------------------------------------------------------------------------------------ --set overrides

PRESET = get_preset("tiny")
CONFIGS = {"data": PRESET.data, "model": PRESET.model, "train": PRESET.train}
SECTIONS = {section: type(config) for section, config in CONFIGS.items()}


def annotations(cls: type) -> dict:
    """Field name -> annotation of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


ANNOTATIONS = {f"{section}.{name}": hint for section, cls in SECTIONS.items()
               for name, hint in annotations(cls).items()}
FIT_ANNOTATIONS = annotations(FitConfig)
ODD_TEXT = ["None", "none", "null", "true", "False", "yes", "0", "1", "-1", "nan", "inf", "-inf", "1e400", "1e-400",
            "()", "(1, 2)", "[1.5, 2]", "(1, 2, 3)", "{[1]: 2}", "{1: 2}", "((((1))))", "9" * 30, "-" * 50 + "1",
            "[" * 300 + "]" * 300, "1_000", " 7 ", "0x10", "", "=", "layered", "per_tensor", "\x00", "é"]
TEXT = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=20), st.integers().map(str),
                 st.floats().map(repr), st.floats().map(str))


def holds(value, annotation) -> bool:
    """Whether `value` is of the annotated type as `--set` reads it (ints for floats; ints in 64 bits)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(value is None if arm is type(None) else holds(value, arm) for arm in args)
    if origin is typing.Literal:
        return value in args
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        element_types = [args[0]] * len(value) if args[-1] is Ellipsis or origin is list else list(args)
        return isinstance(value, origin) and len(element_types) == len(value) and all(
            holds(v, t) for v, t in zip(value, element_types))
    raise AssertionError(f"no check for {annotation}")


@PROPERTY
@given(key=st.one_of(st.sampled_from(sorted(ANNOTATIONS)), st.text(max_size=15)), text=TEXT,
       separator=st.sampled_from(["=", "=", " = ", "", ":"]))
def test_section_overrides_parse_to_the_field_type_or_refuse(key, text, separator):
    pair = f"{key}{separator}{text}"
    try:
        parsed = parse_overrides([pair], SECTIONS)
    except ValueError:
        return
    (section, fields), = [(section, fields) for section, fields in parsed.items() if fields]
    (name, value), = fields.items()
    assert holds(value, ANNOTATIONS[f"{section}.{name}"])
    try:
        configs = apply_overrides(CONFIGS, [pair])  # the configs' own range checks
    except ValueError:
        return
    assert getattr(configs[section], name) == value


@PROPERTY
@given(key=st.one_of(st.sampled_from(sorted(FIT_ANNOTATIONS)), st.text(max_size=15)), text=TEXT,
       task=st.sampled_from(["image", "audio", "sdf", "helmholtz"]))
def test_field_overrides_parse_to_the_field_type_or_refuse(key, text, task):
    try:
        parsed = parse_field_overrides([f"{key}={text}"], FitConfig)
    except ValueError:
        return
    (name, value), = parsed.items()
    assert holds(value, FIT_ANNOTATIONS[name])
    try:
        config = preset_config(task, "default", **parsed)
    except ValueError:
        return
    assert getattr(config, name) == value


def test_preset_config_refuses_a_task_in_its_overrides():
    with pytest.raises(ValueError, match=r"the task is given as the first argument \('image'\), not as an override; "
                                         r"got task='audio'"):
        preset_config("image", "default", task="audio")


def written(value) -> str:
    """`value` as a user writes it after `--set KEY=`."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, (float, tuple, list)) else str(value)


def typed_values(annotation) -> st.SearchStrategy:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[st.none() if arm is type(None) else typed_values(arm) for arm in args])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-2**63, 2**63 - 1)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if annotation is str:
        return st.text(max_size=10).filter(lambda text: text.strip() not in ("None", "none", "null"))
    if origin is tuple and args[-1] is not Ellipsis:
        return st.tuples(*[typed_values(arm) for arm in args])
    raise AssertionError(f"no strategy for {annotation}")


@PROPERTY
@given(data=st.data(), key=st.sampled_from(sorted(ANNOTATIONS)))
def test_every_value_a_field_holds_reads_back_from_its_text(data, key):
    value = data.draw(typed_values(ANNOTATIONS[key]))
    section, name = key.split(".")
    assert parse_overrides([f"{key}={written(value)}"], SECTIONS)[section] == {name: value}


# ------------------------------------------------------------------------------------------ flatten / unflatten


@PROPERTY
@given(in_dim=st.integers(1, 4), out_dim=st.integers(1, 4), hidden=st.integers(1, 6), depth=st.integers(1, 4),
       batch=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3), seed=st.integers(0, 2**32 - 1))
def test_unflatten_and_flatten_are_exact_inverses(in_dim, out_dim, hidden, depth, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = siren_layer_shapes(in_dim, out_dim, hidden_dim=hidden, depth=depth)
    flat = torch.randn(*batch, num_params(shapes), generator=generator, dtype=torch.float64)  # [*batch, P]
    params = hs.SirenParams.unflatten(flat, shapes)
    assert params.layer_shapes == shapes and params.batch_shape == batch
    assert torch.equal(params.flatten(), flat)
    again = hs.SirenParams.unflatten(params.flatten(), shapes)
    assert all(torch.equal(a, b) for a, b in zip(again.weights + again.biases, params.weights + params.biases))
    siren = hs.Siren(in_dim, out_dim, hidden_dim=hidden, depth=depth)  # flat order = the module's state_dict order
    assert torch.equal(siren.params().flatten()[0], torch.cat([t.flatten() for t in siren.state_dict().values()]))
    wrong = num_params(shapes) + 1
    with pytest.raises(ValueError, match=rf"expected flat \[..., {num_params(shapes)}\]"):
        hs.SirenParams.unflatten(torch.zeros(*batch, wrong), shapes)
