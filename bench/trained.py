"""A cache of weights that methods train themselves (Texture Networks, Johnson et al.).

A method that learns per input (a generator per texture, a transformation network per style) trains in
``Synthesizer.prepare`` and keeps the result here, keyed by a hash of everything the training depends
on: method name and version, parameters, the hashes of the training inputs and the training seed. Jobs
that share a key (the same texture under several seeds, a second run of the suite) load the weights
instead of training again; ``--rerun`` of a suite does not clear this cache, ``texbench trained clear``
does.

Files: ``$TEXBENCH_HOME/trained/<key>.pt`` (or ``$TEXBENCH_TRAINED/<key>.pt``) (a ``state_dict`` loaded with ``weights_only=True``) and
``<key>.json`` (what was trained, on what, how long it took). Writes are atomic (temporary file +
rename) and concurrent workers asking for the same key wait on a file lock, so one trains and the
others load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from texbench.files import atomic_torch_save, atomic_write_bytes

__all__ = [
    "TrainedWeights",
    "calibrate_batch_norm",
    "load_or_train",
    "subsample_curve",
    "trained_dir",
    "training_key",
]


def trained_dir() -> Path:
    """``$TEXBENCH_TRAINED``, else ``$TEXBENCH_HOME/trained`` (default ``~/.cache/texbench/trained``)."""
    if os.environ.get("TEXBENCH_TRAINED"):
        return Path(os.environ["TEXBENCH_TRAINED"])
    from texbench.env import texbench_home

    return texbench_home() / "trained"


def subsample_curve(values: list[float], n: int) -> tuple[list[int], list[float]]:
    """At most ``n`` (≥ 2) evenly spaced points of a training curve, first and last included, for a job's
    record: ``(1-based iterations, values)``.

    >>> subsample_curve([5.0, 4.0, 3.0, 2.0, 1.0], 3)
    ([1, 3, 5], [5.0, 3.0, 1.0])
    """
    if len(values) <= n:
        return list(range(1, len(values) + 1)), list(values)
    idx = sorted({round(i * (len(values) - 1) / (n - 1)) for i in range(n)})
    return [i + 1 for i in idx], [values[i] for i in idx]


def calibrate_batch_norm(net: torch.nn.Module, draw: Callable[[], Any], batches: int) -> None:
    """Replace the running batch-norm statistics of a trained ``net`` by their exact average over
    ``batches`` fresh batches (``net(draw())`` each), so inference normalises with the statistics of the
    finished network rather than a moving average over its training (both Texture Networks methods).

    The momenta are restored afterwards; ``net`` is left in training mode. ``batches == 0`` does nothing.
    """
    if batches == 0:
        return
    norms = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the plain mean over the calibration batches
    net.train()
    for _ in range(batches):
        net(draw())
    for m, mom in zip(norms, saved, strict=True):
        m.momentum = mom


def training_key(fields: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``fields`` (method, version, params, input hashes, seed)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class TrainedWeights:
    """What :func:`load_or_train` returns: the state dict, whether it came from the cache, the record."""

    def __init__(self, state: dict[str, torch.Tensor], *, cached: bool, record: dict[str, Any], key: str):
        self.state = state
        self.cached = cached
        self.record = record
        self.key = key

    def provenance(self) -> str:
        return f"trained:{self.key[:16]}"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent workers may both train, both write atomically
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_or_train(
    fields: Mapping[str, Any],
    train: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
    *,
    root: str | os.PathLike | None = None,
) -> TrainedWeights:
    """Load the weights trained for ``fields``, or train them now and cache them.

    Args:
        fields: everything the training depends on (JSON-serialisable): method name, version, params,
            hashes of the training inputs, training seed.
        train: called only on a cache miss; returns ``(state_dict, info)`` where ``info`` is a
            JSON-serialisable summary (final loss, iterations) kept in the record.
        root: cache folder (default :func:`trained_dir`).

    Returns:
        :class:`TrainedWeights`; ``record["train_seconds"]`` is the time the training took when it ran.
    """
    folder = Path(root) if root is not None else trained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = training_key(fields)
    weights, meta = folder / f"{key}.pt", folder / f"{key}.json"
    with _lock(folder / f"{key}.lock"):
        if weights.exists() and meta.exists():
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                record = json.loads(meta.read_text())
                return TrainedWeights(state, cached=True, record=record, key=key)
            except Exception:  # noqa: BLE001 - a damaged cache entry is retrained, never trusted
                pass
        t0 = time.perf_counter()
        state, info = train()
        seconds = time.perf_counter() - t0
        state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        record = {"fields": dict(fields), "info": info, "train_seconds": seconds,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_torch_save(state, weights)
        atomic_write_bytes(meta, json.dumps(record, indent=1, default=str).encode())
        return TrainedWeights(state, cached=False, record=record, key=key)
