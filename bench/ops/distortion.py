"""Distortion measures between an image and its reference: the pure PSNR.

:mod:`texbench.metrics.psnr` wraps it as the ``psnr`` and ``psnr-y`` metrics; methods use it for their
own diagnostics (Deep Image Prior's PSNR curves).

References:
    The standard definition, PSNR = 10 log10(R² / MSE); checked against scikit-image's
    ``peak_signal_noise_ratio``.
"""

from __future__ import annotations

import torch

__all__ = ["psnr"]


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
