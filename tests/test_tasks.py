"""Tasks and degradations: written-down operators, determinism, parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from texbench.params import build_params
from texbench.tasks import (
    DenoiseParams,
    add_gaussian_noise,
    center_crop_resize,
    downsample,
    get_task,
    modcrop,
)


def test_denoise_noise_is_seeded_by_the_image_and_has_sigma():
    task = get_task("denoise")
    clean = torch.full((3, 64, 64), 0.5)
    a = task.build({"clean": clean}, item="a", params=task.params({"sigma": 25}))
    b = task.build({"clean": clean}, item="b", params=task.params({"sigma": 25}))
    assert torch.equal(a.input.image, b.input.image)  # same image -> same noise, whatever the item name
    other = task.build({"clean": clean * 0.9}, item="a", params=task.params({"sigma": 25}))
    assert not torch.allclose(other.input.image - clean * 0.9, a.input.image - clean)
    noise = (a.input.image - clean) * 255
    assert noise.std().item() == pytest.approx(25, rel=0.05)
    assert a.input.degradation["sigma"] == 25 and a.references["clean"] is clean


def test_noise_clipping_is_a_choice():
    g = torch.Generator().manual_seed(0)
    x = torch.full((3, 32, 32), 0.98)
    clipped = add_gaussian_noise(x, 50, generator=g, clip=True)
    g.manual_seed(0)
    raw = add_gaussian_noise(x, 50, generator=g, clip=False)
    assert clipped.max() <= 1 and raw.max() > 1
    assert torch.equal(clipped, raw.clamp(0, 1))


def test_sr4_modcrop_and_downsampler():
    task = get_task("sr4")
    hr = torch.rand(3, 37, 50)
    ex = task.build({"clean": hr}, item="x", params=task.params())
    assert ex.references["clean"].shape == (3, 36, 48)
    assert ex.input.image.shape == (3, 9, 12)
    assert ex.input.size == (36, 48)
    torch.testing.assert_close(downsample(modcrop(hr, 4)), ex.input.image, rtol=0, atol=0)
    with pytest.raises(ValueError, match="multiple of 4"):
        downsample(hr)


def test_downsampler_is_antialiased_bicubic_like_pillow():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(arr).resize((16, 16), Image.Resampling.BICUBIC), dtype=np.float64) / 255
    ours = downsample(torch.from_numpy(arr).permute(2, 0, 1).float() / 255).permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() < 2.5 / 255  # Pillow quantises and uses an 8-bit fixed-point kernel


def test_downsampler_is_differentiable():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    downsample(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_center_crop_resize():
    x = torch.rand(3, 40, 60)
    y = center_crop_resize(x, 20)
    assert y.shape == (3, 20, 20)
    assert torch.equal(center_crop_resize(x[:, :, 10:50], 40), x[:, :, 10:50])


def test_task_params_are_strict():
    with pytest.raises(ValueError, match="unknown parameter.*'sigmaa'"):
        get_task("denoise").params({"sigmaa": 25})
    with pytest.raises(ValueError, match="parameter 'sigma' must be >= 0"):
        build_params(DenoiseParams, overrides={"sigma": -1})
    assert build_params(DenoiseParams, overrides={"sigma": "15", "clip": "false"}) == DenoiseParams(15.0, False)
    with pytest.raises(ValueError, match="unknown task"):
        get_task("inpainting-typo")
