"""Fréchet Inception Distance (FID): the Fréchet distance between Gaussians fitted to Inception features.

    FID = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁ Σ₂)^{1/2}

:func:`frechet_distance` is pure numpy in float64. The trace term is computed without ever forming the
non-symmetric product Σ₁Σ₂ (whose ``scipy.linalg.sqrtm`` is slow and inaccurate when the covariances
are rank-deficient, as they are whenever there are fewer images than feature dimensions: FID on 64
crops with 2048-d features, SiFID's few hundred 192-d vectors). Write each covariance as
``Σᵢ = Uᵢ Uᵢᵀ``; then Σ₁Σ₂ has the same non-zero eigenvalues as ``(U₁ᵀU₂)(U₁ᵀU₂)ᵀ``, so

    Tr (Σ₁ Σ₂)^{1/2} = ‖U₁ᵀ U₂‖_*   (the nuclear norm: sum of singular values),

computed by an SVD to absolute accuracy ``eps · ‖U₁‖‖U₂‖``, with no square root of a round-off-sized
eigenvalue anywhere. ``Uᵢ`` is the centred feature matrix / sqrt(n − 1) when the features are at hand and
n − 1 <= d (:func:`frechet_distance_from_features`: exact and fast, an ``n₁ × n₂`` SVD instead of 2048×2048
eigendecompositions), otherwise the eigen-factor of Σᵢ whose eigenvalues within round-off of zero
(``d · eps · λ_max``) are dropped. The result is real by construction; what can go wrong is an input
that is not a covariance: an eigenvalue below ``-(d · eps · λ_max)`` raises :class:`ValueError` naming
the argument. A final value below zero by more than round-off (1e-7 of the terms) raises too; within
round-off it is 0 (FID(X, X) = 0).

``method="sqrtm"`` reproduces pytorch-fid's formula (``scipy.linalg.sqrtm`` of Σ₁Σ₂) for comparison, with
the imaginary part checked properly: the imaginary part of the *trace* relative to its real part, not
only the diagonal against a fixed 1e-3.

Statistics files (:func:`save_statistics`, :func:`load_statistics`) are ``.npz`` archives with
pytorch-fid's keys ``mu`` and ``sigma`` (so either tool reads the other's files), plus texbench's
metadata (weights provenance, ``resize``, number of images, crop protocol) when texbench wrote them.

References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
    NeurIPS 2017. Dowson & Landau, "The Fréchet distance between multivariate normal distributions",
    J. Multivariate Anal. 1982. Seitzer, pytorch-fid 0.3.0 (``calculate_frechet_distance``).
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from texbench.metrics.inception_features import InceptionSetMetric
from texbench.params import Params, param

__all__ = [
    "FID",
    "FIDParams",
    "Statistics",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "load_statistics",
    "save_statistics",
    "trace_sqrt_product",
]


# ------------------------------------------------------------------------------------------------- maths
def _as_cov(sigma: Any, name: str) -> np.ndarray:
    s = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} has non-finite entries")
    scale = max(np.abs(s).max(), np.finfo(np.float64).tiny)
    if np.abs(s - s.T).max() > 1e-6 * scale:
        raise ValueError(f"{name} is not symmetric (max asymmetry {np.abs(s - s.T).max():.3g})")
    return (s + s.T) / 2


def _cov_factor(sigma: np.ndarray, name: str) -> np.ndarray:
    """``U`` (d, r) with ``U Uᵀ = sigma`` from a symmetric eigendecomposition; eigenvalues within
    round-off of zero are dropped, so a rank-deficient covariance gets an exactly rank-deficient factor."""
    w, v = np.linalg.eigh(sigma)
    tol = sigma.shape[0] * np.finfo(np.float64).eps * max(np.abs(w).max(), np.finfo(np.float64).tiny)
    if w.min() < -tol:
        raise ValueError(
            f"{name} is not positive semi-definite: eigenvalue {w.min():.3g} (round-off level {tol:.3g})"
        )
    keep = w > tol
    return v[:, keep] * np.sqrt(w[keep])


def _features_factor(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a covariance factor of ``features`` (n, d): the centred samples themselves when n - 1 <= d
    (no eigendecomposition at all), else the eigen-factor of the covariance."""
    n, d = features.shape
    mu = features.mean(axis=0)
    if n - 1 <= d:
        return mu, (features - mu).T / np.sqrt(n - 1)
    return mu, _cov_factor(feature_statistics(features)[1], "features")


