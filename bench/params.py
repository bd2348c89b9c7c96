"""Typed parameters: frozen dataclasses with paper defaults, presets, and strict parsing of overrides.

A misspelt key fails loudly (rule 6 of the house style): :func:`build_params` rejects unknown names and
values that do not convert to the field's type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["NoParams", "build_params", "params_to_dict", "parse_value"]


@dataclasses.dataclass(frozen=True)
class NoParams:
    """Parameters of a method or metric that has none."""


def _convert(name: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ValueError(f"parameter {name!r} must be one of {list(args)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(name, a, value)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError(f"parameter {name!r}: cannot convert {value!r} ({'; '.join(errors)})")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"parameter {name!r} must be a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(name, args[0], v) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ValueError(f"parameter {name!r} needs {len(args)} values, got {len(value)}")
            return tuple(_convert(name, a, v) for a, v in zip(args, value))
        inner = args[0] if args else Any
        return origin(_convert(name, inner, v) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"parameter {name!r} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name!r} must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"parameter {name!r} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name!r} must be a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"parameter {name!r} must be a string, got {value!r}")
        return value
    return value


def parse_value(text: str) -> Any:
    """Best-effort parse of a ``key=value`` right-hand side given on the command line (JSON, else string)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def build_params(
    cls: type,
    *,
    preset: str | None = None,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    owner: str = "",
) -> Any:
    """Build a frozen params dataclass from a preset and overrides, converting and checking every value.

    Args:
        cls: the params dataclass; its defaults are the paper's settings (preset ``paper``).
        preset: ``None`` or ``"paper"`` for the defaults, or a key of ``presets`` (e.g. ``"tiny"``).
        presets: preset name -> field overrides.
        overrides: field name -> value (strings are converted to the field's type).
        owner: name used in error messages.

    Raises:
        ValueError: unknown preset, unknown field, or a value that does not convert.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    who = f"{owner}: " if owner else ""
    if preset not in (None, "paper", "default"):
        if not presets or preset not in presets:
            known = sorted({"paper", *(presets or {})})
            raise ValueError(f"{who}unknown preset {preset!r}; known presets: {', '.join(known)}")
        values.update(presets[preset])
    values.update(overrides or {})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"{who}unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(sorted(fields)) or '(none)'}"
        )
    converted = {k: _convert(f"{owner}.{k}" if owner else k, hints[k], v) for k, v in values.items()}
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who}{exc}") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a params dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(params), default=str))
