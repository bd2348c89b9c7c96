"""The executor's worker side: synthesizers kept between jobs (bounded), outputs checked."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest
import torch

from texbench import executors, registry
from texbench.base import Synthesizer
from texbench.tasks import TaskInput

_LIVE: weakref.WeakSet = weakref.WeakSet()


@dataclasses.dataclass(frozen=True)
class _CountedParams:
    level: int = 0


class _Counted(Synthesizer):
    """A constant image; every instance alive is counted in ``_LIVE``."""

    name = "test-counted"
    tasks = ("denoise",)
    Params = _CountedParams

    def __init__(self, params=None):
        super().__init__(params)
        _LIVE.add(self)

    def run(self, task_input, *, seed, device):
        return torch.full((3, *task_input.size), 0.5)


registry.register(_Counted)


def _payload(level: int) -> dict:
    inp = TaskInput("denoise", "x", (8, 8), image=torch.rand(3, 8, 8))
    return {"method": "test-counted", "preset": None, "params": {"level": level}, "input": inp, "seed": 0,
            "device": "cpu", "plugin_files": []}


def test_the_synthesizer_cache_is_bounded():
    # a suite with many parameter sets must not keep one instance (and its networks) alive per set
    for level in range(1000, 1012):
        assert executors.execute_job(_payload(level))["status"] == "ok"
    gc.collect()
    assert len(_LIVE) <= 4
    assert len(executors.SYNTHESIZERS) <= executors.SYNTHESIZERS.maxsize


def test_the_synthesizer_cache_keeps_the_instances_in_use():
    cache = executors.SynthesizerCache(maxsize=2)
    a = cache.get("test-counted", None, {"level": 1})
    assert cache.get("test-counted", None, {"level": 1}) is a  # the jobs of one method share its instance
    b = cache.get("test-counted", None, {"level": 2})
    assert cache.get("test-counted", None, {"level": 1}) is a  # used last: kept when the next one comes
    cache.get("test-counted", None, {"level": 3})
    assert len(cache) == 2
    assert cache.get("test-counted", None, {"level": 1}) is a
    assert cache.get("test-counted", None, {"level": 2}) is not b  # the least recently used was dropped
    with pytest.raises(ValueError, match="maxsize"):
        executors.SynthesizerCache(maxsize=0)


def test_check_output_names_the_problem():
    ok = executors.check_output(torch.full((3, 4, 5), 1.0005), (4, 5), "m")
    assert float(ok.max()) == 1.0
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        executors.check_output([0.5], (4, 5), "m")
    with pytest.raises(ValueError, match=r"shape \(3, 4, 4\)"):
        executors.check_output(torch.zeros(3, 4, 4), (4, 5), "m")
    with pytest.raises(ValueError, match="non-finite"):
        executors.check_output(torch.full((3, 4, 5), float("nan")), (4, 5), "m")
    with pytest.raises(ValueError, match="outside"):
        executors.check_output(torch.full((3, 4, 5), 2.0), (4, 5), "m")
