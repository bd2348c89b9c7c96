"""Peak signal-to-noise ratio.

References:
    The standard definition, PSNR = 10 log10(R² / MSE); checked against scikit-image's
    ``peak_signal_noise_ratio``. Y-channel PSNR with a border crop follows the SR convention
    (e.g. Dong et al., "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016).
"""

from __future__ import annotations

import dataclasses

import torch

from texbench.base import Metric
from texbench.metrics._checks import check_pair
from texbench.metrics.color import rgb_to_y
from texbench.params import Params

__all__ = ["PSNR", "PSNRY", "psnr"]


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, crop_border: int = 0) -> torch.Tensor:
    """PSNR in dB, one value per image, computed in float64.

    Args:
        x: ``(N, C, H, W)`` images.
        y: ``(N, C, H, W)`` references.
        data_range: the value range (1 for [0, 1] floats, 255 for uint8 scale).
        crop_border: pixels removed from every side before comparing.

    Returns:
        ``(N,)`` float64; ``inf`` where the images are identical.

    >>> psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)).round().item()
    20.0
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        if min(x.shape[-2:]) <= 2 * crop_border:
            raise ValueError(f"images of size {tuple(x.shape[-2:])} are too small for crop_border={crop_border}")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


@dataclasses.dataclass(frozen=True)
class PSNRParams(Params):
    """``crop_border``: pixels removed from every side (SR papers use the scale factor)."""

    crop_border: int = 0


class PSNR(Metric):
    """PSNR on RGB in [0, 1] (higher is better)."""

    name = "psnr"
    description = "peak signal-to-noise ratio on RGB, dB"
    higher_is_better = True
    kind = "paired"
    is_differentiable = True
    references = "standard; parity with skimage.metrics.peak_signal_noise_ratio"
    Params = PSNRParams

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(x, y)
        return psnr(x, y, data_range=1.0, crop_border=self.params.crop_border)


class PSNRY(PSNR):
    """PSNR on the BT.601 luma channel (MATLAB ``rgb2ycbcr``), as SR papers report it."""

    name = "psnr-y"
    description = "PSNR on the Y channel (BT.601, MATLAB rgb2ycbcr), dB"

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(x, y)
        return psnr(rgb_to_y(x.double()), rgb_to_y(y.double()), crop_border=self.params.crop_border)
