"""Kernel Inception Distance (KID): unbiased MMD² between Inception features, polynomial kernel.

    k(x, y) = (γ ⟨x, y⟩ + c₀)^degree,   γ = 1/d, c₀ = 1, degree = 3 (the paper's cubic kernel)

    MMD²_u = Σ_{i≠j} k(xᵢ, xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (m(m−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / m²

The estimator is unbiased (its expectation is the population MMD², so it is 0 on average for two
samples of one distribution and can be slightly negative), which makes KID comparable across set
sizes, unlike FID. As in the paper and its reference code, it is averaged over ``subsets`` random
subsets of ``subset_size`` samples from each set (drawn without replacement within a subset, seeded);
``subset_size`` is reduced to the smaller set's size when a set is smaller. The mean is the value; the
standard deviation over subsets is reported beside it.

References:
    Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from texbench.metrics.fid import FIDParams
from texbench.metrics.inception_features import InceptionSetMetric
from texbench.params import param

__all__ = ["KID", "KIDParams", "kernel_inception_distance", "mmd2_unbiased", "polynomial_kernel"]


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """``(γ x yᵀ + c₀)^degree`` for rows of ``x`` ``(n, d)`` and ``y`` ``(m, d)``; γ defaults to 1/d.

    >>> polynomial_kernel(np.ones((1, 2)), np.ones((1, 2))).tolist()
    [[8.0]]
    """
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (g * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD² from kernel matrices ``k_xx`` ``(m, m)``, ``k_yy`` ``(n, n)``, ``k_xy`` ``(m, n)``; m, n >= 2."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD² needs at least 2 samples per set, got {m} and {n}")
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * k_xy.mean())


def kernel_inception_distance(
    features_x: Any,
    features_y: Any,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """KID between two feature sets (float64).

    Args:
        features_x: ``(n_x, d)``.
        features_y: ``(n_y, d)``.
        subsets: number of random subsets.
        subset_size: samples per set in each subset (capped at ``min(n_x, n_y)``).
        degree, gamma, coef0: the polynomial kernel (γ = 1/d when ``None``).
        seed: seeds the subset draws.

    Returns:
        ``{"value": mean MMD², "std": std over subsets (ddof=0), "subset_size": size used}``.

    References:
        Bińkowski et al., ICLR 2018.
    """
    fx = np.asarray(features_x, dtype=np.float64)
    fy = np.asarray(features_y, dtype=np.float64)
    if fx.ndim != 2 or fy.ndim != 2 or fx.shape[1] != fy.shape[1]:
        raise ValueError(
            f"features_x and features_y must be (n, d) with the same d, got {fx.shape} and {fy.shape}"
        )
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, fx.shape[0], fy.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {fx.shape[0]} and {fy.shape[0]}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        x = fx[rng.choice(fx.shape[0], m, replace=False)]
        y = fy[rng.choice(fy.shape[0], m, replace=False)]
        kw = dict(degree=degree, gamma=gamma, coef0=coef0)
        values[s] = mmd2_unbiased(
            polynomial_kernel(x, x, **kw), polynomial_kernel(y, y, **kw), polynomial_kernel(x, y, **kw)
        )
    return {"value": float(values.mean()), "std": float(values.std()), "subset_size": float(m)}


@dataclasses.dataclass(frozen=True)
class KIDParams(FIDParams):
    """Feature protocol as :class:`texbench.metrics.fid.FIDParams`, plus the estimator's settings.

    Attributes:
        subsets: random subsets averaged (paper: 100).
        subset_size: samples per set per subset (paper: 1000; capped at the smaller set).
        degree: polynomial kernel degree (3).
        coef0: kernel offset (1).
    """

    subsets: int = param(100, ge=1)
    subset_size: int = param(1000, ge=2)
    degree: int = param(3, ge=1)
    coef0: float = 1.0


class KID(InceptionSetMetric):
    """Kernel Inception Distance between outputs and references (lower is better; ≈ 0 for equal distributions).

    Same features and crop protocol as :class:`texbench.metrics.fid.FID` (one cached Inception pass
    serves both).

    References:
        Bińkowski et al., "Demystifying MMD GANs", ICLR 2018.
    """

    name = "kid"
    description = "Kernel Inception Distance (unbiased MMD², cubic kernel), set-level"
    higher_is_better = False
    references = "Binkowski et al., Demystifying MMD GANs, ICLR 2018"
    Params = KIDParams

    def _kid(self, fx: np.ndarray, fy: np.ndarray, seed: int) -> dict[str, float]:
        p = self.params
        return kernel_inception_distance(
            fx, fy, subsets=p.subsets, subset_size=p.subset_size, degree=p.degree, coef0=p.coef0, seed=seed
        )

    def compute_sets(
        self, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], *, seed: int = 0
    ) -> dict[str, float]:
        """KID between outputs ``xs`` and references ``ys``: ``{"value", "std", "subset_size", "n_outputs", "n_references"}``."""
        fx = self.features(xs, seed=seed, name="xs")
        fy = self.features(ys, seed=seed, name="ys")
        return {**self._kid(fx, fy, seed), "n_outputs": float(len(fx)), "n_references": float(len(fy))}

    def compute_paths(self, a: str | os.PathLike, b: str | os.PathLike, *, seed: int = 0) -> dict[str, Any]:
        """KID between two folders of images (KID needs features, so saved FID statistics do not work)."""
        for p in (Path(a), Path(b)):
            if not p.is_dir():
                raise ValueError(
                    f"{p}: KID needs a folder of images (a .npz of FID statistics has no features)"
                )
        fx, fy = self.folder_features(a, seed=seed), self.folder_features(b, seed=seed)
        return {
            **self._kid(fx, fy, seed),
            "n_a": len(fx),
            "n_b": len(fy),
            **self.provenance(),
            **self._protocol(),
        }