def _nuclear_norm(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float(np.linalg.svd(a, compute_uv=False).sum())


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """``Tr (Σ₁ Σ₂)^{1/2}`` for covariance matrices, exact for rank-deficient ones (module docstring).

    >>> float(round(trace_sqrt_product(np.diag([4.0, 0.0]), np.diag([9.0, 1.0])), 12))
    6.0
    """
    s1, s2 = _as_cov(sigma1, "sigma1"), _as_cov(sigma2, "sigma2")
    if s1.shape != s2.shape:
        raise ValueError(f"sigma1 and sigma2 must have the same shape, got {s1.shape} and {s2.shape}")
    return _nuclear_norm(_cov_factor(s1, "sigma1").T @ _cov_factor(s2, "sigma2"))


def _trace_sqrtm_scipy(s1: np.ndarray, s2: np.ndarray) -> float:
    from scipy import linalg

    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        raise ValueError("scipy.linalg.sqrtm(sigma1 @ sigma2) is not finite: use method='eigh'")
    tr = np.trace(covmean)
    if np.iscomplexobj(covmean):
        # the trace of the true square root is real and >= 0; a relevant imaginary part means the
        # computed root is wrong, not that it may be discarded
        if abs(tr.imag) > 1e-6 * max(abs(tr.real), 1.0):
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has a trace with imaginary part {tr.imag:.3g} "
                f"(real part {tr.real:.3g}): the inputs are not covariances or the product is too "
                "ill-conditioned; use method='eigh'"
            )
        tr = tr.real
    return float(tr)


