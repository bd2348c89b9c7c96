"""Li et al.'s whitening–colouring transform (WCT), single level on ``relu4_1`` with the AdaIN decoder.

Universal Style Transfer (Li et al., NeurIPS 2017) encodes content and style with VGG-19, *whitens* the
content features (removes their mean and makes their covariance the identity), *colours* them with the
style's covariance and mean, blends with the content features and decodes. The paper does this coarse to
fine at ``relu5_1 … relu1_1`` with five decoders trained to invert the encoder. This module implements
only the single-level transform at ``relu4_1``, decoded by Huang & Belongie's AdaIN decoder (trained to
invert the same normalised VGG-19 at ``relu4_1``), so it needs no training: registered as ``wct-relu4``,
not as the paper's multi-level ``wct``.

The transform, on ``(C, N)`` features with means ``m_c``, ``m_s`` removed (conventions of the authors'
Torch code and its PyTorch port, computed in float64):

* whitening: ``f̂_c = E_c (D_c + εI)^{-1/2} E_cᵀ (f_c − m_c)`` with ``E_c D_c E_cᵀ`` the eigendecomposition
  of the content covariance ``(f_c − m_c)(f_c − m_c)ᵀ / (N − 1)``; the code adds ``I`` to the content
  covariance, so ε = 1 by default; eigenvalues below 1e-5 are dropped (the code's threshold);
* colouring: ``f_cs = E_s D_s^{1/2} E_sᵀ f̂_c + m_s`` with the style covariance's eigendecomposition
  (no ε; eigenvalues below 1e-5 dropped);
* blend: ``α f_cs + (1 − α) f_c``, α = 0.6 (the paper's default in its figures and code).

With ε = 0 (and full-rank covariances) the whitened features have identity covariance and the coloured
ones exactly the style's covariance and mean; with the code's ε = 1 the whitening is slightly damped on
low-variance directions.

Input sizes, the style's resize (shorter side ``style_size``, 512) and the output clipping are as in
:mod:`texbench.synthesizers.adain`.

References:
    Li, Fang, Yang, Wang, Lu & Yang, "Universal Style Transfer via Feature Transforms", NeurIPS 2017
    (arXiv:1705.08086); code github.com/Yijunmaverick/UniversalStyleTransfer.
    Huang & Belongie, ICCV 2017 (the decoder).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from texbench.base import Synthesizer
from texbench.nets.adain import ENCODER_LAYER, AdaINDecoder, adain_networks
from texbench.nets.vgg19 import VGG19Features
from texbench.params import Params, param
from texbench.synthesizers.adain import MIN_SIDE, check_images, reflect_pad_to, resize_shorter

__all__ = ["EIGEN_THRESHOLD", "WCTRelu4", "WCTRelu4Params", "colour", "wct", "wct_transfer", "whiten"]

#: eigenvalues below this are dropped from both transforms (the authors' code)
EIGEN_THRESHOLD = 1e-5


def _centre(feat: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if feat.ndim != 2:
        raise ValueError(f"{name} must have shape (C, N), got {tuple(feat.shape)}")
    if feat.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 positions, got {feat.shape[1]}")
    f = feat.double()
    mean = f.mean(1, keepdim=True)
    return f - mean, mean


def _eig(centred: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    cov = centred @ centred.T / (centred.shape[1] - 1)
    vals, vecs = torch.linalg.eigh(cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device))
    keep = vals >= EIGEN_THRESHOLD
    return vals[keep], vecs[:, keep]


def whiten(feat: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Whitening transform of ``(C, N)`` features (float64 out): mean removed, covariance → identity.

    Args:
        feat: ``(C, N)`` features (N positions).
        eps: added to the covariance's diagonal before its inverse square root (the code's ``+ I``: 1).

    >>> w = whiten(torch.randn(3, 500) * 5, eps=0.0)
    >>> torch.allclose(torch.cov(w), torch.eye(3, dtype=w.dtype), atol=1e-8)
    True
    """
    centred, _ = _centre(feat, "feat")
    vals, vecs = _eig(centred, eps)
    return vecs @ torch.diag(vals.rsqrt()) @ vecs.T @ centred


