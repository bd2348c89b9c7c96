"""Speed benchmarks: ``python -m texbench.perf NAME`` times texbench and its reference in one run.

Each benchmark is a module ``texbench.perf.<name>`` with ``main(argv: list[str] | None) -> None`` that
prints both timings and their ratio. ``python -m texbench.perf`` lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

__all__ = ["available", "main"]


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m texbench.perf NAME [ARGS...]\n\nbenchmarks: " + ", ".join(names))
        return
    name = argv[0].replace("-", "_")
    if name not in names:
        raise SystemExit(f"unknown benchmark {argv[0]!r}; available: {', '.join(names)}")
    importlib.import_module(f"texbench.perf.{name}").main(argv[1:])
