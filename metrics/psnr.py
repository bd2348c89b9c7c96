"""Peak signal-to-noise ratio: the metrics ``psnr`` (RGB) and ``psnr-y`` (luma).

Both wrap the pure :func:`texbench.ops.distortion.psnr` (re-exported here as the metric's functional).

References:
    The standard definition, PSNR = 10 log10(R² / MSE); checked against scikit-image's
    ``peak_signal_noise_ratio``. Y-channel PSNR with a border crop follows the SR convention
    (e.g. Dong et al., "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016).
"""

from __future__ import annotations

import dataclasses

import torch

from texbench.base import Metric
from texbench.metrics.checks import check_pair
from texbench.ops.color import rgb_to_y
from texbench.ops.distortion import psnr
from texbench.params import Params

__all__ = ["PSNR", "PSNRY", "psnr"]


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
        x, y = check_pair(x, y, unbatched=True)
        return psnr(x, y, data_range=1.0, crop_border=self.params.crop_border)


class PSNRY(PSNR):
    """PSNR on the BT.601 luma channel (MATLAB ``rgb2ycbcr``), as SR papers report it."""

    name = "psnr-y"
    description = "PSNR on the Y channel (BT.601, MATLAB rgb2ycbcr), dB"

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(x, y, unbatched=True)
        return psnr(rgb_to_y(x.double()), rgb_to_y(y.double()), crop_border=self.params.crop_border)
