"""Nothing a method does takes a run down: sys.exit(), os._exit(), hangs; signals to the driver; a second
run into the same directory (issue #16). Real worker processes, real signals to a real `texbench run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_kill import _done
from test_runner import PLUGINS, _suite

from texbench import executors
from texbench.cli import main
from texbench.registry import PluginError, load_plugin_file
from texbench.runlock import LOCK_NAME, RunDirectoryBusy, run_lock
from texbench.runner import run_suite
from texbench.store import Store
from texbench.suite import SuiteError, load_suite

FAULTS = str(Path(__file__).with_name("fault_plugins.py"))
ROOT = Path(__file__).resolve().parents[1]
#: PSNR only: scoring is not what these tests are about, and FID's network would dominate their time
LIGHT = 'metrics = [{ metric = "psnr", ref = "clean" }]\nset_metrics = []'


def _fault_suite(tmp_path: Path, methods: str, *, top: str = "", extra: str = "") -> Path:
    p = _suite(tmp_path, methods, extra=extra)
    p.write_text(p.read_text().replace("seeds = [0]", f"seeds = [0]\n{top}", 1))
    return p


def _errors(out: Path) -> dict[str, list[str]]:
    with Store(out) as st:
        jobs = st.jobs_frame()
    errs: dict[str, list[str]] = {}
    for method, status, error in zip(jobs["method"], jobs["status"], jobs["error"]):
        errs.setdefault(method, []).append(error if status != "ok" else "ok")
    return errs


# ------------------------------------------------------------------------------------------ sys.exit()
@pytest.mark.parametrize("method, message", [("exit-in-run", "sys.exit(3)"), ("exit-in-prepare", "sys.exit('bye')")])
def test_sys_exit_in_a_method_is_a_failed_job_in_this_process(method, message):
    import torch

    from texbench.tasks import TaskInput

    load_plugin_file(FAULTS)
    inp = TaskInput("denoise", "x", (8, 8), image=torch.rand(3, 8, 8))
    res = executors.execute_job({"method": method, "preset": None, "params": {}, "input": inp, "seed": 0,
                                 "device": "cpu", "plugin_files": []})
    assert res["status"] == "failed"
    assert res["error"].startswith(f"SystemExit: the method called {message}") and "fault_plugins.py" in res["error"]


def test_sys_exit_fails_its_jobs_only_under_the_local_executor(tmp_path):
    load_plugin_file(PLUGINS)
    load_plugin_file(FAULTS)
    suite = load_suite(str(_suite(tmp_path, '"exit-in-run", "exit-in-prepare", "copy-input"', extra=LIGHT)))
    summary = run_suite(suite, tmp_path / "run", progress=False, plugin_files=[PLUGINS, FAULTS])
    assert (summary.ran, summary.failed) == (9, 6)
    errs = _errors(tmp_path / "run")
    assert all("sys.exit(3)" in e for e in errs["exit-in-run"])
    assert all("sys.exit('bye')" in e for e in errs["exit-in-prepare"])
    assert errs["copy-input"] == ["ok"] * 3


def test_a_plugin_calling_sys_exit_at_import_is_a_plugin_error(tmp_path):
    bad = tmp_path / "quits.py"
    bad.write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(PluginError, match=r"quits.py failed to import: it called sys.exit\(0\)"):
        load_plugin_file(bad)
    res = CliRunner().invoke(main, ["--plugin", str(bad), "run", "--suite", "quick", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "Error: plugin file" in res.output and "sys.exit(0)" in res.output
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------ dying and hanging workers
@pytest.mark.slow
def test_process_executor_costs_a_dying_or_hanging_worker_its_own_job_only(tmp_path):
    # 3 images: 3 os._exit jobs, 3 hangs (per-method timeout 1 s beats the suite's 60 s), 3 sys.exit jobs
    # and 3 innocent ones, on 2 workers that are replaced as they die or are stopped
    methods = '"hard-exit", { name = "hang", job_timeout = 1 }, "exit-in-run", "copy-input"'
    suite = load_suite(str(_fault_suite(tmp_path, methods, top="job_timeout = 60", extra=LIGHT)))
    assert suite.job_timeout == 60
    load_plugin_file(PLUGINS)
    load_plugin_file(FAULTS)
    summary = run_suite(suite, tmp_path / "run", executor="process", workers=2, progress=False,
                        plugin_files=[PLUGINS, FAULTS])
    assert (summary.ran, summary.failed) == (12, 9)
    errs = _errors(tmp_path / "run")
    assert errs["hard-exit"] == ["worker died while running this job (exit code 1)"] * 3
    assert errs["hang"] == ["timed out after 1 s (its worker was stopped)"] * 3
    assert all("sys.exit(3)" in e for e in errs["exit-in-run"])
    assert errs["copy-input"] == ["ok"] * 3
    with Store(tmp_path / "run") as st:
        scores = st.scores_frame().query("label == 'copy-input'")
    assert len(scores) > 0 and scores["value"].notna().all()


def test_a_job_timeout_isolates_the_local_executor(tmp_path, capsys):
    load_plugin_file(PLUGINS)
    load_plugin_file(FAULTS)
    suite = load_suite(str(_suite(tmp_path, '"hang", "copy-input"', extra="limit = 1\n" + LIGHT)))
    summary = run_suite(suite, tmp_path / "run", progress=False, plugin_files=[PLUGINS, FAULTS], job_timeout=1.5)
    assert (summary.ran, summary.failed) == (2, 1)
    assert _errors(tmp_path / "run") == {"hang": ["timed out after 1.5 s (its worker was stopped)"],
                                         "copy-input": ["ok"]}
    assert "isolated worker process" in capsys.readouterr().err


@pytest.mark.parametrize("top, message", [("job_timeout = 0", "positive number"),
                                          ('job_timeout = "10"', "positive number"),
                                          ("job_timeout = -1.5", "positive number")])
def test_job_timeout_values_are_checked(tmp_path, top, message):
    with pytest.raises(SuiteError, match=f"job_timeout must be a {message}"):
        load_suite(str(_fault_suite(tmp_path, '"copy-input"', top=top)))
    with pytest.raises(SuiteError, match="method 'copy-input': job_timeout"):
        load_suite(str(_suite(tmp_path, '{ name = "copy-input", job_timeout = true }')))
    for bad in ("0", "-1", "inf", "nan", "ten"):
        res = CliRunner().invoke(main, ["run", "--job-timeout", bad, "--out", str(tmp_path / "r")])
        # click's range check lets NaN through (every comparison is false); run_suite's own check does not
        assert res.exit_code in (1, 2) and ("--job-timeout" in res.output or "job_timeout must be" in res.output), bad
        assert "Traceback" not in res.output
    suite = load_suite(str(_suite(tmp_path, '"copy-input"')))
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="job_timeout must be a positive number"):
            run_suite(suite, tmp_path / "r", job_timeout=bad)
    assert not (tmp_path / "r").exists()


def test_local_executor_help_says_what_it_cannot_isolate():
    res = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    text = " ".join(res.output.split())
    assert "os._exit()" in text and "hang" in text and "--job-timeout" in text


# --------------------------------------------------------------------------------------------- signals
def _children(pid: int) -> set[int]:
    """Every living descendant of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def _texbench(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "texbench", "--plugin", PLUGINS, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the run's processes")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_driver_stops_every_worker_and_a_rerun_resumes(tmp_path, sig):
    suite = _suite(tmp_path, '{ name = "slow-copy" }', extra=LIGHT)
    suite.write_text(suite.read_text().replace("seeds = [0]", "seeds = [0, 1, 2, 3]"))  # 12 jobs of 3 s
    env = {**os.environ, "TEXBENCH_TEST_SLEEP": "3", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    args = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--executor", "process", "--workers", "2"]
    proc = _texbench(*args, env=env)
    deadline = time.time() + 120
    while _done(out / "results.sqlite") < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal: " + proc.stdout.read()
    workers = _children(proc.pid)
    assert len(workers) >= 2
    # the lock and the resume do not depend on the signal: checked once (SIGTERM), to keep the suite's time
    full = sig == signal.SIGTERM
    if full:  # meanwhile a second run into the same directory refuses, naming the first one
        second = subprocess.run([sys.executable, "-m", "texbench", "--plugin", PLUGINS, *args], env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and f"in use by another texbench run (PID {proc.pid})" in second.stderr
    proc.send_signal(sig)  # to the driver alone, not its process group
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, text
    line = [x for x in text.splitlines() if x.startswith("interrupted:")]
    assert len(line) == 1 and line[0].endswith("left; run again to resume"), text
    assert "Traceback" not in text
    # multiprocessing's resource tracker ends when it reads EOF from the driver's pipe: a moment after it
    t0 = time.monotonic()
    while any(_alive(p) for p in workers) and time.monotonic() - t0 < 3:
        time.sleep(0.05)
    left = {p: _cmdline(p) for p in workers if _alive(p)}
    assert not left, f"processes of the run still running: {left}"
    assert (out / LOCK_NAME).read_text() == ""  # released, naming no one
    done = _done(out / "results.sqlite")
    assert 1 <= done < 12 and f"interrupted: {done} jobs done, {12 - done} left" in line[0]
    if not full:
        return
    again = _texbench(*args, env={**env, "TEXBENCH_TEST_SLEEP": "0"})
    text, _ = again.communicate(timeout=300)
    assert again.returncode == 0, text
    assert f"Resuming: {done} of 12 jobs already done" in text
    assert _done(out / "results.sqlite") == 12


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the run's processes")
def test_workers_end_by_themselves_when_the_driver_is_killed(tmp_path):
    suite = _suite(tmp_path, '{ name = "slow-copy" }', extra=LIGHT)
    suite.write_text(suite.read_text().replace("seeds = [0]", "seeds = [0, 1, 2, 3]"))
    env = {**os.environ, "TEXBENCH_TEST_SLEEP": "3", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    proc = _texbench("run", "--suite", str(suite), "--out", str(out), "--quiet", "--executor", "process",
                     "--workers", "2", env=env)
    deadline = time.time() + 120
    while _done(out / "results.sqlite") < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal: " + proc.stdout.read()
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)  # no clean-up in the driver: the workers notice it is gone
    proc.wait()
    t0 = time.monotonic()
    while any(_alive(p) for p in workers) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
    assert time.monotonic() - t0 < 2  # in the middle of a 3 s job


# ----------------------------------------------------------------------------------------------- lock
def test_a_second_run_into_the_same_directory_refuses_naming_the_first(tmp_path):
    load_plugin_file(PLUGINS)
    suite = load_suite(str(_suite(tmp_path, '"copy-input"')))
    out = tmp_path / "run"
    run_suite(suite, out, progress=False, write_report=False)
    with run_lock(out):  # another run holds it (flock: a second open file description is refused)
        with pytest.raises(RunDirectoryBusy, match=rf"in use by another texbench run \(PID {os.getpid()}\)"):
            run_suite(suite, out, progress=False)
        res = CliRunner().invoke(main, ["--plugin", PLUGINS, "run", "--suite", str(tmp_path / "s.toml"),
                                        "--out", str(out), "--quiet"])
        assert res.exit_code == 1 and f"(PID {os.getpid()})" in res.output and "another --out" in res.output
        assert len(res.output.strip().splitlines()) == 1
        # reading a run does not need the lock
        res = CliRunner().invoke(main, ["report", str(out)])
        assert res.exit_code == 0, res.output
    run_suite(suite, out, progress=False)  # released


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    load_plugin_file(PLUGINS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{dead.pid}\n")
    suite = load_suite(str(_suite(tmp_path, '"copy-input"')))
    summary = run_suite(suite, out, progress=False, write_report=False)
    assert summary.ran == 3
    assert (out / LOCK_NAME).read_text() == ""  # released at the end
