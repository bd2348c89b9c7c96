"""Every concrete Synthesizer and Metric of the built-in packages is registered, or says why it is not.

texbench registers its own plugins through the entry points in ``pyproject.toml``, the same way a
third-party package does. A class that is written, tested and then never listed there escapes the
registry's contract test silently; so each built-in plugin class is either registered under its
``name`` or carries ``registered = "<reason>"`` (:attr:`texbench.base.Synthesizer.registered`).

A class without a ``name`` (a shared base such as the copying measures' ``_Copying``) or with abstract
methods is not a plugin and is not required to be registered.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path

import pytest

from texbench.base import Metric, Synthesizer

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"texbench.synthesizers": Synthesizer, "texbench.metrics": Metric}


def _entry_points(group: str) -> dict[type, str]:
    """``{class: entry-point name}`` of pyproject's group (the source of truth, not installed metadata)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    out: dict[type, str] = {}
    for key, target in cfg["project"]["entry-points"][group].items():
        module, _, attr = target.partition(":")
        out[getattr(importlib.import_module(module), attr)] = key
    return out


def _plugin_classes(package: str, base: type) -> list[type]:
    """Concrete subclasses of ``base`` defined in the modules of ``package`` (each module imported)."""
    pkg = importlib.import_module(package)
    found = []
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, base)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and getattr(cls, "name", None)
            ):
                found.append(cls)
    return found


@pytest.mark.parametrize("package", sorted(FAMILIES))
def test_every_builtin_plugin_is_registered_or_marked(package):
    base = FAMILIES[package]
    registered = _entry_points(package)
    classes = _plugin_classes(package, base)
    assert classes, f"the walk found no {base.__name__} in {package}"
    problems = []
    for cls in classes:
        where = f"{cls.__module__}.{cls.__qualname__}"
        mark = cls.registered
        if cls in registered:
            if mark is not True:
                problems.append(f"{where} is registered as {registered[cls]!r} but marked registered={mark!r}")
            elif registered[cls] != cls.name:
                problems.append(f"{where} is registered as {registered[cls]!r}, its name is {cls.name!r}")
        elif not (isinstance(mark, str) and mark.strip()):
            problems.append(
                f"{where} ({cls.name!r}) is not registered in pyproject's {package!r} entry points and does "
                "not say why (registered = '<reason>')"
            )
    assert not problems, "\n".join(problems)


def test_entry_points_name_only_builtin_classes_of_their_family():
    for package, base in FAMILIES.items():
        for cls, key in _entry_points(package).items():
            assert issubclass(cls, base) and cls.__module__.startswith(package + "."), (key, cls)


def test_johnson_sr_is_registered():
    # registered once its preset 'cpu' beat bicubic on Set5 x4 in LPIPS (README, "Measured here")
    from texbench.synthesizers.johnson import JohnsonSR

    assert _entry_points("texbench.synthesizers").get(JohnsonSR) == "johnson-sr"
    assert JohnsonSR.registered is True and "cpu" in JohnsonSR.presets
