"""Command-line support: overrides of dataclass configs (`--set section.field=value` or `--set field=value`),
`run_main`, which ends a script on bad input with one message and exit status 2, and argparse types for the
scripts' numeric options (`positive_int`, `random_seed`, `positive_float`, ...) that refuse out-of-range values.

Values are read by the field's annotated type: `int` (64-bit), `float` (finite; ints accepted), `bool`
(`true/false/1/0/yes/no`), `str` (taken as written), `X | None` (`None`/`none`/`null` for None),
`Literal[...]`, and `tuple[...]`/`list[...]` written as Python literals (`(1, 2, 3)`). Unknown
names get a close-match hint. The new configs are built with `dataclasses.replace`, so each
config's `__post_init__` range checks apply to the overridden values too.

    configs = apply_overrides({"model": model_config, "train": train_config},
                              ["train.lr=3e-4", "model.rank=32", "train.clip_grad_norm=None"])
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import math
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from .runs import Interrupted

__all__ = ["apply_overrides", "parse_field_overrides", "parse_overrides", "run_main",
           "finite_float", "non_negative_float", "non_negative_int", "positive_float", "positive_int", "random_seed"]

_NONE = ("None", "none", "null")
_INT64 = 2**63  # int fields take values in [-_INT64, _INT64): what torch holds (seeds, counts)
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _closest(name: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def _hint(name: str, choices: Iterable[str]) -> str:
    match = _closest(name, choices)
    return f"; did you mean {match!r}?" if match else ""


def _type_name(annotation) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


class _Mismatch(Exception):
    """`text` cannot be read as the annotated type."""


def _read(text: str, annotation) -> Any:
    """`text` -> a value of type `annotation`, or `_Mismatch`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip() in _NONE:
            return None
        for arm in args:
            if arm is not type(None):
                try:
                    return _read(text, arm)
                except _Mismatch:
                    pass
        raise _Mismatch
    if origin is Literal:
        for option in args:
            if text == str(option) or (not isinstance(option, str) and _safe_literal(text) == option):
                return option
        raise _Mismatch
    if annotation is str:
        return text
    if annotation is bool:
        if text.strip().lower() not in _BOOLS:
            raise _Mismatch
        return _BOOLS[text.strip().lower()]
    if annotation in (int, float):
        try:
            value = annotation(text.strip())
        except ValueError:
            raise _Mismatch from None
        if not (-_INT64 <= value < _INT64 if annotation is int else math.isfinite(value)):
            raise _Mismatch  # an int beyond 64 bits (what torch holds), a float NaN or inf
        return value
    if origin in (tuple, list) or annotation in (tuple, list):
        value = _safe_literal(text)
        if not isinstance(value, (tuple, list)):
            raise _Mismatch
        if args and (args[-1] is Ellipsis or origin is list):  # tuple[X, ...] or list[X]
            element_types = [args[0]] * len(value)
        elif args:
            if len(args) != len(value):
                raise _Mismatch
            element_types = list(args)
        else:
            element_types = [typing.Any] * len(value)
        items = [item if t is typing.Any else _read(item if isinstance(item, str) else repr(item), t)
                 for item, t in zip(value, element_types)]
        return (origin or annotation)(items)
    raise TypeError(f"parse_overrides: expected a field of a type the command line can set, got {_type_name(annotation)}")


def _safe_literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # TypeError: `{[1]: 2}`
        return _Mismatch  # a sentinel no field value equals


