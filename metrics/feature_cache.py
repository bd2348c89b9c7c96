"""A feature cache keyed by image identity, network provenance and layer: in memory and on disk.

A benchmark run scores many outputs against few references (every method against the same exemplars,
FID and KID on the same crops), so features are computed once per (image, network, layer,
preprocessing) and reused.

Keys are strings built by the caller, e.g. ``fid-inception@sha256:7ff4a85c3a6378f0/pytorch-fid/2048/<image
hash>``. Values are float32 numpy arrays. On disk each value is one ``.npy`` file under
``$TEXBENCH_HOME/features/`` (default ``~/.cache/texbench/features``), written atomically (temporary file
+ rename), so concurrent workers and ``kill -9`` never leave a half-written entry; an unreadable file is
treated as a miss and rewritten. Features of randomly initialised networks are kept in memory only.

Image identity (:func:`image_key`): an image that is exactly representable in 8 bits (what the runner
saves and reloads) is identified by :func:`texbench.imageio.image_hash`, the project-wide image
identity; any other float image by the sha256 of its float32 pixels, so two different float images can
never share cached features.

Workers of a distributed scoring pass read the disk cache but do not write it: within
:func:`deferred_writes` new entries are kept in memory and collected, the worker returns them, and the
driver alone puts them on disk (one writer, as for the results store).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from texbench.imageio import atomic_write_bytes, image_hash

__all__ = ["FeatureCache", "default_cache", "deferred_writes", "features_dir", "image_key"]


def features_dir() -> Path:
    """``$TEXBENCH_HOME/features`` (default ``~/.cache/texbench/features``)."""
    from texbench.env import texbench_home

    return texbench_home() / "features"


def image_key(image: torch.Tensor) -> str:
    """Identity of a float ``(3, H, W)`` image in [0, 1] (see the module docstring).

    >>> image_key(torch.zeros(3, 2, 2)) == image_key(torch.zeros(3, 2, 2))
    True
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    x = image.detach().to("cpu", torch.float32)
    u8 = x.double().clamp(0, 1).mul(255).round()
    if torch.equal(u8.div(255).float(), x):
        return image_hash(image)
    h = hashlib.sha256(b"f32" + repr(tuple(x.shape)).encode())
    h.update(x.contiguous().numpy().tobytes())
    return "f32-" + h.hexdigest()


_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


class FeatureCache:
    """Feature arrays by key: a bounded in-memory LRU in front of an optional on-disk store.

    Args:
        root: on-disk directory; ``None`` for :func:`features_dir`.
        disk: use the on-disk store at all.
        max_bytes: memory budget of the in-memory LRU.
    """

    def __init__(
        self, root: str | os.PathLike | None = None, *, disk: bool = True, max_bytes: int = 1 << 30
    ) -> None:
        self.root = Path(root) if root is not None else features_dir()
        self.disk = disk
        self.max_bytes = int(max_bytes)
        self._mem: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        #: while not None, disk writes are collected here instead (see :func:`deferred_writes`)
        self.deferred: dict[str, np.ndarray] | None = None

    def _path(self, key: str) -> Path:
        parts = [_SAFE.sub("_", p) for p in key.split("/")]
        leaf = parts[-1]
        return self.root.joinpath(*parts[:-1], leaf[:2], leaf + ".npy")

    def get(self, key: str, *, persistent: bool = True) -> np.ndarray | None:
        """The cached array, or ``None``."""
        with self._lock:
            arr = self._mem.get(key)
            if arr is not None:
                self._mem.move_to_end(key)
                self.hits += 1
                return arr
        if self.disk and persistent:
            p = self._path(key)
            if p.is_file():
                try:
                    arr = np.load(p, allow_pickle=False)
                except (OSError, ValueError, EOFError):
                    arr = None  # unreadable: recompute and overwrite
                if arr is not None:
                    self._remember(key, arr)
                    with self._lock:
                        self.hits += 1
                    return arr
        with self._lock:
            self.misses += 1
        return None

    def put(self, key: str, arr: np.ndarray, *, persistent: bool = True) -> None:
        """Store ``arr`` (made float32, read-only); on disk too if ``persistent``."""
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        arr.setflags(write=False)
        self._remember(key, arr)
        if self.disk and persistent and self.deferred is not None:
            self.deferred[key] = arr
        elif self.disk and persistent:
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            try:
                atomic_write_bytes(self._path(key), buf.getvalue())
            except OSError:
                pass  # a read-only or full disk only costs recomputation

    def _remember(self, key: str, arr: np.ndarray) -> None:
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._mem[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and len(self._mem) > 1:
                _, dropped = self._mem.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()
            self._bytes = 0


_DEFAULT: dict[str, FeatureCache] = {}


def default_cache() -> FeatureCache:
    """The process-wide cache for the current ``$TEXBENCH_HOME`` (``TEXBENCH_FEATURE_CACHE=0`` disables disk)."""
    root = features_dir()
    disk = os.environ.get("TEXBENCH_FEATURE_CACHE", "1") != "0"
    key = f"{root}|{disk}"
    if key not in _DEFAULT:
        _DEFAULT[key] = FeatureCache(root, disk=disk)
    return _DEFAULT[key]


@contextlib.contextmanager
def deferred_writes(cache: FeatureCache | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Within the block, ``cache`` (default :func:`default_cache`) keeps new entries in memory only and
    collects those it would have written to disk in the yielded dict, for another process to
    :meth:`~FeatureCache.put`; reads still use the disk.

    >>> c = FeatureCache(disk=True, root="/nonexistent")
    >>> with deferred_writes(c) as new:
    ...     c.put("net/x", np.zeros(2))
    >>> sorted(new), c.get("net/x").tolist()
    (['net/x'], [0.0, 0.0])
    """
    cache = default_cache() if cache is None else cache
    before, cache.deferred = cache.deferred, {}
    try:
        yield cache.deferred
    finally:
        cache.deferred = before
