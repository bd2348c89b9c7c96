"""What a worker measures around one job besides its output: peak memory, and the oracle trajectory of
the intermediate outputs an iterative method reports.

* :class:`PeakMemory`: the high-water mark of the process's resident set size (RSS) during the job and,
  on a CUDA device, the most memory torch allocated on it. ``ru_maxrss`` (``getrusage``) is a high-water
  mark over the whole life of a process, and workers run many jobs, so on Linux the mark is reset at the
  start of each job (writing ``5`` to ``/proc/self/clear_refs``, Linux ≥ 4.0, see ``proc(5)``) and read
  back from ``VmHWM`` in ``/proc/self/status`` at its end: the peak of exactly this job. Where the reset is
  not available, the job's peak is known only when the job raised the lifetime mark (then the new mark
  *is* the job's peak); otherwise it is recorded as unknown (None), never as a borrowed number. The RSS
  is the whole process's: with the ``local`` executor that includes the driver (the suite's input
  images, the store), with the ``process`` executor one worker (Python, torch, the method).
* :class:`IterateScorer`: the sink behind :meth:`texbench.base.Synthesizer.report_iterate` for tasks that
  have a reference the method never sees (``Task.oracle_ref``: the clean image of restoration tasks).
  Each reported image is checked like an output, quantised to uint8 like the saved PNG, and scored with
  the task's primary metric against the reference quantised the same way, so the last point of a curve
  equals the score of the final output. The score goes to the report only, never to the method; the
  seconds spent scoring are taken off the job's time.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["IterateScorer", "PeakMemory", "rss_high_water_mark"]

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def _maxrss_bytes() -> int:
    """``ru_maxrss`` of this process in bytes (the kernel reports KiB on Linux, bytes on macOS)."""
    v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(v) if sys.platform == "darwin" else int(v) * 1024


def rss_high_water_mark() -> int | None:
    """``VmHWM`` of this process in bytes (Linux), else None."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_rss_high_water_mark() -> bool:
    """Reset the process's RSS high-water mark to its current RSS; False where the OS does not allow it."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return rss_high_water_mark() is not None
    except OSError:
        return False


class PeakMemory:
    """Peak memory of one job: ``start()`` before it, ``stop()`` after it.

    ``stop()`` returns ``{"peak_rss_bytes": int | None, "peak_cuda_bytes": int | None}``.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset = False
        self._before = 0

    def start(self) -> None:
        self._reset = _reset_rss_high_water_mark()
        self._before = _maxrss_bytes()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> dict[str, int | None]:
        if self._reset:
            rss = rss_high_water_mark()
        else:  # the lifetime mark: the job's own peak only if the job raised it
            after = _maxrss_bytes()
            rss = after if after > self._before else None
        cuda = int(torch.cuda.max_memory_allocated(self.device)) if self.device.type == "cuda" else None
        return {"peak_rss_bytes": rss, "peak_cuda_bytes": cuda}


class IterateScorer:
    """Scores the iterates a method reports against a reference it never sees (see the module docstring).

    Args:
        spec: ``{"metric": name, "params": {...}, "ref": role, "reference": (3, H, W) tensor}`` (what the
            runner puts in a job's payload as ``trajectory``).
        size: the output size ``(H, W)`` every iterate must have.
        method: the method's name, for error messages.
    """

    def __init__(self, spec: Mapping[str, Any], size: tuple[int, int], method: str) -> None:
        from texbench import registry

        cls = registry.metrics.get(spec["metric"])
        self.metric = cls.from_config(spec.get("params") or {}, device="cpu")
        self.name, self.ref_role = spec["metric"], spec["ref"]
        self.higher_is_better = bool(cls.higher_is_better)
        self.reference = _quantised(spec["reference"].detach().float().cpu())[None]
        self.size, self.method = size, method
        self.iterations: list[int] = []
        self.values: list[float] = []
        self.seconds = 0.0

    def __call__(self, iteration: int, image: torch.Tensor) -> None:
        t0 = time.perf_counter()
        try:
            if self.iterations and iteration <= self.iterations[-1]:
                raise ValueError(f"{self.method}: report_iterate: iteration must increase, got {iteration} "
                                 f"after {self.iterations[-1]}")
            x = _quantised(self._checked(iteration, image))[None]
            with torch.no_grad():
                value = float(self.metric(x, self.reference)[0])
            self.iterations.append(iteration)
            self.values.append(value)
        finally:
            self.seconds += time.perf_counter() - t0

    def _checked(self, iteration: int, image: Any) -> torch.Tensor:
        """The iterate as a CPU float tensor in [0, 1], checked like a job's output."""
        where = f"{self.method}: report_iterate (iteration {iteration})"
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{where}: image must be a torch.Tensor, got {type(image).__name__}")
        if tuple(image.shape) != (3, *self.size):
            raise ValueError(f"{where}: image has shape {tuple(image.shape)}, expected (3, {self.size[0]}, "
                             f"{self.size[1]})")
        x = image.detach().float().cpu()
        if not torch.isfinite(x).all() or float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3:
            raise ValueError(f"{where}: image must be finite and within [0, 1]")
        return x.clamp(0, 1)

    def result(self) -> dict[str, Any] | None:
        """The curve as stored (None when the method reported nothing)."""
        if not self.iterations:
            return None
        return {"metric": self.name, "ref": self.ref_role, "higher_is_better": self.higher_is_better,
                "iterations": list(self.iterations), "values": list(self.values), "seconds": self.seconds}


def _quantised(t: torch.Tensor) -> torch.Tensor:
    """``t`` as the saved PNG holds it: rounded to uint8, back to float in [0, 1]."""
    from texbench.imageio import to_uint8

    return torch.from_numpy(to_uint8(t)).permute(2, 0, 1).float() / 255.0
