"""Suite specifications (TOML) and their expansion into jobs.

A suite names tasks × datasets × methods (with parameters) × seeds × metrics. Example::

    name = "quick"
    description = "all four tasks on the built-in images"
    seeds = [0]
    device = "cpu"               # "cpu", "cuda", "cuda:1", "mps" or "auto"
    allow_random_init = false    # may missing pretrained weights fall back to seeded random ones?
    max_pixels = 64_000_000      # largest input image (width x height); larger ones are skipped as bad inputs
    job_timeout = 600            # optional: seconds a job may run before it is stopped and recorded as failed

    [[task]]
    name = "texture"
    datasets = { exemplar = "builtin-textures" }      # a registered dataset ...
    image_size = 128             # centre-crop inputs to a square and resize (antialiased); omit to keep
    params = { size = 128 }      # the task's parameters (output size; sigma for denoise)
    methods = [
      { name = "random-phase" },
      { name = "gatys", preset = "tiny", params = { iterations = 50 }, label = "gatys-tiny" },
      # { name = "gatys", replaces = true },   # a --plugin's own "gatys", knowingly shadowing the built-in
      { name = "texture-nets", job_timeout = 1200 },   # a method's own timeout wins over the suite's and --job-timeout
    ]
    # metrics = [{ metric = "psnr", ref = "clean", replaces = true }]   # the same for a metric
    seeds = [0, 1]               # optional, overrides the suite's seeds
    limit = 3                    # optional, first N items of each dataset

    [[task]]
    name = "sr4"
    datasets = { clean = { path = "data/set5" } }      # ... or a folder (relative to the working dir)

``metrics`` / ``set_metrics`` (lists of ``{ metric, ref, column, params }``) replace the task's defaults.
The style task pairs every content image with every style image (``pairs = "product"``) or the i-th with
the i-th (``pairs = "zip"``: by position in the folders' listings, so a skipped input removes its own pair
only; listings of different lengths are an error).

Every value is checked when the suite loads (types, ranges, metric names and refs), and an error is one line
naming the file, the task and the key: ``quick.toml: task 1 (texture): image_size must be a positive integer
up to 8192, got 'big'``. Size checks apply to the original image, before ``image_size`` resizes it.

Size: a little over ~500 lines because the format, the check of every key and the expansion into jobs
are one definition of what a suite means, read together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from texbench.tasks import Example, MetricUse, get_task

__all__ = ["DatasetSpec", "Job", "MethodSpec", "Suite", "SuiteError", "TaskSpec", "builtin_suites",
           "expand", "load_suite", "resolve_methods"]


class SuiteError(ValueError):
    """A suite file that does not describe a valid benchmark."""


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    preset: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""
    #: the suite knows this name is a plugin's that shadows another registration of it (see expand)
    replaces: bool = False
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
    #: metrics whose entries say ``replaces = true``: a plugin registered over another of that name is meant
    replaced_metrics: frozenset[str] = frozenset()

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
    #: pixel budget for input images (texbench.imageio.pixel_budget); None: the default
    max_pixels: int | None = None
    job_timeout: float | None = None


def _timeout(raw: Any, where: str) -> float | None:
    """A ``job_timeout`` value: a positive number of seconds (or absent)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw <= 0:
        raise SuiteError(f"{where}: job_timeout must be a positive number of seconds, got {raw!r}")
    return float(raw)


#: bounds of the values a suite may give (seeds are stored as SQLite INTEGER, a signed 64-bit number)
INT64_MAX = 2**63 - 1
MAX_IMAGE_SIZE = 8192


