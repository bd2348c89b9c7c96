"""Structural similarity (SSIM).

Wang et al.'s settings: an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, population
(not sample) covariances; the mean is taken over the positions where the window fits entirely inside
the image (exactly scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``, which filters with reflection and then crops the 5-pixel border).
Colour images: SSIM per channel, averaged over channels.

References:
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 13(4), 2004.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from texbench.base import Metric
from texbench.metrics.checks import check_pair
from texbench.ops.color import rgb_to_y
from texbench.ops.filters import gaussian_window
from texbench.params import Params, param

__all__ = ["SSIM", "SSIMY", "ssim"]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM, one value per image (mean over channels and valid positions), computed in float64.

    Args:
        x: ``(N, C, H, W)`` images.
        y: ``(N, C, H, W)`` references.
        data_range: the value range (1 for [0, 1] floats).
        sigma: standard deviation of the Gaussian window (radius ``int(3.5 σ + 0.5)``).
        k1, k2: the stabilising constants of Wang et al.

    Returns:
        ``(N,)`` float64 in [-1, 1]; 1 for identical images.

    >>> float(ssim(torch.rand(1, 3, 16, 16), torch.ones(1, 3, 16, 16) * 0.5)) < 1
    True
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    w1 = gaussian_window(sigma, device=x.device)
    size = w1.numel()
    n, c, h, wd = x.shape
    if h < size or wd < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels, got {wd}x{h}")
    x = x.double().reshape(n * c, 1, h, wd)
    y = y.double().reshape(n * c, 1, h, wd)
    kh, kw = w1.view(1, 1, size, 1), w1.view(1, 1, 1, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh), kw)

    stack = blur(torch.cat([x, y, x * x, y * y, x * y], dim=0))
    mx, my, sxx, syy, sxy = stack.chunk(5, dim=0)
    vx, vy, cxy = sxx - mx * mx, syy - my * my, sxy - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.reshape(n, c, -1).mean(dim=(1, 2))


@dataclasses.dataclass(frozen=True)
class SSIMParams(Params):
    """Gaussian window σ (Wang et al.: 1.5) and the border ``crop_border`` removed first."""

    sigma: float = param(1.5, gt=0, lt=math.inf)
    crop_border: int = 0


class SSIM(Metric):
    """SSIM on RGB in [0, 1], averaged over channels (higher is better)."""

    name = "ssim"
    description = "structural similarity (Wang et al. 2004, Gaussian window), RGB"
    higher_is_better = True
    kind = "paired"
    is_differentiable = True
    references = "Wang et al., IEEE TIP 2004; parity with skimage.metrics.structural_similarity"
    Params = SSIMParams

    def _crop(self, t: torch.Tensor) -> torch.Tensor:
        b = self.params.crop_border
        return t[..., b:-b, b:-b] if b else t

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(x, y, unbatched=True)
        return ssim(self._crop(x), self._crop(y), sigma=self.params.sigma)


class SSIMY(SSIM):
    """SSIM on the BT.601 luma channel, as SR papers report it."""

    name = "ssim-y"
    description = "SSIM on the Y channel (BT.601, MATLAB rgb2ycbcr)"

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(x, y, unbatched=True)
        return ssim(self._crop(rgb_to_y(x.double())), self._crop(rgb_to_y(y.double())), sigma=self.params.sigma)
