"""Colour conversions: luma for the SR metrics, luminance for the patch methods, YIQ for colour-preserving
style transfer.

Three conventions of the field, each where its users expect it (they are not interchangeable):

* :func:`rgb_to_y`: ITU-R BT.601 luma with MATLAB ``rgb2ycbcr``'s studio swing (16-235), the Y channel
  on which SR papers report PSNR and SSIM;
* :func:`luminance`: BT.601 luma on the full [0, 1] range (``0.299 R + 0.587 G + 0.114 B``), the grey
  level of Efros & Freeman's texture transfer;
* :func:`rgb_to_yiq` / :func:`yiq_to_rgb`: NTSC YIQ (the same luma as the first channel), the colour
  space of Gatys et al.'s luminance-only transfer.
"""

from __future__ import annotations

import torch

__all__ = ["YIQ", "luminance", "rgb_to_y", "rgb_to_yiq", "yiq_to_rgb"]

#: RGB → YIQ (NTSC), rows Y, I, Q
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_LUMA_BT601 = (0.299, 0.587, 0.114)


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


def luminance(x: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``(3, H, W)`` or ``(N, 3, H, W)`` images.

    Returns:
        ``(1, H, W)`` or ``(N, 1, H, W)``, in [0, 1] for inputs in [0, 1].

    >>> luminance(torch.ones(3, 1, 1)).item()
    1.0
    """
    w = torch.tensor(_LUMA_BT601, device=x.device, dtype=x.dtype)
    return (x * w[:, None, None]).sum(-3, keepdim=True)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB → YIQ (NTSC)."""
    return torch.einsum("ij,njhw->nihw", YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` YIQ → RGB (exact inverse of :func:`rgb_to_yiq`)."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(YIQ.double()).to(x), x)
