"""Where jobs run: in this process, in a process pool, or on a Ray cluster.

Workers only compute: each returns a plain result dict and the driver writes the store, so there is
one writer and no locking beyond SQLite's own. Nothing here schedules beyond what
``concurrent.futures`` and Ray already do.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["EXECUTORS", "execute_job", "make_executor"]

_SYNTH_CACHE: dict[str, Any] = {}
_PLUGINS_LOADED: set[str] = set()


def _load_plugins(plugin_files: Sequence[str]) -> None:
    from texbench.registry import load_plugin_file

    for f in plugin_files:
        if f not in _PLUGINS_LOADED:
            load_plugin_file(f)
            _PLUGINS_LOADED.add(f)


def _synthesizer(name: str, preset: str | None, params: dict):
    from texbench import registry

    key = json.dumps([name, preset, params], sort_keys=True, default=str)
    if key not in _SYNTH_CACHE:
        _SYNTH_CACHE[key] = registry.synthesizers.get(name).from_config(preset, params)
    return _SYNTH_CACHE[key]


def check_output(out: Any, size: tuple[int, int], name: str):
    import torch

    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != (3, *size):
        raise ValueError(f"{name} returned shape {tuple(out.shape)}, expected (3, {size[0]}, {size[1]})")
    out = out.detach().float().cpu()
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise ValueError(f"{name} returned {bad} non-finite values (NaN or inf)")
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} returned values in [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return out.clamp(0, 1)


def execute_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job and return its result; never raises for a method's failure.

    Payload keys: ``method``, ``preset``, ``params``, ``input`` (TaskInput), ``seed``, ``device``,
    ``plugin_files``. Result keys: ``status``, ``error``, ``seconds``, ``prepare_seconds``, ``image``
    (uint8 HxWx3), ``output_hash``, ``info``, ``provenance``.
    """
    import torch

    from texbench.env import resolve_device
    from texbench.imageio import image_hash, to_uint8

    name = payload["method"]
    result: dict[str, Any] = {"status": "failed", "error": None, "seconds": None, "prepare_seconds": None,
                              "image": None, "output_hash": None, "info": {}, "provenance": {}}
    try:
        _load_plugins(payload.get("plugin_files", ()))
        device = resolve_device(payload["device"])
        synth = _synthesizer(name, payload["preset"], payload["params"])
        inp = payload["input"]
        t0 = time.perf_counter()
        synth.prepare(inp, seed=payload["seed"], device=device)
        t1 = time.perf_counter()
        with torch.inference_mode(False):
            out = synth.run(inp, seed=payload["seed"], device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        info = synth.pop_info()
        out = check_output(out, tuple(inp.size), name)
        img = to_uint8(out)
        result.update(status="ok", seconds=t2 - t1, prepare_seconds=t1 - t0, image=img,
                      output_hash=image_hash(img), info=_jsonable(info), provenance=synth.provenance())
    except Exception as exc:  # a crashing plugin is recorded, not fatal
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        result["error"] = f"{type(exc).__name__}: {exc}{where}"
    return result


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(info)


class LocalExecutor:
    """In this process, one job after another (the default)."""

    name = "local"

    def __init__(self, **_: Any) -> None:
        pass

    def map(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, p in enumerate(payloads):
            yield i, execute_job(p)

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """A pool of worker processes (``concurrent.futures``), one torch thread each by default."""

    name = "process"

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1, **_: Any) -> None:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                        mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads_per_worker,))

    def map(self, payloads):
        from concurrent.futures import as_completed

        futures = {self.pool.submit(execute_job, p): i for i, p in enumerate(payloads)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                yield i, fut.result()
            except Exception as exc:  # a worker killed by the OS, for example
                yield i, {"status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}", "info": {},
                          "provenance": {}, "image": None, "output_hash": None, "seconds": None,
                          "prepare_seconds": None}

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayExecutor:
    """An existing Ray cluster (``--ray-address``, or a local Ray started by ``ray.init()``)."""

    name = "ray"

    def __init__(self, address: str | None = None, **_: Any) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install 'texbench[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
        self.remote = ray.remote(execute_job)

    def map(self, payloads):
        refs = {self.remote.remote(p): i for i, p in enumerate(payloads)}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield refs[ref], self.ray.get(ref)
                except Exception as exc:
                    yield refs[ref], {"status": "failed", "error": f"ray task failed: {exc}", "info": {},
                                      "provenance": {}, "image": None, "output_hash": None, "seconds": None,
                                      "prepare_seconds": None}

    def close(self) -> None:
        pass


EXECUTORS = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def make_executor(name: str, **kwargs: Any):
    try:
        return EXECUTORS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}") from None
