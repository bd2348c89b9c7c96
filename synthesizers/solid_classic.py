"""A classic solid-texture baseline: Heeger & Bergen's pyramid histogram matching, synthesised in 3-D.

Heeger & Bergen (SIGGRAPH 1995) synthesise a texture by histogram matching in a multi-scale pyramid, and
say of solid textures (their introduction): "The analysis phase is inherently two-dimensional since the
input digitized images are 2-d. The synthesis phase, however, may be either two- or three-dimensional. For
the 3-d case, the output is a solid texture such that planar slices through the solid look like the
original scanned image." Read that way (the paper's own solid-texture section could not be opened from
here), a solid texture is a noise volume whose 3-D pyramid subbands are histogram-matched to the exemplar's
2-D subbands. That is what this module does:

1. colour: the exemplar's RGB is rotated onto its principal axes and each decorrelated channel is
   synthesised alone, then rotated back (texbench's choice for colour; not checked against the paper);
2. per channel, a Laplacian pyramid (Burt & Adelson: 5-tap binomial filter (1, 4, 6, 4, 1)/16, ``levels``
   levels) of the exemplar (mirror boundary) gives each band's histogram, kept as its sorted values;
3. a uniform noise volume, histogram-matched to the exemplar channel, goes ``iterations`` times through: its
   separable 3-D Laplacian pyramid (periodic boundary, so the volume tiles), each band and the low-pass
   residual histogram-matched to the exemplar's band of the same level, collapse, then the voxels
   histogram-matched to the exemplar's pixels (the paper's loop; ``iterations`` = 5 by default).

Departure, written down: the paper's pyramid is the steerable pyramid (4 orientations) in 2-D; its 3-D
counterpart is not given in a form checked here, so both pyramids are Laplacian (no orientations): the
method keeps the paper's structure and loop and loses orientation selectivity (oriented textures come out
blotchy). Histogram matching is exact quantile mapping (rank → the exemplar's value at the same quantile,
linearly interpolated), where the paper matched through cumulative histograms of 256 bins.

This is not Kopf et al. 2007 ("Solid texture synthesis from 2D exemplars", the baseline 3D Texture
Networks compares with), whose neighbourhood matching on three orthogonal slices is not implemented here.

References:
    Heeger & Bergen, "Pyramid-based texture analysis/synthesis", SIGGRAPH 1995.
    Burt & Adelson, "The Laplacian pyramid as a compact image code", IEEE Trans. Communications 1983.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from texbench.base import Synthesizer
from texbench.params import Params, param

__all__ = ["HeegerBergenSolid", "HeegerBergenSolidParams", "histogram_match", "laplacian_pyramid",
           "collapse_pyramid"]

_BINOMIAL5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


@dataclasses.dataclass(frozen=True)
class HeegerBergenSolidParams(Params):
    """Parameters of :class:`HeegerBergenSolid`.

    Attributes:
        levels: pyramid levels (bands; the last is the low-pass residual), capped so the coarsest level of
            the exemplar and of the volume keeps at least 4 samples a side.
        iterations: synthesis iterations (the paper: about 5).
    """

    levels: int = param(4, ge=1)
    iterations: int = param(5, ge=1)


def histogram_match(x: torch.Tensor, target_sorted: torch.Tensor) -> torch.Tensor:
    """``x`` with its values replaced, rank for rank, by the quantiles of ``target_sorted``.

    Args:
        x: any shape.
        target_sorted: 1-D, ascending (the target's values).

    Returns:
        Same shape as ``x``; the k-th smallest value becomes the target's quantile ``(k + ½)/n``.

    >>> histogram_match(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([10.0, 20.0, 30.0])).tolist()
    [30.0, 10.0, 20.0]
    """
    flat = x.reshape(-1)
    n, m = flat.numel(), target_sorted.numel()
    pos = (torch.arange(n, dtype=torch.float64) + 0.5) / n * m - 0.5
    pos = pos.clamp(0, m - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=m - 1)
    frac = (pos - lo).to(target_sorted.dtype)
    values = target_sorted[lo] * (1 - frac) + target_sorted[hi] * frac
    out = torch.empty_like(flat)
    out[torch.argsort(flat, stable=True)] = values.to(flat.dtype)
    return out.reshape(x.shape)


def _blur_axis(x: torch.Tensor, dim: int, periodic: bool, gain: float = 1.0) -> torch.Tensor:
    n = x.shape[dim]
    if periodic:
        return sum(w * gain * torch.roll(x, 2 - k, dims=dim) for k, w in enumerate(_BINOMIAL5))  # type: ignore[return-value]
    if n < 3:
        return x
    pad = torch.cat([x.narrow(dim, 1, 2).flip(dim), x, x.narrow(dim, n - 3, 2).flip(dim)], dim)
    return sum(w * gain * pad.narrow(dim, k, n) for k, w in enumerate(_BINOMIAL5))  # type: ignore[return-value]


def _blur(x: torch.Tensor, periodic: bool, gain: float = 1.0) -> torch.Tensor:
    for dim in range(x.ndim):
        x = _blur_axis(x, dim, periodic, gain)
    return x


def _reduce(x: torch.Tensor, periodic: bool) -> torch.Tensor:
    return _blur(x, periodic)[tuple(slice(None, None, 2) for _ in range(x.ndim))]


def _expand(x: torch.Tensor, shape: torch.Size, periodic: bool) -> torch.Tensor:
    up = x.new_zeros(shape)
    up[tuple(slice(None, None, 2) for _ in range(len(shape)))] = x
    return _blur(up, periodic, gain=2.0)  # ×2 per axis: the zeros inserted


def laplacian_pyramid(x: torch.Tensor, levels: int, *, periodic: bool) -> list[torch.Tensor]:
    """Burt–Adelson Laplacian pyramid of a 1-channel array of any dimension: ``levels − 1`` band-pass
    bands, finest first, then the low-pass residual; :func:`collapse_pyramid` inverts it exactly."""
    bands = []
    for _ in range(levels - 1):
        low = _reduce(x, periodic)
        bands.append(x - _expand(low, x.shape, periodic))
        x = low
    return [*bands, x]


def collapse_pyramid(bands: list[torch.Tensor], *, periodic: bool) -> torch.Tensor:
    """The array a :func:`laplacian_pyramid` came from."""
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = band + _expand(x, band.shape, periodic)
    return x


def _levels(p: HeegerBergenSolidParams, *sides: int) -> int:
    levels = 1
    while levels < p.levels and min(sides) // 2**levels >= 4:
        levels += 1
    return levels


class HeegerBergenSolid(Synthesizer):
    """Heeger & Bergen's histogram matching in a pyramid, with a 3-D pyramid for the volume (see the module).

    References:
        Heeger & Bergen, "Pyramid-based texture analysis/synthesis", SIGGRAPH 1995.
    """

    name = "heeger-bergen-solid"
    description = "Heeger & Bergen 1995, solid variant: 3-D Laplacian-pyramid histogram matching to a 2-D exemplar"
    tasks = ("solid",)
    references = "Heeger & Bergen, 'Pyramid-based texture analysis/synthesis', SIGGRAPH 1995"
    Params = HeegerBergenSolidParams
    presets = {"tiny": {"levels": 3, "iterations": 2}}

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        if getattr(task_input, "task", None) != "solid":
            raise ValueError(f"heeger-bergen-solid supports task 'solid', got {getattr(task_input, 'task', None)!r}")
        ex = task_input.image
        if not isinstance(ex, torch.Tensor) or ex.ndim != 3 or ex.shape[0] != 3:
            raise ValueError(f"solid task needs task_input.image, a (3, H, W) exemplar, got {getattr(ex, 'shape', ex)}")
        if task_input.exemplars:
            raise ValueError("heeger-bergen-solid takes one exemplar (the paper's solid textures), not one per axis")
        p: HeegerBergenSolidParams = self.params
        size = tuple(int(s) for s in task_input.size)
        ex = ex.to(device=device, dtype=torch.float64)
        # colour: principal axes of the exemplar's RGB (each decorrelated channel synthesised alone)
        pix = ex.reshape(3, -1)
        mean = pix.mean(1, keepdim=True)
        _, vecs = torch.linalg.eigh(torch.cov(pix))
        channels = vecs.T @ (pix - mean)
        levels = _levels(p, *ex.shape[-2:], *size)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand((3, *size), generator=gen, dtype=torch.float64).to(device)
        out = []
        for c in range(3):
            e = channels[c].reshape(ex.shape[-2:])
            targets = [b.reshape(-1).sort().values for b in laplacian_pyramid(e, levels, periodic=False)]
            pixels = e.reshape(-1).sort().values
            v = histogram_match(noise[c], pixels)
            for _ in range(p.iterations):
                bands = laplacian_pyramid(v, levels, periodic=True)
                bands = [histogram_match(b, t) for b, t in zip(bands, targets, strict=True)]
                v = histogram_match(collapse_pyramid(bands, periodic=True), pixels)
            out.append(v.reshape(-1))
        rgb = vecs @ torch.stack(out) + mean
        self.record(levels=levels)
        return rgb.reshape(3, *size).clamp(0, 1).float()
