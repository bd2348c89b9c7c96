"""Peak memory per job: the RSS high-water mark of exactly one job (reset between jobs of one worker),
stored with the job and shown beside ``median s/img``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from texbench import executors, probes
from texbench.imageio import save_png
from texbench.reports.leaderboard import leaderboard_markdown, leaderboard_tables
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite
from texbench.tasks import TaskInput

PLUGINS = str(Path(__file__).with_name("plugins_probes.py"))
MiB = 2**20
RESETTABLE = probes.rss_high_water_mark() is not None and os.access("/proc/self/clear_refs", os.W_OK)


def _payload(mb: int) -> dict:
    inp = TaskInput("denoise", "x", (16, 16), image=torch.rand(3, 16, 16))
    return {"method": "memory-hog", "preset": None, "params": {"mb": mb}, "input": inp, "seed": 0, "device": "cpu",
            "plugin_files": [PLUGINS]}


@pytest.fixture(autouse=True)
def _plugins():
    from texbench.registry import load_plugin_file

    load_plugin_file(PLUGINS)


def _run_local(mb: int) -> dict:
    res = executors.execute_job(_payload(mb))
    assert res["status"] == "ok", res["error"]
    return res


@pytest.mark.skipif(not RESETTABLE, reason="needs Linux /proc/self/clear_refs to reset the high-water mark")
def test_each_job_gets_its_own_peak_in_one_process():
    """A small job after a big one in the same process reports its own peak, not the process's lifetime
    mark (what ``ru_maxrss`` alone would give)."""
    big = _run_local(300)["peak_rss_bytes"]
    small = _run_local(0)["peak_rss_bytes"]
    assert big - small > 250 * MiB
    assert probes._maxrss_bytes() < big  # the reset also cleared the lifetime mark


@pytest.mark.skipif(not RESETTABLE, reason="brings the lifetime mark down to the current RSS first")
def test_without_a_reset_only_a_raised_lifetime_mark_is_reported(monkeypatch):
    """Where the OS cannot reset the mark (macOS), a job's peak is known only if the job raised it."""
    probes._reset_rss_high_water_mark()  # the mark at today's RSS, so that 200 MiB surely raise it
    monkeypatch.setattr(probes, "_reset_rss_high_water_mark", lambda: False)
    before = probes._maxrss_bytes()
    raised = _run_local(200)["peak_rss_bytes"]
    assert raised is not None and raised > before + 150 * MiB
    assert _run_local(0)["peak_rss_bytes"] is None  # below the mark: unknown, not borrowed


def test_failed_jobs_carry_no_peak():
    res = executors.failed_result("worker died")
    assert res["peak_rss_bytes"] is None and res["peak_cuda_bytes"] is None and res["trajectory"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_is_torch_max_allocated():
    m = probes.PeakMemory(torch.device("cuda"))
    m.start()
    x = torch.empty(64 * MiB, dtype=torch.uint8, device="cuda")
    del x
    assert m.stop()["peak_cuda_bytes"] >= 64 * MiB


@pytest.mark.skipif(not RESETTABLE, reason="needs Linux /proc/self/clear_refs to reset the high-water mark")
def test_peaks_are_stored_and_shown_beside_the_time(tmp_path):
    """With the process executor one worker runs every job, a big one first: each job gets its own peak."""
    data = tmp_path / "clean"
    data.mkdir()
    save_png(torch.rand(3, 16, 16), data / "a.png")
    p = tmp_path / "suite.toml"
    p.write_text(f"""
name = "mem"
seeds = [0, 1]
[[task]]
name = "denoise"
datasets = {{ clean = {{ path = "{data}" }} }}
metrics = [{{ metric = "psnr", ref = "clean" }}]
set_metrics = []
methods = [{{ name = "memory-hog", params = {{ mb = 300 }}, label = "big" }},
           {{ name = "memory-hog", params = {{ mb = 0 }}, label = "small" }}]
""")
    out = tmp_path / "run"
    run_suite(load_suite(str(p)), out, progress=False, plugin_files=[PLUGINS], executor="process", workers=1)
    with Store(out, readonly=True) as store:
        jobs = store.jobs_frame()
        df = leaderboard_tables(store)["denoise"]
        md = leaderboard_markdown(store)
    peak = jobs.groupby("label")["peak_rss_bytes"]
    assert jobs["peak_rss_bytes"].notna().all()
    assert peak.min()["big"] - peak.max()["small"] > 250 * MiB
    assert df.loc["big", "peak RSS MiB"] == pytest.approx(peak.median()["big"] / MiB)
    header = [c.strip() for c in next(line for line in md.splitlines() if line.startswith("| label")).split("|")]
    assert header.index("peak RSS MiB") == header.index("median s/img") + 1
    assert "high-water mark" in md