def frechet_distance(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, method: Literal["eigh", "sqrtm"] = "eigh"
) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64).

    Args:
        mu1, mu2: means, shape ``(d,)``.
        sigma1, sigma2: covariances, shape ``(d, d)``, symmetric positive semi-definite (may be singular).
        method: ``"eigh"`` (default; see the module docstring) or ``"sqrtm"`` (pytorch-fid's formula).

    Returns:
        The squared Fréchet distance, ``>= 0``.

    Raises:
        ValueError: mismatched shapes, non-finite values, a non-PSD covariance, or a result below zero
            by more than round-off.

    Examples:
        >>> mu, cov = np.zeros(3), np.eye(3)
        >>> frechet_distance(mu, cov, mu + 1, cov)  # equal covariances: squared mean difference
        3.0

    References:
        Heusel et al., NeurIPS 2017; Dowson & Landau, 1982.
    """
    m1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    m2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    if m1.ndim != 1 or m1.shape != m2.shape:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length, got {m1.shape} and {m2.shape}")
    if not (np.isfinite(m1).all() and np.isfinite(m2).all()):
        raise ValueError("mu1 and mu2 must be finite")
    s1, s2 = _as_cov(sigma1, "sigma1"), _as_cov(sigma2, "sigma2")
    if s1.shape != (m1.size, m1.size) or s2.shape != s1.shape:
        raise ValueError(
            f"sigma1 and sigma2 must be ({m1.size}, {m1.size}) to match the means, got {s1.shape} and {s2.shape}"
        )
    if method == "eigh":
        u1, u2 = _cov_factor(s1, "sigma1"), _cov_factor(s2, "sigma2")
        return _frechet_from_factors(m1, u1, float(np.trace(s1)), m2, u2, float(np.trace(s2)))
    if method == "sqrtm":
        return _finish(m1, m2, float(np.trace(s1)), float(np.trace(s2)), _trace_sqrtm_scipy(s1, s2))
    raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")


def _frechet_from_factors(mu1, u1, tr1, mu2, u2, tr2) -> float:
    return _finish(mu1, mu2, tr1, tr2, _nuclear_norm(u1.T @ u2))


def _finish(mu1: np.ndarray, mu2: np.ndarray, tr1: float, tr2: float, tr_covmean: float) -> float:
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    value = mean_term + tr1 + tr2 - 2.0 * tr_covmean
    if value < 0:
        # round-off of a true 0 is ~1e-13 of the terms; anything larger means inconsistent inputs
        if value < -1e-7 * (mean_term + tr1 + tr2):
            raise ValueError(f"Fréchet distance came out negative ({value:.6g}): inputs are inconsistent")
        value = 0.0
    return float(value)


def frechet_distance_from_features(features1: Any, features2: Any) -> float:
    """FID between two feature sets ``(n1, d)`` and ``(n2, d)``, without forming d×d square roots.

    Equal to ``frechet_distance(*feature_statistics(f1), *feature_statistics(f2))``; with fewer samples
    than dimensions it factors each covariance by its centred samples, so the trace term is the nuclear
    norm of an ``n1 × n2`` matrix (exact, and fast: no 2048×2048 eigendecomposition).

    >>> f = np.random.default_rng(0).normal(size=(10, 50))
    >>> round(frechet_distance_from_features(f, f + 2.0), 9)  # a shift: squared norm of the mean difference
    200.0
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    for name, f in (("features1", f1), ("features2", f2)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must have shape (n, d) with n >= 2, got {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"{name} has non-finite values")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features1 and features2 must have the same d, got {f1.shape[1]} and {f2.shape[1]}")
    (m1, u1), (m2, u2) = _features_factor(f1), _features_factor(f2)
    return _frechet_from_factors(m1, u1, float((u1 * u1).sum()), m2, u2, float((u2 * u2).sum()))


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (float64) of ``features`` ``(n, d)``, n >= 2.

    >>> mu, sigma = feature_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> mu.tolist(), sigma.tolist()
    ([1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must have shape (n, d), got {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"features: need at least 2 samples for a covariance, got {f.shape[0]}")
    mu = f.mean(axis=0)
    c = f - mu
    sigma = (c.T @ c) / (f.shape[0] - 1)
    return mu, (sigma + sigma.T) / 2


# ------------------------------------------------------------------------------------------- statistics
@dataclasses.dataclass(frozen=True)
class Statistics:
    """Gaussian statistics of a feature set and how they were made (``meta``; empty for pytorch-fid files).

    ``factor`` (optional, ``(d, r)`` with ``factor @ factor.T == sigma``) is the centred features divided
    by sqrt(n - 1) when there were no more samples than dimensions: with it, comparing against these
    statistics needs no d×d eigendecomposition (seconds to minutes for d = 2048 on a small CPU).
    """

    mu: np.ndarray
    sigma: np.ndarray
    meta: Mapping[str, str] = dataclasses.field(default_factory=dict)
    factor: np.ndarray | None = None

    @classmethod
    def from_features(cls, features: Any, meta: Mapping[str, str] | None = None) -> Statistics:
        f = np.asarray(features, dtype=np.float64)
        mu, sigma = feature_statistics(f)
        factor = (f - mu).T / np.sqrt(f.shape[0] - 1) if f.shape[0] - 1 <= f.shape[1] else None
        return cls(mu, sigma, dict(meta or {}), factor)

    def frechet_distance(self, other: Statistics) -> float:
        """FID between these statistics and ``other`` (uses the factors when present)."""
        if self.mu.shape != other.mu.shape:
            raise ValueError(f"statistics of different dimensions: {self.mu.size} and {other.mu.size}")
        u1 = self.factor if self.factor is not None else _cov_factor(_as_cov(self.sigma, "sigma1"), "sigma1")
        u2 = (
            other.factor
            if other.factor is not None
            else _cov_factor(_as_cov(other.sigma, "sigma2"), "sigma2")
        )
        return _frechet_from_factors(
            self.mu, u1, float(np.trace(self.sigma)), other.mu, u2, float(np.trace(other.sigma))
        )


def save_statistics(path: str | os.PathLike, mu: Any, sigma: Any, *, factor: Any = None, **meta: Any) -> Path:
    """Write ``mu``/``sigma`` (pytorch-fid's keys), optionally ``factor``, and ``meta`` (as ``meta_<key>``
    strings) to an ``.npz``, atomically."""
    from texbench.imageio import atomic_write_bytes

    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"mu must be (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    arrays = {"mu": mu, "sigma": sigma, **{f"meta_{k}": np.array(str(v)) for k, v in meta.items()}}
    if factor is not None:
        arrays["factor"] = np.asarray(factor, dtype=np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_statistics(path: str | os.PathLike) -> Statistics:
    """Read an ``.npz`` with ``mu`` and ``sigma`` (texbench's or pytorch-fid's).

    Raises:
        ValueError: missing arrays, wrong shapes, or a ``factor`` that does not reproduce ``sigma``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such statistics file")
    with np.load(p, allow_pickle=False) as f:
        if "mu" not in f or "sigma" not in f:
            raise ValueError(f"{p}: not a FID statistics file (needs arrays 'mu' and 'sigma', has {list(f)})")
        mu, sigma = f["mu"].astype(np.float64), f["sigma"].astype(np.float64)
        factor = f["factor"].astype(np.float64) if "factor" in f else None
        meta = {k[5:]: str(f[k]) for k in f if k.startswith("meta_")}
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"{p}: mu must be (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    if factor is not None:
        scale = max(np.abs(sigma).max(), np.finfo(np.float64).tiny)
        if (
            factor.ndim != 2
            or factor.shape[0] != mu.size
            or not np.allclose(factor @ factor.T, sigma, rtol=1e-6, atol=1e-9 * scale)
        ):
            raise ValueError(f"{p}: 'factor' does not reproduce 'sigma'")
    return Statistics(mu, sigma, meta, factor)


# ----------------------------------------------------------------------------------------------- metric
@dataclasses.dataclass(frozen=True)
class FIDParams(Params):
    """How images become Inception features.

    Attributes:
        crop_size: 0 to use whole images (pytorch-fid's protocol); else take ``crops_per_image`` random
            ``crop_size × crop_size`` crops of every image (texture protocol, see
            :func:`texbench.metrics.inception_features.random_crops`).
        crops_per_image: crops per image when ``crop_size > 0``.
        resize: ``"pytorch-fid"`` (bilinear tensor resize to 299×299 and ``2x - 1``, the default, as most
            papers) or ``"clean"`` (clean-fid's clean mode: clipped float PIL bicubic and ``(v - 128) / 128``;
            equals clean-fid 0.1.35's FID and KID, see :mod:`texbench.nets.inception`).
    """

    crop_size: int = param(0, ge=0)
    crops_per_image: int = param(1, ge=1)
    resize: Literal["pytorch-fid", "clean"] = "pytorch-fid"


class FID(InceptionSetMetric):
    """Fréchet Inception Distance between a set of outputs and a set of references (lower is better).

    Features: pool3 of the FID Inception network (TF 2015-12-05 weights, see
    :mod:`texbench.nets.inception`), preprocessing ``params.resize``.
    Whole images by default; the texture task uses random crops (``crop_size``, ``crops_per_image``;
    positions seeded by ``seed`` and each image's identity), because outputs and exemplars differ in size
    and a texture is a stationary field of which any crop is a sample.

    FID of small sets is biased upwards and only comparable between sets of the same size.

    References:
        Heusel et al., NeurIPS 2017.
    """

    name = "fid"
    description = "Fréchet Inception Distance (pool3 of the TF FID Inception), set-level"
    higher_is_better = False
    references = "Heusel et al., GANs Trained by a Two Time-Scale Update Rule..., NeurIPS 2017"
    Params = FIDParams

    def statistics(self, images: Sequence[torch.Tensor], *, seed: int = 0) -> Statistics:
        """Statistics of the features of ``images`` (or their crops), with provenance and protocol."""
        feats = self.features(images, seed=seed)
        return Statistics.from_features(
            feats, {**self.provenance(), **self._protocol(), "n": str(len(feats))}
        )

    def compute_sets(
        self, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], *, seed: int = 0
    ) -> dict[str, float]:
        """FID between outputs ``xs`` and references ``ys`` (each a sequence of ``(3, H, W)`` in [0, 1]).

        Returns:
            ``{"value": FID, "n_outputs": ..., "n_references": ...}`` (sample counts after cropping).
        """
        fx = self.features(xs, seed=seed, name="xs")
        fy = self.features(ys, seed=seed, name="ys")
        value = frechet_distance_from_features(fx, fy)
        return {"value": value, "n_outputs": float(len(fx)), "n_references": float(len(fy))}

    def _path_statistics(self, path: Path, seed: int) -> Statistics:
        if path.is_file() and path.suffix == ".npz":
            stats = load_statistics(path)
            self._check_compatible(stats, path)
            return stats
        if not path.is_dir():
            raise ValueError(f"{path}: expected a folder of images or a .npz statistics file")
        feats = self.folder_features(path, seed=seed)
        return Statistics.from_features(
            feats, {**self.provenance(), **self._protocol(), "n": str(len(feats))}
        )

    def _check_compatible(self, stats: Statistics, path: Path) -> None:
        if stats.mu.shape != (self.feature_dim,):
            raise ValueError(
                f"{path}: statistics of {stats.mu.size}-d features; {self.name} uses {self.feature_dim}-d features"
            )
        mine = {**self.provenance(), **self._protocol()}
        clash = {k: (stats.meta[k], v) for k, v in mine.items() if k in stats.meta and stats.meta[k] != v}
        if clash:
            detail = ", ".join(f"{k}: file {a!r} vs now {b!r}" for k, (a, b) in clash.items())
            raise ValueError(f"{path}: statistics were computed differently ({detail})")

    def compute_paths(self, a: str | os.PathLike, b: str | os.PathLike, *, seed: int = 0) -> dict[str, Any]:
        """FID between two folders of images, or saved ``.npz`` statistics (texbench's or pytorch-fid's).

        Returns:
            ``{"value": FID, "n_a": ..., "n_b": ..., "provenance": ..., "resize": ...}`` (``n`` is ``None``
            for a pytorch-fid file, which does not record it).
        """
        sa, sb = self._path_statistics(Path(a), seed), self._path_statistics(Path(b), seed)
        value = sa.frechet_distance(sb)

        def n(s: Statistics):
            return int(s.meta["n"]) if "n" in s.meta else None

        return {"value": value, "n_a": n(sa), "n_b": n(sb), **self.provenance(), **self._protocol()}

    def save_folder_statistics(
        self, folder: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0
    ) -> Statistics:
        """Compute and save the reference statistics of a folder (``.npz``, pytorch-fid compatible)."""
        stats = self._path_statistics(Path(folder), seed)
        save_statistics(out, stats.mu, stats.sigma, factor=stats.factor, **stats.meta)
        return stats
