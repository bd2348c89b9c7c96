"""The environment recorded with every run: versions, device, threads, code revision."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["environment", "resolve_device", "texbench_home"]


def texbench_home() -> Path:
    """``$TEXBENCH_HOME`` (default ``~/.cache/texbench``): weights, trained networks, datasets, feature caches."""
    return Path(os.environ.get("TEXBENCH_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "texbench"))


def resolve_device(name: str):
    """``"auto"`` -> CUDA if available, else MPS, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (use device = 'cpu' or 'auto')")
    return dev


def _git_revision() -> str:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(device: Any = "cpu") -> dict[str, Any]:
    import numpy
    import torch

    import texbench

    dev = str(device)
    env = {
        "texbench": texbench.__version__,
        "git": _git_revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": dev,
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    if dev.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(dev))
        env["cuda"] = torch.version.cuda
    return env
