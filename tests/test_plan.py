"""``texbench run --plan``: counts, missing data and an estimate from stored timings, with nothing run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_runner import _images

from texbench import registry
from texbench.cli import main
from texbench.plan import plan_json, plan_suite
from texbench.runner import run_suite
from texbench.suite import load_suite
from texbench.timings import estimate, key_of, load_timings, record_timing, timings_path


def _suite(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(body))
    return p


@pytest.fixture
def two_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "no-datasets"))
    data = _images(tmp_path / "data", 3)
    return _suite(tmp_path, f"""
        name = "t"
        seeds = [0]
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        params = {{ sigma = 25 }}
        methods = [{{ name = "gaussian-filter" }}, {{ name = "identity" }}]
        [[task]]
        name = "style"
        datasets = {{ content = "builtin-content", style = "builtin-styles" }}
        image_size = 64
        limit = 2
        seeds = [0, 1, 2]
        methods = [{{ name = "reinhard" }}]
        [[task]]
        name = "sr4"
        datasets = {{ clean = "set5" }}
        methods = [{{ name = "bicubic" }}]
        [[task]]
        name = "texture"
        datasets = {{ exemplar = {{ path = "{tmp_path / 'absent'}" }} }}
        methods = [{{ name = "random-phase" }}]
    """)


def test_plan_counts_and_missing_without_running(two_tasks, tmp_path):
    suite = load_suite(str(two_tasks))
    out = plan_json(suite, plan_suite(suite))
    assert list(out) == ["suite", "tasks"] and out["suite"] == "t"
    tasks = out["tasks"]
    assert list(tasks) == ["denoise[data; sigma=25]", "style[builtin-content+builtin-styles]", "sr4[set5]",
                           "texture[absent]"]
    for t in tasks.values():
        assert list(t) == ["inputs", "methods", "seeds", "jobs", "missing", "estimate_s"]
    assert tasks["denoise[data; sigma=25]"] == {"inputs": 3, "methods": 2, "seeds": 1, "jobs": 6, "missing": [],
                                               "estimate_s": None}
    # style: limit 2 on each role, content x style pairs, 3 seeds
    assert tasks["style[builtin-content+builtin-styles]"]["inputs"] == 4
    assert tasks["style[builtin-content+builtin-styles]"]["jobs"] == 12
    # a standard set that is not fetched is counted from its manifest and named as missing
    assert tasks["sr4[set5]"]["inputs"] == 5 and tasks["sr4[set5]"]["missing"] == ["set5"]
    assert tasks["texture[absent]"]["missing"] == [str(tmp_path / "absent")]
    assert not (tmp_path / "runs").exists() and not timings_path().exists()


def test_estimate_from_stored_timings(two_tasks, tmp_path):
    """The estimate is median seconds per pixel of the same method/params/task/host/device x pixels."""
    suite = load_suite(str(two_tasks))
    gf = registry.synthesizers.get("gaussian-filter")
    ident = registry.synthesizers.get("identity")
    for pixels, seconds in ((32 * 32, 2.0), (64 * 64, 16.0), (32 * 32, 3.0)):  # 2, 4 and 3 ms per pixel... /1024
        record_timing(task="denoise", method="gaussian-filter", version=gf.version,
                      params=gf.from_config().params_dict(), device="cpu", pixels=pixels, seconds=seconds)
    # another device or other parameters never price this job
    record_timing(task="denoise", method="gaussian-filter", version=gf.version, params={"sigma": 99}, device="cpu",
                  pixels=1024, seconds=1000.0)
    record_timing(task="denoise", method="identity", version=ident.version, params={}, device="cuda:0",
                  pixels=1024, seconds=1000.0)
    tasks = plan_json(suite, plan_suite(suite, device="cpu"))["tasks"]
    # identity has no timing on the CPU: the task's estimate is unknown rather than a partial sum
    assert tasks["denoise[data; sigma=25]"]["estimate_s"] is None
    record_timing(task="denoise", method="identity", version=ident.version, params=ident.from_config().params_dict(),
                  device="cpu", pixels=1024, seconds=0.5)
    tasks = plan_json(suite, plan_suite(suite, device="cpu"))["tasks"]
    # gaussian-filter: median of (2, 4, 3)/1024 s per pixel = 3 s per 32x32 image; identity 0.5 s; 3 images
    assert tasks["denoise[data; sigma=25]"]["estimate_s"] == pytest.approx(3 * (3.0 + 0.5))
    assert estimate([], 10) is None


def test_runs_keep_timings_that_the_plan_uses(tmp_path, monkeypatch):
    data = _images(tmp_path / "data", 2)
    p = _suite(tmp_path, f"""
        name = "t"
        device = "cpu"
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        methods = [{{ name = "gaussian-filter" }}]
    """)
    suite = load_suite(str(p))
    assert plan_json(suite, plan_suite(suite))["tasks"]["denoise[data]"]["estimate_s"] is None
    run_suite(suite, tmp_path / "run", progress=False, write_report=False)
    stored = load_timings()
    gf = registry.synthesizers.get("gaussian-filter")
    samples = stored[key_of("denoise", "gaussian-filter", gf.version, gf.from_config().params_dict(), "cpu")]
    assert [px for px, _ in samples] == [32 * 32, 32 * 32]
    est = plan_json(suite, plan_suite(suite))["tasks"]["denoise[data]"]["estimate_s"]
    assert est is not None and est == pytest.approx(2 * np.median([s for _, s in samples]), abs=0.1)
    # a torn line (two runs writing at once, a crash) is skipped, not fatal
    with open(timings_path(), "a") as f:
        f.write('{"host": "x", "sec\n')
    assert len(load_timings()[key_of("denoise", "gaussian-filter", gf.version,
                                     gf.from_config().params_dict(), "cpu")]) == 2


def test_cli_plan_text_json_and_errors(two_tasks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["run", "--suite", str(two_tasks), "--plan", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tasks"]["sr4[set5]"]["missing"] == ["set5"]
    r = CliRunner().invoke(main, ["run", "--suite", str(two_tasks), "--plan"])
    assert r.exit_code == 0, r.output
    assert "denoise[data; sigma=25]: 3 inputs x 2 methods x 1 seeds = 6 jobs" in r.output
    assert "texbench datasets fetch set5 --from DIR" in r.output  # Set5 has no download location
    assert "no stored timings on this machine" in r.output
    assert not (tmp_path / "runs").exists()
    r = CliRunner().invoke(main, ["run", "--suite", str(two_tasks), "--json"])
    assert r.exit_code == 2 and "--json" in r.output and "--plan" in r.output
    # a typo in a method fails the plan as it would fail the run
    bad = _suite(tmp_path, """
        name = "t"
        [[task]]
        name = "denoise"
        datasets = { clean = "builtin-clean" }
        methods = [{ name = "gausian-filter" }]
    """)
    r = CliRunner().invoke(main, ["run", "--suite", str(bad), "--plan"])
    assert r.exit_code != 0 and "gausian-filter" in r.output and "Traceback" not in r.output


def test_a_methods_training_set_that_is_not_fetched_is_missing(tmp_path, monkeypatch):
    """johnson-sr[cpu] trains on cbsd68: a plan names it (and the command that fetches it) when it is
    not there, though no task of the suite reads cbsd68."""
    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "no-datasets"))
    data = _images(tmp_path / "data", 2, size=64)
    suite = load_suite(str(_suite(tmp_path, f"""
        name = "t"
        seeds = [0]
        [[task]]
        name = "sr4"
        datasets = {{ clean = {{ path = "{data}" }} }}
        methods = [{{ name = "bicubic" }}, {{ name = "johnson-sr", preset = "cpu" }},
                   {{ name = "johnson-sr", preset = "tiny" }}]
    """)))
    (plan,) = plan_suite(suite)
    assert plan.missing == ["cbsd68 (training images of johnson-sr[cpu])"]  # tiny trains on builtin-train
    assert plan.fetch == ["texbench datasets fetch cbsd68"]
    res = CliRunner().invoke(main, ["run", "--suite", str(tmp_path / "s.toml"), "--plan"])
    assert res.exit_code == 0, res.output
    assert "training images of johnson-sr[cpu]" in res.output and "texbench datasets fetch cbsd68" in res.output
