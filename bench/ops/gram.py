"""Gram matrices and the Gram (style) loss of Gatys et al.: the feature statistics that texture synthesis
and style transfer match, and that the ``gram-distance`` metric measures.

Gram matrices (:func:`gram_matrix`) of features ``F`` with N positions and C channels are normalised by
a choice of constant, because implementations differ and the style weights follow it:

* ``"positions"`` (texbench's default, Gatys et al. with the ``1/M²`` folded in): ``G = FᵀF / N``;
* ``"all"``: ``G = FᵀF / (C·N)`` (the PyTorch tutorial's, and Johnson et al.'s ``G_j``);
* ``"none"``: the raw sums.

The style loss (:func:`style_loss`) is ``Σ_i λ_i w_i² ‖G_i(u) − G_i(s)‖²_F`` with ``w_i = 1 / C_i``
(:func:`layer_weight`; ``"uniform"`` sets ``w_i = 1``) and per-layer factors ``λ_i`` (1 unless given):
with ``"positions"`` Grams, the mean squared difference of the Gram entries per layer. This equals Gatys
et al.'s ``E_l = 1/(4 N_l² M_l²) Σ (G_l − A_l)²`` (unnormalised Grams, N_l channels, M_l positions) times
4; ``"half-inverse-channels"`` (``w_i = 1 / (2 C_i)``) gives ``E_l`` itself, as the authors' DeepTextures
code computes it (``gram_mse_loss``: ``weight/4 · Σ (G − A)² / N²`` with ``G = F Fᵀ / M``), and the
factors ``λ_i`` are then the paper's layer weights ``w_l`` in ``L = Σ_l w_l E_l``.

References:
    Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015;
    "Image style transfer using convolutional neural networks", CVPR 2016. Johnson, Alahi & Fei-Fei,
    "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

__all__ = ["GramNorm", "LayerWeights", "gram_matrix", "layer_weight", "style_loss"]

GramNorm = Literal["positions", "all", "none"]
LayerWeights = Literal["inverse-channels", "half-inverse-channels", "uniform"]


def gram_matrix(features: torch.Tensor, *, normalize: GramNorm = "positions") -> torch.Tensor:
    """Gram matrix of feature maps.

    Args:
        features: ``(N, C, H, W)``.
        normalize: ``"positions"`` divides by H·W (Gatys et al. with the 1/M² folded in; the default),
            ``"all"`` by C·H·W (PyTorch tutorial; Johnson et al.'s ``G_j``), ``"none"`` keeps the raw sums.

    Returns:
        ``(N, C, C)``, ``G = Fᵀ F / H·W`` with F the ``(H·W, C)`` matrix of each image.

    References:
        Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015.

    >>> gram_matrix(torch.full((1, 2, 3, 3), 2.0))
    tensor([[[4., 4.],
             [4., 4.]]])
    """
    if features.ndim != 4:
        raise ValueError(f"features must have shape (N, C, H, W), got {tuple(features.shape)}")
    n, c, h, w = features.shape
    if c > 1 and features.is_contiguous(memory_format=torch.channels_last):
        f = features.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view in NHWC layout: no copy
        g = torch.bmm(f.transpose(1, 2), f)
    else:
        f = features.reshape(n, c, h * w)
        g = torch.bmm(f, f.transpose(1, 2))
    if normalize == "positions":
        return g / (h * w)
    if normalize == "all":
        return g / (c * h * w)
    if normalize == "none":
        return g
    raise ValueError(f"normalize must be 'positions', 'all' or 'none', got {normalize!r}")


def layer_weight(channels: int, scheme: LayerWeights = "inverse-channels") -> float:
    """Per-layer weight ``w_i``: ``1/C_i`` (``"inverse-channels"``), ``1/(2 C_i)``
    (``"half-inverse-channels"``: ``w_i² = 1/(4 C_i²)``, Gatys et al.'s eq. 4) or 1 (``"uniform"``)."""
    if scheme == "inverse-channels":
        return 1.0 / channels
    if scheme == "half-inverse-channels":
        return 0.5 / channels
    if scheme == "uniform":
        return 1.0
    raise ValueError(
        f"layer_weights must be 'inverse-channels', 'half-inverse-channels' or 'uniform', got {scheme!r}"
    )


def style_loss(
    grams: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    *,
    layer_weights: LayerWeights = "inverse-channels",
    layer_factors: Sequence[float] | None = None,
) -> torch.Tensor:
    """``Σ_i λ_i w_i² ‖G_i − T_i‖²_F`` per image.

    Args:
        grams: per layer ``(N, C_i, C_i)``.
        targets: per layer ``(N, C_i, C_i)`` or ``(1, C_i, C_i)``.
        layer_weights: ``w_i = 1/C_i`` (default), ``1/(2 C_i)`` or 1.
        layer_factors: ``λ_i``, one per layer (default: all 1).

    Returns:
        ``(N,)``.

    References:
        Gatys, Ecker & Bethge, NeurIPS 2015 (eq. 4-5, up to the constant 1/4).
    """
    if len(grams) != len(targets):
        raise ValueError(f"grams and targets must have the same length, got {len(grams)} and {len(targets)}")
    if not grams:
        raise ValueError("grams must hold at least one layer")
    factors = [1.0] * len(grams) if layer_factors is None else list(layer_factors)
    if len(factors) != len(grams):
        raise ValueError(f"layer_factors must hold one factor per layer ({len(grams)}), got {len(factors)}")
    total: torch.Tensor | None = None
    for g, t, lam in zip(grams, targets, factors, strict=False):
        wi = layer_weight(g.shape[-1], layer_weights)
        term = (g - t).pow(2).sum(dim=(-2, -1)) * (lam * wi * wi)
        total = term if total is None else total + term
    assert total is not None
    return total
