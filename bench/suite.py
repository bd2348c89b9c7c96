"""Suite specifications (TOML) and their expansion into jobs.

A suite names tasks × datasets × methods (with parameters) × seeds × metrics. Example::

    name = "quick"
    description = "all four tasks on the built-in images"
    seeds = [0]
    device = "cpu"               # "cpu", "cuda", "cuda:1", "mps" or "auto"
    allow_random_init = false    # may missing pretrained weights fall back to seeded random ones?
    job_timeout = 600            # optional: seconds a job may run before it is stopped and recorded as failed

    [[task]]
    name = "texture"
    datasets = { exemplar = "builtin-textures" }      # a registered dataset ...
    image_size = 128             # centre-crop inputs to a square and resize (antialiased); omit to keep
    params = { size = 128 }      # the task's parameters (output size; sigma for denoise)
    methods = [
      { name = "random-phase" },
      { name = "gatys", preset = "tiny", params = { iterations = 50 }, label = "gatys-tiny" },
      { name = "texture-nets", job_timeout = 1200 },   # a method's own timeout wins over the suite's and --job-timeout
    ]
    seeds = [0, 1]               # optional, overrides the suite's seeds
    limit = 3                    # optional, first N items of each dataset

    [[task]]
    name = "sr4"
    datasets = { clean = { path = "data/set5" } }      # ... or a folder (relative to the working dir)

``metrics`` / ``set_metrics`` (lists of ``{ metric, ref, column, params }``) replace the task's defaults.
The style task pairs every content image with every style image (``pairs = "product"``) or the i-th with
the i-th (``pairs = "zip"``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from texbench.tasks import Example, MetricUse, get_task

__all__ = ["DatasetSpec", "Job", "MethodSpec", "Suite", "SuiteError", "TaskSpec", "builtin_suites",
           "expand", "load_suite"]


class SuiteError(ValueError):
    """A suite file that does not describe a valid benchmark."""


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    preset: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""
    job_timeout: float | None = None  # not part of a job's identity: it says when to give up, not what to run

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        return self.name if self.preset in (None, "paper") else f"{self.name}[{self.preset}]"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str = ""
    path: str = ""
    limit: int | None = None

    @property
    def display(self) -> str:
        return self.name or Path(self.path).name

    def load(self, data_root: Path | None = None):
        from texbench import registry

        if self.path:
            folder = registry.datasets.get("folder")
            p = Path(self.path)
            if not p.is_absolute() and data_root is not None:
                p = data_root / p
            items = folder(str(p)).items()
        else:
            items = registry.datasets.get(self.name)().items()
        return items[: self.limit] if self.limit else items


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    task: str
    datasets: Mapping[str, DatasetSpec]
    methods: tuple[MethodSpec, ...]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics: tuple[MetricUse, ...] | None = None
    set_metrics: tuple[MetricUse, ...] | None = None
    seeds: tuple[int, ...] | None = None
    image_size: int | None = None
    pairs: str = "product"

    @property
    def dataset_label(self) -> str:
        return "+".join(self.datasets[r].display for r in get_task(self.task).roles)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    device: str
    allow_random_init: bool
    tasks: tuple[TaskSpec, ...]
    source: str = ""
    text: str = ""
    job_timeout: float | None = None


def _timeout(raw: Any, where: str) -> float | None:
    """A ``job_timeout`` value: a positive number of seconds (or absent)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw <= 0:
        raise SuiteError(f"{where}: job_timeout must be a positive number of seconds, got {raw!r}")
    return float(raw)


def _metric_uses(raw: Any, where: str) -> tuple[MetricUse, ...]:
    if not isinstance(raw, list):
        raise SuiteError(f"{where} must be a list of {{ metric, ref }} tables")
    out = []
    for m in raw:
        if not isinstance(m, dict) or "metric" not in m or "ref" not in m:
            raise SuiteError(f"{where}: each entry needs 'metric' and 'ref', got {m!r}")
        unknown = set(m) - {"metric", "ref", "column", "params"}
        if unknown:
            raise SuiteError(f"{where}: unknown key(s) {sorted(unknown)} in {m!r}")
        out.append(MetricUse(m["metric"], m["ref"], m.get("column", ""), m.get("params", {})))
    return tuple(out)


