"""The three plugin contracts: :class:`Synthesizer`, :class:`Metric` and :class:`Dataset`.

Built-in and third-party plugins implement the same classes and register the same way
(:mod:`texbench.registry`). A contract test in ``tests/test_contracts.py`` runs over everything
registered, so every plugin meets the same bar.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

from texbench.params import NoParams, build_params, params_to_dict

__all__ = ["Dataset", "DatasetItem", "Metric", "MetricKind", "Resources", "Synthesizer"]


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one job of a method needs from the worker that runs it (:attr:`Synthesizer.resources`).

    The executors read it: Ray asks for ``num_cpus=threads``, ``num_gpus=gpus`` and ``memory`` (bytes)
    per task, so a task runs only where that much is free; the process executor gives the job ``threads``
    torch threads, at most its share of the machine (CPU count / workers); the local executor ignores it.

    Attributes:
        threads: CPU threads one job makes good use of (torch intra-op threads); 1 for single-threaded code.
        gpus: GPUs one job needs: 0, a fraction below 1 (jobs share a GPU), or a whole number. With
            ``device = "auto"`` a job then runs on the GPU its worker was given.
        memory_mb: peak memory of one job in MiB, an estimate; 0 = unknown (nothing is reserved).
    """

    threads: int = 1
    gpus: float = 0
    memory_mb: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"Resources.threads must be a whole number >= 1, got {self.threads!r}")
        g = self.gpus
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not (g >= 0) or (g > 1 and g != int(g)):
            raise ValueError(f"Resources.gpus must be 0, a fraction below 1 or a whole number, got {g!r}")
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int) or self.memory_mb < 0:
            raise ValueError(f"Resources.memory_mb must be a whole number >= 0, got {self.memory_mb!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a job's payload: ``{"threads", "gpus", "memory_mb"}``."""
        return dataclasses.asdict(self)


class Synthesizer(abc.ABC):
    """An image-synthesis method.

    Subclasses set the class attributes and implement :meth:`run`. Parameters are a frozen dataclass
    ``Params`` whose defaults reproduce the paper; ``presets`` holds named overrides (``tiny`` for tests).

    Class attributes:
        name: registry key, lowercase with hyphens (``random-phase``).
        description: one line for ``texbench list``.
        tasks: the tasks it supports (``texture``, ``style``, ``denoise``, ``sr4``).
        version: bump whenever outputs change for the same inputs; part of every job key.
        references: the paper(s).
        registered: ``True``, or why the class is deliberately not registered.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = "1"
    references: ClassVar[str] = ""
    #: optional packages (import names) the method needs beyond texbench's dependencies
    requires: ClassVar[tuple[str, ...]] = ()
    #: ``True``: registered through an entry point (``texbench.synthesizers``). A built-in class that is
    #: deliberately left out of the registry says why here instead (a non-empty string), so the
    #: registry-completeness test can tell it from a forgotten one.
    registered: ClassVar[bool | str] = True
    Params: ClassVar[type] = NoParams
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: style task: whether the method interpolates between several style images (``TaskInput.styles``)
    style_interpolation: ClassVar[bool] = False
    #: what one job needs from its worker (threads, GPUs, memory): mapped to Ray task resources and to the
    #: process executor's threads; the default is one thread, no GPU, no memory reserved
    resources: ClassVar[Resources] = Resources()
    #: style task: whether the method trains once on the task's whole set of style images and is then
    #: applied to any of them (conditional instance normalisation): benchmark jobs then receive that set in
    #: ``TaskInput.style_set`` and their keys depend on it (:func:`texbench.suite.expand`)
    trains_on_style_set: ClassVar[bool] = False

    def __init__(self, params: Any = None) -> None:
        if params is None:
            params = self.Params()
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be {self.Params.__name__}, got {type(params).__name__}")
        self.params = params
        self._info: dict[str, Any] = {}

    @classmethod
    def from_config(
        cls, preset: str | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Synthesizer:
        """Build with a preset (``paper``/``tiny``/...) and ``key=value`` overrides, checked strictly."""
        return cls(build_params(cls.Params, preset=preset, presets=cls.presets, overrides=overrides, owner=cls.name))

    def params_dict(self) -> dict[str, Any]:
        return params_to_dict(self.params)

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:  # noqa: B027
        """Optional training step for methods that learn per input (trained weights are cached)."""

    @abc.abstractmethod
    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        """Synthesise one output.

        Args:
            task_input: a :class:`texbench.tasks.TaskInput`.
            seed: seeds every random choice; the same seed gives the same output on the same device.
            device: where to compute.

        Returns:
            Float tensor ``(3, H, W)`` in [0, 1] with ``(H, W) == task_input.size``.
        """

    def provenance(self) -> dict[str, str]:
        """Weights used by the method: ``{name: "sha256:..." or "random-init:seed=N"}``."""
        return {}

    def record(self, **info: Any) -> None:
        """Attach JSON-serialisable diagnostics (loss curves, iteration counts) to the current job."""
        self._info.update(info)

    def record_training(self, trained: Any) -> None:
        """Record a training from :func:`texbench.trained.load_or_train` (a ``TrainedWeights``) in the
        job's info: ``train_key``, ``train_seconds`` (the training's own duration, also when this job only
        loaded it from the cache) and ``train_cached``. Leaderboards add each distinct training's seconds
        once to the method's ``train s`` column, apart from the per-image inference time."""
        self.record(train_key=trained.key, train_seconds=float(trained.record.get("train_seconds", 0.0)),
                    train_cached=bool(trained.cached))

    def pop_info(self) -> dict[str, Any]:
        info, self._info = self._info, {}
        return info

    # ---------------------------------------------------------------------------------- trajectories
    @property
    def wants_iterates(self) -> bool:
        """Whether someone listens to :meth:`report_iterate` in this job (a method may skip the work of
        forming an intermediate output when nobody does)."""
        return getattr(self, "_iterate_sink", None) is not None

    def report_iterate(self, iteration: int, image: torch.Tensor) -> None:
        """Report an intermediate output of an iterative method: what :meth:`run` would return if it
        stopped after ``iteration`` steps (the method's own unit: DIP's Adam steps, Gatys' evaluations).

        Optional: a method that never calls it is simply not iterative. For restoration tasks the runner
        scores each reported image against the clean reference *for reporting only* (the method never
        sees that score) and stores the curve; elsewhere, or when nobody listens, the call does nothing.
        Report the final output too, at the last iteration, so the curve ends where the result is.

        Args:
            iteration: steps done so far, a non-negative int, increasing from call to call.
            image: float ``(3, H, W)`` in [0, 1] with ``(H, W) == task_input.size``, as :meth:`run` returns.
        """
        sink = getattr(self, "_iterate_sink", None)
        if sink is None:
            return
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise ValueError(f"{self.name}: report_iterate: iteration must be a non-negative int, got {iteration!r}")
        sink(iteration, image)

    @contextlib.contextmanager
    def iterates_to(self, sink: Callable[[int, torch.Tensor], None] | None) -> Iterator[None]:
        """Within the block, :meth:`report_iterate` passes ``(iteration, image)`` to ``sink`` (the runner
        uses it around one job; ``None`` listens to nothing)."""
        before = getattr(self, "_iterate_sink", None)
        self._iterate_sink = sink
        try:
            yield
        finally:
            self._iterate_sink = before


