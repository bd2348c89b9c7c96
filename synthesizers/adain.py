"""Huang & Belongie: arbitrary style transfer in one forward pass with adaptive instance normalisation.

The content and style images go through the same frozen encoder (the normalised VGG-19 up to
``relu4_1``, :func:`texbench.nets.adain.adain_encoder`); AdaIN gives each channel of the content features
the mean and standard deviation of the style features,

    AdaIN(x, y) = σ(y) · (x − μ(x)) / σ(x) + μ(y),

and the authors' decoder (:class:`texbench.nets.adain.AdaINDecoder`) maps the result back to an image.
Nothing is trained or optimised at test time.

Conventions of the authors' code (``AdaIN-style`` in Torch; ``pytorch-AdaIN``, the conversion the weights
come from), followed here:

* μ and σ per channel over all positions; σ² is the unbiased variance plus ε = 1e-5 (for content *and*
  style statistics).
* Content–style trade-off: ``t = α · AdaIN(f(c), f(s)) + (1 − α) · f(c)``, applied to the features before
  decoding; α = 1 (the paper's default) is full stylisation, α = 0 reconstructs the content.
* Style interpolation: with style images s₁…s_K and weights w_k (normalised to sum 1, as the authors'
  code does), ``AdaIN = Σ_k w_k AdaIN(f(c), f(s_k))`` — then the α blend as above.
* Colour preservation (``preserve_color``): the paper's (Section 7) and the code's method — the style
  image's colours are first matched to the content's (:func:`texbench.ops.color.match_color`, linear
  colour transfer of mean and covariance, the code's ``coral`` with its covariance normalisation
  corrected, see there), then the transfer runs normally. (Not Gatys et al.'s other option,
  luminance-only transfer.)
* The decoded image is clipped to [0, 1] (the code's ``save_image`` clamps).
* The style image is resized (antialiased bicubic) so its shorter side is ``style_size`` (the code's
  default 512; 0 keeps it as is), since the decoder was trained at that scale.

Departures, written down:

* Input size: the content keeps its size (the benchmark fixes the output size). The encoder pools three
  times, so the content is reflect-padded at the bottom and right to a multiple of 8 and the output
  cropped back; the authors' ceil-mode pooling instead returns an image up to 7 px larger. On sizes
  that are multiples of 8 both are the same. Content and style images need sides of at least 16 px
  (reflection padding at ``relu4_1``, 1/8 scale, needs 2 px).
* The style image is resized by texbench's antialiased bicubic resize, not PIL's bilinear one.

References:
    Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
    ICCV 2017 (arXiv:1703.06868).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.nets.adain import ENCODER_LAYER, AdaINDecoder, adain_networks
from texbench.nets.vgg19 import VGG19Features
from texbench.ops.color import match_color
from texbench.ops.resize import resize
from texbench.params import Params, param

__all__ = [
    "EPS",
    "MIN_SIDE",
    "AdaIN",
    "AdaINParams",
    "adain",
    "adain_transfer",
    "check_images",
    "mean_std",
    "normalised_weights",
    "reflect_pad_to",
    "resize_shorter",
]

#: added to the variance before the square root (the authors' code)
EPS = 1e-5
#: smallest side the encoder accepts (reflection padding at 1/8 scale)
MIN_SIDE = 16


# ------------------------------------------------------------------------------------------- the maths
def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and ``sqrt(unbiased variance + eps)`` of ``(N, C, H, W)`` features, as ``(N, C, 1, 1)``.

    >>> m, s = mean_std(torch.tensor([0.0, 2.0]).view(1, 1, 1, 2), eps=0.0)
    >>> float(m), round(float(s) ** 2, 5)
    (1.0, 2.0)
    """
    if feat.ndim != 4:
        raise ValueError(f"feat must have shape (N, C, H, W), got {tuple(feat.shape)}")
    flat = feat.flatten(2)
    return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Adaptive instance normalisation: ``content`` features with the per-channel mean and std of ``style``.

    Args:
        content: ``(N, C, H, W)`` features.
        style: ``(N, C, H', W')`` features (any spatial size).
        eps: added to both variances.

    Returns:
        ``(N, C, H, W)``.
    """
    if content.shape[:2] != style.shape[:2]:
        raise ValueError(f"content and style features differ in (N, C): {tuple(content.shape[:2])} vs "
                         f"{tuple(style.shape[:2])}")
    c_mean, c_std = mean_std(content, eps)
    s_mean, s_std = mean_std(style, eps)
    return (content - c_mean) / c_std * s_std + s_mean


def normalised_weights(weights: Sequence[float], n: int) -> list[float]:
    """Style interpolation weights divided by their sum (equal weights when ``weights`` is empty).

    >>> normalised_weights((1, 3), 2)
    [0.25, 0.75]
    """
    if not weights:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"style_weights has {len(weights)} value(s) for {n} style image(s)")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"style_weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def resize_shorter(image: torch.Tensor, side: int) -> torch.Tensor:
    """Resize ``(3, H, W)`` (antialiased bicubic) so that its shorter side is ``side``; 0 keeps it."""
    if side == 0:
        return image
    h, w = image.shape[-2:]
    s = side / min(h, w)
    return resize(image, (max(1, round(h * s)), max(1, round(w * s))))


def reflect_pad_to(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad ``(N, C, H, W)`` at the bottom and right so that H and W are multiples of ``multiple``."""
    pad_h, pad_w = -image.shape[-2] % multiple, -image.shape[-1] % multiple
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image


