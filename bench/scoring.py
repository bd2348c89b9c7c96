"""The scoring pass: every missing score of a run, per image, per seed pair (diversity) and per set.

Metrics score the saved (quantised) outputs against references quantised the same way; a metric that
fails is recorded with its message and the others go on; a score stored by another version of its metric
is computed again. Each score carries its metric's direction, so reports rank from the store alone.

The pass runs on the run's executor, like the jobs: per-image scores in batches of images, and each
seed-pair or set group (with its Inception feature extraction) as one task. A task gets the saved
outputs as PNG bytes and the quantised references (shared once: on Ray, through its object store), and
returns values, errors and the features it extracted; the driver alone writes the store and the feature
cache's disk (workers read it). Results equal the local executor's: the same function computes each
value from the same bytes with the same number of torch and BLAS threads.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from texbench.outputs import output_kind
from texbench.store import Store
from texbench.suite import Job, Suite
from texbench.tasks import MetricUse, get_task, task_output_kind

__all__ = ["score_run", "score_task"]


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


def _quantised(t: torch.Tensor) -> torch.Tensor:
    from texbench.imageio import to_uint8

    return torch.from_numpy(to_uint8(t)).permute(2, 0, 1).float() / 255.0


class _Inputs:
    """What scoring tasks read, prepared once per pass on the driver: outputs as PNG bytes (read from the
    store when a task's payload is built), references quantised and :meth:`share`-d with the executor once."""

    def __init__(self, store: Store, status: dict[str, str], ex: Any) -> None:
        self.store, self.status, self.ex = store, status, ex
        self._refs: dict[int, tuple[str, Any]] = {}

    def output(self, job: Job) -> bytes:
        return (self.store.root / self.status[job.key]).read_bytes()

    def ref(self, image: torch.Tensor) -> tuple[str, Any]:
        """``(hash, shared quantised copy)`` of a reference image."""
        from texbench.imageio import image_hash

        if id(image) not in self._refs:
            self._refs[id(image)] = (image_hash(image), self.ex.share(_quantised(image)))
        return self._refs[id(image)]


class _Payloads(Sequence):
    """Scoring payloads built when an executor asks for them, so outputs are read as they are sent; the
    last one is kept, because an executor looks at a payload (its threads) before it sends it."""

    def __init__(self, specs: list[Any], build: Callable[[Any], dict[str, Any]]) -> None:
        self.specs, self.build = specs, build
        self._last: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i):  # type: ignore[override]
        if self._last is None or self._last[0] != i:
            self._last = (i, self.build(self.specs[i]))
        return self._last[1]


def _batch_size(ex: Any, n: int) -> int:
    """Images per per-image task: about four tasks per worker slot (so the slots stay busy to the end),
    at most 32."""
    slots = getattr(ex, "size", None) or (ex.capacity()[0] if hasattr(ex, "capacity") else 1)
    return max(1, min(32, math.ceil(n / (4 * slots))))


def score_run(store: Store, suite: Suite, jobs: Sequence[Job], *, device: str = "cpu", progress: bool = True,
              executor: Any = None, plugin_files: Sequence[str] = ()) -> None:
    """Compute every missing score: per-image, per seed-pair (diversity) and set-level.

    Metrics score the saved (quantised) outputs against references quantised the same way. A metric
    that fails is recorded with its message; the others go on.

    Args:
        executor: where the scoring tasks run (default: this process, :class:`texbench.executors.LocalExecutor`).
        plugin_files: plugin files the workers load (plugin metrics).
    """
    from tqdm.auto import tqdm

    from texbench.executors import LocalExecutor
    from texbench.metrics.feature_cache import default_cache

    ex = executor if executor is not None else LocalExecutor()
    status = store.ok_outputs()
    metrics = _Metrics(device)  # on the driver: directions and versions only
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
    inputs = _Inputs(store, status, ex)
    # every task scores with this process's torch threads, whatever its executor's own setting: float32
    # matrix products split their sums by thread (Gram matrices differ in the 9th digit between 1 and 2
    # threads), and the values must equal the local pass's bit for bit
    common = {"pass": uuid.uuid4().hex, "device": device, "plugin_files": list(plugin_files),
              "threads": torch.get_num_threads(), "blas_threads": _blas_threads(),
              "resources": {"threads": torch.get_num_threads(), "gpus": 1 if device.startswith("cuda") else 0}}
    todo = []
    for j in ok_jobs:
        missing = [u for u in uses_by_task[(j.task, j.dataset)][0] if u.key not in done.get(j.key, set())]
        if missing:
            todo.append((j, missing))
    size = _batch_size(ex, len(todo))
    specs: list[Any] = [("images", todo[i:i + size]) for i in range(0, len(todo), size)]
    specs += _group_specs(store, ok_jobs, uses_by_task, metrics)
    payloads = _Payloads(specs, lambda spec: {**common, **_build(spec, inputs)})
    cache = default_cache()
    with tqdm(total=len(todo), desc="scoring", unit="img", disable=not progress or not specs) as bar:
        for i, result in ex.map(payloads, fn=score_task):
            for key, arr in result.get("features", {}).items():
                cache.put(key, arr)
            kind, what = specs[i]
            if kind == "images":
                _write_image_scores(store, what, result, metrics)
                bar.update(len(what))
            else:
                _write_group_score(store, what, result)


