"""PSNR, SSIM and the statistics distance: closed forms and parity with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from texbench.metrics.psnr import PSNR, PSNRY, psnr
from texbench.metrics.ssim import SSIM, ssim
from texbench.metrics.stats_distance import StatsDistance, stats_distance


def _u8_pair(seed=0, shape=(48, 40, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.normal(0, 12, shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    return a, b


def _t(a):
    return torch.from_numpy(a).permute(2, 0, 1).float()[None] / 255.0


def test_psnr_known_pair():
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    y = torch.full((1, 3, 8, 8), 0.1, dtype=torch.float64)
    assert psnr(x, y).item() == pytest.approx(20.0, abs=1e-9)
    assert math.isinf(psnr(x, x).item())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage_on_uint8_rgb(seed):
    a, b = _u8_pair(seed)
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert PSNR()(_t(b), _t(a)).item() == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_skimage_gaussian_settings(seed):
    a, b = _u8_pair(seed)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=2)
    assert SSIM()(_t(a), _t(b)).item() == pytest.approx(ref, abs=1e-6)


def test_ssim_properties():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ssim(x, y), ssim(y, x))
    assert (ssim(x, y) < 1).all()
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_psnr_y_uses_bt601_luma_and_crop():
    x = torch.rand(1, 3, 24, 24)
    y = x.clone()
    y[..., :4, :] = 0  # difference only inside the border
    assert math.isinf(PSNRY.from_config({"crop_border": 4})(x, y).item())
    assert math.isfinite(PSNRY()(x, y).item())
    # a pure-blue error is weighted by 24.966/255 in Y
    z = x.clone()
    z[:, 2] = (z[:, 2] + 0.1).clamp(max=10)
    expected = 10 * math.log10(1 / (0.1 * 24.966 / 255) ** 2)
    assert PSNRY()(x, z).item() == pytest.approx(expected, abs=1e-6)


def test_per_image_metrics_do_not_depend_on_batch_size():
    x, y = torch.rand(5, 3, 20, 20), torch.rand(5, 3, 20, 20)
    for m in (PSNR(), SSIM(), StatsDistance()):
        whole = m(x, y)
        single = torch.cat([m(x[i : i + 1], y[i : i + 1]) for i in range(5)])
        assert whole.shape == (5,)
        torch.testing.assert_close(whole, single)


def test_stats_distance_properties():
    x = torch.rand(1, 3, 64, 64)
    assert stats_distance(x, x).item() == 0
    assert stats_distance(x, x.transpose(-1, -2)).item() == pytest.approx(0, abs=1e-9)  # arrangement-blind
    darker = x * 0.5
    assert stats_distance(x, darker).item() > 0.1
    # a tiling of the image at another size has the same colour statistics
    tiled = x.repeat(1, 1, 2, 2)
    assert stats_distance(x, tiled).item() < stats_distance(x, darker).item() / 5


def test_metric_input_checks():
    with pytest.raises(ValueError, match="same shape"):
        PSNR()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 9, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        PSNR()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown parameter"):
        PSNR.from_config({"crop": 4})