def _dataset(raw: Any, where: str) -> DatasetSpec:
    if isinstance(raw, str):
        return DatasetSpec(name=raw)
    if isinstance(raw, dict):
        unknown = set(raw) - {"name", "path", "limit"}
        if unknown or not (raw.get("name") or raw.get("path")):
            raise SuiteError(f"{where}: a dataset is a name or {{ path = '...', limit = N }}, got {raw!r}")
        return DatasetSpec(raw.get("name", ""), raw.get("path", ""), raw.get("limit"))
    raise SuiteError(f"{where}: a dataset is a name or {{ path = '...' }}, got {raw!r}")


def parse_suite(data: Mapping[str, Any], *, source: str = "", text: str = "") -> Suite:
    """Validate a suite given as a dict (the parsed TOML)."""
    allowed = {"name", "description", "seeds", "device", "allow_random_init", "job_timeout", "task"}
    unknown = set(data) - allowed
    if unknown:
        raise SuiteError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    tasks = []
    for i, t in enumerate(data.get("task", [])):
        where = f"{source}: task #{i + 1}"
        t_allowed = {"name", "datasets", "methods", "params", "metrics", "set_metrics", "seeds", "image_size",
                     "limit", "pairs"}
        bad = set(t) - t_allowed
        if bad:
            raise SuiteError(f"{where}: unknown key(s) {sorted(bad)}; allowed: {sorted(t_allowed)}")
        try:
            task = get_task(t.get("name", ""))
        except ValueError as exc:
            raise SuiteError(f"{where}: {exc}") from None
        raw_ds = t.get("datasets", {})
        missing = [r for r in task.roles if r not in raw_ds]
        if missing:
            raise SuiteError(f"{where} ({task.name}): datasets needs the role(s) {missing}")
        limit = t.get("limit")
        datasets = {}
        for role in task.roles:
            ds = _dataset(raw_ds[role], f"{where} dataset {role!r}")
            if limit and ds.limit is None:
                ds = dataclasses.replace(ds, limit=int(limit))
            datasets[role] = ds
        methods = []
        for m in t.get("methods", []):
            if isinstance(m, str):
                m = {"name": m}
            bad = set(m) - {"name", "preset", "params", "label", "job_timeout"}
            if bad or "name" not in m:
                raise SuiteError(f"{where}: a method is {{ name, preset, params, label, job_timeout }}, got {m!r}")
            methods.append(MethodSpec(m["name"], m.get("preset"), dict(m.get("params", {})), m.get("label", ""),
                                      _timeout(m.get("job_timeout"), f"{where} method {m['name']!r}")))
        if not methods:
            raise SuiteError(f"{where} ({task.name}): no methods")
        labels = [m.display for m in methods]
        if len(set(labels)) != len(labels):
            raise SuiteError(f"{where}: method labels must be unique, got {labels}; set 'label'")
        try:
            task.params(t.get("params", {}))
        except ValueError as exc:
            raise SuiteError(f"{where}: {exc}") from None
        pairs = t.get("pairs", "product")
        if pairs not in ("product", "zip"):
            raise SuiteError(f"{where}: pairs must be 'product' or 'zip', got {pairs!r}")
        tasks.append(TaskSpec(
            task=task.name, datasets=datasets, methods=tuple(methods), params=dict(t.get("params", {})),
            metrics=_metric_uses(t["metrics"], f"{where} metrics") if "metrics" in t else None,
            set_metrics=_metric_uses(t["set_metrics"], f"{where} set_metrics") if "set_metrics" in t else None,
            seeds=tuple(int(s) for s in t["seeds"]) if "seeds" in t else None,
            image_size=int(t["image_size"]) if t.get("image_size") else None,
            pairs=pairs,
        ))
    if not tasks:
        raise SuiteError(f"{source}: the suite has no [[task]]")
    return Suite(
        name=str(data.get("name", Path(source).stem or "suite")),
        description=str(data.get("description", "")),
        seeds=tuple(int(s) for s in data.get("seeds", [0])),
        device=str(data.get("device", "cpu")),
        allow_random_init=bool(data.get("allow_random_init", False)),
        tasks=tuple(tasks),
        source=source,
        text=text,
        job_timeout=_timeout(data.get("job_timeout"), source or "suite"),
    )


def builtin_suites() -> dict[str, str]:
    """Name -> TOML text of the suites shipped with texbench."""
    out = {}
    for f in resources.files("texbench").joinpath("suites").iterdir():
        if f.name.endswith(".toml"):
            out[f.name[:-5]] = f.read_text()
    return dict(sorted(out.items()))


