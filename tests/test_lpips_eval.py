"""The 2AFC table's reference rows (``texbench lpips eval``): the human ceiling, L2/PSNR and SSIM in Lab,
on a hand-made BAPPS-layout set whose numbers are known, and against the lpips package's own L2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from texbench import calibration
from texbench.cli import main

#: (ref grey, p0 grey, p1 grey, judge = fraction preferring p1). Flat grey patches: L2 and SSIM in Lab
#: both prefer the patch nearer the reference's grey level.
TRIPLETS = [
    (128, 118, 88, 0.0),  # p0 nearer; all judges agree -> L2/SSIM score 1, ceiling 1
    (128, 168, 136, 1.0),  # p1 nearer; all agree -> 1, ceiling 1
    (100, 104, 140, 0.5),  # p0 nearer; split judges -> 0.5, ceiling 0.5
    (100, 60, 90, 0.25),  # p1 nearer; a quarter prefer p1 -> 0.25, ceiling 0.625
]
SCORE = (1 + 1 + 0.5 + 0.25) / 4  # 0.6875
CEILING = (1 + 1 + 0.5 + 0.625) / 4  # 0.78125


def _grey(v: int, size: int = 64) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), v, dtype=np.uint8))


@pytest.fixture
def bapps(tmp_path) -> Path:
    root = tmp_path / "bapps"
    cat = root / "2afc" / "val" / "flat"
    for sub in ("ref", "p0", "p1", "judge"):
        (cat / sub).mkdir(parents=True)
    for i, (r, a, b, j) in enumerate(TRIPLETS):
        for sub, v in (("ref", r), ("p0", a), ("p1", b)):
            _grey(v).save(cat / sub / f"{i:06d}.png")
        np.save(cat / "judge" / f"{i:06d}.npy", np.array([j]))
    return root


def test_human_ceiling_is_the_mean_of_p2_plus_1_minus_p_squared(bapps):
    res = calibration.human_ceiling(bapps, "val")
    assert res == {"2afc": {"flat": CEILING, "mean": CEILING}}


def test_l2_and_ssim_rows_score_the_known_orderings(bapps):
    rows = calibration.evaluate_baselines(bapps, "val", progress=False)
    assert list(rows) == ["human", "L2 / PSNR (Lab)", "SSIM (Lab)"]
    for label in ("L2 / PSNR (Lab)", "SSIM (Lab)"):
        assert rows[label]["2afc"]["flat"] == pytest.approx(SCORE, abs=1e-12), label


def test_l2_equals_the_lpips_package_and_ssim_equals_scikit_image():
    import lpips
    from skimage.color import rgb2lab
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 256, (3, 3, 32, 40), generator=g).float() / 255).contiguous()
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1).mul(255).round().div(255)
    ref_l2 = lpips.L2(use_gpu=False, colorspace="Lab")
    ours = calibration.l2_lab_distance(x, y)
    for i in range(3):
        # the reference's loader gives (x - 0.5) / 0.5 in [-1, 1]
        expected = float(ref_l2((x[i : i + 1] - 0.5) / 0.5, (y[i : i + 1] - 0.5) / 0.5))
        assert ours[i].item() == pytest.approx(expected, rel=1e-6)  # its value is float32
    # lpips.DSSIM calls skimage.measure.compare_ssim, gone from scikit-image: its successor on the
    # reference's own quantisation (tensor2im of the loader's (x - 0.5) / 0.5)
    dssim = calibration.dssim_lab_distance(x, y)
    for i in range(3):
        a = rgb2lab(lpips.tensor2im((x[i : i + 1] - 0.5) / 0.5))
        b = rgb2lab(lpips.tensor2im((y[i : i + 1] - 0.5) / 0.5))
        expected = (1 - structural_similarity(a, b, data_range=100.0, channel_axis=2)) / 2
        assert dssim[i].item() == pytest.approx(expected, rel=1e-9)
    assert (dssim > 0).all() and not torch.allclose(dssim, ours)


def test_lpips_eval_prints_the_reference_rows(bapps, monkeypatch, tmp_path):
    monkeypatch.setenv("TEXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEXBENCH_ALLOW_RANDOM_WEIGHTS", "1")  # the LPIPS row's values are not under test
    res = CliRunner().invoke(main, ["lpips", "eval", str(bapps), "--csv", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    lines = {ln.split("|")[1].strip(): ln for ln in res.stdout.splitlines() if ln.startswith("|")}
    assert "78.1" in lines["human"] and "68.8" in lines["L2 / PSNR (Lab)"] and "68.8" in lines["SSIM (Lab)"]
    assert any(k.startswith("alex-lin") for k in lines) and "nan" not in res.stdout
    assert "human" in (tmp_path / "t.csv").read_text()
    bare = CliRunner().invoke(main, ["lpips", "eval", str(bapps), "--no-baselines"])
    assert bare.exit_code == 0 and "human" not in bare.stdout and "SSIM" not in bare.stdout
