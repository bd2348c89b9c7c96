"""Plugin registry: built-ins and third-party methods, metrics and datasets, registered the same way.

Sources, in the order they are consulted:

1. entry points in the groups ``texbench.synthesizers``, ``texbench.metrics``, ``texbench.datasets``
   (texbench's own built-ins are declared there too, so this core never imports them by name);
2. classes registered at run time with :func:`register` (for example by a ``--plugin file.py``).

Entry points are only *listed* at start-up; a class is imported the first time it is looked up, and a
plugin that fails to import is reported by name (:class:`PluginError`, ``texbench list``), never fatal
for the others.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "GROUPS",
    "PluginError",
    "Registry",
    "datasets",
    "load_plugin_file",
    "metrics",
    "register",
    "synthesizers",
]

GROUPS = ("synthesizers", "metrics", "datasets")


class PluginError(RuntimeError):
    """A plugin that is unknown or failed to load."""


@dataclass
class _Entry:
    name: str
    origin: str
    loader: Callable[[], Any] | None = None
    obj: Any = None
    error: str | None = None
    #: origin of the registration this one replaced under the same name (a plugin shadowing another)
    shadows: str | None = None


@dataclass
class Registry:
    """Name -> class for one plugin group."""

    group: str
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _scanned: bool = False

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for ep in metadata.entry_points(group=f"texbench.{self.group}"):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else ep.value
            if ep.name in self._entries:  # a run-time registration wins over an entry point of the same name
                if self._entries[ep.name].shadows is None:
                    self._entries[ep.name].shadows = origin
                continue
            self._entries[ep.name] = _Entry(ep.name, origin, loader=ep.load)

    def register(self, obj: Any, *, name: str | None = None, origin: str = "runtime") -> Any:
        key = name or getattr(obj, "name", None)
        if not key:
            raise ValueError(f"cannot register {obj!r}: it has no `name`")
        old = self._entries.get(key)
        # registering again from the same place (a plugin file loaded twice) shadows nothing
        shadows = old.shadows if old is not None and old.origin == origin else (old.origin if old else None)
        self._entries[key] = _Entry(key, origin, obj=obj, shadows=shadows)
        return obj

    def shadowed(self, name: str) -> str | None:
        """If ``name``'s registration replaced another one of the same name, a sentence saying whose
        (a suite must then say ``replaces = true`` to use it); else None."""
        self._scan()
        entry = self._entries.get(name)
        if entry is None or entry.shadows is None:
            return None
        return (f"{self.group[:-1]} {name!r} from {entry.origin} shadows the one of the same name from "
                f"{entry.shadows}")

    def names(self, pattern: str = "*") -> list[str]:
        self._scan()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def origin(self, name: str) -> str:
        self._scan()
        return self._entries[name].origin

    def get(self, name: str) -> Any:
        self._scan()
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "(none)"
            raise PluginError(f"unknown {self.group[:-1]} {name!r}; installed: {known}")
        if entry.obj is None and entry.error is None:
            try:
                obj = entry.loader()  # type: ignore[misc]
                if getattr(obj, "name", name) != name:
                    raise PluginError(f"entry point {name!r} loads {obj!r} whose name is {obj.name!r}")
                entry.obj = obj
            except (Exception, SystemExit) as exc:  # a broken third-party plugin must not break the others
                entry.error = f"{type(exc).__name__}: {exc}"
        if entry.error is not None:
            raise PluginError(f"{self.group[:-1]} {name!r} from {entry.origin} failed to load: {entry.error}")
        return entry.obj

    def load_all(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Import every entry; returns (loaded name -> class, broken name -> error)."""
        ok, broken = {}, {}
        for n in self.names():
            try:
                ok[n] = self.get(n)
            except PluginError as exc:
                broken[n] = str(exc)
        return ok, broken


synthesizers = Registry("synthesizers")
metrics = Registry("metrics")
datasets = Registry("datasets")
_BY_GROUP = {"synthesizers": synthesizers, "metrics": metrics, "datasets": datasets}


def register(obj: Any = None, *, name: str | None = None) -> Any:
    """Class decorator registering a Synthesizer, Metric or Dataset subclass by its ``name``.

    >>> from texbench.base import Synthesizer
    >>> @register
    ... class Copy(Synthesizer):
    ...     name = "doctest-copy"
    ...     tasks = ("denoise",)
    ...     def run(self, task_input, *, seed, device):
    ...         return task_input.image
    >>> synthesizers.get("doctest-copy") is Copy
    True
    """

    def deco(cls: Any) -> Any:
        from texbench.base import Dataset, Metric, Synthesizer

        for base, reg in ((Synthesizer, synthesizers), (Metric, metrics), (Dataset, datasets)):
            if isinstance(cls, type) and issubclass(cls, base):
                return reg.register(cls, name=name, origin=getattr(cls, "__module__", "runtime"))
        raise TypeError(f"{cls!r} is not a Synthesizer, Metric or Dataset subclass")

    return deco(obj) if obj is not None else deco


def load_plugin_file(path: str | Path) -> list[str]:
    """Import a local Python file and register the plugin classes it defines.

    Classes decorated with :func:`register` are registered by the decorator; any other concrete
    Synthesizer/Metric/Dataset subclass defined in the file with a ``name`` is registered too.

    Returns:
        The names registered from this file.

    Raises:
        PluginError: the file does not exist or raises on import (the message names the file).
    """
    import inspect

    from texbench.base import Dataset, Metric, Synthesizer

    p = Path(path).resolve()
    if not p.is_file():
        raise PluginError(f"plugin file {p} does not exist")
    mod_name = f"texbench_plugin_{abs(hash(str(p))):x}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import plugin file {p}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # a plugin must not end the program that loads it
        sys.modules.pop(mod_name, None)
        raise PluginError(f"plugin file {p} failed to import: it called sys.exit({exc.code!r})") from None
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise PluginError(f"plugin file {p} failed to import: {type(exc).__name__}: {exc}") from exc
    names = []
    for _, obj in vars(module).items():
        if not (isinstance(obj, type) and obj.__module__ == mod_name and not inspect.isabstract(obj)):
            continue
        for base, reg in ((Synthesizer, synthesizers), (Metric, metrics), (Dataset, datasets)):
            if issubclass(obj, base) and obj is not base and getattr(obj, "name", None):
                reg.register(obj, origin=str(p))
                names.append(obj.name)  # type: ignore[attr-defined]
    return names


def registry(group: str) -> Registry:
    try:
        return _BY_GROUP[group]
    except KeyError:
        raise ValueError(f"unknown plugin group {group!r}; groups: {', '.join(GROUPS)}") from None
