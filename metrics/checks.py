"""The input contract of every metric, checked in one place: float RGB images ``(N, 3, H, W)`` in [0, 1].

Each metric module validates its arguments with these functions, so a bad input fails the same way
everywhere: ``TypeError`` for a wrong type or dtype, ``ValueError`` for a wrong shape, the message
naming the argument. Metrics that also take a single image ``(3, H, W)`` (as a batch of one) say so
with ``unbatched=True``.

>>> check_pair(torch.zeros(3, 8, 8), torch.zeros(1, 3, 8, 8), unbatched=True)[0].shape
torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_batch", "check_images", "check_pair"]


def check_batch(x: object, name: str = "x", *, unbatched: bool = False) -> torch.Tensor:
    """``x`` as a float ``(N, 3, H, W)`` batch.

    Args:
        x: the tensor to check.
        name: the argument's name, for the message.
        unbatched: also accept one image ``(3, H, W)``, returned as a batch of one.

    Raises:
        TypeError: ``x`` is not a tensor, or not floating point.
        ValueError: ``x`` does not have shape ``(N, 3, H, W)`` (or ``(3, H, W)`` with ``unbatched``).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3 and unbatched:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")
    return x


def check_pair(
    x: object, y: object, *, same_size: bool = True, shared_reference: bool = False, unbatched: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``x`` and references ``y`` as float ``(N, 3, H, W)`` batches that belong together.

    Args:
        x: outputs.
        y: references, one per output.
        same_size: the metric is pixel-aligned: ``y`` must have ``x``'s shape (else any sizes).
        shared_reference: ``y`` may also hold a single reference for every output.
        unbatched: also accept single images ``(3, H, W)`` (see :func:`check_batch`).

    Raises:
        TypeError, ValueError: see :func:`check_batch`; also when the counts or shapes do not match.
    """
    x, y = check_batch(x, "x", unbatched=unbatched), check_batch(y, "y", unbatched=unbatched)
    if x.shape[0] != y.shape[0] and not (shared_reference and y.shape[0] == 1):
        one = "1 or " if shared_reference else ""
        raise ValueError(f"y must hold {one}{x.shape[0]} images (as x), got {y.shape[0]}")
    if same_size and x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y


def check_images(images: Sequence[torch.Tensor] | torch.Tensor, name: str) -> list[torch.Tensor]:
    """A set of images (set-level metrics): float ``(3, H, W)`` tensors of any sizes, or one ``(N, 3, H, W)``
    batch; returned as a list.

    Raises:
        TypeError, ValueError: an element is not a float ``(3, H, W)`` tensor (the message names it).
    """
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"{name} must be (N, 3, H, W) or a sequence of (3, H, W), got {tuple(images.shape)}"
            )
        images = list(images)
    out = []
    for i, img in enumerate(images):
        if not isinstance(img, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(img).__name__}")
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"{name}[{i}] must have shape (3, H, W), got {tuple(img.shape)}")
        if not img.is_floating_point():
            raise TypeError(f"{name}[{i}] must be float in [0, 1], got {img.dtype}")
        out.append(img)
    return out