def colour(white: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Colouring transform: give whitened ``(C, N)`` features the covariance and mean of ``(C, M)`` ``style``.

    Returns float64 ``(C, N)``.
    """
    if white.ndim != 2 or style.ndim != 2 or white.shape[0] != style.shape[0]:
        raise ValueError(f"white and style must be (C, N) and (C, M), got {tuple(white.shape)}, {tuple(style.shape)}")
    centred, mean = _centre(style, "style")
    vals, vecs = _eig(centred, 0.0)
    return vecs @ torch.diag(vals.sqrt()) @ vecs.T @ white.double() + mean


def wct(content: torch.Tensor, style: torch.Tensor, *, alpha: float = 0.6, eps: float = 1.0) -> torch.Tensor:
    """WCT of ``(1, C, H, W)`` content features with ``(1, C, H', W')`` style features, blended by ``alpha``.

    Returns ``(1, C, H, W)`` in ``content``'s dtype.
    """
    if content.ndim != 4 or style.ndim != 4 or content.shape[:2] != style.shape[:2] or content.shape[0] != 1:
        raise ValueError(f"content and style must be (1, C, H, W) features, got {tuple(content.shape)}, "
                         f"{tuple(style.shape)}")
    c = content[0].flatten(1)
    cs = colour(whiten(c, eps), style[0].flatten(1)).to(content.dtype)
    return (alpha * cs + (1.0 - alpha) * c).reshape(content.shape)


def wct_transfer(
    encoder: VGG19Features,
    decoder: AdaINDecoder,
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    alpha: float = 0.6,
    eps: float = 1.0,
) -> torch.Tensor:
    """Single-level WCT at ``relu4_1``: ``(3, H, W)`` content and ``(3, h, w)`` style in [0, 1], sides ≥ 16,
    to ``(3, H, W)`` in [0, 1] (content reflect-padded to a multiple of 8, output cropped back)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    check_images(content, [style])
    h, w = content.shape[-2:]
    with torch.no_grad():
        fc = encoder(reflect_pad_to(content[None], 8))[ENCODER_LAYER]
        fs = encoder(style[None].to(fc))[ENCODER_LAYER]
        out = decoder(wct(fc, fs, alpha=alpha, eps=eps))
    return out[0, :, :h, :w].clamp(0, 1)


@dataclasses.dataclass(frozen=True)
class WCTRelu4Params(Params):
    """Parameters of :class:`WCTRelu4`.

    Attributes:
        alpha: blend between the transformed and the content features (the paper's 0.6).
        eps: added to the content covariance's diagonal before whitening (the authors' code: 1).
        style_size: the style image's shorter side is resized to this (512; 0 = as is).
    """

    alpha: float = param(0.6, ge=0, le=1)
    eps: float = param(1.0, ge=0)
    style_size: int = param(512, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if 0 < self.style_size < MIN_SIDE:
            raise ValueError(f"style_size must be 0 or at least {MIN_SIDE}, got {self.style_size}")


class WCTRelu4(Synthesizer):
    """Single-level WCT at ``relu4_1`` with the AdaIN encoder and decoder (no training).

    References:
        Li et al., "Universal Style Transfer via Feature Transforms", NeurIPS 2017.
    """

    name = "wct-relu4"
    description = ("Li et al.'s whitening-colouring transform, single level (relu4_1) with the AdaIN decoder; "
                   "not the paper's multi-level WCT")
    tasks = ("style",)
    version = "1"
    references = "Li, Fang, Yang, Wang, Lu & Yang, NeurIPS 2017 (single-level variant); decoder: Huang & Belongie, ICCV 2017"
    Params = WCTRelu4Params
    presets = {"tiny": {"style_size": 64}}

    def provenance(self) -> dict[str, str]:
        return dict(getattr(self, "_provenance", {}))

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        p: WCTRelu4Params = self.params
        if task_input.task != "style":
            raise ValueError(f"wct-relu4 supports the style task only, got {task_input.task!r}")
        if task_input.content is None or task_input.style is None:
            raise ValueError("the style task needs task_input.content and task_input.style")
        encoder, decoder = adain_networks(device)
        self._provenance = {"vgg19-normalised": encoder.provenance, "adain-decoder": decoder.provenance}
        content = task_input.content.float().to(device)
        style = resize_shorter(task_input.style.float().to(device), p.style_size)
        return wct_transfer(encoder, decoder, content, style, alpha=p.alpha, eps=p.eps)
