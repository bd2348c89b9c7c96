"""The runner: expand a suite, run what is not done yet, store each result, score, report.

Resume is the default: a job whose key is already in the store is not run again (``rerun=True`` forces
fresh work; failed jobs are retried only with ``retry_failed=True``). Each finished job is committed in
its own transaction as soon as it returns, so an interrupted run keeps everything it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from texbench import columns as C
from texbench.scoring import score_run
from texbench.store import Store
from texbench.suite import Job, Suite, expand
from texbench.tasks import get_task

__all__ = ["RunInterrupted", "RunSummary", "run_suite", "score_run"]


class RunInterrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM; everything finished before is stored.

    Attributes:
        done: jobs of the suite stored (finished, ok or failed); left: those still to run;
        signum: the signal (the CLI exits with 128 + signum, as a shell does).
    """

    def __init__(self, done: int, left: int, signum: int) -> None:
        super().__init__(f"interrupted: {done} jobs done, {left} left; run again to resume")
        self.done, self.left, self.signum = done, left, signum


class _Stop(KeyboardInterrupt):
    """Raised in the driver by SIGTERM (and SIGINT): unwinds the run like Ctrl-C, naming the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM unwind the run (workers stopped, stored results kept); a second
    signal while it unwinds is ignored, so the clean-up is not cut short. Only in the main thread (where
    Python delivers signals); elsewhere the block runs as is."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:
            return
        received.append(signum)
        raise _Stop(signum)

    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@dataclasses.dataclass
class RunSummary:
    out: Path
    total: int
    skipped: int
    ran: int
    failed: int
    bad_inputs: int
    leaderboard: Path | None = None


def _payload(job: Job, device: str, plugin_files: Sequence[str], timeout: float | None) -> dict[str, Any]:
    from texbench import registry

    return {"method": job.method.name, "preset": job.method.preset, "params": dict(job.method.params),
            "input": job.example.input, "seed": job.seed, "device": device, "plugin_files": list(plugin_files),
            "timeout": job.method.job_timeout or timeout, "trajectory": _trajectory_spec(job),
            "resources": registry.synthesizers.get(job.method.name).resources.as_dict()}


def _trajectory_spec(job: Job) -> dict[str, Any] | None:
    """What scores a job's reported iterates (the task's primary metric against the reference the method
    never sees, ``Task.oracle_ref``), or None for tasks without such a reference."""
    task = get_task(job.task)
    ref = job.example.references.get(task.oracle_ref) if task.oracle_ref else None
    if ref is None:
        return None
    return {"metric": task.primary_metric, "params": {}, "ref": task.oracle_ref, "reference": ref}


def _job_row(job: Job, result: dict[str, Any], store: Store, env: dict[str, Any]) -> dict[str, Any]:
    from texbench import registry

    cls = registry.synthesizers.get(job.method.name)
    synth = cls.from_config(job.method.preset, job.method.params)
    output = None
    hashes = dict(job.input_hashes)
    if job.example.input.image is not None and job.task in ("denoise", "sr4", "inpaint", "jpeg"):
        from texbench.imageio import image_hash

        hashes["degraded"] = image_hash(job.example.input.image)
    if result["status"] == "ok":
        from texbench.tasks import task_output_kind

        output = store.save_output_bytes(result["data"], digest=result["output_hash"], kind=task_output_kind(job.task))
    return {"job_key": job.key, "task": job.task, "dataset": job.dataset, "item": job.item,
            "method": job.method.name, "label": job.label, "preset": job.method.preset,
            "params": synth.params_dict(), "version": cls.version, "seed": job.seed,
            "task_params": dict(job.task_params), "input_hashes": hashes,
            "status": result["status"], "error": result["error"], "seconds": result["seconds"],
            "prepare_seconds": result["prepare_seconds"], "output": output, "output_hash": result["output_hash"],
            "info": result["info"], "provenance": result["provenance"], "env": env,
            "peak_rss_bytes": result.get("peak_rss_bytes"), "peak_cuda_bytes": result.get("peak_cuda_bytes"),
            "trajectory": result.get("trajectory")}


def run_suite(
    suite: Suite,
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    rerun: bool = False,
    retry_failed: bool = False,
    plugin_files: Sequence[str] = (),
    data_root: str | Path | None = None,
    progress: bool = True,
    write_report: bool = True,
    max_pixels: int | None = None,
    job_timeout: float | None = None,
) -> RunSummary:
    """Run (or resume) a suite into the run directory ``out`` and write its leaderboard.

    Args:
        suite: the parsed suite.
        out: run directory (created if needed).
        executor: ``local``, ``process`` or ``ray``.
        workers: process-pool size.
        ray_address: address of an existing Ray cluster.
        rerun: run every job again, even those already stored.
        retry_failed: run again the jobs that failed before.
        plugin_files: local plugin files, loaded in every worker too.
        data_root: base folder for relative dataset paths in the suite.
        progress: show tqdm progress bars.
        write_report: write ``leaderboard.md``/``.csv`` and the image grids at the end.
        max_pixels: pixel budget for input images (default: the suite's ``max_pixels``, else
            :data:`texbench.imageio.DEFAULT_MAX_PIXELS`); larger images are skipped as bad inputs.
        job_timeout: seconds a job may run before its worker is stopped and the job recorded as failed
            (replaces the suite's ``job_timeout``; a method's own ``job_timeout`` wins over both). With the
            local executor, a timeout runs the jobs in one isolated worker process.

    Raises:
        RunInterrupted: SIGINT or SIGTERM arrived; the workers are stopped, finished jobs stay stored.
        texbench.runlock.RunDirectoryBusy: another run is writing into ``out``.
    """
    if job_timeout is not None and not (math.isfinite(job_timeout) and job_timeout > 0):
        raise ValueError(f"job_timeout must be a positive number of seconds, got {job_timeout}")
    jobs: list[Job] = []
    out = Path(out)
    try:
        with _stop_on_signals():
            return _run_suite(suite, out, jobs, executor=executor, workers=workers, ray_address=ray_address,
                              rerun=rerun, retry_failed=retry_failed, plugin_files=plugin_files,
                              data_root=data_root, progress=progress, write_report=write_report,
                              job_timeout=job_timeout if job_timeout is not None else suite.job_timeout,
                              max_pixels=max_pixels if max_pixels is not None else suite.max_pixels)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Stop) else 2
        done = _stored(out, jobs)
        raise RunInterrupted(done, len(jobs) - done, signum) from None


def _stored(out: Path, jobs: Sequence[Job]) -> int:
    """How many of ``jobs`` the run directory holds (0 if it cannot be read)."""
    if not jobs or not (out / "results.sqlite").exists():
        return 0
    try:
        with Store(out, create=False) as store:
            status = store.job_status()
    except Exception:  # an interrupted run reports what it can
        return 0
    return sum(1 for j in jobs if j.key in status)


def _run_suite(suite: Suite, out: Path, jobs: list[Job], *, executor: str, workers: int | None,
               ray_address: str | None, rerun: bool, retry_failed: bool, plugin_files: Sequence[str],
               data_root: str | Path | None, progress: bool, write_report: bool,
               job_timeout: float | None, max_pixels: int | None) -> RunSummary:
    """:func:`run_suite`'s work; fills ``jobs`` as soon as the suite is expanded (for the interrupt report)."""
    from texbench.env import environment, resolve_device
    from texbench.imageio import pixel_budget
    from texbench.runlock import run_lock

    with _random_init_allowed(suite.allow_random_init), pixel_budget(max_pixels):
        bad: list[tuple[str, str, str, str]] = []

        def on_bad(task, dataset, item, message):
            bad.append((task, dataset, item, message))
            print(f"skipping bad input: {message}", file=sys.stderr)

        # the datasets are read before the run directory exists: a missing set or device creates nothing
        jobs += expand(suite, data_root=Path(data_root) if data_root else None, on_bad_input=on_bad)
        device = str(resolve_device(suite.device))
        with run_lock(out), Store(out) as store:
            env = environment(device)
            _record_run(store, suite, jobs, bad, env)
            todo = _jobs_to_run(store, jobs, out, rerun=rerun, retry_failed=retry_failed)
            failed = 0
            with _executor(executor, todo, job_timeout, workers=workers, address=ray_address) as ex:
                if todo:
                    # on Ray, "auto" is resolved by each worker: the GPU Ray gave it, if any
                    failed = _run_jobs(store, suite.name, todo, env, ex, plugin_files=plugin_files,
                                       device=suite.device if executor == "ray" and suite.device == "auto" else device,
                                       progress=progress, job_timeout=job_timeout)
                score_run(store, suite, jobs, device=device, progress=progress, executor=ex,
                          plugin_files=plugin_files)
            summary = RunSummary(out, len(jobs), len(jobs) - len(todo), len(todo), failed, len(bad))
            if write_report:
                summary.leaderboard = _write_report(store)
            return summary