MetricKind = Literal["paired", "unpaired", "set"]


class Metric(abc.ABC):
    """An image-quality metric.

    ``kind`` says how it compares:

    * ``paired``: output and reference are pixel-aligned and the same size (PSNR, SSIM, LPIPS);
    * ``unpaired``: one output against one reference of any size, comparing statistics (SiFID, Gram);
    * ``set``: a set of outputs against a set of references (FID, KID): implement :meth:`compute_sets`.

    Per-image metrics implement ``__call__(x, y) -> Tensor[N]`` on float ``(N, 3, H, W)`` in [0, 1].
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool]
    kind: ClassVar[MetricKind] = "paired"
    is_differentiable: ClassVar[bool] = False
    #: whether an image compared with itself gets the best score (False for copying measures, where a
    #: self-comparison is a total copy)
    identity_is_best: ClassVar[bool] = True
    #: ``True``: registered through an entry point (``texbench.metrics``); else the reason it is not
    #: (a non-empty string), as for :attr:`Synthesizer.registered`.
    registered: ClassVar[bool | str] = True
    references: ClassVar[str] = ""
    #: bump whenever values change for the same inputs and params: stored with every score, and a
    #: stored score of another version is recomputed by the runner, never reused
    version: ClassVar[str] = "1"
    Params: ClassVar[type] = NoParams
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, params: Any = None, *, device: torch.device | str = "cpu") -> None:
        if params is None:
            params = self.Params()
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be {self.Params.__name__}, got {type(params).__name__}")
        self.params = params
        self.device = torch.device(device)

    @classmethod
    def from_config(
        cls, overrides: Mapping[str, Any] | None = None, *, device: torch.device | str = "cpu"
    ) -> Metric:
        return cls(build_params(cls.Params, overrides=overrides, owner=cls.name), device=device)

    def params_dict(self) -> dict[str, Any]:
        return params_to_dict(self.params)

    def provenance(self) -> dict[str, str]:
        """Weights behind the scores: ``{name: "sha256:..." or "random-init:seed=N"}``; empty if none."""
        return {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image values, shape ``(N,)``, float64 where the maths allows."""
        raise NotImplementedError(f"{self.name} is a set-level metric: use compute_sets")

    def compute_sets(
        self, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], *, seed: int = 0
    ) -> dict[str, float]:
        """Set-level value(s) between outputs ``xs`` and references ``ys`` (each ``(3, H, W)``).

        Returns a dict with at least ``"value"`` (e.g. also ``"std"`` for KID).
        """
        raise NotImplementedError(f"{self.name} is a per-image metric: call it on batches")


@dataclasses.dataclass(frozen=True)
class DatasetItem:
    """One image of a dataset. ``load()`` returns float ``(3, H, W)`` in [0, 1]."""

    id: str
    load: Any  # Callable[[], torch.Tensor]; Any keeps the dataclass hashable and picklable-agnostic
    source: str = ""
    license: str = ""


class Dataset(abc.ABC):
    """A named list of images.

    Class attributes:
        name: registry key.
        description: one line for ``texbench list``.
        roles: what the images are good for (``exemplar``, ``content``, ``style``, ``clean``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    roles: ClassVar[tuple[str, ...]] = ()
    license: ClassVar[str] = ""

    @abc.abstractmethod
    def items(self) -> list[DatasetItem]:
        """The images, in a fixed order."""
