"""The runner: expand a suite, run what is not done yet, store each result, score, report.

Resume is the default: a job whose key is already in the store is not run again (``rerun=True`` forces
fresh work; failed jobs are retried only with ``retry_failed=True``). Each finished job is committed in
its own transaction as soon as it returns, so an interrupted run keeps everything it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from texbench import columns as C
from texbench.store import Store
from texbench.suite import Job, Suite, expand
from texbench.tasks import MetricUse, get_task

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
    return {"method": job.method.name, "preset": job.method.preset, "params": dict(job.method.params),
            "input": job.example.input, "seed": job.seed, "device": device, "plugin_files": list(plugin_files),
            "timeout": job.method.job_timeout or timeout}


def _job_row(job: Job, result: dict[str, Any], store: Store, env: dict[str, Any]) -> dict[str, Any]:
    from texbench import registry

    cls = registry.synthesizers.get(job.method.name)
    synth = cls.from_config(job.method.preset, job.method.params)
    output = None
    hashes = dict(job.input_hashes)
    if job.example.input.image is not None and job.task in ("denoise", "sr4", "inpaint"):
        from texbench.imageio import image_hash

        hashes["degraded"] = image_hash(job.example.input.image)
    if result["status"] == "ok":
        output = store.save_image(result["image"], digest=result["output_hash"])
    return {"job_key": job.key, "task": job.task, "dataset": job.dataset, "item": job.item,
            "method": job.method.name, "label": job.label, "preset": job.method.preset,
            "params": synth.params_dict(), "version": cls.version, "seed": job.seed,
            "task_params": dict(job.task_params), "input_hashes": hashes,
            "status": result["status"], "error": result["error"], "seconds": result["seconds"],
            "prepare_seconds": result["prepare_seconds"], "output": output, "output_hash": result["output_hash"],
            "info": result["info"], "provenance": result["provenance"], "env": env}


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
            if todo:
                failed = _run_jobs(store, suite.name, todo, env, device=device, executor=executor, workers=workers,
                                   ray_address=ray_address, plugin_files=plugin_files, progress=progress,
                                   job_timeout=job_timeout)
            score_run(store, suite, jobs, device=device, progress=progress)
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


def _run_jobs(store: Store, name: str, todo: Sequence[Job], env: dict[str, Any], *, device: str, executor: str,
              workers: int | None, ray_address: str | None, plugin_files: Sequence[str], progress: bool,
              job_timeout: float | None) -> int:
    """Run ``todo`` on the executor, committing each result as it comes; returns how many failed."""
    from tqdm.auto import tqdm

    from texbench.executors import make_executor

    failed = 0
    payloads = [_payload(j, device, plugin_files, job_timeout) for j in todo]
    timeouts = any(p["timeout"] for p in payloads)
    ex = make_executor(executor, timeouts=timeouts, workers=workers, address=ray_address)
    if timeouts and executor == "local":
        print("job timeouts: running the jobs in an isolated worker process", file=sys.stderr)
    try:
        with tqdm(total=len(todo), desc=f"{name}: jobs", unit="job", disable=not progress) as bar:
            for i, result in ex.map(payloads):
                job = todo[i]
                store.write_job(_job_row(job, result, store, env))
                if result["status"] != "ok":
                    failed += 1
                    tqdm.write(f"FAILED {job.task}/{job.label}/{job.item}/seed {job.seed}: {result['error']}",
                               file=sys.stderr)
                bar.set_postfix_str(f"{job.task}/{job.label}", refresh=False)
                bar.update(1)
    finally:
        ex.close()
    return failed


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
        for t in [inp.image, inp.content, inp.style, *j.example.references.values()]:
            if t is not None:
                store.save_input(t, image_hash(t))


# ------------------------------------------------------------------------------------------------- scoring
class _Metrics:
    """Metric instances cached per (name, params) for one scoring pass, and each metric's direction."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.cache: dict[str, Any] = {}
        self.directions: dict[str, bool | None] = {}
        self.versions: dict[str, str | None] = {}

    def get(self, use: MetricUse):
        from texbench import registry

        key = json.dumps([use.metric, dict(use.params)], sort_keys=True)
        if key not in self.cache:
            try:
                self.cache[key] = registry.metrics.get(use.metric).from_config(use.params, device=self.device)
            except Exception as exc:  # missing weights, a broken plugin: recorded per score
                self.cache[key] = exc
        m = self.cache[key]
        if isinstance(m, Exception):
            raise m
        return m

    def higher_is_better(self, use: MetricUse) -> bool | None:
        """The metric's direction, stored with each of its scores (also those that failed, so the report
        shows the column's arrow); None when the metric's plugin cannot be imported."""
        from texbench import registry

        if use.metric not in self.directions:
            try:
                self.directions[use.metric] = bool(registry.metrics.get(use.metric).higher_is_better)
            except Exception:  # a broken plugin: its scores fail too, recorded with their message
                self.directions[use.metric] = None
        return self.directions[use.metric]

    def version(self, metric: str) -> str | None:
        """The metric's current :attr:`~texbench.base.Metric.version`; None when its plugin cannot be imported."""
        from texbench import registry

        if metric not in self.versions:
            try:
                self.versions[metric] = str(registry.metrics.get(metric).version)
            except Exception:  # a broken plugin: its stored scores stay as they are
                self.versions[metric] = None
        return self.versions[metric]


def _load_output(store: Store, rel: str) -> torch.Tensor:
    from texbench.imageio import load_image

    return load_image(store.root / rel)


def _quantised(t: torch.Tensor) -> torch.Tensor:
    from texbench.imageio import to_uint8

    return torch.from_numpy(to_uint8(t)).permute(2, 0, 1).float() / 255.0


