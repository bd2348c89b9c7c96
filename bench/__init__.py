"""texbench: a benchmark suite for image-synthesis methods.

Importing ``texbench`` is cheap: networks, methods and metrics load lazily through the registry
(:mod:`texbench.registry`).
"""

from __future__ import annotations

__all__ = ["__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("texbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
