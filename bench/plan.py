"""A suite's cost before it runs (``texbench run --suite S --plan [--json]``).

Per ``[[task]]`` of the suite: how many inputs (images, or content × style pairs), methods, seeds and jobs
it expands to, which datasets are missing (a standard set not fetched, or only partly; a folder that
does not exist; a method's training images, its ``train_images`` parameter, when they name a standard
set not fetched), and an estimate of the time from this machine's stored timings of earlier runs
(:mod:`texbench.timings`). Nothing is run, written or downloaded, and a missing dataset is counted from
its manifest (``datasets/standard.toml``), so the plan of a suite whose data is not there yet still
says how big it is.

The estimate is the sum over the task's jobs of each job's estimate (median seconds per pixel of the
stored jobs with the same method, version, parameters, task, host and device, times the job's output
pixels). It is ``None`` when any job has no stored timing to go by: a partial sum would read as the cost
of the whole task. The text form shows the partial sum and the methods without timings instead.
Training (``prepare``) time is not included: a trained method's cache makes it a one-off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from texbench.suite import DatasetSpec, Suite, TaskSpec, resolve_methods
from texbench.tasks import get_task

__all__ = ["TaskPlan", "plan_suite", "plan_json", "format_plan"]


@dataclasses.dataclass
class TaskPlan:
    """The plan of one ``[[task]]`` table; ``key`` names it uniquely within the suite."""

    key: str
    inputs: int
    methods: int
    seeds: int
    jobs: int
    missing: list[str]
    fetch: list[str]
    estimate_s: float | None
    known_s: float
    unknown_methods: list[str]


@dataclasses.dataclass
class _Role:
    count: int
    pixels: list[int | None]
    missing: str | None = None
    fetch: str | None = None


def _role(ds: DatasetSpec, image_size: int | None, data_root: Path | None) -> _Role:
    """How many images a dataset gives and their pixel counts (None where unknown), without loading
    images when ``image_size`` fixes their size, and without failing when the dataset is missing."""
    from texbench import registry

    if ds.path:
        p = Path(ds.path)
        if not p.is_absolute() and data_root is not None:
            p = data_root / p
        if not p.is_dir():
            return _Role(0, [], f"{ds.path} (folder not found)")
        items = registry.datasets.get("folder")(str(p)).items()
    else:
        cls = registry.datasets.get(ds.name)
        set_name = getattr(cls, "set_name", "")
        if set_name:  # a standard set: counted from its manifest, fetched or not
            from texbench.datasets.standard import dataset_dir, missing_files, standard_sets

            files = standard_sets()[set_name].files
            n = min(len(files), ds.limit) if ds.limit else len(files)
            bad = missing_files(set_name)
            if bad:
                how = (f"texbench datasets fetch {set_name}" if all(url for _, _, url in files)
                       else f"texbench datasets fetch {set_name} --from DIR")  # no download location recorded
                return _Role(n, [image_size**2 if image_size else None] * n,
                             f"{set_name} ({len(bad)} of {len(files)} files)", how)
            if not image_size:
                return _Role(n, [_header_pixels(dataset_dir(set_name) / f) for f, _, _ in files[:n]])
        items = cls().items()
    items = items[: ds.limit] if ds.limit else items
    if image_size:
        return _Role(len(items), [image_size**2] * len(items))
    pixels: list[int | None] = []
    for it in items:
        try:
            h, w = it.load().shape[-2:]
            pixels.append(int(h) * int(w))
        except Exception:  # an unreadable input is skipped by the run; here it only has no size
            pixels.append(None)
    return _Role(len(items), pixels)


def _training_set(name: Any) -> _Role | None:
    """A method's training images, counted like a task's dataset, when its ``train_images`` parameter
    names a standard set (a folder path or a built-in set has nothing to fetch)."""
    from texbench import registry

    if not isinstance(name, str) or name not in registry.datasets.names():
        return None
    if not getattr(registry.datasets.get(name), "set_name", ""):
        return None
    return _role(DatasetSpec(name=name), 1, None)  # any fixed image size: no image is read for its sizes


def _header_pixels(path: Path) -> int | None:
    """Width × height from an image file's header, without decoding it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]
    except OSError:
        return None


def _output_pixels(spec: TaskSpec, roles: Mapping[str, _Role], task: Any) -> list[int | None]:
    """Output pixels (voxels for a volume) of each input of the task (the size a method returns), in job order."""
    if task.name == "texture":
        size = task.params(spec.params).size
        return [size * size] * roles["exemplar"].count
    if task.name == "solid":  # a volume: its voxels, as the runner records them
        size = task.params(spec.params).size
        return [size**3] * roles["exemplar"].count
    if task.name == "style":
        c, s = roles["content"], roles["style"]
        if spec.pairs == "zip":
            return c.pixels[: min(c.count, s.count)]
        return [p for p in c.pixels for _ in range(s.count)]
    return roles[task.roles[0]].pixels  # restoration: the clean image's size (sr4: after the modcrop)


