"""The command line: list, synth, score, plugins (file and entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from texbench.cli import main

REPO = Path(__file__).resolve().parents[1]


def _png(path: Path, seed: int, size=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def test_list_shows_everything():
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0, res.output
    for word in ("tasks:", "texture", "methods:", "random-phase", "nl-means", "metrics:", "psnr", "ssim",
                 "datasets:", "builtin-textures", "suites:", "quick"):
        assert word in res.output


def test_score_psnr_pairs_folders_by_name(tmp_path):
    a = {n: _png(tmp_path / "a" / f"{n}.png", i) for i, n in enumerate(["x", "y", "only_a"])}
    b = {n: _png(tmp_path / "b" / f"{n}.png", 10 + i) for i, n in enumerate(["y", "x", "only_b"])}
    res = CliRunner().invoke(main, ["score", "psnr", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    vals = {r["name"]: r["value"] for r in out["pairs"]}
    for n in ("x", "y"):  # paired by name, not by sorted position
        assert vals[n] == pytest.approx(peak_signal_noise_ratio(b[n], a[n], data_range=255), abs=1e-6)
    assert out["mean"] == pytest.approx((vals["x"] + vals["y"]) / 2)
    assert out["only_in_a"] == ["only_a"] and out["only_in_b"] == ["only_b"]
    table = CliRunner().invoke(main, ["score", "ssim", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")])
    assert table.exit_code == 0 and "mean" in table.output


def test_score_rejects_unknown_metric_and_params(tmp_path):
    _png(tmp_path / "a.png", 0)
    res = CliRunner().invoke(main, ["score", "psnrr", str(tmp_path / "a.png"), str(tmp_path / "a.png")])
    assert res.exit_code != 0 and "unknown metric 'psnrr'" in res.output
    res = CliRunner().invoke(main, ["score", "psnr", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--net", "vgg"])
    assert res.exit_code != 0 and "unknown parameter" in res.output


def test_synth_on_user_images(tmp_path):
    _png(tmp_path / "ex.png", 0, (32, 32))
    r = CliRunner()
    res = r.invoke(main, ["synth", "random-phase", "--task", "texture", "--input", str(tmp_path / "ex.png"),
                          "--size", "64", "--seed", "3", "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o.png").size == (64, 64)
    res = r.invoke(main, ["synth", "bicubic", "--task", "sr4", "--input", str(tmp_path / "ex.png"),
                          "-o", str(tmp_path / "sr.png")])
    assert res.exit_code == 0 and Image.open(tmp_path / "sr.png").size == (128, 128)
    res = r.invoke(main, ["synth", "nl-means", "--task", "denoise", "--input", str(tmp_path / "ex.png"),
                          "--param", "patch_distance=2", "-o", str(tmp_path / "d.png")])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["synth", "bicubic", "--task", "texture", "--input", str(tmp_path / "ex.png"),
                          "-o", str(tmp_path / "x.png")])
    assert res.exit_code != 0 and "does not support task 'texture'" in res.output
    mask = np.full((32, 32), 255, dtype=np.uint8)
    mask[8:16, 8:16] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    res = r.invoke(main, ["synth", "dip", "--task", "inpaint", "--input", str(tmp_path / "ex.png"), "--mask",
                          str(tmp_path / "mask.png"), "--preset", "tiny", "--param", "iterations=3",
                          "-o", str(tmp_path / "inp.png")])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["synth", "dip", "--task", "inpaint", "--input", str(tmp_path / "ex.png"),
                          "-o", str(tmp_path / "inp2.png")])
    assert res.exit_code != 0 and "--mask" in res.output
    (tmp_path / "bad.png").write_bytes(b"nope")
    res = r.invoke(main, ["synth", "nl-means", "--task", "denoise", "--input", str(tmp_path / "bad.png"),
                          "-o", str(tmp_path / "y.png")])
    assert res.exit_code != 0 and "bad.png" in res.output and not (tmp_path / "y.png").exists()


PLUGIN_SRC = '''
import torch
from texbench.base import Synthesizer

class Mean(Synthesizer):
    name = "ep-mean"
    description = "a plugin installed through an entry point"
    tasks = ("denoise",)

    def run(self, task_input, *, seed, device):
        x = task_input.image
        return (x + x.roll(1, -1) + x.roll(-1, -1) + x.roll(1, -2) + x.roll(-1, -2)) / 5

class Broken(Synthesizer):
    name = "ep-broken"
'''


@pytest.mark.slow
def test_entry_point_plugin_is_listed_and_ranked(tmp_path):
    site = tmp_path / "site"
    (site / "tbplug").mkdir(parents=True)
    (site / "tbplug" / "__init__.py").write_text(PLUGIN_SRC)
    (site / "tbplug" / "broken.py").write_text("raise ImportError('this plugin is broken on purpose')\n")
    dist = site / "tbplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tbplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[texbench.synthesizers]\nep-mean = tbplug:Mean\nep-crash = tbplug.broken:Nope\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = subprocess.run([sys.executable, "-m", "texbench", "list", "methods"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ep-mean" in out.stdout and "a plugin installed through an entry point" in out.stdout
    assert "ep-crash" in out.stdout and "BROKEN" in out.stdout and "broken on purpose" in out.stdout

    data = tmp_path / "data"
    for i in range(2):
        _png(data / f"i{i}.png", i, (32, 32))
    suite = tmp_path / "s.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "ep"
        [[task]]
        name = "denoise"
        datasets = {{ clean = {{ path = "{data}" }} }}
        methods = [{{ name = "ep-mean" }}, {{ name = "gaussian-filter" }}]
    """))
    run = subprocess.run([sys.executable, "-m", "texbench", "run", "--suite", str(suite), "--out", str(tmp_path / "r"),
                          "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    md = (tmp_path / "r" / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ep-mean"))
    assert row.split("|")[2].strip() in ("1", "2", "1–2")  # it has a rank (1–2: tied with the filter, #13)


def test_help_is_light():
    code = ("import sys\nfrom click.testing import CliRunner\nimport texbench.cli as c\n"
            "r = CliRunner().invoke(c.main, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", "texbench --help must not import torch"