def _build(spec: tuple[str, Any], inputs: _Inputs) -> dict[str, Any]:
    """A scoring task's payload (without the pass-wide keys)."""
    kind, what = spec
    if kind == "images":
        items = []
        for job, uses in what:
            # every reference of the job, not only those the uses name: a volume's slices are scored against
            # per-axis references (``exemplar:1``) and its cross-slice check against none
            job_refs = {name: inputs.ref(img)[1] for name, img in job.example.references.items() if img is not None}
            items.append({"key": job.key, "task": job.task, "kind": task_output_kind(job.task),
                          "output": inputs.output(job), "refs": job_refs, "uses": uses})
        return {"kind": kind, "items": items}
    rows, js = what
    payload: dict[str, Any] = {"kind": kind, "uses": [use for _, use in rows], "outputs": [inputs.output(j) for j in js],
               "output_kind": task_output_kind(js[0].task),
               "seed": rows[0][0]["seed"], "task": rows[0][0]["task"], "refs": {}}
    if kind == "set":
        for ref_name in dict.fromkeys(use.ref for _, use in rows):
            if any(j.example.references.get(ref_name) is None for j in js):
                continue  # the task fails the metrics that use it, naming the reference
            refs: dict[str, Any] = {}
            for j in js:
                h, shared = inputs.ref(j.example.references[ref_name])
                refs.setdefault(h, shared)
            payload["refs"][ref_name] = list(refs.values())
    return payload


def _score_header(use: MetricUse, metrics: _Metrics) -> dict[str, Any]:
    return {"column": use.key, "metric": use.metric, "ref": use.ref, "params": dict(use.params),
            "higher_is_better": metrics.higher_is_better(use), "metric_version": metrics.version(use.metric)}


def _write_image_scores(store: Store, what: list[tuple[Job, list[MetricUse]]], result: dict[str, Any],
                        metrics: _Metrics) -> None:
    """Store a per-image batch's scores; a batch whose task failed as a whole (its worker died) stores
    that error for each of its scores, to be retried by the next run."""
    for job, uses in what:
        values = result.get("scores", {}).get(job.key, {})
        rows = []
        for use in uses:
            row = _score_header(use, metrics)
            row.update(values.get(use.key) or {"error": result.get("error") or "no result"})
            rows.append(row)
        store.write_scores(job.key, rows)


def _write_group_score(store: Store, what: tuple[list[tuple[dict[str, Any], MetricUse]], list[Job]],
                       result: dict[str, Any]) -> None:
    """Store a group's scores (one per metric use); a task that failed as a whole stores its error."""
    for k, (header, _) in enumerate(what[0]):
        row = dict(header)
        if result.get("status") == "ok":
            row.update(result["scores"][k])
        else:
            row["error"] = result.get("error") or "no result"
        store.write_group_score(row)


# ------------------------------------------------------------------------------------- the worker side
def _blas_threads() -> int | None:
    """This process's BLAS threads (numpy's and scipy's OpenBLAS: SiFID's and FID's eigen-decompositions
    and matrix square roots), or None without ``threadpoolctl`` (installed with the ``ray`` extra)."""
    try:
        import scipy.linalg  # noqa: F401 - loads scipy's own BLAS, so that it is counted too
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=None)


def _blas_limit(threads: int | None) -> Any:
    """Within the block, BLAS uses ``threads`` threads, as the driver does: a Ray worker starts with
    ``OMP_NUM_THREADS=1``, and BLAS results (SiFID) differ in the last digits with the thread count."""
    import contextlib

    if not threads:
        return contextlib.nullcontext()
    try:
        import scipy.linalg  # noqa: F401 - loaded before the limit, so that the limit reaches it
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api="blas")


_WORKER_METRICS: dict[str, _Metrics] = {}


def _worker_metrics(pass_id: str, device: str) -> _Metrics:
    """This worker's metric instances for one scoring pass (a new pass starts afresh: its environment,
    random-init permission or weights may differ)."""
    key = f"{pass_id}|{device}"
    if key not in _WORKER_METRICS:
        _WORKER_METRICS.clear()
        _WORKER_METRICS[key] = _Metrics(device)
    return _WORKER_METRICS[key]


def score_task(payload: dict[str, Any]) -> dict[str, Any]:
    """One scoring task, run by an executor's worker: a batch of images (``kind="images"``), one seed-pair
    group (``"seeds"``) or one set (``"set"``). Returns ``status``, ``scores`` (per image: ``{job key:
    {column: {"value", "provenance"} or {"error"}}}``) or ``score`` (a group's), and ``features``: the
    feature-cache entries extracted here, for the driver to write."""
    from texbench.env import resolve_device
    from texbench.executors import load_plugins
    from texbench.metrics.feature_cache import deferred_writes

    load_plugins(payload.get("plugin_files", ()))
    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    metrics = _worker_metrics(payload["pass"], str(resolve_device(payload["device"])))
    with _blas_limit(payload.get("blas_threads")), deferred_writes() as features, torch.no_grad():
        if payload["kind"] == "images":
            result: dict[str, Any] = {"status": "ok", "scores": _score_images(payload["items"], metrics)}
        else:
            result = {"status": "ok", "scores": _score_group(payload, metrics)}
    result["features"] = features
    return result