def _int(raw: Any, where: str, key: str, *, lo: int = 1, hi: int = INT64_MAX, what: str = "a positive integer") -> int:
    """``raw`` as an int in [lo, hi], else a SuiteError naming ``key``."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise SuiteError(f"{where}: {key} must be {what}, got {raw!r}")
    return raw


def _seeds(raw: Any, where: str, key: str = "seeds") -> tuple[int, ...]:
    what = f"a non-empty list of integers in [0, {INT64_MAX}]"
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{where}: {key} must be {what}, got {raw!r}")
    return tuple(_int(x, where, key, lo=0, what=what) for x in raw)


def _str(raw: Any, where: str, key: str) -> str:
    if not isinstance(raw, str):
        raise SuiteError(f"{where}: {key} must be a string, got {raw!r}")
    return raw


def _table(raw: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: {key} must be a table ({{ key = value }}), got {raw!r}")
    return raw


def _metric_uses(raw: Any, where: str, key: str, refs: tuple[str, ...]) -> tuple[MetricUse, ...]:
    from texbench import registry

    if not isinstance(raw, list):
        raise SuiteError(f"{where}: {key} must be a list of {{ metric, ref }} tables, got {raw!r}")
    known = registry.metrics.names()
    out = []
    for m in raw:
        if not isinstance(m, dict) or "metric" not in m or "ref" not in m:
            raise SuiteError(f"{where}: {key}: each entry needs 'metric' and 'ref', got {m!r}")
        unknown = set(m) - {"metric", "ref", "column", "params", "replaces"}
        if unknown:
            raise SuiteError(f"{where}: {key}: unknown key(s) {sorted(unknown)} in {m!r}")
        name = _str(m["metric"], where, f"{key} metric")
        if name not in known:
            raise SuiteError(f"{where}: {key}: unknown metric {name!r}; installed: {', '.join(known)}")
        if m["ref"] not in refs:
            raise SuiteError(f"{where}: {key}: metric {name!r} has ref {m['ref']!r}; this task's refs are "
                             f"{', '.join(refs)}")
        out.append(MetricUse(name, m["ref"], _str(m.get("column", ""), where, f"{key} column"),
                             _table(m.get("params", {}), where, f"{key} params")))
    return tuple(out)


def _dataset(raw: Any, where: str) -> DatasetSpec:
    if isinstance(raw, str):
        return DatasetSpec(name=raw)
    if isinstance(raw, dict):
        unknown = set(raw) - {"name", "path", "limit"}
        if unknown or not (raw.get("name") or raw.get("path")):
            raise SuiteError(f"{where}: a dataset is a name or {{ path = '...', limit = N }}, got {raw!r}")
        limit = _int(raw["limit"], where, "limit") if "limit" in raw else None
        return DatasetSpec(_str(raw.get("name", ""), where, "name"), _str(raw.get("path", ""), where, "path"), limit)
    raise SuiteError(f"{where}: a dataset is a name or {{ path = '...' }}, got {raw!r}")


def _methods(raw: Any, where: str) -> list[MethodSpec]:
    if not isinstance(raw, list):
        raise SuiteError(f"{where}: methods must be a list of {{ name, preset, params, label }} tables, got {raw!r}")
    methods = []
    for m in raw:
        if isinstance(m, str):
            m = {"name": m}
        if not isinstance(m, dict):
            raise SuiteError(f"{where}: a method is {{ name, preset, params, label, replaces, job_timeout }}, got {m!r}")
        bad = set(m) - {"name", "preset", "params", "label", "replaces", "job_timeout"}
        if bad or "name" not in m:
            raise SuiteError(
                f"{where}: a method is {{ name, preset, params, label, replaces, job_timeout }}, got {m!r}"
            )
        preset = m.get("preset")
        if preset is not None:
            preset = _str(preset, where, "method preset")
        replaces = m.get("replaces", False)
        if not isinstance(replaces, bool):
            raise SuiteError(f"{where}: method replaces must be true or false, got {replaces!r}")
        label = _str(m.get("label", ""), where, "method label")
        if "\n" in label or "\r" in label:
            raise SuiteError(f"{where}: method label must be one line, got {label!r}")
        name = _str(m["name"], where, "method name")
        methods.append(MethodSpec(name, preset, dict(_table(m.get("params", {}), where, "method params")), label,
                                  replaces, _timeout(m.get("job_timeout"), f"{where} method {name!r}")))
    return methods


def _task_spec(t: Any, where: str) -> TaskSpec:
    """One ``[[task]]`` table, checked; ``where`` names it in errors (``quick.toml: task 1``)."""
    if not isinstance(t, dict):
        raise SuiteError(f"{where}: a task is a [[task]] table, got {t!r}")
    t_allowed = {"name", "datasets", "methods", "params", "metrics", "set_metrics", "seeds", "image_size",
                 "limit", "pairs"}
    bad = set(t) - t_allowed
    if bad:
        raise SuiteError(f"{where}: unknown key(s) {sorted(bad)}; allowed: {sorted(t_allowed)}")
    try:
        task = get_task(t.get("name", ""))
    except ValueError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    where = f"{where} ({task.name})"
    raw_ds = _table(t.get("datasets", {}), where, "datasets")
    missing = [r for r in task.roles if r not in raw_ds]
    if missing:
        raise SuiteError(f"{where}: datasets needs the role(s) {missing}")
    extra = sorted(set(raw_ds) - set(task.roles))
    if extra:
        raise SuiteError(f"{where}: datasets has role(s) {extra} the task does not use; its roles: "
                         f"{', '.join(task.roles)}")
    datasets = _datasets(raw_ds, task.roles, _int(t["limit"], where, "limit") if "limit" in t else None, where)
    methods = _methods(t.get("methods", []), where)
    if not methods:
        raise SuiteError(f"{where}: no methods")
    labels = [m.display for m in methods]
    if len(set(labels)) != len(labels):
        raise SuiteError(f"{where}: method labels must be unique, got {labels}; set 'label'")
    try:
        task.params(_table(t.get("params", {}), where, "params"))
    except ValueError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    pairs = t.get("pairs", "product")
    if pairs not in ("product", "zip"):
        raise SuiteError(f"{where}: pairs must be 'product' or 'zip', got {pairs!r}")
    image_size = None
    if "image_size" in t:
        image_size = _int(t["image_size"], where, "image_size", hi=MAX_IMAGE_SIZE,
                          what=f"a positive integer up to {MAX_IMAGE_SIZE}")
        if image_size < task.min_size:
            raise SuiteError(f"{where}: image_size must be at least {task.min_size} for task {task.name}, "
                             f"got {image_size}")
    refs = task.roles  # every task's references are its input roles (texbench.tasks)
    return TaskSpec(
        task=task.name, datasets=datasets, methods=tuple(methods), params=dict(t.get("params", {})),
        metrics=_metric_uses(t["metrics"], where, "metrics", (*refs, "seeds")) if "metrics" in t else None,
        set_metrics=_metric_uses(t["set_metrics"], where, "set_metrics", refs) if "set_metrics" in t else None,
        seeds=_seeds(t["seeds"], where) if "seeds" in t else None,
        image_size=image_size,
        pairs=pairs,
        replaced_metrics=_replaced_metrics(t, where),
    )


def _datasets(raw: Mapping[str, Any], roles: Sequence[str], limit: int | None, where: str) -> dict[str, DatasetSpec]:
    """Role -> dataset, the task's ``limit`` applied where a dataset sets none of its own."""
    datasets = {}
    for role in roles:
        ds = _dataset(raw[role], f"{where} dataset {role!r}")
        if limit and ds.limit is None:
            ds = dataclasses.replace(ds, limit=limit)
        datasets[role] = ds
    return datasets


