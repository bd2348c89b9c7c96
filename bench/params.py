"""Typed parameters: frozen dataclasses with paper defaults, presets, strict parsing of overrides, and each
field's range or choices declared once, with the field.

A misspelt key fails loudly (rule 6 of the house style): :func:`build_params` rejects unknown names and
values that do not convert to the field's type. Bounds and choices are declared with :func:`param` and
checked by :func:`check_params` however the object is made: a :class:`Params` subclass checks itself when
constructed (directly, by :func:`dataclasses.replace`, or by :func:`build_params`), and
:func:`build_params` checks any other dataclass too. ``Literal``-typed fields are checked the same way.

>>> @dataclasses.dataclass(frozen=True)
... class ToyParams(Params):
...     steps: int = param(100, ge=1)
...     ratio: float = param(0.5, gt=0, le=1)
>>> try:
...     ToyParams(ratio=2.0)
... except ValueError as exc:
...     print(exc)
ToyParams: parameter 'ratio' must be in (0, 1], got 2.0
>>> try:
...     build_params(ToyParams, overrides={"steps": "0"}, owner="toy")
... except ValueError as exc:
...     print(exc)
toy: parameter 'steps' must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "NoParams",
    "ParamError",
    "ParamSpec",
    "Params",
    "build_params",
    "check_params",
    "describe_params",
    "param",
    "params_to_dict",
    "parse_value",
]

#: key of a field's :class:`ParamSpec` in ``dataclasses.Field.metadata``
_SPEC_KEY = "texbench.param"


class ParamError(ValueError):
    """A parameter value outside its declared bounds or choices.

    The message names the owner (the registered method or metric, else the params class) and the field:
    ``gatys: parameter 'max_evals' must be >= 1, got 0``.
    """

    def __init__(self, owner: str, name: str, problem: str) -> None:
        super().__init__(f"{owner}: parameter {name!r} {problem}")
        self.owner, self.name, self.problem = owner, name, problem

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its parts, so it crosses process boundaries (the executor's workers) intact
        return (type(self), (self.owner, self.name, self.problem))


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """What :func:`param` declares about one field: conditions on its value, on each item for a tuple or list.

    Attributes:
        ge, gt, le, lt: bounds (``>=``, ``>``, ``<=``, ``<``); NaN is outside any bound.
        choices: the allowed values (for a field whose type is not already a ``Literal``).
        odd: the value must be odd.
        multiple_of: the value must be a multiple of this.
        nonempty: a tuple or list value must hold at least one item.
        help: a one-line description for help texts.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    odd: bool = False
    multiple_of: int | None = None
    nonempty: bool = False
    help: str | None = None

    @staticmethod
    def of(field: dataclasses.Field[Any]) -> ParamSpec | None:
        """The spec :func:`param` declared on a dataclass field, or ``None``."""
        return field.metadata.get(_SPEC_KEY)

    def requirement(self) -> str:
        """The condition on one value in words (``"in (0, 1]"``, ``">= 1 and odd"``); ``""`` when none."""
        # (operator, interval bracket, bound) of each side
        lower = (">=", "[", self.ge) if self.gt is None else (">", "(", self.gt)
        upper = ("<=", "]", self.le) if self.lt is None else ("<", ")", self.lt)
        parts = []
        if lower[2] is not None and upper[2] is not None:
            parts.append(f"in {lower[1]}{lower[2]}, {upper[2]}{upper[1]}")
        elif lower[2] is not None or upper[2] is not None:
            op, _, bound = lower if lower[2] is not None else upper
            parts.append(f"{op} {bound}")
        if self.odd:
            parts.append("odd")
        if self.multiple_of is not None:
            parts.append(f"a multiple of {self.multiple_of}")
        if self.choices is not None:
            parts.append(f"one of {list(self.choices)}")
        return " and ".join(parts)

    def admits(self, x: Any) -> bool:
        """Whether one value (one item of a tuple or list) meets the conditions."""
        # written as `not (x >= b)` rather than `x < b` so that NaN fails every bound
        if self.ge is not None and not x >= self.ge:
            return False
        if self.gt is not None and not x > self.gt:
            return False
        if self.le is not None and not x <= self.le:
            return False
        if self.lt is not None and not x < self.lt:
            return False
        if self.odd and x % 2 == 0:
            return False
        if self.multiple_of is not None and x % self.multiple_of != 0:
            return False
        return self.choices is None or x in self.choices

    def violation(self, value: Any, *, allow_none: bool = True) -> str | None:
        """What is wrong with ``value`` (``"must be >= 1, got 0"``), or ``None`` when nothing is.

        ``None`` (an optional field left unset) passes when ``allow_none``; otherwise it is compared like any
        other value. A value that cannot be compared with the bounds raises ``TypeError``.
        """
        if value is None and allow_none:
            return None
        if isinstance(value, (tuple, list)):
            if self.nonempty and not value:
                return "must not be empty"
            for i, item in enumerate(value):
                if not self.admits(item):
                    return f"item {i} must be {self.requirement()}, got {item!r}"
            return None
        if not self.admits(value):
            return f"must be {self.requirement()}, got {value!r}"
        return None