def score_run(store: Store, suite: Suite, jobs: Sequence[Job], *, device: str = "cpu", progress: bool = True) -> None:
    """Compute every missing score: per-image, per seed-pair (diversity) and set-level.

    Metrics score the saved (quantised) outputs against references quantised the same way. A metric
    that fails is recorded with its message; the others go on.
    """
    from tqdm.auto import tqdm

    status = store.ok_outputs()
    metrics = _Metrics(device)
    done = store.scored_columns(metrics.version)
    uses_by_task = {}
    for spec in suite.tasks:
        task = get_task(spec.task)
        uses = spec.metrics if spec.metrics is not None else task.default_metrics
        uses_by_task[(spec.task, spec.dataset_label)] = (
            [u for u in uses if u.ref != "seeds"],
            [u for u in uses if u.ref == "seeds"],
            list(spec.set_metrics if spec.set_metrics is not None else task.set_metrics),
        )
    ok_jobs = [j for j in jobs if j.key in status]
    todo = [j for j in ok_jobs if any(u.key not in done.get(j.key, set()) for u in uses_by_task[(j.task, j.dataset)][0])]
    for job in tqdm(todo, desc="scoring", unit="img", disable=not progress or not todo):
        out = _load_output(store, status[job.key])[None]
        rows = []
        for use in uses_by_task[(job.task, job.dataset)][0]:
            if use.key in done.get(job.key, set()):
                continue
            row = {"column": use.key, "metric": use.metric, "ref": use.ref, "params": dict(use.params),
                   "higher_is_better": metrics.higher_is_better(use), "metric_version": metrics.version(use.metric)}
            try:
                ref = job.example.references.get(use.ref)
                if ref is None:
                    raise ValueError(f"task {job.task} has no reference {use.ref!r}")
                m = metrics.get(use)
                with torch.no_grad():
                    value = float(m(out.to(m.device), _quantised(ref)[None].to(m.device))[0])
                row.update(value=value, provenance=m.provenance())
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
        store.write_scores(job.key, rows)
    _score_groups(store, ok_jobs, status, uses_by_task, metrics, progress)


def _group_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


class _LazyOutputs:
    """The saved outputs of a group of jobs, read from disk on first use and then shared by its metrics."""

    def __init__(self, store: Store, status: dict[str, str], jobs: Sequence[Job]) -> None:
        self.store, self.status, self.jobs = store, status, jobs
        self._images: list[torch.Tensor] | None = None

    def get(self) -> list[torch.Tensor]:
        if self._images is None:
            self._images = [_load_output(self.store, self.status[j.key]) for j in self.jobs]
        return self._images


def _score_groups(store, ok_jobs, status, uses_by_task, metrics, progress) -> None:
    from texbench.imageio import image_hash

    done = store.group_done(metrics.version)
    # diversity between seeds: same task, dataset, method label and item
    by_item = defaultdict(list)
    by_set = defaultdict(list)
    for j in ok_jobs:
        by_item[(j.task, j.dataset, j.label, j.item)].append(j)
        by_set[(j.task, j.dataset, j.label, j.seed)].append(j)
    for (task, dataset, label, item), js in by_item.items():
        seed_uses = uses_by_task[(task, dataset)][1]
        if len(js) < 2 or not seed_uses:
            continue
        js = sorted(js, key=lambda j: j.seed)
        members = [j.key for j in js]
        outputs = _LazyOutputs(store, status, js)
        for use in seed_uses:
            gk = _group_key("seeds", members, use.metric, dict(use.params))
            if (gk, use.key) in done:
                continue
            row = {"group_key": gk, "column": use.key, "task": task, "dataset": dataset, "label": label,
                   "item": item, "seed": None, "metric": use.metric, "ref": use.ref, "params": dict(use.params),
                   "members": members, "higher_is_better": metrics.higher_is_better(use),
                   "metric_version": metrics.version(use.metric)}
            try:
                m = metrics.get(use)
                outs = [o[None].to(m.device) for o in outputs.get()]
                with torch.no_grad():
                    vals = [float(m(a, b)[0]) for a, b in itertools.combinations(outs, 2)]
                row.update(value=sum(vals) / len(vals), extra={"pairs": len(vals)}, provenance=m.provenance())
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            store.write_group_score(row)
    for (task, dataset, label, seed), js in by_set.items():
        set_uses = uses_by_task[(task, dataset)][2]
        if not set_uses:
            continue
        js = sorted(js, key=lambda j: j.item)
        members = [j.key for j in js]
        outputs = _LazyOutputs(store, status, js)
        for use in set_uses:
            gk = _group_key("set", members, use.metric, dict(use.params), seed)
            if (gk, use.key) in done:
                continue
            row = {"group_key": gk, "column": use.key, "task": task, "dataset": dataset, "label": label,
                   "item": None, "seed": seed, "metric": use.metric, "ref": use.ref, "params": dict(use.params),
                   "members": members, "higher_is_better": metrics.higher_is_better(use),
                   "metric_version": metrics.version(use.metric)}
            try:
                m = metrics.get(use)
                outs = outputs.get()
                refs, seen = [], set()
                for j in js:
                    r = j.example.references.get(use.ref)
                    if r is None:
                        raise ValueError(f"task {task} has no reference {use.ref!r}")
                    h = image_hash(r)
                    if h not in seen:
                        seen.add(h)
                        refs.append(_quantised(r))
                with torch.no_grad():
                    res = m.compute_sets(outs, refs, seed=seed)
                extra = {k: v for k, v in res.items() if k != "value"}
                row.update(value=float(res["value"]), extra=extra, provenance=m.provenance())
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            store.write_group_score(row)
