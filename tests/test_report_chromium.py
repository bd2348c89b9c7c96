"""report.html in a real browser: headless Chromium loads it, runs its script, and draws the quality/copying
trade-off picture; the page logs nothing to the console (no uncaught exception, no console.error).

Console output is read from Chromium's own log (``--enable-logging=stderr --v=0`` writes every console
message of the page as an ``INFO:CONSOLE`` line, uncaught exceptions as ``"Uncaught ..."``): no DevTools
client, no websocket library, and the same command a person can run by hand. The report writes nothing
to the console, so any such line is a failure; a page with a deliberate error proves the scan sees one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_verdicts import _write

from texbench.reports.leaderboard import write_leaderboard
from texbench.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)
_CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught")


def _chromium(page: Path, profile: Path, *args: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``page``; its stdout and the console lines of its log."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           "--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, [line for line in res.stderr.splitlines() if _CONSOLE.search(line)]


@pytest.fixture()
def report(tmp_path):
    """report.html of a texture task with one copier and three methods that synthesise."""
    with Store(tmp_path / "run") as st:
        st.set_primary_metrics({"texture": "sifid"})
        _write(st, "texture", "quilting", {"sifid": [40.0, 35.0, 45.0], "copy-fraction": [0.7, 0.75, 0.72]})
        _write(st, "texture", "gatys", {"sifid": [160.0, 150.0, 170.0], "copy-fraction": [0.0, 0.0, 0.0]})
        _write(st, "texture", "patch-ot", {"sifid": [150.0, 140.0, 160.0], "copy-fraction": [0.02, 0.01, 0.03]})
        _write(st, "texture", "random-phase", {"sifid": [170.0, 190.0, 150.0], "copy-fraction": [0.0, 0.0, 0.0]})
        write_leaderboard(st)
    return tmp_path / "run" / "report.html"


def test_the_console_scan_sees_an_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><body><script>console.error('x'); notDefined();</script></body></html>")
    _, console = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console), console


def test_report_html_draws_the_tradeoff_without_console_errors(report, tmp_path):
    from PIL import Image

    dom, console = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert console == []
    svg = re.search(r'<svg class="tradeoff".*?</svg>', dom, re.S)
    assert svg is not None, "no trade-off picture in the rendered page"
    labels = re.findall(r'<circle class="method"[^>]*data-label="([^"]+)"', svg.group(0))
    assert sorted(labels) == ["gatys", "patch-ot", "quilting", "random-phase"]

    shot = tmp_path / "shot.png"
    _, console = _chromium(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,1600")
    assert console == []
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert pixels.std() > 10, "the screenshot is blank"
    # the picture is on screen: the points that synthesise (#2a62b8), the copier (#999999) and the band
    # right of the copy threshold (#f6eeee) are all painted
    for colour, least in (((0x2A, 0x62, 0xB8), 60), ((0x99, 0x99, 0x99), 20), ((0xF6, 0xEE, 0xEE), 2000)):
        hits = int((np.abs(pixels - np.array(colour)).max(1) <= 2).sum())
        assert hits >= least, f"colour {colour}: {hits} pixels"
