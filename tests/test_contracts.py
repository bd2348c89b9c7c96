"""One contract for everything registered (timm-style): every method and metric meets the same bar."""

from __future__ import annotations

import math

import pytest
import torch

from texbench import registry
from texbench.tasks import TaskInput, get_task

CPU = torch.device("cpu")


def _smooth(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _example(task: str):
    t = get_task(task)
    if task == "texture":
        return t.build({"exemplar": _smooth(48, 48, 0)}, item="c", params=t.params({"size": 56}))
    if task == "solid":
        return t.build({"exemplar": _smooth(32, 32, 4)}, item="c", params=t.params({"size": 12}))
    if task == "style":
        return t.build({"content": _smooth(48, 40, 1), "style": _smooth(40, 48, 2)}, item="c", params=t.params())
    return t.build({"clean": _smooth(64, 64, 3)}, item="c", params=t.params())


def _method_cases():
    cases = []
    for name in registry.synthesizers.names():
        try:
            cls = registry.synthesizers.get(name)
        except registry.PluginError:
            continue
        for task in cls.tasks:
            # Deep Image Prior fits a network per image even at its tiny preset (10-20 s a case)
            marks = [pytest.mark.slow] if name == "dip" else []
            cases.append(pytest.param(name, task, id=f"{name}-{task}", marks=marks))
    return cases


@pytest.fixture(autouse=True)
def _allow_random_weights(monkeypatch):
    # contracts are about shapes and determinism, not about pretrained values
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")


@pytest.mark.parametrize("name,task", _method_cases())
def test_synthesizer_contract(name, task):
    cls = registry.synthesizers.get(name)
    for module in cls.requires:
        pytest.importorskip(module, reason=f"{name} needs the optional package {module}")
    assert name == name.lower() and " " not in name
    assert cls.description and cls.references, "every method has a description and a References line"
    preset = "tiny" if "tiny" in cls.presets else None
    # the contract (shape, range, determinism, bad input) does not need the tiny preset's full budget:
    # iterative methods run 20 iterations here (DIP's 300 took 4 x 18 s of the suite)
    iterations = getattr(cls.from_config(preset).params, "iterations", None)
    budget = {"iterations": 20} if isinstance(iterations, int) and iterations > 20 else {}
    m = cls.from_config(preset, budget)
    ex = _example(task)
    m.prepare(ex.input, seed=0, device=CPU)
    a = m.run(ex.input, seed=0, device=CPU)
    assert isinstance(a, torch.Tensor) and a.shape == (3, *ex.input.size)
    assert a.is_floating_point() and torch.isfinite(a).all()
    assert a.min() >= -1e-3 and a.max() <= 1 + 1e-3
    b = cls.from_config(preset, budget).run(ex.input, seed=0, device=CPU)
    # same seed, same output: bit for bit for texbench's own code; compiled libraries that reduce in threads
    # (BM3D's) may differ by float rounding, far below one 8-bit level of the stored PNG
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg="same seed must give the same output")
    empty = TaskInput(task, "empty", ex.input.size)
    with pytest.raises((ValueError, TypeError)):
        cls.from_config(preset, budget).run(empty, seed=0, device=CPU)


def _metric_cases():
    out = []
    for name in registry.metrics.names():
        try:
            registry.metrics.get(name)
        except registry.PluginError:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("name", _metric_cases())
def test_metric_contract(name):
    cls = registry.metrics.get(name)
    assert cls.kind in ("paired", "unpaired", "set")
    assert isinstance(cls.higher_is_better, bool) and cls.description and cls.references
    m = cls()
    x = torch.stack([_smooth(64, 64, s) for s in range(3)])
    y = torch.stack([_smooth(64, 64, s + 10) for s in range(3)])
    if cls.kind == "set":
        res = m.compute_sets(list(x), list(y), seed=0)
        assert math.isfinite(res["value"])
        return
    v = m(x, y)
    assert v.shape == (3,) and torch.isfinite(v).all()
    single = torch.cat([m(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(v.double(), single.double(), rtol=1e-5, atol=1e-6)
    if cls.identity_is_best:
        same = m(x, x)
        better = same >= v if cls.higher_is_better else same <= v
        assert better.all(), "an image compared with itself scores at least as well as with another"
    with pytest.raises((ValueError, TypeError)):
        m(x[:, :1], y[:, :1])


def _differentiable_metrics():
    return [n for n in _metric_cases() if registry.metrics.get(n).is_differentiable]


def test_differentiable_metrics_are_found():
    # the flag is declared by these today: the check below must not pass vacuously
    assert {"psnr", "ssim", "lpips", "gram-distance", "vgg-content-distance"} <= set(_differentiable_metrics())


@pytest.mark.parametrize("name", _differentiable_metrics())
def test_declared_differentiable_metric_passes_gradients(name):
    """``is_differentiable`` tells the truth: a backward pass from the value reaches the input."""
    cls = registry.metrics.get(name)
    m = cls()
    x = torch.stack([_smooth(64, 64, s) for s in range(2)]).requires_grad_(True)
    y = torch.stack([_smooth(64, 64, s + 10) for s in range(2)])
    v = m(x, y)
    assert v.requires_grad, f"{name} declares is_differentiable, but its value carries no gradient"
    v.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0, f"{name}: the gradient with respect to the input is zero"


def test_volume_outputs_meet_the_same_contract_through_the_executor(tmp_path):
    # a volume task's output goes the images' way: checked, quantised once (uint8 D x H x W x 3), hashed,
    # stored content-addressed (.npy beside a slice preview), read back equal
    from texbench.executors import execute_job
    from texbench.outputs import load_volume, output_kind, preview_path
    from texbench.store import Store

    ex = _example("solid")
    payload = {"method": "heeger-bergen-solid", "preset": "tiny", "params": {}, "input": ex.input, "seed": 0,
               "device": "cpu", "plugin_files": []}
    result = execute_job(payload)
    assert result["status"] == "ok", result["error"]
    # the worker sends the bytes of the stored file (.npy), which decode to the quantised volume
    voxels = output_kind("volume").decode_uint8(result["data"])
    assert voxels.dtype.name == "uint8" and voxels.shape == (12, 12, 12, 3)
    assert execute_job(payload)["output_hash"] == result["output_hash"]
    with Store(tmp_path / "run") as store:
        rel = store.save_output_bytes(result["data"], digest=result["output_hash"], kind="volume")
        assert rel == f"images/{result['output_hash']}.npy"
        assert (store.root / preview_path(rel)).is_file()
        back = load_volume(store.root / rel)
    assert back.shape == (3, 12, 12, 12)
    assert (back.permute(1, 2, 3, 0) * 255).round().to(torch.uint8).numpy().tobytes() == voxels.tobytes()
