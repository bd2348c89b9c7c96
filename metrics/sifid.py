"""Single-Image FID (SiFID): the Fréchet distance between the internal feature statistics of two images.

Each image goes through the FID Inception network at its own size (no resize, as SinGAN's SIFID
script), and the feature vectors at every spatial position of one block are treated as samples:
their mean and covariance are compared with :func:`texbench.metrics.fid.frechet_distance`.

Choices, recorded in the metric's params:

* ``dims=192`` (default): the block after the second max-pool, the layer the SinGAN paper names ("the
  output of the convolutional layer just before the second pooling layer"; its pooled version is what
  the public script computes with ``--dims 192``, and what is computed here). ``dims=64`` (after the first
  max-pool) is selectable: the SIFID script's default changed between the two.
* Weights: the FID Inception (TF 2015-12-05 graph), not torchvision's ImageNet Inception that SinGAN's
  script happened to load, so SiFID shares its network, weights provenance and feature cache with FID
  and KID. Absolute values therefore differ from numbers computed with SinGAN's script.

With few spatial positions (a 128×128 image gives 13×13 = 169 vectors at the 192 block), the
covariance is rank-deficient; the Fréchet distance handles that exactly.

References:
    Shaham, Dekel & Michaeli, "SinGAN: Learning a Generative Model from a Single Natural Image",
    ICCV 2019 (SIFID, ``SIFID/sifid_score.py``).
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

__all__ = ["SiFID", "SiFIDParams", "sifid"]


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
        y: float ``(N, 3, H', W')`` or ``(1, 3, H', W')`` in [0, 1], any size.
        dims: feature block, 192 (default) or 64.
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
    feats, _ = extract_features(
        [*x, *y], dims=(dims,), resize="none", device=device, weights_path=weights_path, cache=cache
    )
    fx, fy = feats[dims][: x.shape[0]], feats[dims][x.shape[0] :]
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
    dims: Inception block whose spatial features are compared: 192 (SinGAN paper, default) or 64.
    """

    dims: Literal[64, 192] = 192


class SiFID(Metric):
    """Single-Image FID of an output against one reference image (lower is better).

    ``__call__(x (N, 3, H, W), y (N or 1, 3, H', W')) -> (N,)`` float64. See :func:`sifid`.

    References:
        Shaham, Dekel & Michaeli, "SinGAN", ICCV 2019.
    """

    name = "sifid"
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
