"""The scoring pass: every missing score of a run, per image, per seed pair (diversity) and per set.

Metrics score the saved (quantised) outputs against references quantised the same way; a metric that
fails is recorded with its message and the others go on; a score stored by another version of its metric
is computed again. Each score carries its metric's direction, so reports rank from the store alone.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from texbench.outputs import output_kind
from texbench.store import Store
from texbench.suite import Job, Suite
from texbench.tasks import MetricUse, get_task, task_output_kind

__all__ = ["score_run"]


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
        kind = output_kind(task_output_kind(job.task))
        out = kind.load(store.root / status[job.key])
        rows = []
        for use in uses_by_task[(job.task, job.dataset)][0]:
            if use.key in done.get(job.key, set()):
                continue
            row = {"column": use.key, "metric": use.metric, "ref": use.ref, "params": dict(use.params),
                   "higher_is_better": metrics.higher_is_better(use), "metric_version": metrics.version(use.metric)}
            try:
                m = metrics.get(use)
                value = kind.score(m, out, job.example.references, use.ref)
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


def _group_row(gk: str, use: MetricUse, metrics: _Metrics, members: list[str], **where: Any) -> dict[str, Any]:
    """A group score's row before its value: the group (task, dataset, label, item or seed), the metric
    use, the member jobs, and what ranking and recomputation need (direction, metric version)."""
    return {"group_key": gk, "column": use.key, **where, "metric": use.metric, "ref": use.ref,
            "params": dict(use.params), "members": members, "higher_is_better": metrics.higher_is_better(use),
            "metric_version": metrics.version(use.metric)}


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
            row = _group_row(gk, use, metrics, members, task=task, dataset=dataset, label=label, item=item, seed=None)
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
            row = _group_row(gk, use, metrics, members, task=task, dataset=dataset, label=label, item=None, seed=seed)
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
