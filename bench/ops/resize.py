"""Resampling: the antialiased bicubic resize, the ``sr4`` task's ×4 operator, and the bilinear
down-sampler of the multi-scale patch methods.

* :func:`resize`: antialiased bicubic (Keys a = −0.5 widened by the scale factor, MATLAB's ``imresize``
  convention; torch's ``interpolate(mode="bicubic", antialias=True)``), clipped to [0, 1];
* :func:`downsample`: the ``sr4`` degradation, :func:`resize` by an integer factor of an image whose
  size is a multiple of it (see :func:`texbench.tasks.modcrop`); differentiable, so a method's forward
  operator (Deep Image Prior's) can be exactly the task's;
* :func:`downsample_bilinear`: antialiased bilinear to a given size, the coarse levels of Kwatra et al.'s
  texture optimisation (clipped) and of the patch-OT model (not clipped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["as_batch", "downsample", "downsample_bilinear", "resize"]


def as_batch(x: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """``(x as (N, 3, H, W), whether it was one (3, H, W) image)``.

    Raises:
        TypeError: ``x`` is not a tensor. ValueError: it is neither 3-D nor 4-D.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"{name} must have shape (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of ``(3, H, W)`` or ``(N, 3, H, W)`` to ``size = (H', W')``, clipped to [0, 1]."""
    x, squeeze = as_batch(image, "image")
    if tuple(x.shape[-2:]) == tuple(size):
        return image
    y = F.interpolate(x, size=tuple(size), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    return y[0] if squeeze else y


def downsample(image: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The ``sr4`` degradation: antialiased bicubic down-sampling by ``factor`` (differentiable).

    Args:
        image: ``(3, H, W)`` or ``(N, 3, H, W)`` with H and W multiples of ``factor`` (see
            :func:`texbench.tasks.modcrop`).
        factor: integer scale factor.

    Returns:
        ``(..., 3, H/factor, W/factor)``, clipped to [0, 1].
    """
    x, squeeze = as_batch(image, "image")
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"image size {w}x{h} is not a multiple of {factor}: modcrop it first")
    y = F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    y = y.clamp(0, 1)
    return y[0] if squeeze else y


def downsample_bilinear(x: torch.Tensor, size: tuple[int, int], *, clamp: bool) -> torch.Tensor:
    """Antialiased bilinear resize of one image ``(C, H, W)`` to ``size`` (unchanged if already that size).

    Args:
        x: ``(C, H, W)``.
        size: ``(H', W')``.
        clamp: clip the result to [0, 1] (texture optimisation does; the patch-OT model does not).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    y = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return y.clamp(0, 1) if clamp else y