@contextlib.contextmanager
def _random_init_allowed(allow: bool) -> Iterator[None]:
    """Within the block, let missing weights fall back to random initialisation if ``allow`` (through the
    environment, so worker processes started meanwhile see it too); afterwards the variable is as before."""
    from texbench.weights import RANDOM_INIT_ENV

    before = os.environ.get(RANDOM_INIT_ENV)
    if allow:
        os.environ[RANDOM_INIT_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RANDOM_INIT_ENV, None)
        else:
            os.environ[RANDOM_INIT_ENV] = before


def _record_run(store: Store, suite: Suite, jobs: Sequence[Job], bad: Sequence[tuple[str, str, str, str]],
                env: dict[str, Any]) -> None:
    """Store what the run is (suite, environment, each task's primary metric), its bad inputs and a copy
    of every input image."""
    store.set_meta({"suite": suite.name, "suite_source": suite.source, "suite_text": suite.text,
                    "description": suite.description, "env": env})
    store.set_primary_metrics({spec.task: get_task(spec.task).primary_metric for spec in suite.tasks})
    store.set_suite_jobs(j.key for j in jobs)
    store.clear_bad_inputs()
    for b in bad:
        store.record_bad_input(*b)
    _save_inputs(store, jobs)


def _jobs_to_run(store: Store, jobs: Sequence[Job], out: Path, *, rerun: bool, retry_failed: bool) -> list[Job]:
    """The jobs not done yet (all with ``rerun``; failed ones only with ``retry_failed``), saying so."""
    status = store.job_status()
    todo = [j for j in jobs
            if rerun or status.get(j.key) is None or (status.get(j.key) == C.STATUS_FAILED and retry_failed)]
    old_failures = sum(1 for j in jobs if status.get(j.key) == C.STATUS_FAILED) if not (rerun or retry_failed) else 0
    if old_failures:
        print(f"{old_failures} jobs failed in an earlier run and are kept as failed "
              "(--retry-failed runs them again, e.g. after `texbench weights fetch`).")
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"All {len(jobs)} jobs are already done in {out} (use --rerun to run them again).")
    elif skipped:
        print(f"Resuming: {skipped} of {len(jobs)} jobs already done; running {len(todo)}.")
    return todo


