"""Efros-Leung non-parametric sampling (1999): texture grown pixel by pixel.

The output grows from a random 3×3 seed taken from the exemplar. Each unfilled pixel on the boundary
of the grown region (most filled neighbours first) is given the centre value of an exemplar window
drawn uniformly among those whose Gaussian-weighted, masked SSD to the pixel's neighbourhood is within
``(1 + ε)`` of the best. The distances to *all* exemplar windows come from one matrix product: with the
exemplar's windows ``P`` (rows) and a neighbourhood ``t`` with weights ``m`` (Gaussian × filled mask),
``d = P² · m - 2 P · (m t) + Σ m t²``.

Pixels are filled in batches of pixels that lie outside each other's window, so a batch is exactly
equivalent to filling its pixels one after another, and the distances of a batch are one matrix
product (the main speed-up over a pixel-at-a-time loop).

References:
    A. A. Efros and T. K. Leung, "Texture synthesis by non-parametric sampling", ICCV 1999.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from texbench.base import Synthesizer
from texbench.ops.patches import check_exemplar, extract_patches, single_threaded
from texbench.params import Params, param

__all__ = ["EfrosLeung", "EfrosLeungParams", "grow_texture"]


@dataclasses.dataclass(frozen=True)
class EfrosLeungParams(Params):
    """Efros-Leung parameters.

    Attributes:
        window_size: side of the square neighbourhood (odd), the paper's one free parameter, chosen
            per texture "on the scale of the largest regular feature"; 11 is a common middle value.
        tolerance: ε; windows with distance ``<= (1 + ε) · d_min`` are candidates (the paper: 0.1).
        sigma_ratio: the Gaussian weighting has σ = ``window_size · sigma_ratio`` (1/6.4, the value of
            the authors' pseudo-code).
        seed_size: side of the random exemplar seed the texture grows from (3 in the paper).
        batch_pixels: at most this many mutually independent pixels are filled per matrix product.
    """

    window_size: int = param(11, ge=3, odd=True)
    tolerance: float = param(0.1, ge=0)
    sigma_ratio: float = param(1.0 / 6.4, gt=0)
    seed_size: int = param(3, ge=1)
    batch_pixels: int = param(64, ge=1)


#: absolute slack per unit of weight added to the tolerance, so float32 rounding never hides exact matches
_ABS_SLACK = 1e-6


def _box_add(arr: np.ndarray, ys: np.ndarray, xs: np.ndarray, r: int) -> None:
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        arr[y - r : y + r + 1, x - r : x + r + 1] += 1


def _independent(ys: np.ndarray, xs: np.ndarray, r: int, limit: int) -> np.ndarray:
    """Greedy subset (in the given order) of pixels none of which lies in another's window of radius r."""
    chosen: list[int] = []
    cy = np.empty(0, dtype=np.int64)
    cx = np.empty(0, dtype=np.int64)
    for k in range(ys.size):
        if cy.size and np.any((np.abs(cy - ys[k]) <= r) & (np.abs(cx - xs[k]) <= r)):
            continue
        chosen.append(k)
        cy, cx = np.append(cy, ys[k]), np.append(cx, xs[k])
        if len(chosen) >= limit:
            break
    return np.asarray(chosen, dtype=np.int64)


def grow_texture(
    exemplar: torch.Tensor, size: tuple[int, int], params: EfrosLeungParams, *, generator: torch.Generator
) -> torch.Tensor:
    """Synthesise a texture of ``size`` by Efros-Leung non-parametric sampling.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1], at least ``window_size`` on each side.
        size: output ``(H, W)``, any size.
        params: :class:`EfrosLeungParams`.
        generator: CPU generator driving every random choice.

    Returns:
        ``(3, H, W)`` in [0, 1].
    """
    ws = params.window_size
    ex = check_exemplar(exemplar, "exemplar", min_size=ws)
    dev = ex.device
    r = ws // 2
    h_out, w_out = size
    c = ex.shape[0]
    windows = extract_patches(ex, ws)  # (N, C·ws²)
    # distances of a batch: [m, -2 m t] @ rhs, laid out (K, N) so the per-pixel minimum is contiguous
    rhs = torch.cat([windows * windows, windows], 1).T.contiguous()
    centres = windows.reshape(-1, c, ws * ws)[:, :, (ws * ws) // 2]  # (N, C)
    g = torch.arange(ws, device=dev, dtype=torch.float32) - r
    sigma = ws * params.sigma_ratio
    gauss = torch.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma * sigma)).reshape(-1).repeat(c)

    hp, wp = h_out + 2 * r, w_out + 2 * r
    canvas = torch.zeros(c, hp, wp, device=dev)
    filled = np.zeros((hp, wp), dtype=bool)
    adjacent = np.zeros((hp, wp), dtype=np.int32)  # filled pixels in the 3×3 neighbourhood
    known = np.zeros((hp, wp), dtype=np.int32)  # filled pixels in the window
    inside = np.zeros((hp, wp), dtype=bool)
    inside[r : r + h_out, r : r + w_out] = True
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))

    # the seed: a random s×s exemplar patch at the centre of the output
    s_h, s_w = min(params.seed_size, h_out), min(params.seed_size, w_out)
    sy = int(torch.randint(ex.shape[1] - s_h + 1, (1,), generator=generator))
    sx = int(torch.randint(ex.shape[2] - s_w + 1, (1,), generator=generator))
    oy, ox = r + (h_out - s_h) // 2, r + (w_out - s_w) // 2
    canvas[:, oy : oy + s_h, ox : ox + s_w] = ex[:, sy : sy + s_h, sx : sx + s_w]
    yy, xx = np.meshgrid(np.arange(oy, oy + s_h), np.arange(ox, ox + s_w), indexing="ij")
    filled[yy, xx] = True
    _box_add(adjacent, yy.ravel(), xx.ravel(), 1)
    _box_add(known, yy.ravel(), xx.ravel(), r)
    remaining = h_out * w_out - s_h * s_w
    n_batches = 0
    while remaining > 0:
        ys, xs = np.nonzero(inside & ~filled & (adjacent > 0))
        # most filled neighbours first; random order among equals (the paper's "randomly permuted")
        perm = rng.permutation(ys.size)
        ys, xs = ys[perm], xs[perm]
        order = np.argsort(-known[ys, xs], kind="stable")[: 16 * params.batch_pixels]
        ys, xs = ys[order], xs[order]
        pick = _independent(ys, xs, r, params.batch_pixels)
        ys, xs = ys[pick], xs[pick]
        ty, tx = torch.from_numpy(ys).to(dev), torch.from_numpy(xs).to(dev)
        d = torch.arange(-r, r + 1, device=dev)
        rows = (ty[:, None] + d)[:, :, None]
        cols = (tx[:, None] + d)[:, None, :]
        tmpl = canvas[:, rows, cols].permute(1, 0, 2, 3).reshape(ys.size, -1)  # (K, C·ws²)
        valid = torch.from_numpy(filled[rows.cpu().numpy(), cols.cpu().numpy()]).to(dev)  # (K, ws, ws)
        m = valid.reshape(ys.size, -1).repeat(1, c).float() * gauss  # (K, C·ws²)
        lhs = torch.cat([m, -2.0 * m * tmpl], 1)  # (K, 2·C·ws²)
        dist = lhs @ rhs + (m * tmpl * tmpl).sum(1, keepdim=True)  # (K, N)
        dmin = dist.min(1, keepdim=True).values.clamp_min(0)
        ok = dist <= dmin * (1.0 + params.tolerance) + _ABS_SLACK * m.sum(1, keepdim=True)
        for k in range(ys.size):
            cand = torch.nonzero(ok[k]).reshape(-1)
            j = cand[int(torch.randint(cand.numel(), (1,), generator=generator))]
            canvas[:, ys[k], xs[k]] = centres[j]
        filled[ys, xs] = True
        _box_add(adjacent, ys, xs, 1)
        _box_add(known, ys, xs, r)
        remaining -= ys.size
        n_batches += 1
    return canvas[:, r : r + h_out, r : r + w_out].clamp(0, 1)


class EfrosLeung(Synthesizer):
    """Efros-Leung non-parametric sampling, pixel by pixel (ICCV 1999)."""

    name = "efros-leung"
    description = (
        "pixel-by-pixel non-parametric sampling with Gaussian-weighted masked SSD (Efros & Leung 1999)"
    )
    tasks = ("texture",)
    version = "1"
    references = "A. A. Efros, T. K. Leung, Texture synthesis by non-parametric sampling, ICCV 1999"
    Params = EfrosLeungParams
    presets = {"tiny": {"window_size": 7}}

    def run(self, task_input, *, seed, device):
        if task_input.image is None:
            raise ValueError("efros-leung needs task_input.image (the exemplar)")
        gen = torch.Generator().manual_seed(int(seed))
        ex = check_exemplar(task_input.image, "task_input.image", min_size=self.params.window_size).to(device)
        with single_threaded():
            return grow_texture(ex, tuple(task_input.size), self.params, generator=gen)
