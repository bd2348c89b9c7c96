"""This machine's job timings, kept across runs so that a suite's cost can be estimated before it runs.

Every job that finishes well appends one JSON line to ``$TEXBENCH_TIMINGS`` (default
``$TEXBENCH_HOME/timings.jsonl``): what ran (task, method, its version and a digest of its resolved
parameters), where (host name, device), on how many output pixels, and how long it took (``seconds``
of the method's run; ``prepare_seconds`` of training or loading, 0 when a cache served it). Lines are
appended with one ``write`` of less than 4 KiB on a file opened for appending, so runs that write at the
same time do not interleave within a line; a line that cannot be parsed is skipped on reading. Writing
is best effort: a read-only cache never fails a run.

:func:`estimate` prices a planned job by the median seconds per pixel of the stored jobs of the same
method, version, parameters, task, host and device, times the planned job's pixels (run time grows
about linearly with pixels for every method here); when the planned pixels are unknown, by their
median seconds per job.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["TimingKey", "estimate", "load_timings", "params_digest", "record_timing", "timings_path"]

#: (host, device kind, task, method, version, parameter digest)
TimingKey = tuple[str, str, str, str, str, str]


def timings_path() -> Path:
    """``$TEXBENCH_TIMINGS``, else ``$TEXBENCH_HOME/timings.jsonl``."""
    if os.environ.get("TEXBENCH_TIMINGS"):
        return Path(os.environ["TEXBENCH_TIMINGS"])
    from texbench.env import texbench_home

    return texbench_home() / "timings.jsonl"


def params_digest(params: Mapping[str, Any]) -> str:
    """A short digest of a method's resolved parameters (JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def device_kind(device: str) -> str:
    """``cpu``, ``cuda``, ``mps``: the index of a GPU does not change its speed class here."""
    return str(device).split(":")[0]


def key_of(task: str, method: str, version: str, params: Mapping[str, Any], device: str,
           host: str | None = None) -> TimingKey:
    return (host or platform.node(), device_kind(device), task, method, str(version), params_digest(params))


def record_timing(*, task: str, method: str, version: str, params: Mapping[str, Any], device: str,
                  pixels: int, seconds: float, prepare_seconds: float | None = None) -> None:
    """Append one finished job's timing (best effort: an unwritable file is reported once on stderr)."""
    host, kind, task, method, version, digest = key_of(task, method, version, params, device)
    line = json.dumps({"host": host, "device": kind, "task": task, "method": method, "version": version,
                       "params": digest, "pixels": int(pixels), "seconds": float(seconds),
                       "prepare_seconds": float(prepare_seconds or 0.0), "time": round(time.time())}) + "\n"
    path = timings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        if not getattr(record_timing, "_warned", False):
            print(f"warning: job timings not kept ({path}: {exc}); `texbench run --plan` cannot use them",
                  file=sys.stderr)
            record_timing._warned = True  # type: ignore[attr-defined]


def load_timings(path: Path | None = None) -> dict[TimingKey, list[tuple[int, float]]]:
    """Stored timings by key: a list of (pixels, seconds) per key; an absent file gives ``{}``."""
    path = path or timings_path()
    out: dict[TimingKey, list[tuple[int, float]]] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            r = json.loads(line)
            key = (r["host"], r["device"], r["task"], r["method"], r["version"], r["params"])
            out.setdefault(key, []).append((int(r["pixels"]), float(r["seconds"])))
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line
    return out


def estimate(samples: Iterable[tuple[int, float]], pixels: int | None) -> float | None:
    """Seconds for one job of ``pixels`` output pixels from stored ``(pixels, seconds)`` samples of the same
    key: median seconds per pixel × pixels, or the median seconds when ``pixels`` is unknown; ``None``
    without samples.

    >>> estimate([(100, 1.0), (400, 4.0), (100, 3.0)], 200)
    2.0
    >>> estimate([(100, 1.0), (100, 3.0)], None)
    2.0
    """
    samples = [(p, s) for p, s in samples if p > 0 and s >= 0]
    if not samples:
        return None
    if pixels is None:
        return float(statistics.median(s for _, s in samples))
    return float(statistics.median(s / p for p, s in samples)) * pixels