def load_suite(name_or_path: str) -> Suite:
    """Load a built-in suite by name (``quick``) or a TOML file by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise SuiteError(f"suite file {p} does not exist")
        text, source = p.read_text(), str(p)
    else:
        suites = builtin_suites()
        if name_or_path not in suites:
            raise SuiteError(f"unknown suite {name_or_path!r}; built-in suites: {', '.join(suites)} (or a .toml path)")
        text, source = suites[name_or_path], f"builtin:{name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: invalid TOML: {exc}") from None
    return parse_suite(data, source=source, text=text)


# --------------------------------------------------------------------------------------------------- jobs
@dataclasses.dataclass
class Job:
    """One unit of work: a method on one example with one seed."""

    key: str
    task: str
    dataset: str
    item: str
    method: MethodSpec
    seed: int
    example: Example
    input_hashes: Mapping[str, str]
    task_params: Mapping[str, Any]

    @property
    def label(self) -> str:
        return self.method.display


def _job_key(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def expand(suite: Suite, *, data_root: Path | None = None, on_bad_input=None) -> list[Job]:
    """Every job of the suite, with its inputs built (datasets loaded, degradations applied).

    Args:
        suite: the suite.
        data_root: base for relative dataset folders (default: the current directory).
        on_bad_input: ``callback(task, dataset, item, message)`` for images that cannot be used; they are
            skipped (and recorded by the runner) rather than stopping the whole benchmark.
    """
    from texbench import registry
    from texbench.imageio import ImageError, image_hash
    from texbench.params import params_to_dict
    from texbench.tasks import center_crop_resize

    jobs: list[Job] = []
    for spec in suite.tasks:
        task = get_task(spec.task)
        methods = []
        for m in spec.methods:  # resolved first, so a typo fails before any image is loaded
            try:
                cls = registry.synthesizers.get(m.name)
                params = cls.from_config(m.preset, m.params).params_dict()
            except (registry.PluginError, ValueError, TypeError) as exc:
                raise SuiteError(f"{suite.source}: task {task.name}, method {m.display}: {exc}") from None
            if task.name not in cls.tasks:
                raise SuiteError(f"method {m.name!r} does not support task {task.name!r} "
                                 f"(it supports {', '.join(cls.tasks)})")
            methods.append((m, cls, params))
        tparams = task.params(spec.params)
        tparams_dict = params_to_dict(tparams)
        loaded: dict[str, list[tuple[str, torch.Tensor]]] = {}
        for role in task.roles:
            good = []
            for it in spec.datasets[role].load(data_root):
                try:
                    img = it.load()
                    if spec.image_size:
                        img = center_crop_resize(img, spec.image_size)
                    if min(img.shape[-2:]) < task.min_size:
                        raise ImageError(f"{it.source or it.id}: image is {img.shape[-1]}x{img.shape[-2]}, "
                                         f"smaller than the {task.min_size}x{task.min_size} task {task.name} needs")
                    good.append((it.id, img))
                except (ImageError, OSError, ValueError) as exc:
                    if on_bad_input is None:
                        raise
                    on_bad_input(task.name, spec.datasets[role].display, it.id, str(exc))
            loaded[role] = good
        combos: list[tuple[tuple[str, tuple[str, torch.Tensor]], ...]]
        if len(task.roles) == 1:
            combos = [((task.roles[0], x),) for x in loaded[task.roles[0]]]
        elif spec.pairs == "zip":
            combos = [tuple(zip(task.roles, xs)) for xs in zip(*(loaded[r] for r in task.roles))]
        else:
            combos = [tuple(zip(task.roles, xs)) for xs in itertools.product(*(loaded[r] for r in task.roles))]
        seeds = spec.seeds or suite.seeds
        for combo in combos:
            item = "+".join(x[0] for _, x in combo)
            images = {role: x[1] for role, x in combo}
            hashes = {role: image_hash(img) for role, img in images.items()}
            example = task.build(images, item=item, params=tparams)
            for m, cls, params in methods:
                for seed in seeds:
                    key = _job_key({"task": task.name, "task_params": tparams_dict, "inputs": hashes,
                                    "method": m.name, "version": cls.version, "params": params,
                                    "seed": seed})
                    jobs.append(Job(key, task.name, spec.dataset_label, item, m, seed, example, hashes,
                                    tparams_dict))
    return jobs
