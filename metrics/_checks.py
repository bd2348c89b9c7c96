"""Input contracts shared by the metrics: float ``(N, 3, H, W)`` batches in [0, 1]."""

from __future__ import annotations

import torch

__all__ = ["check_batch", "check_pair"]


def check_batch(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")
    return x


def check_pair(x: torch.Tensor, y: torch.Tensor, *, same_size: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = check_batch(x, "x"), check_batch(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of images, got {x.shape[0]} and {y.shape[0]}")
    if same_size and x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y