def _task_key(spec: TaskSpec, suite: Suite, seen: dict[str, int]) -> str:
    """``task[dataset; params]``; a second table with the same inputs (a suite splits deterministic and
    stochastic methods) adds its seeds, and only then a number."""
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.params.items()))
    key = f"{spec.task}[{spec.dataset_label}{'; ' + params if params else ''}]"
    if key in seen:
        key = f"{key[:-1]}; seeds={','.join(map(str, spec.seeds or suite.seeds))}]"
    seen[key] = seen.get(key, 0) + 1
    return key if seen[key] == 1 else f"{key} #{seen[key]}"


def plan_suite(suite: Suite, *, data_root: str | Path | None = None, device: str | None = None) -> list[TaskPlan]:
    """The plan of every ``[[task]]`` of ``suite``, in order (methods and parameters are checked first,
    as a run would, so a typo fails here too)."""
    from texbench.env import resolve_device
    from texbench.timings import estimate, key_of, load_timings

    root = Path(data_root) if data_root else None
    dev = str(resolve_device(device or suite.device))
    timings = load_timings()
    seen: dict[str, int] = {}
    plans = []
    for spec in suite.tasks:
        task = get_task(spec.task)
        methods = resolve_methods(suite, spec, task)
        roles = {r: _role(spec.datasets[r], spec.image_size, root) for r in task.roles}
        pixels = _output_pixels(spec, roles, task)
        seeds = spec.seeds or suite.seeds
        known, unknown = 0.0, []
        for m, cls, params in methods:
            samples = timings.get(key_of(task.name, m.name, cls.version, params, dev), [])
            per_input = [estimate(samples, p) for p in pixels]
            if pixels and any(e is None for e in per_input):
                unknown.append(m.display)
            known += sum(e for e in per_input if e is not None) * len(seeds)
        missing = [r.missing.split(" (")[0] for r in roles.values() if r.missing]
        fetch = [r.fetch for r in roles.values() if r.fetch]
        for m, _, params in methods:  # a method's own training images (johnson-sr[cpu] trains on cbsd68)
            train = _training_set(params.get("train_images"))
            if train is not None and train.missing:
                missing.append(f"{train.missing.split(' (')[0]} (training images of {m.display})")
                fetch.append(train.fetch or "")
        plans.append(TaskPlan(
            key=_task_key(spec, suite, seen), inputs=len(pixels), methods=len(methods), seeds=len(seeds),
            jobs=len(pixels) * len(methods) * len(seeds),
            missing=missing, fetch=[f for f in fetch if f],
            estimate_s=None if unknown else round(known, 1), known_s=known, unknown_methods=unknown,
        ))
    return plans


def plan_json(suite: Suite, plans: list[TaskPlan]) -> dict[str, Any]:
    """``{"suite": name, "tasks": {key: {"inputs", "methods", "seeds", "jobs", "missing", "estimate_s"}}}``."""
    return {"suite": suite.name, "tasks": {
        p.key: {"inputs": p.inputs, "methods": p.methods, "seeds": p.seeds, "jobs": p.jobs,
                "missing": p.missing, "estimate_s": p.estimate_s} for p in plans}}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(suite: Suite, plans: list[TaskPlan]) -> str:
    """The plan as text: one line per task, the missing datasets with the commands that fetch them, and
    the estimate (or what it lacks)."""
    from texbench.timings import timings_path

    lines = [f"suite {suite.name}: {sum(p.jobs for p in plans)} jobs in {len(plans)} tasks (nothing run)"]
    for p in plans:
        if p.estimate_s is not None:
            est = f"about {_duration(p.estimate_s)}"
        elif p.known_s > 0:
            est = f"at least {_duration(p.known_s)}; no timings yet for {', '.join(p.unknown_methods)}"
        else:
            est = "no stored timings on this machine"
        lines.append(f"  {p.key}: {p.inputs} inputs x {p.methods} methods x {p.seeds} seeds = {p.jobs} jobs; {est}")
        for m in p.missing:
            lines.append(f"    missing: {m}")
    fetch = sorted({f for p in plans for f in p.fetch})
    if fetch:
        lines.append("missing datasets: fetch them with")
        lines += [f"  {f}" + ("" if f.endswith("--from DIR") else f"    (or `{f} --from DIR` from a copy you have)")
                  for f in fetch]
    total = [p.estimate_s for p in plans if p.estimate_s is not None]
    if len(total) == len(plans):
        lines.append(f"estimated time: about {_duration(sum(total))} (from {timings_path()})")
    else:
        lines.append(f"estimated time: incomplete; timings come from earlier runs on this machine ({timings_path()})")
    return "\n".join(lines)
