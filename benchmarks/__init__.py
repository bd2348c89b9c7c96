"""Speed benchmarks: ``python -m benchmarks NAME`` times texbench and its reference in one run.

Run from the checkout root (this folder is not part of the installed package: the references it times
against, pytorch-fid and lpips, are test extras: ``pip install -e '.[test]'``). Each benchmark is a
module ``benchmarks.<name>`` with ``main(argv: list[str] | None) -> None`` that prints both timings and
their ratio. ``python -m benchmarks`` lists them.
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
        print("usage: python -m benchmarks NAME [ARGS...]\n\nbenchmarks: " + ", ".join(names))
        return
    name = argv[0].replace("-", "_")
    if name not in names:
        raise SystemExit(f"unknown benchmark {argv[0]!r}; available: {', '.join(names)}")
    importlib.import_module(f"benchmarks.{name}").main(argv[1:])
