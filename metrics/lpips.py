"""LPIPS, the metric: :func:`lpips` (functional) and :class:`LPIPS` (registered as ``lpips``).

The network (backbones, unit normalisation, the v0.1 linear layers, calibrated checkpoints) is
:class:`texbench.nets.lpips.LPIPSNet`; this module holds one network per (backbone, checkpoint, device)
and scores image pairs with it. Lower is more similar.

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018. https://arxiv.org/abs/1801.03924
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from texbench.base import Metric
from texbench.metrics.checks import check_pair
from texbench.nets.backbones import NETS
from texbench.nets.lpips import LPIPSNet, Net, load_calibrated
from texbench.params import Params
from texbench.weights import resolution_context

__all__ = ["LPIPS", "LPIPSParams", "lpips"]


# ---------------------------------------------------------------------------------------- functional API
_MODELS: dict[tuple[str, str, str], LPIPSNet] = {}


def _get_model(net: str, weights: str | os.PathLike | None, device: torch.device) -> LPIPSNet:
    key = (net, str(Path(weights).resolve()) if weights else "", str(device), resolution_context())
    model = _MODELS.get(key)
    if model is None:
        if net not in NETS:
            raise ValueError(f"net must be one of {NETS}, got {net!r}")
        model = load_calibrated(weights, net)[0] if weights else LPIPSNet(net)
        model = model.to(device).requires_grad_(False).eval()
        _MODELS[key] = model
    return model


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    net: Net = "alex",
    weights: str | os.PathLike | None = None,
    spatial: bool = False,
    batch_size: int = 16,
) -> torch.Tensor:
    """LPIPS distance between image pairs (lower is more similar).

    Args:
        x, y: ``(N, 3, H, W)`` float RGB in [0, 1], same shape, ``H, W ≥ 16``.
        net: backbone, ``"alex"`` (default, the paper's recommendation), ``"vgg"`` or ``"squeeze"``.
        weights: a calibrated checkpoint (see :func:`load_calibrated`); default the official v0.1 layers.
        spatial: return the distance map ``(N, 1, H, W)`` instead of ``(N,)``.
        batch_size: pairs per network pass (results do not depend on it).

    Returns:
        ``(N,)`` float64 on ``x.device``, or the float32 map with ``spatial``. Differentiable: where ``x``
        or ``y`` requires grad (and grad mode is on), gradients flow back to the images, and the value is
        the float32 sum of the same terms.

    Raises:
        WeightsNotFoundError: pretrained weights are not cached and random init is not allowed.

    References:
        Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.
    """
    x, y = check_pair(x, y)
    if min(x.shape[-2:]) < 16:
        raise ValueError(f"LPIPS needs images of at least 16x16, got {tuple(x.shape[-2:])}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = _get_model(net, weights, x.device)
    outs = []
    # differentiable where the images require grad (LPIPS as a loss); else no graph and the fused
    # float64 inference path (the runner scores under no_grad either way)
    with torch.set_grad_enabled(torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size].float(), y[i : i + batch_size].float()
            outs.append(model(xb, yb, spatial=spatial))
    return torch.cat(outs) if outs else torch.zeros(0, dtype=torch.float64, device=x.device)


# ------------------------------------------------------------------------------------------ metric class
@dataclasses.dataclass(frozen=True)
class LPIPSParams(Params):
    """``net``: backbone; ``weights``: optional calibrated checkpoint (default: official v0.1 layers)."""

    net: Literal["alex", "vgg", "squeeze"] = "alex"
    weights: str | None = None


class LPIPS(Metric):
    """LPIPS distance to a pixel-aligned reference (lower is better).

    References:
        Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
        Perceptual Metric." CVPR 2018.
    """

    name: ClassVar[str] = "lpips"
    description: ClassVar[str] = "Learned Perceptual Image Patch Similarity (v0.1 linear layers)"
    higher_is_better: ClassVar[bool] = False
    kind: ClassVar[str] = "paired"  # type: ignore[assignment]
    is_differentiable: ClassVar[bool] = True
    references: ClassVar[str] = "Zhang et al., CVPR 2018, arXiv:1801.03924"
    Params: ClassVar[type] = LPIPSParams

    def __init__(self, params: Any = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(params, device=device)
        self._model = _get_model(self.params.net, self.params.weights, self.device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` float64 distances between ``(N, 3, H, W)`` images in [0, 1]."""
        return lpips(x.to(self.device), y.to(self.device), net=self.params.net, weights=self.params.weights)

    def spatial_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` distance map (see :func:`lpips` with ``spatial=True``)."""
        return lpips(
            x.to(self.device),
            y.to(self.device),
            net=self.params.net,
            weights=self.params.weights,
            spatial=True,
        )

    def provenance(self) -> dict[str, str]:
        return dict(self._model.provenance)