@contextlib.contextmanager
def _executor(name: str, todo: Sequence[Job], job_timeout: float | None, **kwargs: Any) -> Iterator[Any]:
    """The executor of the jobs and then of the scoring pass (its workers serve both), closed at the end."""
    from texbench.executors import make_executor

    timeouts = bool(job_timeout) or any(j.method.job_timeout for j in todo)
    ex = make_executor(name, timeouts=timeouts, **kwargs)
    if timeouts and name == "local":
        print("job timeouts: running the jobs in an isolated worker process", file=sys.stderr)
    try:
        yield ex
    finally:
        ex.close()


def _run_jobs(store: Store, name: str, todo: Sequence[Job], env: dict[str, Any], ex: Any, *, device: str,
              plugin_files: Sequence[str], progress: bool, job_timeout: float | None) -> int:
    """Run ``todo`` on the executor ``ex``, committing each result as it comes; returns how many failed."""
    from tqdm.auto import tqdm

    failed = 0
    payloads = [_payload(j, device, plugin_files, job_timeout) for j in todo]
    with tqdm(total=len(todo), desc=f"{name}: jobs", unit="job", disable=not progress) as bar:
        for i, result in ex.map(payloads):
            job = todo[i]
            row = _job_row(job, result, store, env)
            store.write_job(row)
            _keep_timing(row, job, result, device)
            if result["status"] != "ok":
                failed += 1
                tqdm.write(f"FAILED {job.task}/{job.label}/{job.item}/seed {job.seed}: {result['error']}",
                           file=sys.stderr)
            bar.set_postfix_str(f"{job.task}/{job.label}", refresh=False)
            bar.update(1)
    return failed


def _keep_timing(row: dict[str, Any], job: Job, result: dict[str, Any], device: str) -> None:
    """Add a finished job's time to this machine's timings (:mod:`texbench.timings`, for ``run --plan``);
    its size is the output size the task asked for (checked against the output by the executor): pixels, or
    voxels for a volume."""
    if result["status"] != "ok" or result.get("seconds") is None:
        return
    from texbench.timings import record_timing

    record_timing(task=row["task"], method=row["method"], version=row["version"], params=row["params"],
                  device=device, pixels=math.prod(int(n) for n in job.example.input.size), seconds=result["seconds"],
                  prepare_seconds=result["prepare_seconds"])


def _write_report(store: Store) -> Path:
    """Write the image grids, then the leaderboard (Markdown, CSV, HTML); returns the Markdown's path."""
    from texbench.reports.leaderboard import write_leaderboard

    try:
        from texbench.reports.grid import write_grids

        write_grids(store)
    except Exception as exc:  # a picture must never cost the numbers
        print(f"warning: image grids not written: {exc}", file=sys.stderr)
    return write_leaderboard(store)


def _save_inputs(store: Store, jobs: Sequence[Job]) -> None:
    from texbench.imageio import image_hash

    seen: set[int] = set()
    for j in jobs:
        if id(j.example) in seen:
            continue
        seen.add(id(j.example))
        inp = j.example.input
        for t in [inp.image, inp.content, inp.style, *inp.exemplars, *j.example.references.values()]:
            if t is not None:
                store.save_input(t, image_hash(t))
