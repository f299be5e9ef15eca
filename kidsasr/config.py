"""The one config loader: YAML (or a dict) into typed dataclasses, checked key by key.

Used by training recipes, the prep config, subtitle style profiles and decode options. A key the dataclass does
not have, or a value of the wrong type, raises ConfigError naming the source and the dotted key, e.g.
`recipes/x.yaml: train.batch_size: expected an integer (got 'four')`. Supported field types: bool, int, float,
str, Literal[...] choices, `X | None`, list[X] and nested dataclasses. A float field takes any YAML number
spelling, including the ones YAML 1.1 reads as strings (`1e-4`, `-1E5`), and refuses inf and nan. Overrides are
dotted `section.key=value` strings whose value is read as YAML (`train.max_steps=20`, `augment.enabled=false`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

T = TypeVar("T")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_PLAIN = {  # field type: (what it accepts as is, what the error says it expected)
    bool: (lambda v: isinstance(v, bool), "true/false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    str: (lambda v: isinstance(v, str), "a string"),
}


class ConfigError(ValueError):
    """A config that cannot be used, naming the file (or source) and the dotted key."""


def from_mapping(cls: type[T], values: Any, where: str, prefix: str = "", skip: Iterable[str] = (),
                 error: type[ConfigError] = ConfigError) -> T:
    """`cls(**values)` with every key known to `cls` and every value of its field's type (nested dataclasses
    built the same way). Fields named in `skip` are not settable from the mapping."""
    if not isinstance(values, dict):
        raise error(f"{where}: {prefix or 'top level'}: expected a mapping (got {values!r})")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    kwargs = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise error(f"{where}: {dotted}: unknown key (allowed: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], dotted, where, error)
    return cls(**kwargs)


def _coerce(value: Any, annotation: Any, key: str, where: str, error: type[ConfigError]) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, where, error)
    if origin is typing.Literal:
        if value not in args:
            raise error(f"{where}: {key}: must be one of {args} (got {value!r})")
        return value
    if annotation in _PLAIN:
        accepts, expected = _PLAIN[annotation]
        if not accepts(value):
            raise error(f"{where}: {key}: expected {expected} (got {value!r})")
        return value
    if annotation is float:
        number = _as_float(value)
        if number is None:
            raise error(f"{where}: {key}: expected a number (got {value!r})")
        if not math.isfinite(number):
            raise error(f"{where}: {key}: expected a finite number (got {value!r})")
        return number
    if origin is list:
        if not isinstance(value, list):
            raise error(f"{where}: {key}: expected a list (got {value!r})")
        return [_coerce(v, args[0], f"{key}[{i}]", where, error) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, {} if value is None else value, where, key, error=error)
    raise TypeError(f"unsupported config field type {annotation!r} for {key}")


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def read_yaml(path: str | Path, error: type[ConfigError] = ConfigError) -> dict:
    """A YAML file holding a mapping (an empty file is an empty mapping)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {e}") from e
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return values


def apply_overrides(values: dict, overrides: Iterable[str], error: type[ConfigError] = ConfigError) -> dict:
    """Set dotted `a.b=value` overrides (values read as YAML) in a nested mapping, in place; returns it."""
    import yaml

    for text in overrides:
        if "=" not in text:
            raise error(f"override {text!r}: expected SECTION.KEY=VALUE")
        key, raw = text.split("=", 1)
        keys = key.strip().split(".")
        node = values
        for k in keys[:-1]:
            if node.get(k) is None:  # a section left empty in the YAML
                node[k] = {}
            node = node[k]
            if not isinstance(node, dict):
                raise error(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return values


def load(cls: type[T], path: str | Path, overrides: Iterable[str] = (), skip: Iterable[str] = (),
         error: type[ConfigError] = ConfigError) -> T:
    """A YAML file plus dotted overrides, as `cls`."""
    values = apply_overrides(read_yaml(path, error), overrides, error)
    return from_mapping(cls, values, str(path), skip=skip, error=error)
