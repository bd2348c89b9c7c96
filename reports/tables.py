"""Which leaderboard table each job belongs to: one table per task *variant* (task, dataset, task parameters).

A suite may run one task on several datasets or at several parameter values (``denoise`` on Kodak24 and
CBSD68 at σ = 15, 25 and 50): averaging those into one row per method would mix noise levels and sets, so
each variant gets its own table, titled like ``texbench run --plan`` names it, ``denoise[kodak24; sigma=25]``
(only the parameters that differ between the task's variants are spelt out). A task with one variant in the
store keeps its plain name. Jobs of one variant run with different seed lists (a suite splitting
deterministic and stochastic methods into two ``[[task]]`` tables on the same inputs) share a table.
"""

from __future__ import annotations

import json
import re
from typing import Any

from texbench import columns as C

__all__ = ["file_stem", "params_text", "table_of_jobs", "variant_title"]

def _value(v: Any) -> str:
    """A parameter value as the plan writes it (``25.0`` -> ``25``).

    >>> _value(25.0), _value(0.5), _value(True)
    ('25', '0.5', 'True')
    """
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def variant_title(task: str, dataset: str, params: dict[str, Any], shown: list[str]) -> str:
    """``task[dataset; k=v, ...]`` with the parameters named in ``shown`` (sorted by name).

    >>> variant_title("denoise", "kodak24", {"sigma": 25.0, "clip": True}, ["sigma"])
    'denoise[kodak24; sigma=25]'
    >>> variant_title("sr4", "set5", {"scale": 4}, [])
    'sr4[set5]'
    """
    text = ", ".join(f"{k}={_value(params.get(k))}" for k in sorted(shown))
    return f"{task}[{dataset}{'; ' + text if text else ''}]"


def params_text(params: Any) -> str:
    """A table's task parameters as ``k=v, ...`` by name (``none`` when the task has none).

    >>> params_text({"sigma": 25.0, "clip": True}), params_text({})
    ('clip=True, sigma=25', 'none')
    """
    if not params:
        return "none"
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(params.items()))


def _params_key(raw: Any) -> str:
    """Stored task parameters (JSON text or a dict) in one canonical spelling."""
    params = json.loads(raw) if isinstance(raw, str) and raw else (raw if isinstance(raw, dict) else {})
    return json.dumps(params, sort_keys=True)


def table_of_jobs(jobs: Any, task_order: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Table title -> ``{"task", "dataset", "task_params", "job_keys"}`` for the jobs frame ``jobs``
    (``Store.jobs_frame()``), tasks in ``task_order`` first (then the rest by name), variants of one task
    by dataset, then by parameter values (numbers numerically: σ = 15, 25, 50).

    A task whose jobs all share one dataset and one set of task parameters is titled by its name alone."""
    if not len(jobs):
        return {}
    tasks = list(dict.fromkeys(jobs[C.TASK]))
    order = [t for t in (task_order or []) if t in tasks] + sorted(t for t in tasks if t not in (task_order or []))
    pkeys = [_params_key(p) for p in jobs["task_params"]]
    out: dict[str, dict[str, Any]] = {}
    for task in order:
        mine = [i for i, t in enumerate(jobs[C.TASK]) if t == task]
        variants: dict[tuple[str, str], list[str]] = {}
        for i in mine:
            variants.setdefault((jobs[C.DATASET].iloc[i], pkeys[i]), []).append(jobs[C.JOB_KEY].iloc[i])
        decoded = {pk: json.loads(pk) for _, pk in variants}
        names = sorted({k for p in decoded.values() for k in p})
        shown = [k for k in names if len({json.dumps(p.get(k), sort_keys=True) for p in decoded.values()}) > 1]
        for (dataset, pk), keys in sorted(variants.items(), key=lambda kv: (kv[0][0], _sort_key(decoded[kv[0][1]]))):
            title = task if len(variants) == 1 else variant_title(task, dataset, decoded[pk], shown)
            out[title] = {"task": task, "dataset": dataset, "task_params": decoded[pk], "job_keys": keys}
    return out


def _sort_key(params: dict[str, Any]) -> list[tuple[str, int, float, str]]:
    return [(k, 0, float(v), "") if isinstance(v, int | float) else (k, 1, 0.0, json.dumps(v, sort_keys=True))
            for k, v in sorted(params.items())]


def file_stem(title: str) -> str:
    """A safe file-name part for a table title: the plain task name unchanged, a variant's brackets,
    separators and spaces folded into ``_``.

    >>> file_stem("denoise"), file_stem("denoise[kodak24; sigma=25]"), file_stem("style[a+b]")
    ('denoise', 'denoise_kodak24_sigma_25', 'style_a_b')
    """
    return re.sub(r"[^A-Za-z0-9.-]+", "_", title).strip("_") or "table"
