"""Texture optimisation (Kwatra, Essa, Bobick & Kwatra 2005).

The output ``x`` minimises ``E(x) = Σ_p ‖x_p - z_p‖^r`` over output neighbourhoods ``x_p`` on a grid of
step ``w/4`` and their nearest exemplar neighbourhoods ``z_p``, with ``r = 0.8`` for robustness. The
minimisation alternates

* **M-step**: exact nearest-neighbour search of every ``z_p`` (squared L2 over all exemplar patches at
  every offset, one matrix product per band of candidates: :func:`~texbench.ops.patches.nearest_patches`);
* **E-step**: one iteratively-reweighted-least-squares step: each pixel becomes the average of the
  values the overlapping ``z_p`` give it, weighted by ``ω_p = ‖x_p - z_p‖^(r-2)``;

until the assignments stop changing, coarse to fine over a Gaussian pyramid and, at each level, over
decreasing neighbourhood sizes (32, 16, 8). A maintained ANN library (faiss-cpu) was not used: its
exact flat index is the same BLAS product, and its approximate indexes would change the method.

References:
    V. Kwatra, I. Essa, A. Bobick, N. Kwatra, "Texture optimization for example-based synthesis",
    SIGGRAPH 2005.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.ops.patches import (
    PatchIndex,
    aggregate_patches,
    check_exemplar,
    gather_patches,
    grid_positions,
)
from texbench.ops.resize import downsample_bilinear
from texbench.params import Params, param

__all__ = ["KwatraParams", "TextureOptimization", "texture_optimization"]


@dataclasses.dataclass(frozen=True)
class KwatraParams(Params):
    """Texture-optimisation parameters (the paper's section 3 and 5).

    Attributes:
        levels: pyramid levels, coarse to fine (the paper: 3).
        patch_sizes: neighbourhood sizes run at each level, largest first (the paper: 32, 16, 8); sizes
            that do not fit a level's exemplar or output are skipped there.
        spacing_ratio: grid step of the neighbourhoods as a fraction of their size (the paper: w/4).
        robust_exponent: ``r`` of the energy (the paper: 0.8).
        iterations: at most this many E/M iterations per (level, size); stops earlier when the nearest
            neighbours no longer change (the paper iterates to convergence).
    """

    levels: int = param(3, ge=1)
    patch_sizes: tuple[int, ...] = param((32, 16, 8), nonempty=True, ge=2)
    spacing_ratio: float = param(0.25, gt=0, le=1)
    robust_exponent: float = param(0.8, gt=0, le=2)
    iterations: int = param(10, ge=1)


def texture_optimization(
    exemplar: torch.Tensor, size: tuple[int, int], params: KwatraParams, *, generator: torch.Generator
) -> tuple[torch.Tensor, list[dict]]:
    """Synthesise a texture of ``size`` by texture optimisation.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1].
        size: output ``(H, W)``, any size.
        params: :class:`KwatraParams`.
        generator: CPU generator (the random initial assignment).

    Returns:
        ``(output (3, H, W) in [0, 1], log)``: ``log`` has one entry per (level, size) with the energy
        after each iteration.
    """
    ex = check_exemplar(exemplar, "exemplar", min_size=2)
    dev = ex.device
    h_out, w_out = size
    r = params.robust_exponent
    x: torch.Tensor | None = None
    log: list[dict] = []
    for level in range(params.levels - 1, -1, -1):
        f = 2**level
        ex_hw = (max(2, round(ex.shape[1] / f)), max(2, round(ex.shape[2] / f)))
        ex_l = downsample_bilinear(ex, ex_hw, clamp=True)
        out_hw = (max(2, round(h_out / f)), max(2, round(w_out / f)))
        limit = min(*ex_l.shape[-2:], *out_hw)
        sizes = [p for p in params.patch_sizes if p <= limit]
        if not sizes and level == 0:
            sizes = [limit]  # the finest level always runs, with the largest size that fits
        if x is not None:
            x = F.interpolate(x[None], size=out_hw, mode="bilinear", align_corners=False)[0]
        for p in sizes:
            step = max(1, round(p * params.spacing_ratio))
            gy, gx = torch.meshgrid(
                grid_positions(out_hw[0], p, step), grid_positions(out_hw[1], p, step), indexing="ij"
            )
            gy, gx = gy.reshape(-1).to(dev), gx.reshape(-1).to(dev)
            nx = ex_l.shape[2] - p + 1
            n_cand = (ex_l.shape[1] - p + 1) * nx
            if x is None:  # random initial assignment of exemplar neighbourhoods, then their average
                idx = torch.randint(n_cand, (gy.numel(),), generator=generator).to(dev)
                x = aggregate_patches(gather_patches(ex_l, p, idx // nx, idx % nx), gy, gx, p, out_hw)
            index = PatchIndex(ex_l, p)
            prev_idx = None
            energies = []
            for _ in range(params.iterations):
                xp = gather_patches(x, p, gy, gx)
                _, idx = index.search(xp)  # M-step
                z = gather_patches(ex_l, p, idx // nx, idx % nx)
                dist = (xp - z).pow(2).sum(1).sqrt()
                energies.append(float(dist.double().pow(r).sum()))
                # E-step (one IRLS step); the floor keeps exact matches from taking all the weight
                w = dist.clamp_min(1e-3 * p).pow(r - 2.0)
                x = aggregate_patches(z, gy, gx, p, out_hw, weights=w)
                if prev_idx is not None and torch.equal(idx, prev_idx):
                    break
                prev_idx = idx
            log.append({"level": level, "patch_size": p, "energy": energies})
    assert x is not None
    if tuple(x.shape[-2:]) != (h_out, w_out):
        x = F.interpolate(x[None], size=(h_out, w_out), mode="bilinear", align_corners=False)[0]
    return x.clamp(0, 1), log


class TextureOptimization(Synthesizer):
    """Texture optimisation: nearest-neighbour search and robust patch averaging (Kwatra et al. 2005)."""

    name = "kwatra"
    description = "texture optimisation: alternate exact patch NN search and IRLS averaging, coarse to fine"
    tasks = ("texture",)
    version = "1"
    references = "V. Kwatra, I. Essa, A. Bobick, N. Kwatra, Texture optimization for example-based synthesis, SIGGRAPH 2005"
    Params = KwatraParams
    presets = {"tiny": {"levels": 2, "patch_sizes": (16, 8), "iterations": 3}}

    def run(self, task_input, *, seed, device):
        if task_input.image is None:
            raise ValueError("kwatra needs task_input.image (the exemplar)")
        gen = torch.Generator().manual_seed(int(seed))
        ex = check_exemplar(task_input.image, "task_input.image", min_size=2).to(device)
        out, log = texture_optimization(ex, tuple(task_input.size), self.params, generator=gen)
        self.record(stages=log)
        return out
