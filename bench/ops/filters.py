"""Linear filters: the Gaussian window shared by SSIM and the Gaussian-filter denoiser."""

from __future__ import annotations

import torch

__all__ = ["gaussian_window"]


def gaussian_window(sigma: float, *, truncate: float = 3.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian with radius ``int(truncate * sigma + 0.5)`` (scipy's convention).

    Args:
        sigma: standard deviation in pixels.
        truncate: radius in standard deviations (3.5 gives SSIM's 11 taps at σ = 1.5).
        dtype, device: of the returned window.

    Returns:
        ``(2r + 1,)`` weights summing to 1.

    >>> gaussian_window(1.5).numel()
    11
    """
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()
