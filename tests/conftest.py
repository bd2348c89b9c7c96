"""Shared fixtures: real test images (skipped when ``../shared/data`` is absent) and real-weights guards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$TEXBENCH_SHARED_DATA`` or ``<repo>/../shared/data``, if it exists."""
    env = os.environ.get("TEXBENCH_SHARED_DATA")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real test images not present (../shared/data or $TEXBENCH_SHARED_DATA)")
    return d


def require_weights(spec):
    """Path of the cached, verified weights for ``spec``; skips the test with the reason when absent."""
    from texbench.weights import find_cached

    path = find_cached(spec)
    if path is None:
        pytest.skip(f"real weights {spec.name} not cached: run `texbench weights fetch {spec.name}`")
    return path


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _private_trained_cache(tmp_path, monkeypatch):
    """Methods that train (Texture Networks, Johnson) cache into a per-test folder: a test never passes
    on weights a previous run left behind."""
    monkeypatch.setenv("TEXBENCH_TRAINED", str(tmp_path / "trained"))


@pytest.fixture(autouse=True)
def _private_timings(tmp_path, monkeypatch):
    """Runs keep their job timings in a per-test file (texbench.timings), never in the user's cache."""
    monkeypatch.setenv("TEXBENCH_TIMINGS", str(tmp_path / "timings.jsonl"))


@pytest.fixture
def texbench_home(tmp_path, monkeypatch):
    """An empty, private TEXBENCH_HOME (weights cache and feature caches)."""
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def inception_calls(monkeypatch) -> list[int]:
    """The batch sizes of every FID Inception forward pass made in the test (to check that metrics
    sharing one set of images extract its features once)."""
    from texbench.nets import inception as fe

    calls: list[int] = []
    forward = fe.FIDInceptionV3.forward_preprocessed

    def counting(self, x, *a, **k):
        calls.append(x.shape[0])
        return forward(self, x, *a, **k)

    monkeypatch.setattr(fe.FIDInceptionV3, "forward_preprocessed", counting)
    return calls
