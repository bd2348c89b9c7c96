"""Texture synthesis by semi-discrete optimal transport in patch space (Galerne, Leclaire & Rabin 2018).

A multi-scale model. At the coarsest scale the input is an asymptotic discrete spot noise (ADSN: the
Gaussian texture with the exemplar's mean and autocorrelation); at each finer scale it is the previous
scale's result, up-sampled by 2. At every scale each ``w × w`` patch of the input is sent to an
exemplar patch by the *semi-discrete optimal transport map* from the distribution of input patches
``ν`` to the uniform distribution of the exemplar's patches ``μ = (1/J) Σ_j δ_{y_j}``:

    T(x) = y_{σ(x)},   σ(x) = argmin_j ‖x - y_j‖² - v_j,

whose dual potentials ``v ∈ R^J`` maximise the concave semi-dual
``H(v) = E_{x~ν}[min_j (‖x - y_j‖² - v_j)] + (1/J) Σ_j v_j``. They are learned by averaged stochastic
gradient ascent (ASGD, Genevay et al. 2016): with a mini-batch ``x_1..x_B ~ ν`` the gradient is
``1/J - #{b : σ(x_b) = j}/B``; step ``C/√t``; the returned potentials are the running average. The
synthesis at that scale is the average, at each pixel, of the mapped patches that cover it.

Departures from the paper, stated: the source distribution ``ν`` is sampled by drawing patches of the
current input image itself (the paper fits a Gaussian mixture to it at the finer scales; sampling the
image directly is the simplification the method's public re-analyses found at least as good), and the
ASGD uses mini-batches (``batch_size`` samples per step), with the step ``C`` set relative to the
typical nearest-neighbour cost so that it does not depend on the image's scale.

References:
    B. Galerne, A. Leclaire, J. Rabin, "A texture synthesis model based on semi-discrete optimal
    transport in patch space", SIAM J. Imaging Sciences 11(4), 2018;
    A. Genevay, M. Cuturi, G. Peyré, F. Bach, "Stochastic optimization for large-scale optimal
    transport", NIPS 2016.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.ops.patches import aggregate_patches, check_exemplar, extract_patches
from texbench.ops.resize import downsample_bilinear
from texbench.params import Params, param

__all__ = ["PatchOT", "PatchOTParams", "adsn", "learn_dual_potentials", "ot_assign", "patch_ot_synthesis"]


@dataclasses.dataclass(frozen=True)
class PatchOTParams(Params):
    """Semi-discrete patch-OT parameters.

    Attributes:
        scales: number of scales (the paper: 4); the coarsest is ``2^(scales-1)`` times smaller.
        patch_size: patch side ``w`` at every scale (the paper: 3).
        iterations: ASGD steps per scale.
        batch_size: source patches per ASGD step.
        step_size: ``C`` in units of ``c̄ · J / 10`` where ``c̄`` is the mean nearest-neighbour cost of
            the source patches: a target that receives no mass gains about ``0.2 · step_size · c̄ · √t``
            of potential in ``t`` steps, whatever the image's scale and the number of targets. 0.5 gave
            the most uniform use of the exemplar's patches on a 64² exemplar (total variation to uniform
            0.25, near the sampling floor, vs 0.65 for plain nearest neighbours; 1.0: 0.30, 2.0: 0.46).
    """

    scales: int = param(4, ge=1)
    patch_size: int = param(3, ge=1)
    iterations: int = param(2000, ge=1)
    batch_size: int = param(128, ge=1)
    step_size: float = param(0.5, gt=0)


def adsn(exemplar: torch.Tensor, size: tuple[int, int], *, generator: torch.Generator) -> torch.Tensor:
    """Asymptotic discrete spot noise: ``mean + t ⊛ W`` with ``t = (u - mean)/√(hw)`` and white noise ``W``.

    The result is a stationary Gaussian texture with the exemplar's mean and (periodic) autocorrelation.

    Args:
        exemplar: ``(3, h, w)``.
        size: output ``(H, W)``; the noise lives on ``max(H, h) × max(W, w)`` and is cropped.
        generator: CPU generator for the white noise.

    Returns:
        ``(3, H, W)`` (not clipped).

    References:
        B. Galerne, Y. Gousseau, J.-M. Morel, "Random phase textures: theory and synthesis", IEEE TIP 2011.
    """
    c, h, w = exemplar.shape
    hh, ww = max(size[0], h), max(size[1], w)
    mean = exemplar.mean((1, 2), keepdim=True)
    spot = F.pad((exemplar - mean) / math.sqrt(h * w), (0, ww - w, 0, hh - h))
    noise = torch.randn(hh, ww, generator=generator, dtype=torch.float64).to(exemplar.device)
    field = torch.fft.irfft2(torch.fft.rfft2(spot.double()) * torch.fft.rfft2(noise), s=(hh, ww))
    return (mean + field[:, : size[0], : size[1]].to(exemplar.dtype)).contiguous()


def ot_assign(
    sources: torch.Tensor,
    targets: torch.Tensor,
    potentials: torch.Tensor,
    *,
    target_sq: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """``σ(x) = argmin_j ‖x - y_j‖² - v_j`` for every row of ``sources (Q, D)``; ``targets (J, D)``, ``v (J,)``."""
    if target_sq is None:
        target_sq = (targets * targets).sum(1)
    offset = target_sq - potentials
    out = torch.empty(sources.shape[0], dtype=torch.long, device=sources.device)
    for i in range(0, sources.shape[0], chunk):
        out[i : i + chunk] = (offset - 2.0 * sources[i : i + chunk] @ targets.T).argmin(1)
    return out


def learn_dual_potentials(
    sources: torch.Tensor,
    targets: torch.Tensor,
    *,
    iterations: int,
    batch_size: int,
    step_size: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict]:
    """Dual potentials of semi-discrete OT from the empirical ``sources`` to uniform ``targets`` by ASGD.

    Args:
        sources: ``(M, D)`` samples of the source distribution ``ν`` (drawn from with replacement).
        targets: ``(J, D)`` the target points ``y_j``, each of mass ``1/J``.
        iterations: ASGD steps.
        batch_size: samples per step.
        step_size: ``C`` relative to ``c̄ · J / 10`` (see :class:`PatchOTParams`).
        generator: CPU generator for the sampling.

    Returns:
        ``(v̄ (J,), info)``: the averaged potentials and ``{"step": C, "cost_scale": c̄}``.
    """
    j = targets.shape[0]
    dev = sources.device
    tsq = (targets * targets).sum(1)
    probe = sources[
        torch.randint(sources.shape[0], (min(1024, sources.shape[0]),), generator=generator).to(dev)
    ]
    nn_cost = (
        ((probe * probe).sum(1, keepdim=True) + tsq - 2.0 * probe @ targets.T).min(1).values.clamp_min(0)
    )
    cost_scale = float(nn_cost.double().mean()) or 1e-6
    c = step_size * cost_scale * j / 10.0
    v = torch.zeros(j, device=dev, dtype=targets.dtype)
    v_avg = torch.zeros_like(v)
    for t in range(1, iterations + 1):
        batch = sources[torch.randint(sources.shape[0], (batch_size,), generator=generator).to(dev)]
        sigma = (tsq - v - 2.0 * batch @ targets.T).argmin(1)
        grad = torch.full_like(v, 1.0 / j).index_add_(
            0, sigma, torch.full((batch_size,), -1.0 / batch_size, device=dev, dtype=v.dtype)
        )
        v += (c / math.sqrt(t)) * grad
        v_avg += (v - v_avg) / t
    return v_avg, {"step": c, "cost_scale": cost_scale}


def patch_ot_synthesis(
    exemplar: torch.Tensor, size: tuple[int, int], params: PatchOTParams, *, generator: torch.Generator
) -> tuple[torch.Tensor, list[dict]]:
    """Synthesise a texture of ``size`` with the multi-scale semi-discrete patch-OT model.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1].
        size: output ``(H, W)``, any size.
        params: :class:`PatchOTParams`.
        generator: CPU generator.

    Returns:
        ``(output (3, H, W) in [0, 1], log)``: per scale, the share of exemplar patches the map uses and
        the ASGD step.
    """
    ex = check_exemplar(exemplar, "exemplar", min_size=params.patch_size)
    h_out, w_out = size
    p = params.patch_size
    x: torch.Tensor | None = None
    log: list[dict] = []
    for s in range(params.scales - 1, -1, -1):
        f = 2**s
        ex_hw = (max(p, round(ex.shape[1] / f)), max(p, round(ex.shape[2] / f)))
        ex_s = downsample_bilinear(ex, ex_hw, clamp=False)
        hw = (max(p, round(h_out / f)), max(p, round(w_out / f)))
        if x is None:
            x = adsn(ex_s, hw, generator=generator)
        else:
            x = F.interpolate(x[None], size=hw, mode="bilinear", align_corners=False)[0]
        targets = extract_patches(ex_s, p)
        sources = extract_patches(x, p)
        v, info = learn_dual_potentials(
            sources,
            targets,
            iterations=params.iterations,
            batch_size=params.batch_size,
            step_size=params.step_size,
            generator=generator,
        )
        sigma = ot_assign(sources, targets, v)
        nx = hw[1] - p + 1
        pos = torch.arange(sources.shape[0], device=x.device)
        x = aggregate_patches(targets[sigma], pos // nx, pos % nx, p, hw)
        j = targets.shape[0]
        log.append({"scale": s, "targets": j, "targets_used": float(torch.unique(sigma).numel() / j), **info})
    assert x is not None
    if tuple(x.shape[-2:]) != (h_out, w_out):
        x = F.interpolate(x[None], size=(h_out, w_out), mode="bilinear", align_corners=False)[0]
    return x.clamp(0, 1), log


class PatchOT(Synthesizer):
    """Multi-scale semi-discrete optimal transport in patch space (Galerne, Leclaire, Rabin 2018)."""

    name = "patch-ot"
    description = "multi-scale semi-discrete OT of patches: ASGD dual potentials, map and average (GLR 2018)"
    tasks = ("texture",)
    version = "1"
    references = (
        "B. Galerne, A. Leclaire, J. Rabin, A texture synthesis model based on semi-discrete optimal "
        "transport in patch space, SIAM J. Imaging Sci. 2018"
    )
    Params = PatchOTParams
    presets = {"tiny": {"scales": 2, "iterations": 100, "batch_size": 64}}

    def run(self, task_input, *, seed, device):
        if task_input.image is None:
            raise ValueError("patch-ot needs task_input.image (the exemplar)")
        gen = torch.Generator().manual_seed(int(seed))
        ex = check_exemplar(task_input.image, "task_input.image", min_size=self.params.patch_size).to(device)
        out, log = patch_ot_synthesis(ex, tuple(task_input.size), self.params, generator=gen)
        self.record(scales=log)
        return out
