"""kill -9 in the middle of a run loses nothing that was finished and corrupts nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_runner import PLUGINS, _suite

QUALITY = ["label", "psnr", "psnr ci95", "ssim", "ssim ci95", "rank", "failed", "n"]


def _run(suite: Path, out: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "texbench", "--plugin", PLUGINS, "run", "--suite", str(suite), "--out", str(out),
           "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _done(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    suite = _suite(tmp_path, '{ name = "slow-copy" }, { name = "gaussian-filter" }')
    suite.write_text(suite.read_text().replace("seeds = [0]", "seeds = [0, 1, 2]"))  # 18 jobs, 9 slow ones
    env = {**os.environ, "TEXBENCH_TEST_SLEEP": "0.4", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    killed = tmp_path / "killed"
    proc = _run(suite, killed, env)
    deadline = time.time() + 120
    while _done(killed / "results.sqlite") < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _done(killed / "results.sqlite")
    assert 3 <= first < 18
    con = sqlite3.connect(killed / "results.sqlite")
    before = dict(con.execute("SELECT job_key, created FROM jobs"))
    con.close()

    resumed = _run(suite, killed, env)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"{first} of 18 jobs already done" in out

    con = sqlite3.connect(killed / "results.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT job_key) FROM jobs").fetchone() == (18, 18)
    after = dict(con.execute("SELECT job_key, created FROM jobs"))
    assert all(after[k] == t for k, t in before.items())  # finished jobs were not re-run
    con.close()

    clean = tmp_path / "clean"
    full = _run(suite, clean, env)
    out, _ = full.communicate(timeout=300)
    assert full.returncode == 0, out
    a = pd.read_csv(killed / "leaderboard.csv")[QUALITY]
    b = pd.read_csv(clean / "leaderboard.csv")[QUALITY]
    pd.testing.assert_frame_equal(a, b)
