"""Where jobs run: in this process, in isolated worker processes, or on a Ray cluster.

Workers only compute: each returns a plain result dict and the driver writes the store, so there is
one writer and no locking beyond SQLite's own.

What each executor isolates (a method's failure is always one failed job, never the end of the run):

* ``local``: exceptions, ``SystemExit`` and bad outputs. Not ``os._exit``, a crash of the interpreter
  or a hang: those take the run with them (a job timeout switches to one isolated worker process).
* ``process``: also a worker that dies (``os._exit``, a segfault, the OOM killer) and, with a timeout,
  a job that runs too long: that one job is recorded as failed, its worker replaced, the others go on.
* ``ray``: the same on a cluster: a task whose worker dies fails alone (tasks are not retried: a method
  that kills its worker would kill the next one too), and a job that outlives its timeout is cancelled
  (``ray.cancel(force=True)`` ends its worker process). Each task asks Ray for what its method declares
  (:class:`texbench.base.Resources`), inputs go into Ray's object store once and travel by reference,
  outputs come back as PNG bytes.

Every executor runs any top-level function over a list of payloads (:meth:`map` with ``fn``): the jobs
(:func:`execute_job`) and the scoring pass's batches (:mod:`texbench.scoring`) use the same workers.

Size: three executors with their own failure handling (pipes and sentinels for the process pool,
``ray.wait`` deadlines for Ray) plus the worker side they share; splitting them would scatter one contract.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["EXECUTORS", "SYNTHESIZERS", "SynthesizerCache", "check_output", "execute_job", "failed_result",
           "fetch", "load_plugins", "make_executor", "process_threads", "ray_task_options"]

_PLUGINS_LOADED: set[str] = set()


def load_plugins(plugin_files: Sequence[str]) -> None:
    """Load the run's plugin files in this worker, each once per process."""
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

    Payload keys: ``method``, ``preset``, ``params``, ``input`` (TaskInput, or a Ray reference to one),
    ``seed``, ``device`` (``"auto"`` is resolved here, on the worker), ``plugin_files`` and optionally
    ``timeout`` (seconds, enforced by the executor), ``threads`` (torch threads for this job, set by the
    executor from the method's :class:`~texbench.base.Resources`) and ``trajectory`` (the oracle reference
    and metric that score reported iterates, see :class:`texbench.probes.IterateScorer`). Result keys:
    ``status``, ``error``, ``seconds`` (minus the oracle scoring), ``prepare_seconds``, ``data`` (the output
    encoded as its task's :mod:`texbench.outputs` kind stores it: PNG bytes for an image, ``.npy`` bytes
    for a volume), ``output_hash`` (of its uint8 values), ``info``, ``provenance``, ``peak_rss_bytes`` and
    ``peak_cuda_bytes`` (:class:`texbench.probes.PeakMemory`; None where unknown), ``trajectory``
    (``{metric, ref, higher_is_better, iterations, values, seconds}`` or None).
    """
    import torch

    from texbench.env import resolve_device
    from texbench.imageio import image_hash
    from texbench.outputs import output_kind
    from texbench.probes import IterateScorer, PeakMemory
    from texbench.tasks import task_output_kind

    name = payload["method"]
    result = failed_result(None)
    try:
        load_plugins(payload.get("plugin_files", ()))
        if payload.get("threads"):
            torch.set_num_threads(int(payload["threads"]))
        device = resolve_device(payload["device"])
        synth = SYNTHESIZERS.get(name, payload["preset"], payload["params"])
        inp = fetch(payload["input"])
        # oracle scoring of reported iterates (restoration tasks): the reference stays here, in the worker
        scorer = IterateScorer(payload["trajectory"], tuple(inp.size), name) if payload.get("trajectory") else None
        memory = PeakMemory(device)
        memory.start()
        t0 = time.perf_counter()
        synth.prepare(inp, seed=payload["seed"], device=device)
        t1 = time.perf_counter()
        with torch.inference_mode(False), synth.iterates_to(scorer):
            out = synth.run(inp, seed=payload["seed"], device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        result.update(memory.stop())
        info = synth.pop_info()
        kind = output_kind(task_output_kind(inp.task))
        img = kind.quantise(kind.check(out, tuple(inp.size), name))
        result.update(status="ok", seconds=t2 - t1 - (scorer.seconds if scorer else 0.0), prepare_seconds=t1 - t0,
                      data=kind.encode(img), output_hash=image_hash(img), info=_jsonable(info),
                      provenance=synth.provenance(), trajectory=scorer.result() if scorer else None)
    except (Exception, SystemExit) as exc:  # a crashing plugin, or one calling sys.exit(), is recorded, not fatal
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        what = f"SystemExit: the method called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else \
            f"{type(exc).__name__}: {exc}"
        result["error"] = f"{what}{where}"
    return result


def failed_result(error: str | None) -> dict[str, Any]:
    """The result of a job that failed outside the method's own code (its worker died, it timed out)."""
    return {"status": "failed", "error": error, "seconds": None, "prepare_seconds": None, "data": None,
            "output_hash": None, "info": {}, "provenance": {}, "peak_rss_bytes": None, "peak_cuda_bytes": None,
            "trajectory": None}