def check_images(content: torch.Tensor, styles: Sequence[torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the argument unless every image is ``(3, H, W)`` with sides ≥ 16."""
    if not styles:
        raise ValueError("styles must hold at least one style image")
    for name, img in (("content", content), *((f"styles[{k}]", s) for k, s in enumerate(styles))):
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"{name} must have shape (3, H, W), got {tuple(img.shape)}")
        if min(img.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"{name} is {img.shape[-1]}x{img.shape[-2]}: needs sides of at least {MIN_SIDE} px")


def adain_transfer(
    encoder: VGG19Features,
    decoder: AdaINDecoder,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    *,
    alpha: float = 1.0,
    weights: Sequence[float] = (),
    eps: float = EPS,
) -> torch.Tensor:
    """Stylise one content image with one style image, or an interpolation of several.

    Args:
        encoder: the normalised VGG-19 up to ``relu4_1`` (:func:`texbench.nets.adain.adain_encoder`).
        decoder: :class:`texbench.nets.adain.AdaINDecoder`.
        content: ``(3, H, W)`` RGB in [0, 1], sides ≥ 16; the output has this size.
        styles: one or more ``(3, h, w)`` RGB in [0, 1], sides ≥ 16, used at the size given.
        alpha: content–style trade-off in [0, 1] (1 = full stylisation).
        weights: interpolation weights, one per style image (normalised to sum 1; empty = equal).
        eps: added to the feature variances.

    Returns:
        ``(3, H, W)`` in [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    check_images(content, styles)
    w = normalised_weights(weights, len(styles))
    h, wd = content.shape[-2:]
    x = reflect_pad_to(content[None], 8)
    with torch.no_grad():
        c_feat = encoder(x)[ENCODER_LAYER]
        t = torch.zeros_like(c_feat)
        for wk, style in zip(w, styles):
            t = t + wk * adain(c_feat, encoder(style[None].to(c_feat))[ENCODER_LAYER], eps)
        t = alpha * t + (1.0 - alpha) * c_feat
        out = decoder(t)
    return out[0, :, :h, :wd].clamp(0, 1)


# ------------------------------------------------------------------------------------------- the method
@dataclasses.dataclass(frozen=True)
class AdaINParams(Params):
    """Parameters of :class:`AdaIN` (defaults: the paper's and the authors' code).

    Attributes:
        alpha: content–style trade-off α in [0, 1] (1, the paper's default: full stylisation).
        preserve_color: match the style image's colours to the content's first (Section 7 of the paper).
        style_size: the style image's shorter side is resized to this (code default 512; 0 = as is).
        style_weights: interpolation weights over several style images (``synth --style A --style B``);
            empty = equal weights; normalised to sum 1.
    """

    alpha: float = param(1.0, ge=0, le=1)
    preserve_color: bool = False
    style_size: int = param(512, ge=0)
    style_weights: tuple[float, ...] = param((), ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if 0 < self.style_size < MIN_SIDE:
            raise ValueError(f"style_size must be 0 or at least {MIN_SIDE}, got {self.style_size}")


class AdaIN(Synthesizer):
    """AdaIN style transfer with the authors' encoder and decoder (one forward pass, no training).

    Diagnostics recorded per job: ``styles`` (number of style images) and ``style_weights`` (normalised).

    References:
        Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
        ICCV 2017.
    """

    name = "adain"
    description = "Huang & Belongie: adaptive instance normalisation on relu4_1, the authors' VGG-19 and decoder"
    tasks = ("style",)
    version = "1"
    references = "Huang & Belongie, ICCV 2017"
    Params = AdaINParams
    presets = {"tiny": {"style_size": 64}}
    #: accepts several style images (``TaskInput.styles``) and interpolates between them
    style_interpolation = True

    def _nets(self, device: torch.device) -> tuple[VGG19Features, AdaINDecoder]:
        nets = adain_networks(device)
        self._provenance = {"vgg19-normalised": nets[0].provenance, "adain-decoder": nets[1].provenance}
        return nets

    def provenance(self) -> dict[str, str]:
        return dict(getattr(self, "_provenance", {}))

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        p: AdaINParams = self.params
        task_input.require(self.name, "content", "style", task="style")
        styles = tuple(getattr(task_input, "styles", ()) or (task_input.style,))
        content = task_input.content.float().to(device)
        styles = tuple(resize_shorter(s.float().to(device), p.style_size) for s in styles)
        if p.preserve_color:
            styles = tuple(match_color(s, content) for s in styles)
        encoder, decoder = self._nets(device)
        out = adain_transfer(encoder, decoder, content, styles, alpha=p.alpha, weights=p.style_weights)
        self.record(styles=len(styles), style_weights=normalised_weights(p.style_weights, len(styles)))
        return out