def param(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Iterable[Any] | None = None,
    odd: bool = False,
    multiple_of: int | None = None,
    nonempty: bool = False,
    help: str | None = None,
) -> Any:
    """A dataclass field with its range or choices, checked by :func:`check_params`.

    The conditions apply to the value, or to each item when the value is a tuple or list; ``None`` passes
    in a field typed optional (``int | None``: unset).

    Args:
        default: the field's default (the paper's setting).
        default_factory: instead of ``default``, for a mutable default.
        ge, gt, le, lt: lower (``>=``/``>``) and upper (``<=``/``<``) bounds, at most one of each side.
        choices: the allowed values (for a field not typed as a ``Literal``, e.g. layer names).
        odd: the value must be odd.
        multiple_of: the value must be a multiple of this.
        nonempty: a tuple or list must hold at least one item.
        help: a one-line description for help texts.

    Returns:
        A :func:`dataclasses.field` carrying a :class:`ParamSpec` in its metadata.

    Raises:
        TypeError: both bounds of one side.
        ValueError: the default itself breaks the conditions.
    """
    if ge is not None and gt is not None:
        raise TypeError("param: give ge or gt, not both")
    if le is not None and lt is not None:
        raise TypeError("param: give le or lt, not both")
    spec = ParamSpec(
        ge=ge, gt=gt, le=le, lt=lt, choices=None if choices is None else tuple(choices), odd=odd,
        multiple_of=multiple_of, nonempty=nonempty, help=help,
    )  # fmt: skip
    if default is not dataclasses.MISSING:
        problem = spec.violation(default)
        if problem:
            raise ValueError(f"param: the default {problem}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata={_SPEC_KEY: spec})


def _literal_values(tp: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` (or ``Literal | None``) type admits; ``None`` for any other type."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        values: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                values.append(None)
            elif typing.get_origin(arg) is typing.Literal:
                values.extend(typing.get_args(arg))
            else:
                return None
        return tuple(values)
    return None


class _FieldCheck(typing.NamedTuple):
    name: str
    spec: ParamSpec | None
    literal: tuple[Any, ...] | None  # the values of a Literal type
    sequence: bool  # typed as a tuple or list
    optional: bool  # None is a valid value


def _is_optional(tp: Any, default: Any) -> bool:
    if tp is None:  # annotations that did not resolve: an unset default says it
        return default is None
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


@functools.cache
def _field_checks(cls: type) -> tuple[_FieldCheck, ...]:
    """The checks of each field of ``cls`` that has a spec or a Literal type; computed once per class."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # annotations that do not resolve at run time: no Literal checks
        hints = {}
    out = []
    for f in dataclasses.fields(cls):
        spec, tp = ParamSpec.of(f), hints.get(f.name)
        literal = _literal_values(tp)
        if spec is not None or literal is not None:
            sequence = typing.get_origin(tp) in (tuple, list)
            out.append(_FieldCheck(f.name, spec, literal, sequence, _is_optional(tp, f.default)))
    return tuple(out)


def check_params(params: Any, *, owner: str | None = None) -> None:
    """Check every field of a params dataclass against its :func:`param` declaration and ``Literal`` type.

    Args:
        params: a dataclass instance.
        owner: name used in the message (default: the class name).

    Raises:
        ParamError: the first field, in declaration order, whose value breaks its conditions.
        TypeError: a value that cannot be compared with its bounds (``None`` in a field not typed optional).
    """
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        raise TypeError(f"{params!r} is not a dataclass instance")
    who = owner or type(params).__name__
    for name, spec, literal, _, optional in _field_checks(type(params)):
        value = getattr(params, name)
        if literal is not None and value not in literal:
            raise ParamError(who, name, f"must be one of {list(literal)}, got {value!r}")
        if spec is None:
            continue
        try:
            problem = spec.violation(value, allow_none=optional)
        except TypeError:  # e.g. None or a string where a number is declared
            raise TypeError(
                f"{who}: parameter {name!r} must be {spec.requirement()}, got {value!r}"
            ) from None
        if problem:
            raise ParamError(who, name, problem)


def describe_params(cls: type) -> dict[str, str]:
    """Field name -> its conditions in words, for help texts (fields without any are left out).

    >>> describe_params(NoParams)
    {}
    """
    out = {}
    for name, spec, literal, sequence, _ in _field_checks(cls):
        parts = []
        if literal is not None:
            parts.append(f"one of {list(literal)}")
        if spec is not None:
            if spec.nonempty:
                parts.append("not empty")
            if spec.requirement():
                parts.append(("each item " if sequence else "") + spec.requirement())
        if parts:
            out[name] = "; ".join(parts)
    return out


@dataclasses.dataclass(frozen=True)
class Params:
    """Base of a parameters dataclass: constructing one runs :func:`check_params`.

    A subclass with conditions that tie fields together defines ``__post_init__`` and calls
    ``super().__post_init__()`` first, so every field is within its own bounds before they are compared.
    """

    def __post_init__(self) -> None:
        check_params(self)


@dataclasses.dataclass(frozen=True)
class NoParams(Params):
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
        ValueError: unknown preset, unknown field, or a value that does not convert;
            :class:`ParamError` (a ``ValueError``) for a value outside its declared bounds or choices.
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
    try:
        converted = {k: _convert(k, hints[k], v) for k, v in values.items()}
    except ValueError as exc:
        raise ValueError(f"{who}{exc}") from None
    try:
        params = cls(**converted)
        # a Params subclass has just checked itself; a plain dataclass with param() fields has not
        check_params(params, owner=owner)
    except ParamError as exc:
        raise ParamError(owner or exc.owner, exc.name, exc.problem) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who}{exc}") from None
    return params


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a params dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(params), default=str))