def _fields(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation of a dataclass type."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"parse_overrides: expected a dataclass type, got {cls!r}")
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _split(pair: str, where: str) -> tuple[str, str]:
    if not isinstance(pair, str):
        raise TypeError(f"{where}: expected KEY=VALUE strings, got {pair!r}")
    key, sep, text = pair.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{where}: expected KEY=VALUE, got {pair!r}")
    return key.strip(), text


def _value(cls: type, name: str, text: str, key: str, where: str) -> Any:
    annotation = _fields(cls)[name]
    try:
        return _read(text, annotation)
    except _Mismatch:
        raise ValueError(f"{where}: expected {_type_name(annotation)} for {key}, got {text!r}") from None


def _hint_or_list(key: str, choices: Iterable[str]) -> str:
    return _hint(key, choices) or f" (known: {', '.join(choices)})"


def parse_field_overrides(pairs: Iterable[str], cls: type) -> dict[str, Any]:
    """`["lr=1e-3", "steps=10"]` -> `{"lr": 0.001, "steps": 10}`, typed by the fields of the dataclass `cls`."""
    fields = _fields(cls)
    out = {}
    for pair in pairs:
        key, text = _split(pair, "parse_field_overrides")
        if key not in fields:
            raise ValueError(f"parse_field_overrides: unknown field {key!r} of {cls.__name__}{_hint_or_list(key, fields)}")
        out[key] = _value(cls, key, text, key, "parse_field_overrides")
    return out


def parse_overrides(pairs: Iterable[str], sections: Mapping[str, type]) -> dict[str, dict[str, Any]]:
    """`["train.lr=1e-3", "model.rank=32"]` with `sections = {"model": HyperSirenConfig, "train": TrainConfig}`
    -> `{"model": {"rank": 32}, "train": {"lr": 0.001}}` (every section present, maybe empty).
    A repeated key keeps its last value."""
    keys = {f"{section}.{name}": (section, name) for section, cls in sections.items() for name in _fields(cls)}
    out: dict[str, dict[str, Any]] = {section: {} for section in sections}
    for pair in pairs:
        key, text = _split(pair, "parse_overrides")
        if key not in keys:
            section, dot, name = key.partition(".")
            if not dot:
                problem = f"expected SECTION.FIELD=VALUE with SECTION one of {', '.join(sections)}, got {pair!r}"
                match = _closest(key, [n for _, n in keys.values()])
                full = [k for k, (_, n) in keys.items() if n == match]
                hint = f"; did you mean {' or '.join(map(repr, full))}?" if full else ""
            elif section not in sections:
                problem, hint = f"unknown section {section!r} in {key!r}", _hint(key, keys) or _hint_or_list(section, sections)
            else:
                problem = f"unknown field {key!r} of {sections[section].__name__}"
                names = [n for s, n in keys.values() if s == section]
                match = _closest(name, names)
                hint = f"; did you mean '{section}.{match}'?" if match else f" (known: {', '.join(names)})"
            raise ValueError(f"parse_overrides: {problem}{hint}")
        section, name = keys[key]
        out[section][name] = _value(sections[section], name, text, key, "parse_overrides")
    return out


def apply_overrides(configs: Mapping[str, Any], pairs: Iterable[str]) -> dict[str, Any]:
    """`{section: dataclass instance}` and `section.field=value` strings -> new instances (`dataclasses.replace`)."""
    parsed = parse_overrides(pairs, {section: type(config) for section, config in configs.items()})
    return {section: dataclasses.replace(config, **parsed[section]) for section, config in configs.items()}


def run_main(main: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> Any:
    """`main(args)` for a script run from the command line. Bad input or a run that cannot go on (a ValueError
    or OSError: a missing file, a file of another kind, one carrying pickled code, an out-of-range option, a
    run folder another run holds or that cannot be written; a FloatingPointError: a non-finite training loss)
    ends it like argparse's usage errors: `SCRIPT: error: MESSAGE` on stderr, exit status 2, no traceback.
    `runs.Interrupted` (SIGINT / SIGTERM stopped training after a checkpoint) prints its message and exits
    with status 128 + the signal's number (130, 143)."""
    try:
        return main(args)
    except Interrupted as stop:
        print(f"{Path(sys.argv[0]).name}: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


# --- argparse `type=` functions for the scripts' numeric options: a bad value is argparse's usage error ----

SEED_LIMIT = 2**32  # seeds are ints in [0, SEED_LIMIT): derived seeds (seed * stride + index) stay in 64 bits


def _argument(text: str, kind: type, ok: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _argument(text, int, lambda value: value >= 1, "a positive int")


def non_negative_int(text: str) -> int:
    return _argument(text, int, lambda value: value >= 0, "an int >= 0")


def random_seed(text: str) -> int:
    return _argument(text, int, lambda value: 0 <= value < SEED_LIMIT, f"a seed, an int in [0, {SEED_LIMIT})")


def finite_float(text: str) -> float:
    return _argument(text, float, math.isfinite, "a finite number")


def positive_float(text: str) -> float:
    return _argument(text, float, lambda value: math.isfinite(value) and value > 0, "a positive number")


def non_negative_float(text: str) -> float:
    return _argument(text, float, lambda value: math.isfinite(value) and value >= 0, "a number >= 0")
