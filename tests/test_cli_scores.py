"""`texbench score` for the network metrics: FID/KID on folders, SiFID and LPIPS paired by file name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from texbench.cli import main
from texbench.suite import expand, load_suite


def _folder(d: Path, names, seed: int, size=48) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC).save(d / f"{n}.png")
    return d


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_score_sifid_and_lpips_pair_by_name(tmp_path, monkeypatch, texbench_home):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")  # the contract, not the pretrained values
    a = _folder(tmp_path / "a", ["p", "q", "only_a"], 0)
    b = _folder(tmp_path / "b", ["q", "p"], 1)
    for metric, extra in (("sifid", []), ("lpips", ["--net", "alex"])):
        res = CliRunner().invoke(main, ["score", metric, str(a), str(b), "--json", *extra])
        assert res.exit_code == 0, res.output
        out = _json(res.stdout)
        assert [r["name"] for r in out["pairs"]] == ["p", "q"] and out["only_in_a"] == ["only_a"]
        assert all(r["value"] > 0 for r in out["pairs"])
        assert out["provenance"], "the weights behind the numbers are reported"
    same = CliRunner().invoke(main, ["score", "lpips", str(a), str(a), "--json"])
    assert all(r["value"] == 0 for r in _json(same.stdout)["pairs"])


def test_score_fid_and_kid_on_folders(tmp_path, monkeypatch, texbench_home):
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    a = _folder(tmp_path / "a", [f"i{k}" for k in range(5)], 0, size=32)
    b = _folder(tmp_path / "b", [f"i{k}" for k in range(5)], 1, size=32)
    for metric in ("fid", "kid"):
        res = CliRunner().invoke(main, ["score", metric, str(a), str(b), "--json"])
        assert res.exit_code == 0, res.output
        assert np.isfinite(_json(res.stdout)["value"])
    self_fid = _json(CliRunner().invoke(main, ["score", "fid", str(a), str(a), "--json"]).stdout)["value"]
    assert abs(self_fid) < 1e-6


def test_dip_set5_comparison_is_one_command(shared_data, tmp_path, monkeypatch):
    from texbench.datasets.standard import fetch_set

    monkeypatch.setenv("TEXBENCH_DATASETS", str(tmp_path / "ds"))
    fetch_set("set5", from_dir=shared_data / "set5", progress=False)
    suite = load_suite("dip-sr-set5")
    jobs = expand(suite)
    assert {j.method.name for j in jobs} == {"bicubic", "lanczos", "dip"}
    assert len({j.item for j in jobs}) == 5
    assert all(j.example.input.image.shape[-1] * 4 == j.example.references["clean"].shape[-1] for j in jobs)


@pytest.mark.slow
def test_missing_weights_give_the_message_and_exit_code_2(tmp_path):
    # a fresh process: loaded networks are memoised per process
    env = {k: v for k, v in os.environ.items() if k != "TEXBENCH_ALLOW_RANDOM_WEIGHTS"}
    env.update(TEXBENCH_HOME=str(tmp_path / "home"), TORCH_HOME=str(tmp_path / "torch"))
    a = _folder(tmp_path / "a", ["p"], 0)
    for args in (["score", "fid", str(a), str(a)], ["score", "lpips", str(a), str(a)],
                 ["synth", "gatys", "--task", "texture", "--input", str(a / "p.png"), "-o", str(tmp_path / "o.png")]):
        res = subprocess.run([sys.executable, "-m", "texbench", *args], env=env, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "not available offline" in res.stderr and "texbench weights fetch" in res.stderr
        assert "Traceback" not in res.stderr


def test_folder_scores_are_batched_and_equal_pair_by_pair(tmp_path, monkeypatch, texbench_home):
    """More pairs than one batch, two sizes and a pair too small for LPIPS in the middle: every value
    equals the metric on that pair alone, and the error stays on its pair."""
    import torch

    from texbench.cli import score
    from texbench.imageio import load_image
    from texbench.metrics.lpips import LPIPS

    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")
    monkeypatch.setattr(score, "PAIR_BATCH", 4)  # several batches, and more pairs than the decoders run ahead
    names = [f"i{k:02d}" for k in range(21)]
    a = _folder(tmp_path / "a", names, 0, size=48)
    b = _folder(tmp_path / "b", names, 1, size=48)
    _folder(tmp_path / "a", ["i03"], 2, size=40)  # another size inside a batch
    _folder(tmp_path / "b", ["i03"], 3, size=40)
    _folder(tmp_path / "a", ["i07"], 4, size=8)  # too small for LPIPS
    _folder(tmp_path / "b", ["i07"], 5, size=8)
    res = CliRunner().invoke(main, ["score", "lpips", str(a), str(b), "--json"])
    assert res.exit_code == 1 and "1 of 21 pairs could not be scored" in res.output
    rows = _json(res.stdout)["pairs"]
    assert [r["name"] for r in rows] == names
    assert rows[7]["value"] is None and "16x16" in rows[7]["error"]
    m = LPIPS()
    for r in rows:
        if r["name"] != "i07":
            x, y = load_image(a / f"{r['name']}.png")[None], load_image(b / f"{r['name']}.png")[None]
            with torch.no_grad():
                assert r["value"] == pytest.approx(float(m(x, y)[0]), rel=1e-5, abs=1e-7), r["name"]


def test_scoring_prints_one_weights_line_and_no_warning(tmp_path):
    """A user sees the scores and one ``weights:`` line: no torch.jit.load deprecation warning (the FID
    Inception is a TorchScript file) and no provenance printed twice (set metrics return it flat too)."""
    from conftest import require_weights

    from texbench.nets.inception import FID_INCEPTION

    path = require_weights(FID_INCEPTION)
    env = {k: v for k, v in os.environ.items() if k != "TEXBENCH_ALLOW_RANDOM_WEIGHTS"}
    # a private home (feature caches), the real weights by explicit path
    env.update(TEXBENCH_HOME=str(tmp_path / "home"), TEXBENCH_WEIGHTS_FID_INCEPTION=str(path))
    a = _folder(tmp_path / "a", ["p", "q"], 0, size=40)
    b = _folder(tmp_path / "b", ["p", "q"], 1, size=40)
    for metric in ("sifid", "fid"):
        res = subprocess.run([sys.executable, "-m", "texbench", "score", metric, str(a), str(b)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("weights: fid-inception=fid-inception@sha256:"), lines
        assert "fid-inception" not in res.stdout and "provenance" not in res.stdout