def _score_images(items: list[dict[str, Any]], metrics: _Metrics) -> dict[str, dict[str, dict[str, Any]]]:
    from texbench.executors import fetch

    scores: dict[str, dict[str, dict[str, Any]]] = {}
    for item in items:
        kind = output_kind(item["kind"])
        out = kind.decode(item["output"], name=f"output of job {item['key']}")
        refs = {name: fetch(ref) for name, ref in item["refs"].items()}
        scores[item["key"]] = vals = {}
        for use in item["uses"]:
            try:
                m = metrics.get(use)
                # the output kind scores: an image against its reference, a volume slice by slice
                vals[use.key] = {"value": kind.score(m, out, refs, use.ref), "provenance": m.provenance()}
            except Exception as exc:
                vals[use.key] = {"error": f"{type(exc).__name__}: {exc}"}
    return scores


def _score_group(payload: dict[str, Any], metrics: _Metrics) -> list[dict[str, Any]]:
    """For each metric use of a group: its ``value``, ``extra`` and ``provenance``, or its ``error``."""
    from texbench.executors import fetch

    kind = output_kind(payload.get("output_kind", "image"))
    outs = [kind.decode(b, name="output") for b in payload["outputs"]]
    refs = {name: [fetch(r) for r in shared] for name, shared in payload["refs"].items()}
    scores = []
    for use in payload["uses"]:
        try:
            m = metrics.get(use)
            if payload["kind"] == "seeds":
                xs = [o[None].to(m.device) for o in outs]
                vals = [float(m(a, b)[0]) for a, b in itertools.combinations(xs, 2)]
                scores.append({"value": sum(vals) / len(vals), "extra": {"pairs": len(vals)},
                               "provenance": m.provenance()})
                continue
            if use.ref not in refs:
                raise ValueError(f"task {payload['task']} has no reference {use.ref!r}")
            res = m.compute_sets(outs, refs[use.ref], seed=payload["seed"])
            extra = {k: v for k, v in res.items() if k != "value"}
            scores.append({"value": float(res["value"]), "extra": extra, "provenance": m.provenance()})
        except Exception as exc:
            scores.append({"error": f"{type(exc).__name__}: {exc}"})
    return scores


def _group_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _group_row(gk: str, use: MetricUse, metrics: _Metrics, members: list[str], **where: Any) -> dict[str, Any]:
    """A group score's row before its value: the group (task, dataset, label, item or seed), the metric
    use, the member jobs, and what ranking and recomputation need (direction, metric version)."""
    return {"group_key": gk, "column": use.key, **where, "metric": use.metric, "ref": use.ref,
            "params": dict(use.params), "members": members, "higher_is_better": metrics.higher_is_better(use),
            "metric_version": metrics.version(use.metric)}


def _group_specs(store: Store, ok_jobs: Sequence[Job], uses_by_task: dict, metrics: _Metrics) -> list[Any]:
    """The seed-pair (diversity) and set groups with missing scores: ``(kind, ([(row, use), ...], jobs))``."""
    done = store.group_done(metrics.version)
    by_item = defaultdict(list)
    by_set = defaultdict(list)
    for j in ok_jobs:
        # a set (and a seed group) never mixes task variants: denoising at sigma 15 and 50 on one dataset
        # are two sets, as they are two leaderboard tables (texbench.reports.tables)
        variant = json.dumps(dict(j.task_params), sort_keys=True, default=str)
        by_item[(j.task, j.dataset, variant, j.label, j.item)].append(j)
        by_set[(j.task, j.dataset, variant, j.label, j.seed)].append(j)
    specs: list[Any] = []
    for (task, dataset, _, label, item), js in by_item.items():
        seed_uses = uses_by_task[(task, dataset)][1]
        if len(js) < 2 or not seed_uses:
            continue
        js = sorted(js, key=lambda j: j.seed)
        members = [j.key for j in js]
        rows = []
        for use in seed_uses:
            gk = _group_key("seeds", members, use.metric, dict(use.params))
            if (gk, use.key) not in done:
                rows.append((_group_row(gk, use, metrics, members, task=task, dataset=dataset, label=label,
                                        item=item, seed=None), use))
        if rows:
            specs.append(("seeds", (rows, js)))
    for (task, dataset, _, label, seed), js in by_set.items():
        js = sorted(js, key=lambda j: j.item)
        members = [j.key for j in js]
        rows = []
        for use in uses_by_task[(task, dataset)][2]:
            gk = _group_key("set", members, use.metric, dict(use.params), seed)
            if (gk, use.key) not in done:
                rows.append((_group_row(gk, use, metrics, members, task=task, dataset=dataset, label=label,
                                        item=None, seed=seed), use))
        if rows:
            specs.append(("set", (rows, js)))
    return specs
