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

__all__ = ["RunSummary", "run_suite", "score_run"]


@dataclasses.dataclass
class RunSummary:
    out: Path
    total: int
    skipped: int
    ran: int
    failed: int
    bad_inputs: int
    leaderboard: Path | None = None


def _payload(job: Job, device: str, plugin_files: Sequence[str]) -> dict[str, Any]:
    return {"method": job.method.name, "preset": job.method.preset, "params": dict(job.method.params),
            "input": job.example.input, "seed": job.seed, "device": device, "plugin_files": list(plugin_files)}


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
    """
    from texbench.env import environment, resolve_device

    out = Path(out)
    with _random_init_allowed(suite.allow_random_init):
        bad: list[tuple[str, str, str, str]] = []

        def on_bad(task, dataset, item, message):
            bad.append((task, dataset, item, message))
            print(f"skipping bad input: {message}", file=sys.stderr)

        # the datasets are read before the run directory exists: a missing set or device creates nothing
        jobs = expand(suite, data_root=Path(data_root) if data_root else None, on_bad_input=on_bad)
        device = str(resolve_device(suite.device))
        with Store(out) as store:
            env = environment(device)
            _record_run(store, suite, jobs, bad, env)
            todo = _jobs_to_run(store, jobs, out, rerun=rerun, retry_failed=retry_failed)
            failed = 0
            if todo:
                failed = _run_jobs(store, suite.name, todo, env, device=device, executor=executor, workers=workers,
                                   ray_address=ray_address, plugin_files=plugin_files, progress=progress)
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
              workers: int | None, ray_address: str | None, plugin_files: Sequence[str], progress: bool) -> int:
    """Run ``todo`` on the executor, committing each result as it comes; returns how many failed."""
    from tqdm.auto import tqdm

    from texbench.executors import make_executor

    failed = 0
    ex = make_executor(executor, workers=workers, address=ray_address)
    payloads = [_payload(j, device, plugin_files) for j in todo]
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
