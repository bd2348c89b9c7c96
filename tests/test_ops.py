"""Image operations shared by metrics and methods (texbench.ops): closed forms and the callers' contracts."""

from __future__ import annotations

import pytest
import torch

from texbench import tasks
from texbench.ops import color, filters, gram, resize


def test_the_task_operator_is_the_shared_one():
    # methods model the sr4 degradation with exactly the operator the task applies
    assert tasks.downsample is resize.downsample and tasks.resize is resize.resize
    x = torch.rand(2, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    assert resize.downsample(x, 4).shape == (2, 3, 4, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        resize.downsample(x[..., :10], 4)


def test_bilinear_downsampler_clamps_only_when_asked():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 17, 13, generator=g) - 0.6  # mostly below 0, so clipping shows
    free = resize.downsample_bilinear(x, (6, 5), clamp=False)
    clipped = resize.downsample_bilinear(x, (6, 5), clamp=True)
    assert free.shape == (3, 6, 5) and (free < 0).any()
    assert torch.equal(clipped, free.clamp(0, 1))
    assert resize.downsample_bilinear(x, (17, 13), clamp=True) is x  # already that size: untouched


def test_luminance_and_yiq_share_the_bt601_luma():
    x = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(2))
    y = color.luminance(x)
    assert y.shape == (2, 1, 5, 4) and color.luminance(x[0]).shape == (1, 5, 4)
    torch.testing.assert_close(y, color.rgb_to_yiq(x)[:, :1])
    torch.testing.assert_close(color.yiq_to_rgb(color.rgb_to_yiq(x)), x)
    # the studio-swing Y of the SR metrics is an affine map of the same luma (coefficients rounded)
    torch.testing.assert_close(color.rgb_to_y(x), (16 + 219 * y) / 255, atol=2e-4, rtol=0)


def test_gaussian_window_is_normalised_and_sized_like_scipy():
    w = filters.gaussian_window(1.5)
    assert w.numel() == 11 and w.dtype == torch.float64
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert filters.gaussian_window(2.0, truncate=3.0, dtype=torch.float32).numel() == 13


@pytest.mark.parametrize("norm,divisor", [("positions", 30), ("all", 4 * 30), ("none", 1)])
def test_gram_normalisations(norm, divisor):
    f = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(3))
    expected = f[1].reshape(4, -1) @ f[1].reshape(4, -1).T / divisor
    torch.testing.assert_close(gram.gram_matrix(f, normalize=norm)[1], expected)
    # the NHWC fast path computes the same matrix
    nhwc = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gram.gram_matrix(nhwc, normalize=norm), gram.gram_matrix(f, normalize=norm))
    with pytest.raises(ValueError, match="normalize"):
        gram.gram_matrix(f, normalize="channels")  # type: ignore[arg-type]
