"""The classic baselines: properties that make them the methods they claim to be."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from texbench.metrics.psnr import psnr
from texbench.synthesizers.classic import (
    Bicubic,
    GaussianFilter,
    NLMeans,
    RandomPhaseNoise,
    ReinhardColorTransfer,
    _to_lab,
    periodic_component,
    random_phase_noise,
)
from texbench.tasks import TaskInput, downsample, get_task


def _smooth_image(h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def test_random_phase_keeps_spectrum_mean_and_is_seeded():
    ex = _smooth_image()
    g = torch.Generator().manual_seed(3)
    out = random_phase_noise(ex, (64, 64), generator=g, periodic=False)
    # same Fourier modulus as the exemplar (where clipping did not act)
    if 0 < out.min() and out.max() < 1:
        torch.testing.assert_close(torch.fft.fft2(out.double()).abs(), torch.fft.fft2(ex.double()).abs(),
                                   atol=1e-3, rtol=1e-3)
    assert out.mean(dim=(1, 2)).sub(ex.mean(dim=(1, 2))).abs().max() < 0.02
    m = RandomPhaseNoise()
    inp = TaskInput("texture", "x", (96, 80), image=ex)
    a, b = m.run(inp, seed=1, device=torch.device("cpu")), m.run(inp, seed=1, device=torch.device("cpu"))
    assert a.shape == (3, 96, 80) and torch.equal(a, b)
    assert not torch.equal(a, m.run(inp, seed=2, device=torch.device("cpu")))
    # a larger output keeps the exemplar's per-pixel variance
    assert a.std().item() == pytest.approx(ex.std().item(), rel=0.25)


def test_periodic_component_removes_the_border_cross():
    const = torch.full((3, 16, 16), 0.3)
    torch.testing.assert_close(periodic_component(const).float(), const, atol=1e-7, rtol=0)
    ramp = torch.linspace(0, 1, 32).view(1, 1, 32).expand(3, 32, 32) + 0.05 * torch.rand(3, 32, 32)
    p = periodic_component(ramp)
    assert p.mean().item() == pytest.approx(ramp.mean().item(), abs=1e-6)

    def cross_energy(img):
        f = torch.fft.fft2(img.double() - img.double().mean()).abs() ** 2
        return (f[:, 0, 1:].sum() + f[:, 1:, 0].sum()).item()

    assert cross_energy(p) < 0.05 * cross_energy(ramp)  # the jump at the border is gone


def test_bicubic_upsamples_to_size():
    hr = _smooth_image(64, 64)
    lr = downsample(hr)
    out = Bicubic().run(TaskInput("sr4", "x", (64, 64), image=lr), seed=0, device=torch.device("cpu"))
    assert out.shape == (3, 64, 64)
    assert psnr(out[None], hr[None]).item() > 25


@pytest.mark.parametrize("cls", [GaussianFilter, NLMeans])
def test_denoisers_improve_psnr(cls):
    task = get_task("denoise")
    clean = _smooth_image(64, 64)
    ex = task.build({"clean": clean}, item="x", params=task.params({"sigma": 25}))
    out = cls.from_config("tiny").run(ex.input, seed=0, device=torch.device("cpu"))
    before = psnr(ex.input.image[None], clean[None]).item()
    after = psnr(out[None], clean[None]).item()
    assert after > before + 3, (before, after)


def test_reinhard_matches_lab_moments():
    c, s = _smooth_image(seed=1) * 0.5 + 0.25, _smooth_image(seed=2)
    out = ReinhardColorTransfer().run(TaskInput("style", "x", (64, 64), content=c, style=s), seed=0,
                                      device=torch.device("cpu"))
    lo, ls = _to_lab(out), _to_lab(s)
    torch.testing.assert_close(lo.mean(dim=(1, 2)), ls.mean(dim=(1, 2)), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="strength"):
        ReinhardColorTransfer.from_config(overrides={"strength": 2})


def test_noise_estimate_reads_the_noise_level():
    import skimage.data

    from texbench.synthesizers.classic import estimate_noise_sigma

    clean = torch.from_numpy(skimage.data.astronaut()[:256, :256].astype(np.float64) / 255).permute(2, 0, 1)
    g = torch.Generator().manual_seed(0)
    for sigma in (5, 15, 25, 50):
        noisy = clean + torch.randn(clean.shape, generator=g, dtype=torch.float64) * sigma / 255
        est = estimate_noise_sigma(noisy) * 255
        assert abs(est - sigma) < 0.08 * sigma + 1.0, (sigma, est)
    pywt = pytest.importorskip("pywt")  # noqa: F841 - scikit-image's estimator needs PyWavelets
    from skimage.restoration import estimate_sigma

    noisy = clean + torch.randn(clean.shape, generator=g, dtype=torch.float64) * 25 / 255
    ref = float(np.mean(estimate_sigma(noisy.permute(1, 2, 0).numpy(), channel_axis=-1)))
    assert abs(estimate_noise_sigma(noisy) - ref) < 0.05 * ref
    with pytest.raises(ValueError, match="H, W >= 2"):
        estimate_noise_sigma(torch.zeros(3, 1, 5))
