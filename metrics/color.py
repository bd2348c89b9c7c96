"""Colour conversions used by the metrics."""

from __future__ import annotations

import torch

__all__ = ["rgb_to_y"]


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` computes it, the convention of SR papers.

    Args:
        x: ``(N, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(N, 1, H, W)`` Y in [16/255, 235/255].

    >>> round(float(rgb_to_y(torch.ones(1, 3, 1, 1))[0, 0, 0, 0] * 255), 3)
    235.0
    """
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True) / 255.0 + 16.0 / 255.0
