"""Parameters declared once: bounds and choices as field metadata, checked however a params object is made."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pickle
import types
import typing
from typing import Literal

import pytest

from texbench import registry
from texbench.params import (
    ParamError,
    Params,
    ParamSpec,
    build_params,
    check_params,
    describe_params,
    param,
)
from texbench.tasks import TASKS


@dataclasses.dataclass(frozen=True)
class ToyParams(Params):
    steps: int = param(10, ge=1)
    rate: float = param(0.5, gt=0)
    fraction: float = param(0.25, ge=0, lt=1)
    exponent: float = param(1.0, gt=0, le=2)
    window: int = param(5, ge=3, odd=True)
    crop: int = param(8, multiple_of=4)
    layer: str = param("b", choices=("a", "b", "c"))
    mode: Literal["fast", "exact"] = "fast"
    sigma: float | None = param(None, gt=0)
    sizes: tuple[int, ...] = param((4, 2), nonempty=True, ge=2)
    names: list[str] = param(default_factory=lambda: ["a"], choices=("a", "b"))
    free: float = 0.0


@dataclasses.dataclass(frozen=True)
class ToyRangeParams(Params):
    low: int = param(0, ge=0)
    high: int = param(4, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.low < self.high:  # ties two fields: not a bound of either
            raise ValueError(f"low ({self.low}) must be < high ({self.high})")


@dataclasses.dataclass(frozen=True)
class PlainParams:  # a third-party dataclass that declares bounds without the Params base
    steps: int = param(10, ge=1)


# ------------------------------------------------------------------------------------------------ the toy
@pytest.mark.parametrize(
    "field,value,message",
    [
        ("steps", 0, "parameter 'steps' must be >= 1, got 0"),
        ("rate", 0.0, "parameter 'rate' must be > 0, got 0.0"),
        ("rate", -1e-300, "parameter 'rate' must be > 0, got -1e-300"),
        ("fraction", -0.1, "parameter 'fraction' must be in [0, 1), got -0.1"),
        ("fraction", 1.0, "parameter 'fraction' must be in [0, 1), got 1.0"),
        ("exponent", 0.0, "parameter 'exponent' must be in (0, 2], got 0.0"),
        ("exponent", 2.5, "parameter 'exponent' must be in (0, 2], got 2.5"),
        ("window", 4, "parameter 'window' must be >= 3 and odd, got 4"),
        ("window", 1, "parameter 'window' must be >= 3 and odd, got 1"),
        ("crop", 6, "parameter 'crop' must be a multiple of 4, got 6"),
        ("layer", "d", "parameter 'layer' must be one of ['a', 'b', 'c'], got 'd'"),
        ("mode", "slow", "parameter 'mode' must be one of ['fast', 'exact'], got 'slow'"),
        ("sigma", 0.0, "parameter 'sigma' must be > 0, got 0.0"),
        ("sizes", (), "parameter 'sizes' must not be empty"),
        ("sizes", (4, 1), "parameter 'sizes' item 1 must be >= 2, got 1"),
        ("names", ["a", "z"], "parameter 'names' item 1 must be one of ['a', 'b'], got 'z'"),
    ],
)
def test_each_kind_of_declaration_rejects_on_direct_construction(field, value, message):
    with pytest.raises(ParamError) as info:
        ToyParams(**{field: value})
    assert str(info.value) == f"ToyParams: {message}"
    assert isinstance(info.value, ValueError)
    assert (info.value.owner, info.value.name) == ("ToyParams", field)


def test_values_on_and_inside_the_bounds_pass():
    ToyParams()
    ToyParams(steps=1, fraction=0.0, exponent=2.0, window=3, crop=0, sigma=None, sizes=(2,), names=[])
    ToyParams(rate=1e-300, fraction=math.nextafter(1.0, 0.0), window=7, crop=-8, layer="c", mode="exact")
    ToyParams(free=-1e9)  # a field without a declaration takes anything


def test_nan_is_outside_every_bound():
    for field in ("rate", "fraction", "exponent", "sigma"):
        with pytest.raises(ParamError, match=f"'{field}'.*got nan"):
            ToyParams(**{field: math.nan})


def test_none_passes_only_where_the_type_allows_it():
    assert ToyParams(sigma=None).sigma is None  # float | None: None means "unset"
    with pytest.raises(TypeError, match="^ToyParams: parameter 'steps' must be >= 1, got None$"):
        ToyParams(steps=None)
    with pytest.raises(ParamError, match="'layer' must be one of"):
        ToyParams(layer=None)
    with pytest.raises(ValueError, match="^toy: parameter 'steps' must be an integer, got None$"):
        build_params(ToyParams, overrides={"steps": None}, owner="toy")


def test_replace_and_build_params_check_too():
    with pytest.raises(ParamError, match="ToyParams: parameter 'steps'"):
        dataclasses.replace(ToyParams(), steps=-3)
    with pytest.raises(ParamError) as info:
        build_params(ToyParams, overrides={"steps": "0"}, owner="toy")
    assert str(info.value) == "toy: parameter 'steps' must be >= 1, got 0"
    with pytest.raises(ParamError, match=r"^toy: parameter 'sizes' item 0 must be >= 2, got 1$"):
        build_params(ToyParams, overrides={"sizes": "1,4"}, owner="toy")
    with pytest.raises(ParamError, match=r"^toy: parameter 'window' must be >= 3 and odd, got 4$"):
        build_params(ToyParams, presets={"bad": {"window": 4}}, preset="bad", owner="toy")
    # no owner given: the class names itself
    with pytest.raises(ParamError, match=r"^ToyParams: parameter 'layer'"):
        build_params(ToyParams, overrides={"layer": "x"})
    assert build_params(ToyParams, overrides={"steps": "3", "sizes": "[2, 3]"}, owner="toy") == ToyParams(
        steps=3, sizes=(2, 3)
    )


def test_conversion_errors_use_the_same_format():
    with pytest.raises(
        ValueError, match=r"^toy: parameter 'mode' must be one of \['fast', 'exact'\], got 'slow'$"
    ):
        build_params(ToyParams, overrides={"mode": "slow"}, owner="toy")
    with pytest.raises(ValueError, match=r"^toy: parameter 'steps' must be an integer, got 'many'$"):
        build_params(ToyParams, overrides={"steps": "many"}, owner="toy")


def test_cross_field_checks_run_after_the_bounds():
    with pytest.raises(ValueError, match=r"low \(3\) must be < high \(2\)"):
        ToyRangeParams(low=3, high=2)
    with pytest.raises(ParamError, match="'high' must be >= 1"):  # the field's own bound is reported first
        ToyRangeParams(low=3, high=0)
    with pytest.raises(ValueError, match=r"^toy: low \(5\) must be < high \(4\)$"):
        build_params(ToyRangeParams, overrides={"low": 5}, owner="toy")


def test_a_plain_dataclass_is_checked_by_build_params_and_check_params():
    bad = PlainParams(steps=0)  # no Params base: construction itself does not check
    with pytest.raises(ParamError, match="^PlainParams: parameter 'steps' must be >= 1, got 0$"):
        check_params(bad)
    with pytest.raises(ParamError, match="^plain: parameter 'steps'"):
        build_params(PlainParams, overrides={"steps": 0}, owner="plain")
    with pytest.raises(TypeError):
        check_params(PlainParams)


def test_param_refuses_contradictory_or_violated_declarations():
    with pytest.raises(TypeError, match="ge or gt"):
        param(1, ge=0, gt=0)
    with pytest.raises(TypeError, match="le or lt"):
        param(1, le=2, lt=2)
    with pytest.raises(ValueError, match="default must be >= 1, got 0"):
        param(0, ge=1)
    with pytest.raises(ValueError, match="default item 0"):
        param(("x",), choices=("a",))
    assert ParamSpec.of(dataclasses.fields(ToyParams)[0]) == ParamSpec(ge=1)
    assert ParamSpec.of(dataclasses.fields(ToyParams)[-1]) is None


def test_param_error_survives_pickling():
    # jobs fail in worker processes: the exception must come back whole
    err = pickle.loads(pickle.dumps(ParamError("gatys", "max_evals", "must be >= 1, got 0")))
    assert isinstance(err, ParamError) and str(err) == "gatys: parameter 'max_evals' must be >= 1, got 0"
    assert (err.owner, err.name, err.problem) == ("gatys", "max_evals", "must be >= 1, got 0")


def test_describe_params():
    d = describe_params(ToyParams)
    assert d["steps"] == ">= 1"
    assert d["fraction"] == "in [0, 1)"
    assert d["window"] == ">= 3 and odd"
    assert d["mode"] == "one of ['fast', 'exact']"
    assert d["sizes"] == "not empty; each item >= 2"
    assert "free" not in d


# ------------------------------------------------------------------------------------ everything built in
def _all_params_classes() -> dict[type, str]:
    """Every params class of texbench with the owner name its errors carry."""
    out: dict[type, str] = {}
    for reg in (registry.synthesizers, registry.metrics):
        for name in reg.names():
            try:
                params_cls = reg.get(name).Params
            except registry.PluginError:
                continue
            # texbench's own plugins only: other tests register toy plugins of their own
            if params_cls.__module__.startswith("texbench."):
                out.setdefault(params_cls, name)
    for task in TASKS.values():
        out.setdefault(task.Params, f"task {task.name}")
    # classes outside the registry (the LPIPS calibration's training settings)
    for module in ("texbench.calibration",):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    stack = [Params]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("texbench.") and cls is not Params:
            out.setdefault(cls, "")
    return out


def _scalar_type(tp: typing.Any) -> tuple[typing.Any, bool]:
    """(the scalar type, whether the field holds a tuple or list of them), Optional unwrapped."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        tp = args[0]
    if typing.get_origin(tp) in (tuple, list):
        return typing.get_args(tp)[0], True
    return tp, False


