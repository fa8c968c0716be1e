"""The package's layering (docs/architecture.md), checked on the source: no module imports from a layer
above its own, and the generic machinery never names a modality."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hypersiren"

# layer of each top-level module or subpackage of hypersiren, bottom first
LAYERS = {
    "params": 0, "forward": 0, "siren": 0, "closed_form": 0, "diff": 0, "coords": 0,
    "metrics": 1, "devices": 1, "runs": 1, "export": 1, "config": 1, "figures": 1, "io": 1, "geometry": 1,
    "prior": 2,
    "modalities": 3,
    "latent": 4, "fitting": 4,
}
GENERIC = ("prior", "latent")  # may not import any modality


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts != ("__init__",):  # the package's own __init__ re-exports from every layer
            yield path, parts


def imported(path: Path, parts: tuple[str, ...]) -> set[str]:
    """The top-level hypersiren units (module or subpackage names) that a module imports."""
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [target[0]] if target else [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "hypersiren":
                rest = node.module.split(".")[1:]
                names = [rest[0]] if rest else [alias.name for alias in node.names]
            else:
                continue
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("hypersiren.") and len(a.name.split(".")) > 1)
    return found


def test_every_module_has_a_layer():
    units = {parts[0] for _, parts in modules()}
    assert units <= set(LAYERS), f"give these a layer in LAYERS and docs/architecture.md: {units - set(LAYERS)}"


@pytest.mark.parametrize("path, parts", list(modules()), ids=lambda value: "/".join(value) if isinstance(value, tuple) else "")
def test_no_module_imports_from_a_layer_above_its_own(path, parts):
    unit = parts[0]
    for name in imported(path, parts):
        assert name in LAYERS, f"{path.name} imports an unknown unit {name!r}"
        assert LAYERS[name] <= LAYERS[unit], (f"hypersiren/{'/'.join(parts)}.py (layer {LAYERS[unit]}) imports "
                                               f"{name} (layer {LAYERS[name]})")
        if unit in GENERIC:
            assert name != "modalities", f"hypersiren/{'/'.join(parts)}.py is generic but imports a modality"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("from ..modalities.image import x\nfrom . import types\nimport hypersiren.fitting.loop\n"
                      "def f():\n    from hypersiren.latent import y\n")
    assert imported(module, ("prior", "probe")) == {"modalities", "prior", "fitting", "latent"}
