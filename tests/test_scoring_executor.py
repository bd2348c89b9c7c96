"""The scoring pass on an executor (issue #17): per-image batches and group tasks on worker processes give
the local pass's numbers (per-image scores bit for bit, set scores within 1e-9); workers read the feature
cache and return what they extract, the driver alone writes it; resources map to process threads."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from test_runner import PLUGINS, _images

from texbench import executors
from texbench.base import Resources, Synthesizer
from texbench.registry import load_plugin_file
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite


def small_suite(tmp_path: Path) -> Path:
    """Texture (2 exemplars, 2 seeds: SiFID, Gram, copy measures, LPIPS diversity, FID and KID on crops)
    and denoise (3 images: PSNR, SSIM, LPIPS, FID, KID) at small sizes; random weights only where the
    real ones are not cached."""
    data = _images(tmp_path / "data", n=3, size=64)
    p = tmp_path / "small.toml"
    p.write_text(textwrap.dedent(f"""
        name = "small"
        seeds = [0, 1]
        allow_random_init = true
        [[task]]
        name = "texture"
        datasets = {{ exemplar = "builtin-textures" }}
        limit = 2
        image_size = 64
        params = {{ size = 64 }}
        methods = ["random-phase"]
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        seeds = [0]
        params = {{ sigma = 25 }}
        methods = ["gaussian-filter", "copy-input"]
    """))
    return p


def private_home(tmp_path: Path, monkeypatch) -> Path:
    """A fresh TEXBENCH_HOME (empty feature cache) that still sees the real weights, if cached."""
    from texbench.env import texbench_home

    real = texbench_home() / "weights"
    home = tmp_path / "home"
    home.mkdir(parents=True)
    if real.is_dir():
        (home / "weights").symlink_to(real)
    monkeypatch.setenv("TEXBENCH_HOME", str(home))
    return home


def stored_scores(out: Path) -> tuple[dict, dict]:
    """Every per-image score ``{(job, column): value or error}`` and group score ``{(group, column): ...}``."""
    with Store(out) as st:
        per_image = st.scores_frame()
        groups = st.group_scores_frame()
    img = {(r.job_key, r.column): (r.value, r.error) for r in per_image.itertuples()}
    grp = {(r.group_key, r.column): (r.value, r.error) for r in groups.itertuples()}
    return img, grp


def assert_same_scores(a: Path, b: Path) -> int:
    """Per-image scores identical, group scores within 1e-9 (relative to their size); returns how many."""
    img_a, grp_a = stored_scores(a)
    img_b, grp_b = stored_scores(b)
    assert img_a.keys() == img_b.keys() and grp_a.keys() == grp_b.keys()
    for k, (va, ea) in img_a.items():
        vb, eb = img_b[k]
        assert ea is None and eb is None, (k, ea, eb)
        assert va == vb, (k, va, vb)  # bit for bit
    for k, (va, ea) in grp_a.items():
        vb, eb = grp_b[k]
        assert ea is None and eb is None, (k, ea, eb)
        assert math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-9), (k, va, vb)
    return len(img_a) + len(grp_a)


@pytest.mark.slow
def test_scoring_on_worker_processes_equals_local_scoring(tmp_path, monkeypatch):
    home = private_home(tmp_path, monkeypatch)
    load_plugin_file(PLUGINS)
    suite = load_suite(str(small_suite(tmp_path)))
    run_suite(suite, tmp_path / "local", progress=False, write_report=False, plugin_files=[PLUGINS])
    cached = sorted(p.relative_to(home) for p in (home / "features").rglob("*.npy"))
    # a fresh cache for the second run: its workers extract everything again and return it
    home2 = private_home(tmp_path / "second", monkeypatch)
    run_suite(suite, tmp_path / "process", executor="process", workers=2, progress=False, write_report=False,
              plugin_files=[PLUGINS])
    n = assert_same_scores(tmp_path / "local", tmp_path / "process")
    assert n >= 40
    # the driver wrote what the workers extracted: the same cache entries as the local pass
    assert sorted(p.relative_to(home2) for p in (home2 / "features").rglob("*.npy")) == cached


def test_a_scoring_worker_returns_new_features_and_writes_none(tmp_path, monkeypatch):
    import torch

    from texbench.imageio import encode_png
    from texbench.metrics.feature_cache import default_cache
    from texbench.scoring import score_task
    from texbench.tasks import MetricUse

    home = private_home(tmp_path, monkeypatch)
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    g = torch.Generator().manual_seed(0)
    outs = [encode_png(torch.rand(3, 80, 80, generator=g)) for _ in range(2)]
    refs = [torch.rand(3, 80, 80, generator=g).mul(255).round().div(255) for _ in range(2)]
    use = MetricUse("fid", "exemplar", params={"crop_size": 64, "crops_per_image": 2})
    payload = {"kind": "set", "pass": "t", "device": "cpu", "uses": [use], "outputs": outs, "seed": 0,
               "task": "texture", "refs": {"exemplar": refs}}
    res = score_task(payload)
    assert res["status"] == "ok" and math.isfinite(res["scores"][0]["value"])
    if (home / "weights").exists():  # real weights: persistent features are returned, for 2 crops of
        assert len(res["features"]) == 16  # each of 2 outputs and 2 references, at FID's 2 taps
    assert not list(home.rglob("*.npy"))  # and the worker wrote none of them
    for key, arr in res["features"].items():  # what the driver does with them
        default_cache().put(key, arr)
    assert len(list((home / "features").rglob("*.npy"))) == len(res["features"])


class _Threaded(Synthesizer):
    name = "test-threaded"
    tasks = ("denoise",)
    resources = Resources(threads=8, gpus=0.5, memory_mb=1500)

    def run(self, task_input, *, seed, device):
        return task_input.image


def test_resources_map_to_ray_options_and_process_threads():
    r = _Threaded.resources.as_dict()
    assert executors.ray_task_options(r) == {"num_cpus": 8, "num_gpus": 0.5, "memory": 1500 * 2**20}
    assert executors.ray_task_options(Synthesizer.resources.as_dict()) == {"num_cpus": 1, "num_gpus": 0}
    # the process executor: what the method asks, within the machine's share per worker
    assert executors.process_threads(r, workers=2, cpus=16) == 8
    assert executors.process_threads(r, workers=4, cpus=16) == 4
    assert executors.process_threads(r, workers=3, cpus=2) == 1
    ex = executors.ProcessExecutor(workers=2)
    assert ex._threads({"resources": r}) == executors.process_threads(r, workers=2)
    assert executors.ProcessExecutor(workers=2, threads_per_worker=3)._threads({"resources": r}) == 3


@pytest.mark.parametrize("kwargs, message", [({"threads": 0}, "threads"), ({"threads": 1.5}, "threads"),
                                             ({"gpus": -1}, "gpus"), ({"gpus": 1.5}, "gpus"),
                                             ({"gpus": float("nan")}, "gpus"), ({"memory_mb": -1}, "memory_mb")])
def test_bad_resources_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=f"Resources.{message}"):
        Resources(**kwargs)


def test_the_process_executor_sets_each_jobs_threads(tmp_path):
    ex = executors.ProcessExecutor(workers=1)
    try:
        results = dict(ex.map([{"resources": {"threads": 1}}, {"resources": {"threads": 64}}], fn=_torch_threads))
        # a second map reuses the worker the first one started
        again = dict(ex.map([{"resources": {"threads": 1}}], fn=_torch_threads))
    finally:
        ex.close()
    import os

    assert results[0]["threads"] == 1
    assert results[1]["threads"] == max(1, min(64, os.cpu_count() or 1))
    assert again[0]["pid"] == results[0]["pid"]


def _torch_threads(payload: dict) -> dict:
    import os

    import torch

    torch.set_num_threads(int(payload["threads"]))
    return {"threads": torch.get_num_threads(), "pid": os.getpid()}


def _timed(payload: dict) -> dict:
    import os
    import time
    from pathlib import Path

    t0 = time.monotonic()
    if payload.get("meet"):  # wait (at most 20 s) until the other payload runs too
        d = Path(payload["meet"])
        (d / str(os.getpid())).touch()
        while len(list(d.iterdir())) < 2 and time.monotonic() - t0 < 20:
            time.sleep(0.05)
    else:
        time.sleep(0.4)
    return {"start": t0, "end": time.monotonic(), "pid": os.getpid()}


def test_payloads_that_fix_their_threads_share_the_cores(monkeypatch, tmp_path):
    """Two scoring tasks with the driver's 2 threads on a 2-core machine run one after the other, on one
    warm worker (not side by side at half speed, each loading every network); 1-thread jobs still run two
    at a time; a user's explicit threads_per_worker x workers above the cores is left as chosen."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    ex = executors.ProcessExecutor(workers=2)
    try:
        jobs = dict(ex.map([{"resources": {"threads": 1}, "meet": str(tmp_path)}] * 2, fn=_timed))
        scoring = dict(ex.map([{"threads": 2}] * 3, fn=_timed))
    finally:
        ex.close()
    assert len({r["pid"] for r in jobs.values()}) == 2
    assert all(r["end"] - r["start"] < 19 for r in jobs.values())  # they met: side by side
    spans = sorted((r["start"], r["end"]) for r in scoring.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # never two at once
    assert len({r["pid"] for r in scoring.values()}) == 1
    assert executors.ProcessExecutor(workers=2, threads_per_worker=2)._cores() == 4
