"""Single-Image FID (SiFID): the Fréchet distance between the internal feature statistics of two images.

Computed in the layout of SinGAN's ``SIFID/sifid_score.py`` (with its ``SIFID/inception.py``):

* each image goes through the Inception network at its own size (no resize: the script's default),
  scaled to [-1, 1] by ``2x - 1``;
* ``dims=192`` (default, the paper's layer, "the output of the convolutional layer just before the
  second pooling layer"): the 192 channels of ``Conv2d_4a_3x3`` *before* the second max-pool (the
  script's block 1 is ``MaxPool → Conv2d_3b_1x1 → Conv2d_4a_3x3``); ``dims=64``: the 64 channels of
  ``Conv2d_2b_3x3`` *before* the first max-pool (block 0, ``Conv2d_1a → 2a → 2b``). These are the taps
  ``conv2d_4a`` and ``conv2d_2b`` of :class:`texbench.nets.inception.FIDInceptionV3`, not its pooled
  64/192 blocks (pytorch-fid's, which FID and KID use);
* every spatial position is one sample: mean and ``np.cov``-style (unbiased) covariance of the
  ``h·w`` channel vectors, compared with :func:`texbench.metrics.fid.frechet_distance` (exact also when
  the covariance is rank-deficient: a 64×64 image has 13×13 = 169 positions at ``conv2d_4a``, fewer
  than 192).

The one departure from the script, recorded in the weights provenance: the network is the FID
Inception (TF 2015-12-05 graph, :data:`texbench.nets.inception.FID_INCEPTION`), not the torchvision
ImageNet Inception-v3 the script loads through ``models.inception_v3(pretrained=True)``, whose weights
have no verified offline source here. SiFID therefore shares its network and feature cache with FID,
KID and sFID; absolute values differ from numbers computed with SinGAN's script by that choice of
weights only.

Version 2 (this layout) replaced version 1, which took both blocks after their max-pools; stored scores
of version 1 are recomputed by the runner, never reused (:attr:`SiFID.version`).

References:
    Shaham, Dekel & Michaeli, "SinGAN: Learning a Generative Model from a Single Natural Image",
    ICCV 2019 (SIFID, ``SIFID/sifid_score.py``, ``SIFID/inception.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from texbench.base import Metric
from texbench.metrics.checks import check_pair
from texbench.metrics.fid import feature_statistics, frechet_distance
from texbench.params import Params

__all__ = ["SIFID_TAPS", "SiFID", "SiFIDParams", "sifid"]

#: ``dims`` → the network tap: SinGAN's blocks, before their max-pools (module docstring).
SIFID_TAPS = {64: "conv2d_2b", 192: "conv2d_4a"}


def _spatial_stats(feat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    c, h, w = feat.shape
    if h * w < 2:
        raise ValueError(f"{name} is too small: its feature map is {w}x{h}, SiFID needs at least 2 positions")
    return feature_statistics(feat.reshape(c, h * w).T)


def sifid(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dims: Literal[64, 192] = 192,
    device: torch.device | str | None = None,
    weights_path=None,
    cache=None,
) -> torch.Tensor:
    """SiFID between each output ``x[i]`` and its reference ``y[i]`` (or the single reference ``y[0]``).

    Args:
        x: float ``(N, 3, H, W)`` in [0, 1]; H, W >= 35 for ``dims=192`` (>= 15 for 64).
        y: float ``(N, 3, H', W')`` or ``(1, 3, H', W')`` in [0, 1], same limits.
        dims: 192 (default: ``Conv2d_4a_3x3`` before the second max-pool) or 64 (``Conv2d_2b_3x3``
            before the first), as SinGAN's script.
        device: where the network runs (default: ``x.device``).
        weights_path: explicit copy of the FID Inception weights.
        cache: a :class:`texbench.metrics.feature_cache.FeatureCache` (default: the shared one).

    Returns:
        ``(N,)`` float64 values, >= 0.

    References:
        Shaham et al., SinGAN, ICCV 2019.
    """
    from texbench.metrics.inception_features import extract_features

    x, y = check_pair(x, y, same_size=False, shared_reference=True)
    if dims not in (64, 192):
        raise ValueError(f"dims must be 64 or 192, got {dims!r}")
    device = x.device if device is None else device
    tap = SIFID_TAPS[dims]
    feats, _ = extract_features(
        [*x, *y], dims=(tap,), resize="none", device=device, weights_path=weights_path, cache=cache
    )
    fx, fy = feats[tap][: x.shape[0]], feats[tap][x.shape[0] :]
    ref_stats = [_spatial_stats(f, "y") for f in fy]
    out = []
    for i, f in enumerate(fx):
        mu1, s1 = _spatial_stats(f, "x")
        mu2, s2 = ref_stats[i if len(ref_stats) > 1 else 0]
        out.append(frechet_distance(mu1, s1, mu2, s2))
    return torch.tensor(out, dtype=torch.float64)


@dataclasses.dataclass(frozen=True)
class SiFIDParams(Params):
    """Attributes:
    dims: Inception block whose spatial features are compared, SinGAN's layout: 192 (``Conv2d_4a_3x3``
        before the second max-pool; the paper's layer, default) or 64 (``Conv2d_2b_3x3`` before the first).
    """

    dims: Literal[64, 192] = 192


class SiFID(Metric):
    """Single-Image FID of an output against one reference image (lower is better).

    ``__call__(x (N, 3, H, W), y (N or 1, 3, H', W')) -> (N,)`` float64. See :func:`sifid`.

    References:
        Shaham, Dekel & Michaeli, "SinGAN", ICCV 2019.
    """

    name = "sifid"
    #: 2: SinGAN's pre-pool layers (1 took the pooled blocks); stored version-1 scores are recomputed
    version = "2"
    description = "Single-Image FID (SinGAN): Fréchet distance of Inception spatial features, per image"
    higher_is_better = False
    kind = "unpaired"
    references = "Shaham et al., SinGAN: Learning a Generative Model from a Single Natural Image, ICCV 2019"
    Params = SiFIDParams
    weights_path: str | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sifid(x, y, dims=self.params.dims, device=self.device, weights_path=self.weights_path)

    def pairs(self, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> torch.Tensor:
        """SiFID of pairs of ``(3, H, W)`` images of any (differing) sizes, ``(N,)`` float64."""
        if len(xs) != len(ys):
            raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
        return (
            torch.cat([self(x[None], y[None]) for x, y in zip(xs, ys, strict=True)])
            if xs
            else torch.zeros(0, dtype=torch.float64)
        )

    def provenance(self) -> dict[str, str]:
        from texbench.nets.inception import FID_INCEPTION, load_fid_inception

        _, prov = load_fid_inception(self.device, path=self.weights_path)
        return {FID_INCEPTION.name: prov}