def _outside(spec: ParamSpec, tp: typing.Any, default: typing.Any) -> list[typing.Any]:
    """Values just outside each condition of ``spec`` (one per condition)."""
    integer = tp is int
    out = []
    if spec.ge is not None:
        out.append(spec.ge - 1 if integer else math.nextafter(spec.ge, -math.inf))
    if spec.gt is not None:
        out.append(spec.gt)
    if spec.le is not None:
        out.append(spec.le + 1 if integer else math.nextafter(spec.le, math.inf))
    if spec.lt is not None:
        out.append(spec.lt)
    if spec.odd:
        out.append(default + 1)
    if spec.multiple_of is not None:
        out.append(default + 1)
    if spec.choices is not None:
        out.append(-12345 if integer else "not-a-choice")
    if tp is float and any(b is not None for b in (spec.ge, spec.gt, spec.le, spec.lt)):
        out.append(math.nan)  # outside every bound, however the bound is written
    return out


def _declared_cases():
    cases = []
    for cls, owner in _all_params_classes().items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = ParamSpec.of(f)
            if spec is None:
                continue
            tp, sequence = _scalar_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            item = default[0] if sequence and default else default
            for v in _outside(spec, tp, item):
                value = (v,) if sequence else v
                cases.append(pytest.param(cls, owner, f.name, value, id=f"{cls.__name__}.{f.name}={value!r}"))
            if sequence and spec.nonempty:
                cases.append(pytest.param(cls, owner, f.name, (), id=f"{cls.__name__}.{f.name}=()"))
    return cases


CASES = _declared_cases()


def test_every_builtin_params_class_checks_itself():
    classes = _all_params_classes()
    names = {c.__name__ for c in classes}
    assert {"GatysParams", "JohnsonSRParams", "KIDParams", "DenoiseParams", "TrainConfig"} <= names
    for cls in classes:
        assert issubclass(cls, Params), f"{cls.__name__} does not derive from texbench.params.Params"
        check_params(cls())  # the defaults (the paper's settings) pass
    assert len(CASES) >= 100, "the declarations were not found"


@pytest.mark.parametrize("cls,owner,field,value", CASES)
def test_a_value_just_outside_a_declared_bound_is_refused(cls, owner, field, value):
    with pytest.raises(ValueError, match=f"^{cls.__name__}: parameter '{field}' "):
        dataclasses.replace(cls(), **{field: value})
    if owner:
        with pytest.raises(ValueError, match=f"^{owner}: parameter '{field}' "):
            build_params(cls, overrides={field: value}, owner=owner)