def fetch(value: Any) -> Any:
    """``value``, or what it refers to if it is a Ray object reference (data shared once per run through
    Ray's object store, see :meth:`RayExecutor.share`)."""
    import sys

    ray = sys.modules.get("ray")  # only a Ray worker can hold a reference, and it has imported ray
    if ray is not None and isinstance(value, ray.ObjectRef):
        return ray.get(value)
    return value


def process_threads(resources: Mapping[str, Any] | None, workers: int, cpus: int | None = None) -> int:
    """Torch threads for one job on a pool of ``workers`` processes: what the method declares
    (``resources["threads"]``), but no more than this machine's share per worker, so that the workers
    together do not ask for more cores than there are.

    >>> process_threads({"threads": 8}, workers=2, cpus=4)
    2
    >>> process_threads(None, workers=4, cpus=2)
    1
    """
    cpus = cpus or os.cpu_count() or 1
    want = int((resources or {}).get("threads", 1))
    return max(1, min(want, cpus // max(1, workers)))


def ray_task_options(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray task options for one job of a method that declares ``resources`` (a
    :meth:`texbench.base.Resources.as_dict`): ``num_cpus`` = its threads, ``num_gpus`` = its GPUs,
    ``memory`` (bytes) = its memory estimate when it gives one. Ray then schedules the task only where
    that much is free, and makes the GPU it assigns the task's only visible one (``device = "auto"``).

    >>> ray_task_options({"threads": 2, "gpus": 1, "memory_mb": 512})
    {'num_cpus': 2, 'num_gpus': 1, 'memory': 536870912}
    >>> ray_task_options(None)
    {'num_cpus': 1, 'num_gpus': 0}
    """
    r = dict(resources or {})
    opts: dict[str, Any] = {"num_cpus": int(r.get("threads", 1)), "num_gpus": r.get("gpus", 0)}
    if r.get("memory_mb"):
        opts["memory"] = int(r["memory_mb"]) * 2**20
    return opts


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

    def share(self, value: Any) -> Any:
        """``value`` itself: this process already holds it (Ray's executor puts it in its object store)."""
        return value

    def map(self, payloads: Sequence[dict[str, Any]], fn: Callable[[dict[str, Any]], dict[str, Any]] = execute_job
            ) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, p in enumerate(payloads):
            yield i, fn(p)

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
            fn, payload = pickle.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            return
        pipe.send_bytes(pickle.dumps(("started", None)))
        try:
            result = fn(payload)
        except Exception as exc:  # fn's own bug (execute_job never raises): this payload fails, not the worker
            result = failed_result(f"{type(exc).__name__}: {exc}")
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
        self.threads = threads  # torch threads of its current job

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
    """Worker processes that each run one job at a time, with the torch threads its method declares (at
    most CPUs / workers; see :func:`process_threads`) unless ``threads_per_worker`` fixes them.

    Not ``concurrent.futures``: its pool breaks as a whole when one worker dies (every pending job fails
    with ``BrokenProcessPool``), and it cannot stop a single job that runs too long. Here the driver hands
    each worker one job at a time through its own pipe, so when a worker dies, or its job outlives the
    payload's ``timeout``, exactly that job is recorded as failed, the worker is replaced and the other
    jobs go on. Workers ignore SIGINT (the driver decides) and end by themselves when the driver is gone.
    """

    name = "process"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None, **_: Any) -> None:
        import multiprocessing

        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if threads_per_worker is not None and threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
        self.size = workers or os.cpu_count() or 1
        self.threads = threads_per_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []  # workers kept between two maps (the jobs, then the scoring pass)

    def share(self, value: Any) -> Any:
        """``value`` itself: it is pickled into each payload that holds it."""
        return value

    def _threads(self, payload: dict[str, Any]) -> int:
        """A payload's torch threads: its own ``threads`` if it fixes them (scoring does, see
        :mod:`texbench.scoring`), else ``threads_per_worker`` if given, else :func:`process_threads`."""
        return payload.get("threads") or self.threads or process_threads(payload.get("resources"), self.size)

    def map(self, payloads: Sequence[dict[str, Any]], fn: Callable[[dict[str, Any]], dict[str, Any]] = execute_job
            ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Run ``fn`` over ``payloads`` on the workers; yields ``(index, result)`` as they finish. Workers
        stay up for the next map when this one completes, and are stopped when it is abandoned."""
        from multiprocessing.connection import wait

        pending = deque(range(len(payloads)))
        idle, self._idle = self._idle, []
        busy: list[_Worker] = []
        cores = self._cores()
        completed = False
        try:
            while pending or busy:
                while pending and len(busy) < self.size:
                    i = pending[0]
                    threads = self._threads(payloads[i])
                    # payloads that fix their threads (the scoring pass: the driver's count, for equal bits)
                    # run side by side only as far as the cores allow: 2 scoring tasks of 2 threads on 2
                    # cores would each run at half speed and load every network twice
                    if busy and sum(w.threads for w in busy) + threads > cores:
                        break
                    pending.popleft()
                    w = idle.pop() if idle else self._start()
                    try:
                        payload = {**payloads[i], "threads": threads}
                        w.pipe.send_bytes(pickle.dumps((fn, payload), protocol=pickle.HIGHEST_PROTOCOL))
                    except (OSError, ValueError):  # the worker died before it took the job
                        self._forget(w)
                        yield i, failed_result(w.death())
                        continue
                    w.job, w.timeout, w.started, w.threads = i, payload.get("timeout"), None, threads
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
            completed = True
            self._idle = idle
        finally:
            if not completed:  # an error, a signal, or the caller stopped reading: no worker outlives it
                self.close()

    def _cores(self) -> int:
        """Threads the pool's running payloads may use together: this machine's CPUs, or more when the
        user fixed ``threads_per_worker`` × ``workers`` above them (their choice to oversubscribe)."""
        return max(os.cpu_count() or 1, self.size * (self.threads or 1))

    def _start(self) -> _Worker:
        w = _Worker(self._ctx, self.threads or 1)
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
        workers, self._workers, self._idle = self._workers, [], []
        _stop_all(workers)


def _texbench_environ() -> dict[str, str]:
    """The driver's ``TEXBENCH_*`` variables (home, trained cache, random-init permission, weights paths):
    Ray workers are started by the raylet, not by the driver, and would not see them otherwise."""
    return {k: v for k, v in os.environ.items() if k.startswith("TEXBENCH_")}


def _ray_call(fn: Callable[[dict[str, Any]], dict[str, Any]], payload: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: take on the driver's ``TEXBENCH_*`` environment, then run ``fn(payload)``."""
    environ = payload.get("environ", {})
    for k in [k for k in os.environ if k.startswith("TEXBENCH_") and k not in environ]:
        del os.environ[k]
    os.environ.update(environ)
    return fn(payload)


def _ray_failure(exc: BaseException) -> str:
    """A job's error when its Ray task failed outside the method (the method's own errors are results)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ActorDiedError"):
        return f"worker died while running this job (Ray: {type(exc).__name__}: {first})"
    return f"ray task failed: {type(exc).__name__}: {first}"


class RayExecutor:
    """An existing Ray cluster (``--ray-address``), or a local Ray started by ``ray.init()``.

    Tasks ask for their method's resources (:func:`ray_task_options`) and are not retried. At most as many
    tasks are in flight as the cluster's CPUs and GPUs can run at once, so a submitted task is a running
    one and a job timeout counts from its submission (which includes, for a fresh worker, its start-up):
    past it the task is cancelled with ``force=True``, which ends its worker process.
    """

    name = "ray"

    def __init__(self, address: str | None = None, **_: Any) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'texbench[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
            except ConnectionError as exc:  # a user's address, or no cluster: a one-line error, not a traceback
                raise ValueError(f"ray address {address or '(auto)'}: cannot connect to a Ray cluster ({exc}); "
                                 "start one with `ray start --head` or check --ray-address") from None
        self._remote = ray.remote(_ray_call)
        self._shared: dict[int, tuple[Any, Any]] = {}  # id -> (value kept alive, its object reference)

    def share(self, value: Any) -> Any:
        """Put ``value`` into Ray's object store once and return its reference (tasks :func:`fetch` it)."""
        key = id(value)
        if key not in self._shared:
            self._shared[key] = (value, self.ray.put(value))
        return self._shared[key][1]

    def capacity(self) -> tuple[float, float]:
        """The cluster's CPUs and GPUs (at least one CPU)."""
        res = self.ray.cluster_resources()
        return max(1.0, float(res.get("CPU", 1.0))), float(res.get("GPU", 0.0))

    def node_cpus(self) -> float:
        """The CPUs of the cluster's largest node: no task asks for more (it could never be scheduled)."""
        sizes = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in self.ray.nodes() if n.get("Alive", True)]
        return max([1.0, *sizes])

    def map(self, payloads: Sequence[dict[str, Any]], fn: Callable[[dict[str, Any]], dict[str, Any]] = execute_job
            ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Run ``fn`` over ``payloads`` as Ray tasks; yields ``(index, result)`` as they finish. A task
        asks for its method's resources, or for the threads its payload fixes (scoring), at most a node's."""
        cpus, gpus = self.capacity()
        node_cpus = self.node_cpus()
        environ = _texbench_environ()
        pending = deque(range(len(payloads)))
        running: dict[Any, tuple[int, dict[str, Any], float | None]] = {}  # ref -> (index, options, deadline)
        completed = False
        try:
            while pending or running:
                while pending:
                    head = payloads[pending[0]]
                    opts = ray_task_options({**(head.get("resources") or {}),
                                             **({"threads": head["threads"]} if head.get("threads") else {})})
                    opts["num_cpus"] = min(opts["num_cpus"], int(node_cpus))
                    used_c = sum(o["num_cpus"] for _, o, _ in running.values())
                    used_g = sum(o["num_gpus"] for _, o, _ in running.values())
                    if running and (used_c + opts["num_cpus"] > cpus or used_g + opts["num_gpus"] > gpus):
                        break
                    i = pending.popleft()
                    payload = {**head, "environ": environ}
                    payload["threads"] = payload.get("threads") or opts["num_cpus"]
                    if "input" in payload:
                        payload["input"] = self.share(payload["input"])
                    ref = self._remote.options(max_retries=0, **opts).remote(fn, payload)
                    timeout = payload.get("timeout")
                    running[ref] = (i, opts, time.monotonic() + timeout if timeout else None)
                deadlines = [d for _, _, d in running.values() if d is not None]
                wait_s = max(0.0, min(deadlines) - time.monotonic()) + 0.01 if deadlines else None
                done, _ = self.ray.wait(list(running), num_returns=1, timeout=wait_s)
                for ref in done:
                    i, _, _ = running.pop(ref)
                    try:
                        yield i, self.ray.get(ref)
                    except Exception as exc:  # its worker died, for example: this task alone fails
                        yield i, failed_result(_ray_failure(exc))
                now = time.monotonic()
                for ref, (i, _, deadline) in list(running.items()):
                    if deadline is not None and now > deadline:
                        del running[ref]
                        self.ray.cancel(ref, force=True)
                        yield i, failed_result(f"timed out after {payloads[i]['timeout']:g} s "
                                               "(its Ray worker was stopped)")
            completed = True
        finally:
            if not completed:  # an error, a signal, or the caller stopped reading: stop what still runs
                for ref in running:
                    self.ray.cancel(ref, force=True)

    def close(self) -> None:
        """Forget the shared objects (Ray frees them); the cluster itself is left as it was."""
        self._shared.clear()


EXECUTORS = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def make_executor(name: str, *, timeouts: bool = False, **kwargs: Any):
    """The executor ``name``; ``timeouts``: some payloads have a ``timeout``, which needs isolated workers
    (the local executor then becomes one worker process)."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    if timeouts and name == "local":
        import torch

        # one job at a time, as in this process, with as many torch threads as this process would use
        return ProcessExecutor(workers=1, threads_per_worker=torch.get_num_threads())
    return EXECUTORS[name](**kwargs)
