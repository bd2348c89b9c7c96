"""``--executor ray`` against a real Ray head on 127.0.0.1 (issues #16, #17): every stored score equals a
local run's, and a method that crashes, hangs, exits or has its worker killed from outside fails alone,
with its reason, while the rest of the run completes. Skipped, with the reason, where ray is not installed
(``.ci/run`` installs the ``ray`` extra, so CI runs it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults import FAULTS, LIGHT, _errors, _fault_suite
from test_runner import PLUGINS
from test_scoring_executor import assert_same_scores, private_home, small_suite

from texbench.registry import load_plugin_file
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import load_suite

pytest.importorskip("ray", reason="ray is not installed (pip install 'texbench[ray]')")

ROOT = Path(__file__).resolve().parents[1]


def _ray_cli() -> str:
    """The ``ray`` command of this interpreter's environment."""
    here = Path(sys.executable).with_name("ray")
    found = str(here) if here.is_file() else shutil.which("ray")
    if found is None:
        pytest.skip("the ray command line is not installed next to this python")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the head and its drivers: no usage reports; no token authentication (a head on this machine only,
#: and Ray >= 2.5x turns tokens on by itself once ~/.ray/auth_token exists, for the head but not for a
#: driver that connects to it)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on this machine with 2 CPUs and no GPU: ``127.0.0.1:PORT``; ``ray stop`` after."""
    cli, port = _ray_cli(), _free_port()
    env = {**os.environ, **RAY_ENV}
    try:
        subprocess.run([cli, "start", "--head", "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false",
                        "--disable-usage-stats"], check=True, env=env, capture_output=True, timeout=90)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([cli, "stop"], env=env, capture_output=True, timeout=90)


def _texbench(*args: str, env: dict) -> subprocess.Popen:
    """``texbench ARGS`` as a user runs it, in its own process (its own Ray driver)."""
    return subprocess.Popen([sys.executable, "-m", "texbench", *args], cwd=ROOT, env={**env, **RAY_ENV}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.timeout(900)
def test_a_suite_on_a_ray_head_stores_the_local_runs_scores(ray_head, tmp_path, monkeypatch):
    home = private_home(tmp_path, monkeypatch)
    load_plugin_file(PLUGINS)
    suite_file = small_suite(tmp_path)
    run_suite(load_suite(str(suite_file)), tmp_path / "local", progress=False, write_report=False,
              plugin_files=[PLUGINS])
    local_features = sorted(p.relative_to(home) for p in (home / "features").rglob("*.npy"))
    home2 = private_home(tmp_path / "ray", monkeypatch)  # an empty feature cache: the workers extract again
    proc = _texbench("run", "--suite", str(suite_file), "--out", str(tmp_path / "ray-run"), "--executor", "ray",
                     "--ray-address", ray_head, "--plugin", PLUGINS, "--quiet", env=dict(os.environ))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert "0 failed" in out
    n = assert_same_scores(tmp_path / "local", tmp_path / "ray-run")
    assert n >= 40
    # the Ray workers' features were written by the driver, as the local pass wrote its own
    assert sorted(p.relative_to(home2) for p in (home2 / "features").rglob("*.npy")) == local_features


def _kill_when_they_report(pid_dir: Path, proc: subprocess.Popen, deadline: float) -> int:
    """SIGKILL each process that writes a PID file into ``pid_dir``, until ``proc`` ends; how many."""
    killed: set[str] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        for f in pid_dir.glob("*.pid"):
            if f.name not in killed:
                killed.add(f.name)
                try:
                    os.kill(int(f.read_text()), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
    return len(killed)


def test_on_ray_a_crashing_hanging_or_killed_method_fails_alone(ray_head, tmp_path):
    # 1 image: os._exit, a hang stopped by its 3 s timeout, sys.exit(3), a worker killed from outside
    # mid-job (SIGKILL, as the OOM killer would), and an innocent method on the same 2 CPUs
    methods = '"hard-exit", { name = "hang", job_timeout = 3 }, "exit-in-run", "wait-to-be-killed", "copy-input"'
    suite_file = _fault_suite(tmp_path, methods, extra="limit = 1\n" + LIGHT)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {**os.environ, "TEXBENCH_TEST_PID_DIR": str(pid_dir)}
    proc = _texbench("run", "--suite", str(suite_file), "--out", str(tmp_path / "run"), "--executor", "ray",
                     "--ray-address", ray_head, "--plugin", PLUGINS, "--plugin", FAULTS, "--quiet", env=env)
    killed = _kill_when_they_report(pid_dir, proc, time.monotonic() + 180)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert killed == 1
    assert "5 jobs run (4 failed)" in out
    errs = _errors(tmp_path / "run")
    assert all(e.startswith("worker died while running this job (Ray: WorkerCrashedError") for e in errs["hard-exit"])
    assert all(e.startswith("worker died while running this job (Ray: WorkerCrashedError")
               for e in errs["wait-to-be-killed"])
    assert errs["hang"] == ["timed out after 3 s (its Ray worker was stopped)"]
    assert len(errs["exit-in-run"]) == 1 and "sys.exit(3)" in errs["exit-in-run"][0]
    assert errs["copy-input"] == ["ok"]
    with Store(tmp_path / "run") as st:
        scores = st.scores_frame().query("label == 'copy-input'")
    assert len(scores) == 1 and scores["value"].notna().all()
