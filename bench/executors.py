"""Where jobs run: in this process, in isolated worker processes, or on a Ray cluster.

Workers only compute: each returns a plain result dict and the driver writes the store, so there is
one writer and no locking beyond SQLite's own.

What each executor isolates (a method's failure is always one failed job, never the end of the run):

* ``local``: exceptions, ``SystemExit`` and bad outputs. Not ``os._exit``, a crash of the interpreter
  or a hang: those take the run with them (a job timeout switches to one isolated worker process).
* ``process``: also a worker that dies (``os._exit``, a segfault, the OOM killer) and, with a timeout,
  a job that runs too long: that one job is recorded as failed, its worker replaced, the others go on.
* ``ray``: a task whose worker dies fails alone (Ray's own isolation); job timeouts are not supported.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["EXECUTORS", "SYNTHESIZERS", "SynthesizerCache", "check_output", "execute_job", "failed_result",
           "make_executor"]

_PLUGINS_LOADED: set[str] = set()


def _load_plugins(plugin_files: Sequence[str]) -> None:
    from texbench.registry import load_plugin_file

    for f in plugin_files:
        if f not in _PLUGINS_LOADED:
            load_plugin_file(f)
            _PLUGINS_LOADED.add(f)


class SynthesizerCache:
    """The synthesizers a worker built, kept by (method, preset, params) for its next jobs: a small LRU.

    Building a method can be costly (networks to load, a trained generator held by the instance), and the
    runner hands out jobs grouped by method, so the few most recently used instances are worth keeping;
    the oldest is dropped beyond ``maxsize``, so a long suite of many methods or parameter sets does not
    keep every one of them alive.
    """

    def __init__(self, maxsize: int = 4) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, preset: str | None, params: Mapping[str, Any]) -> Any:
        """The synthesizer ``name`` built with ``preset`` and ``params`` (built now if not kept)."""
        from texbench import registry

        key = json.dumps([name, preset, params], sort_keys=True, default=str)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        synth = registry.synthesizers.get(name).from_config(preset, params)
        self._items[key] = synth
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return synth

    def clear(self) -> None:
        self._items.clear()


#: the synthesizers of this process (each worker process has its own)
SYNTHESIZERS = SynthesizerCache()


def check_output(out: Any, size: tuple[int, ...], name: str):
    """``out`` checked against the ``(3, *size)`` contract (:func:`texbench.outputs.check_tensor`)."""
    from texbench.outputs import check_tensor

    return check_tensor(out, size, name)


def execute_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job and return its result; never raises for a method's failure.

    Payload keys: ``method``, ``preset``, ``params``, ``input`` (TaskInput), ``seed``, ``device``,
    ``plugin_files`` and optionally ``timeout`` (seconds, enforced by the process executor). Result keys: ``status``, ``error``, ``seconds``, ``prepare_seconds``, ``image``
    (uint8 HxWx3, or DxHxWx3 for a volume task), ``output_hash``, ``info``, ``provenance``.
    """
    import torch

    from texbench.env import resolve_device
    from texbench.imageio import image_hash
    from texbench.outputs import output_kind
    from texbench.tasks import task_output_kind

    name = payload["method"]
    result: dict[str, Any] = {"status": "failed", "error": None, "seconds": None, "prepare_seconds": None,
                              "image": None, "output_hash": None, "info": {}, "provenance": {}}
    try:
        _load_plugins(payload.get("plugin_files", ()))
        device = resolve_device(payload["device"])
        synth = SYNTHESIZERS.get(name, payload["preset"], payload["params"])
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
        kind = output_kind(task_output_kind(inp.task))
        img = kind.quantise(kind.check(out, tuple(inp.size), name))
        result.update(status="ok", seconds=t2 - t1, prepare_seconds=t1 - t0, image=img,
                      output_hash=image_hash(img), info=_jsonable(info), provenance=synth.provenance())
    except (Exception, SystemExit) as exc:  # a crashing plugin, or one calling sys.exit(), is recorded, not fatal
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        what = f"SystemExit: the method called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else \
            f"{type(exc).__name__}: {exc}"
        result["error"] = f"{what}{where}"
    return result


def failed_result(error: str) -> dict[str, Any]:
    """The result of a job that failed outside the method's own code (its worker died, it timed out)."""
    return {"status": "failed", "error": error, "seconds": None, "prepare_seconds": None, "image": None,
            "output_hash": None, "info": {}, "provenance": {}}


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
    """In this process, one job after another (the default). A method that calls ``os._exit`` or hangs
    takes the run with it: use the process executor, or a job timeout, to isolate such methods."""

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


#: seconds a worker is given to end after SIGTERM before it is killed
_GRACE_SECONDS = 2.0


