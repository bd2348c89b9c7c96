"""Test plugins for trajectories, diversity and peak memory (loaded with ``plugin_files``)."""

import dataclasses

import torch

from texbench.base import Synthesizer
from texbench.params import Params, param


@dataclasses.dataclass(frozen=True)
class HogParams(Params):
    mb: int = param(0, ge=0)


def _exemplar_at(task_input) -> torch.Tensor:
    """The exemplar at the output size (the test suites crop it to that size already)."""
    ex = task_input.image
    h, w = task_input.size
    if tuple(ex.shape[-2:]) != (h, w):
        raise ValueError(f"exemplar is {tuple(ex.shape[-2:])}, the test expects the output size {(h, w)}")
    return ex


class ShiftedExemplar(Synthesizer):
    """The exemplar circularly shifted by a random offset per seed: synthesises nothing, yet pixel-aligned
    LPIPS between seeds rates it as diverse."""

    name = "shifted-exemplar"
    description = "the exemplar, circularly shifted by a seeded random offset (test plugin)"
    tasks = ("texture",)

    def run(self, task_input, *, seed, device):
        ex = _exemplar_at(task_input)
        g = torch.Generator().manual_seed(seed)
        dy, dx = (int(torch.randint(1, n, (1,), generator=g)) for n in ex.shape[-2:])
        return torch.roll(ex, (dy, dx), dims=(-2, -1)).clone()


class ExemplarCopy(Synthesizer):
    """The exemplar itself, whatever the seed: deterministic."""

    name = "exemplar-copy"
    description = "the exemplar unchanged (deterministic test plugin)"
    tasks = ("texture",)

    def run(self, task_input, *, seed, device):
        return _exemplar_at(task_input).clone()


class MemoryHog(Synthesizer):
    """Holds ``mb`` MiB (touched, so resident) during the job, then returns the input."""

    name = "memory-hog"
    description = "allocates a given amount of memory, then copies the input (test plugin)"
    tasks = ("denoise",)
    Params = HogParams

    def run(self, task_input, *, seed, device):
        mb = self.params.mb
        if mb:
            block = torch.ones(mb * 2**20 // 4, dtype=torch.float32)
            float(block.sum())
            del block
        return task_input.image.clone()


class Fader(Synthesizer):
    """Iterative in the simplest way: iterate k of ``steps`` is the blend (k/steps)·input + (1 − k/steps)·grey,
    reported every step; used to check the oracle curve against PSNRs computed by hand."""

    name = "fader"
    description = "fades from grey to the input, reporting every step (test plugin)"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        steps = 4
        x = task_input.image
        for k in range(1, steps + 1):
            self.report_iterate(k, (k / steps) * x + (1 - k / steps) * 0.5)
        return x.clone()
