"""Shift-tolerant LPIPS: LPIPS after the best circular alignment, the diversity measure between seeds.

Why: diversity between the seeds of one input is usually the mean LPIPS between pairs of samples
(Zhu et al., "Toward Multimodal Image-to-Image Translation" (BicycleGAN), NeurIPS 2017, section 5, with
the LPIPS distance of Zhang et al., CVPR 2018). LPIPS compares pixel-aligned images, so a texture
"method" that returns the exemplar circularly shifted by a random offset scores as highly diverse while it
synthesises nothing. Statistics-based distances between seeds (Gram distance, SiFID) do not fall for
shifts either, but they cannot tell two genuinely different samples of one texture apart: a good
synthesiser matches the exemplar's statistics with every seed, so they rate it close to 0 too. What
diversity means is "the samples are different images, not the same image moved", so here the second
image is first shifted circularly onto the first where the two agree best, and LPIPS is taken after that.

The alignment: for same-size images the circular shift ``s`` minimising ``‖x − roll(y, s)‖²`` maximises the
circular cross-correlation ``Σ_p x[p]·y[p − s]`` (the energy of ``roll(y, s)`` does not depend on ``s``),
which the convolution theorem gives for every ``s`` at once: ``IFFT(FFT(x) · conj(FFT(y)))``, summed over
the three channels, computed on mean-subtracted images in float64 (the mean only adds a constant). An
exact circular shift is therefore undone exactly, and the shifted copy scores 0 (a test checks it).

Limits, on purpose: only translations are undone (not flips, rotations or rescaling), and the wrap-around
of a circular shift is assumed; a crop at a different position of a larger exemplar is aligned on its
overlap and differs only in the strip that does not overlap, so it scores low but not 0.

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018 (LPIPS).
    Zhu, Zhang, Pathak, Darrell, Efros, Wang, Shechtman. "Toward Multimodal Image-to-Image Translation."
    NeurIPS 2017 (diversity as the mean LPIPS between samples).
    Kuglin & Hines. "The phase correlation image alignment method." IEEE Conf. on Cybernetics and
    Society, 1975 (translation from the Fourier transforms of two images).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from texbench.base import Metric
from texbench.metrics.checks import check_pair
from texbench.metrics.lpips import LPIPS, LPIPSParams, lpips

__all__ = ["AlignedLPIPS", "aligned_lpips", "best_circular_shift", "circular_align"]


def best_circular_shift(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The circular shift of each ``y`` that best matches ``x`` (least squared difference).

    Args:
        x, y: ``(N, C, H, W)``, same shape.

    Returns:
        ``(N, 2)`` int64 ``(dy, dx)`` such that ``torch.roll(y[i], (dy, dx), dims=(-2, -1))`` is closest
        to ``x[i]``; ``dy`` in ``[0, H)``, ``dx`` in ``[0, W)``.

    >>> x = torch.rand(1, 3, 8, 10)
    >>> best_circular_shift(x, torch.roll(x, (3, -4), dims=(-2, -1))).tolist()
    [[5, 4]]
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must be (N, C, H, W) of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    a = x.detach().double()
    b = y.detach().double()
    a = a - a.mean(dim=(-2, -1), keepdim=True)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    h, w = a.shape[-2:]
    # corr[s] = sum_p a[p] * b[p - s]: the correlation of a with b shifted by s (channels summed)
    corr = torch.fft.irfft2(torch.fft.rfft2(a) * torch.fft.rfft2(b).conj(), s=(h, w)).sum(dim=1)
    flat = corr.flatten(1).argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def circular_align(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` with each image circularly shifted onto the matching ``x`` (see :func:`best_circular_shift`)."""
    shifts = best_circular_shift(x, y)
    return torch.stack([torch.roll(yi, (int(s[0]), int(s[1])), dims=(-2, -1)) for yi, s in zip(y, shifts)])


def aligned_lpips(x: torch.Tensor, y: torch.Tensor, *, net: str = "alex", weights: str | None = None) -> torch.Tensor:
    """LPIPS between ``x`` and ``y`` circularly shifted onto ``x`` (0 when ``y`` is a circular shift of ``x``).

    Args:
        x, y: ``(N, 3, H, W)`` float RGB in [0, 1], same shape, ``H, W ≥ 16``.
        net, weights: as for :func:`texbench.metrics.lpips.lpips`.

    Returns:
        ``(N,)`` float64.
    """
    x, y = check_pair(x, y)
    return lpips(x, circular_align(x, y), net=net, weights=weights)  # type: ignore[arg-type]


class AlignedLPIPS(Metric):
    """LPIPS after the best circular alignment (lower: more alike). As the seed-pair metric of a task it
    is the shift-tolerant diversity (higher: more diverse), see the module docstring."""

    name: ClassVar[str] = "lpips-aligned"
    description: ClassVar[str] = "LPIPS after the best circular shift (FFT cross-correlation): shift-tolerant diversity"
    higher_is_better: ClassVar[bool] = False
    kind: ClassVar[str] = "paired"  # type: ignore[assignment]
    references: ClassVar[str] = ("Zhang et al., CVPR 2018 (LPIPS); Zhu et al., NeurIPS 2017 (LPIPS diversity); "
                                 "Kuglin & Hines 1975 (Fourier alignment)")
    Params: ClassVar[type] = LPIPSParams

    def __init__(self, params: Any = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(params, device=device)
        self._lpips = LPIPS(self.params, device=self.device)  # loads (and checks) the weights now

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` float64 distances between ``(N, 3, H, W)`` images in [0, 1]."""
        x, y = check_pair(x.to(self.device), y.to(self.device))
        return self._lpips(x, circular_align(x, y))

    def provenance(self) -> dict[str, str]:
        return self._lpips.provenance()