def _watch_parent(parent_pid: int) -> None:
    """End this worker when the driver is gone (even killed with SIGKILL), also in the middle of a job."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="texbench-parent-watch", daemon=True).start()


def _worker_main(pipe: Any, threads: int, parent_pid: int) -> None:
    """A worker's loop: receive a job, say it started, run it, send its result; until the pipe closes."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the driver alone decides what to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent_pid)
    _init_worker(threads)
    while True:
        try:
            payload = pickle.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            return
        pipe.send_bytes(pickle.dumps(("started", None)))
        result = execute_job(payload)
        try:
            data = pickle.dumps(("done", result), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # e.g. an info value that cannot be pickled: the job's fault, not the worker's
            data = pickle.dumps(("done", failed_result(f"result cannot be sent back: {type(exc).__name__}: {exc}")))
        pipe.send_bytes(data)


class _Worker:
    """One worker process and the driver's end of its pipe."""

    def __init__(self, ctx: Any, threads: int) -> None:
        parent_end, child_end = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child_end, threads, os.getpid()),
                                name="texbench-worker")
        self.proc.start()
        child_end.close()
        self.pipe = parent_end
        self.job: int | None = None
        self.timeout: float | None = None
        self.started: float | None = None  # when the worker began the job (its own start-up is not counted)

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after a grace period) and close the pipe."""
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(_GRACE_SECONDS)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        self.pipe.close()

    def death(self) -> str:
        self.proc.join(_GRACE_SECONDS)
        if self.proc.is_alive():  # the pipe broke but the process lingers
            self.proc.kill()
            self.proc.join()
        code = self.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"worker died while running this job ({how})"


def _stop_all(workers: Sequence[_Worker]) -> None:
    """Stop every worker: SIGTERM to all first, so the grace periods run side by side."""
    for w in workers:
        if w.proc.is_alive():
            w.proc.terminate()
    deadline = time.monotonic() + _GRACE_SECONDS
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        w.stop()


class ProcessExecutor:
    """Worker processes that each run one job at a time, one torch thread each by default.

    Not ``concurrent.futures``: its pool breaks as a whole when one worker dies (every pending job fails
    with ``BrokenProcessPool``), and it cannot stop a single job that runs too long. Here the driver hands
    each worker one job at a time through its own pipe, so when a worker dies, or its job outlives the
    payload's ``timeout``, exactly that job is recorded as failed, the worker is replaced and the other
    jobs go on. Workers ignore SIGINT (the driver decides) and end by themselves when the driver is gone.
    """

    name = "process"

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1, **_: Any) -> None:
        import multiprocessing

        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.size = workers or os.cpu_count() or 1
        self.threads = threads_per_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def map(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        from multiprocessing.connection import wait

        pending = deque(range(len(payloads)))
        idle: list[_Worker] = []
        busy: list[_Worker] = []
        try:
            while pending or busy:
                while pending and len(busy) < self.size:
                    w = idle.pop() if idle else self._start()
                    i = pending.popleft()
                    try:
                        w.pipe.send_bytes(pickle.dumps(payloads[i], protocol=pickle.HIGHEST_PROTOCOL))
                    except (OSError, ValueError):  # the worker died before it took the job
                        self._forget(w)
                        yield i, failed_result(w.death())
                        continue
                    w.job, w.timeout, w.started = i, payloads[i].get("timeout"), None
                    busy.append(w)
                if not busy:
                    continue
                wait([x for w in busy for x in (w.pipe, w.proc.sentinel)], timeout=self._next_deadline(busy))
                now = time.monotonic()
                for w in list(busy):
                    job = w.job
                    assert job is not None
                    i = job
                    try:
                        while w.pipe.poll():
                            kind, result = pickle.loads(w.pipe.recv_bytes())
                            if kind == "started":
                                w.started = time.monotonic()
                                continue
                            busy.remove(w)
                            idle.append(w)
                            w.job = None
                            yield i, result
                            break
                    except (EOFError, OSError):  # the pipe closed: the worker is gone
                        pass
                    if w.job is None:
                        continue
                    if not w.proc.is_alive() or w.pipe.closed:
                        busy.remove(w)
                        self._forget(w)
                        yield i, failed_result(w.death())
                    elif w.timeout and w.started is not None and now - w.started > w.timeout:
                        busy.remove(w)
                        self._forget(w)
                        w.stop()
                        yield i, failed_result(f"timed out after {w.timeout:g} s (its worker was stopped)")
        finally:
            self.close()

    def _start(self) -> _Worker:
        w = _Worker(self._ctx, self.threads)
        self._workers.append(w)
        return w

    def _forget(self, w: _Worker) -> None:
        if w in self._workers:
            self._workers.remove(w)

    @staticmethod
    def _next_deadline(busy: Sequence[_Worker]) -> float | None:
        """Seconds until the first running job's timeout (None: wait for any event)."""
        left = [w.started + w.timeout - time.monotonic() for w in busy if w.timeout and w.started is not None]
        return min(max(0.0, min(left)) + 0.01, 3600.0) if left else None  # capped: select() has a maximum

    def close(self) -> None:
        """Stop every worker (also those in the middle of a job)."""
        workers, self._workers = self._workers, []
        _stop_all(workers)


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
                except Exception as exc:  # its worker died, for example: this task alone fails
                    yield refs[ref], failed_result(f"ray task failed: {exc}")

    def close(self) -> None:
        pass


EXECUTORS = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def make_executor(name: str, *, timeouts: bool = False, **kwargs: Any):
    """The executor ``name``; ``timeouts``: some payloads have a ``timeout``, which needs isolated workers
    (the local executor then becomes one worker process; Ray refuses)."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    if timeouts and name == "local":
        import torch

        # one job at a time, as in this process, with as many torch threads as this process would use
        return ProcessExecutor(workers=1, threads_per_worker=torch.get_num_threads())
    if timeouts and name == "ray":
        raise ValueError("job timeouts (--job-timeout, job_timeout) are not supported by the ray executor; "
                         "use --executor process")
    return EXECUTORS[name](**kwargs)