def _replaced_metrics(t: Mapping[str, Any], where: str) -> frozenset[str]:
    """The metric names a task's entries say they knowingly shadow (``replaces = true``)."""
    replaced = set()
    for key in ("metrics", "set_metrics"):
        for m in t.get(key, []) if isinstance(t.get(key), list) else []:
            if isinstance(m, dict) and "replaces" in m:
                if not isinstance(m["replaces"], bool):
                    raise SuiteError(f"{where}: {key} replaces must be true or false, got {m['replaces']!r}")
                if m["replaces"] and isinstance(m.get("metric"), str):
                    replaced.add(m["metric"])
    return frozenset(replaced)


def parse_suite(data: Mapping[str, Any], *, source: str = "", text: str = "") -> Suite:
    """Validate a suite given as a dict (the parsed TOML): every key, type and range, each error one line
    naming the file, the task and the key."""
    fname = Path(source).name if source and not source.startswith("builtin:") else (source or "suite")
    allowed = {"name", "description", "seeds", "device", "allow_random_init", "job_timeout", "task", "max_pixels"}
    unknown = set(data) - allowed
    if unknown:
        raise SuiteError(f"{fname}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    raw_tasks = data.get("task", [])
    if not isinstance(raw_tasks, list):
        raise SuiteError(f"{fname}: task must be a list of [[task]] tables, got {raw_tasks!r}")
    tasks = [_task_spec(t, f"{fname}: task {i + 1}") for i, t in enumerate(raw_tasks)]
    if not tasks:
        raise SuiteError(f"{fname}: the suite has no [[task]]")
    allow = data.get("allow_random_init", False)
    if not isinstance(allow, bool):
        raise SuiteError(f"{fname}: allow_random_init must be true or false, got {allow!r}")
    max_pixels = None
    if "max_pixels" in data:
        max_pixels = _int(data["max_pixels"], fname, "max_pixels")
    return Suite(
        name=_str(data.get("name", Path(source).stem or "suite"), fname, "name"),
        description=_str(data.get("description", ""), fname, "description"),
        seeds=_seeds(data.get("seeds", [0]), fname),
        device=_str(data.get("device", "cpu"), fname, "device"),
        allow_random_init=allow,
        tasks=tuple(tasks),
        source=source,
        text=text,
        max_pixels=max_pixels,
        job_timeout=_timeout(data.get("job_timeout"), fname),
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


def resolve_methods(suite: Suite, spec: TaskSpec, task: Any) -> list[tuple[MethodSpec, Any, dict[str, Any]]]:
    """(method entry, class, resolved params) per method, and the task's metrics checked for shadowing:
    done before any image is loaded, so a typo fails first."""
    from texbench import registry

    methods = []
    for m in spec.methods:
        shadowed = registry.synthesizers.shadowed(m.name)
        if shadowed and not m.replaces:
            raise SuiteError(f"{suite.source}: task {task.name}, method {m.display}: {shadowed}; set "
                             "replaces = true on the method entry to use it anyway")
        try:
            cls = registry.synthesizers.get(m.name)
            params = cls.from_config(m.preset, m.params).params_dict()
        except (registry.PluginError, ValueError, TypeError) as exc:
            raise SuiteError(f"{suite.source}: task {task.name}, method {m.display}: {exc}") from None
        if task.name not in cls.tasks:
            raise SuiteError(f"method {m.name!r} does not support task {task.name!r} "
                             f"(it supports {', '.join(cls.tasks)})")
        methods.append((m, cls, params))
    uses = [*(spec.metrics if spec.metrics is not None else task.default_metrics),
            *(spec.set_metrics if spec.set_metrics is not None else task.set_metrics)]
    for name in dict.fromkeys(u.metric for u in uses):
        shadowed = registry.metrics.shadowed(name)
        if shadowed and name not in spec.replaced_metrics:
            raise SuiteError(f"{suite.source}: task {task.name}: {shadowed}; list it in the task's metrics "
                             "with replaces = true to use it anyway")
    return methods


def _load_role(spec: TaskSpec, task: Any, role: str, data_root: Path | None,
               on_bad_input) -> list[tuple[str, torch.Tensor] | None]:
    """One role's listing in order, with None where an input is unusable (zip pairs by position)."""
    from texbench.imageio import ImageError
    from texbench.tasks import center_crop_resize

    listing: list[tuple[str, torch.Tensor] | None] = []
    for it in spec.datasets[role].load(data_root):
        try:
            img = it.load()
            # checked on the original: a 1x1 image upscaled to image_size is still not an input
            if min(img.shape[-2:]) < task.min_size:
                raise ImageError(f"{it.source or it.id}: image is {img.shape[-1]}x{img.shape[-2]}, "
                                 f"smaller than the {task.min_size}x{task.min_size} task {task.name} needs")
            if spec.image_size:
                img = center_crop_resize(img, spec.image_size)
            listing.append((it.id, img))
        except (ImageError, OSError, ValueError) as exc:
            if on_bad_input is None:
                raise
            on_bad_input(task.name, spec.datasets[role].display, it.id, str(exc))
            listing.append(None)
    return listing


def _combinations(suite: Suite, spec: TaskSpec, task: Any, loaded: Mapping[str, list]) -> list[tuple]:
    """The inputs of each job: one image per role, paired as the task's ``pairs`` says."""
    good = {r: [x for x in loaded[r] if x is not None] for r in task.roles}
    if len(task.roles) == 1:
        return [((task.roles[0], x),) for x in good[task.roles[0]]]
    if spec.pairs == "zip":
        counts = {r: len(loaded[r]) for r in task.roles}
        if len(set(counts.values())) > 1:
            raise SuiteError(f"{suite.source}: task {task.name}: pairs = 'zip' needs listings of equal length, "
                             "got " + " and ".join(f"{n} {r} images ({spec.datasets[r].display})"
                                                   for r, n in counts.items()))
        return [tuple(zip(task.roles, xs)) for xs in zip(*(loaded[r] for r in task.roles))
                if all(x is not None for x in xs)]
    return [tuple(zip(task.roles, xs)) for xs in itertools.product(*(good[r] for r in task.roles))]


def _style_set(task: Any, loaded: Mapping[str, list]) -> tuple[tuple[torch.Tensor, ...], list[str]] | None:
    """The task's usable style images in listing order and their hashes (None for tasks without styles)."""
    from texbench.imageio import image_hash

    if "style" not in task.roles:
        return None
    images = tuple(x[1] for x in loaded["style"] if x is not None)
    return images, [image_hash(img) for img in images]


def expand(suite: Suite, *, data_root: Path | None = None, on_bad_input=None) -> list[Job]:
    """Every job of the suite, with its inputs built (datasets loaded, degradations applied).

    Args:
        suite: the suite.
        data_root: base for relative dataset folders (default: the current directory).
        on_bad_input: ``callback(task, dataset, item, message)`` for images that cannot be used; they are
            skipped (and recorded by the runner) rather than stopping the whole benchmark.
    """
    from texbench.imageio import image_hash
    from texbench.params import params_to_dict

    jobs: list[Job] = []
    for spec in suite.tasks:
        task = get_task(spec.task)
        methods = resolve_methods(suite, spec, task)
        tparams = task.params(spec.params)
        tparams_dict = params_to_dict(tparams)
        loaded = {role: _load_role(spec, task, role, data_root, on_bad_input) for role in task.roles}
        seeds = spec.seeds or suite.seeds
        style_set = _style_set(task, loaded)
        for combo in _combinations(suite, spec, task, loaded):
            item = "+".join(x[0] for _, x in combo)
            images = {role: x[1] for role, x in combo}
            hashes = {role: image_hash(img) for role, img in images.items()}
            example = task.build(images, item=item, params=tparams)
            for m, cls, params in methods:
                ex, extra = example, {}
                if style_set is not None and cls.trains_on_style_set:
                    # the method trains on the task's whole style set: it is part of the input and the key
                    ex = dataclasses.replace(example, input=dataclasses.replace(example.input, style_set=style_set[0]))
                    extra = {"style_set": style_set[1]}
                for seed in seeds:
                    key = _job_key({"task": task.name, "task_params": tparams_dict, "inputs": hashes,
                                    "method": m.name, "version": cls.version, "params": params,
                                    "seed": seed, **extra})
                    jobs.append(Job(key, task.name, spec.dataset_label, item, m, seed, ex, hashes, tparams_dict))
    return jobs
