"""A simple exemplar-statistics distance for textures and styles.

Compares two images of any size through a fixed vector of statistics:

* the per-channel pixel means (3) and the colour covariance's upper triangle (6);
* the per-channel standard deviation of each band of a 4-level Laplacian pyramid (12), the energy of the
  image's structure per octave of scale.

The distance is the Euclidean norm of the difference of the two vectors (values on the [0, 1] scale).
It is cheap and weight-free, and it catches wrong colours and wrong scales of structure; it does not see
arrangement (a shuffled image scores like the original). Deep-feature metrics (SiFID, Gram distances)
are the measures to trust; this one exists so every task has a weight-free score.

References:
    Colour moments: Reinhard et al., "Color Transfer between Images", IEEE CG&A 2001; pyramid band
    energies as texture statistics: Heeger & Bergen, "Pyramid-based texture analysis/synthesis",
    SIGGRAPH 1995.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from texbench.base import Metric
from texbench.metrics.checks import check_batch

__all__ = ["StatsDistance", "stats_distance", "texture_statistics"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def texture_statistics(x: torch.Tensor, *, levels: int = 4) -> torch.Tensor:
    """Statistics vector ``(N, 9 + 3 * levels)`` of images ``(N, 3, H, W)`` in [0, 1] (float64)."""
    x = check_batch(x, unbatched=True).double()
    n = x.shape[0]
    flat = x.flatten(2)
    mean = flat.mean(dim=2)
    centred = flat - mean[..., None]
    cov = centred @ centred.transpose(1, 2) / flat.shape[2]
    iu = torch.triu_indices(3, 3)
    feats = [mean, cov[:, iu[0], iu[1]]]
    cur = x
    for level in range(levels):
        if level == levels - 1 or min(cur.shape[-2:]) < 6:
            band = cur - cur.mean(dim=(2, 3), keepdim=True)
        else:
            low = _blur(cur)
            band = cur - low
            cur = low[..., ::2, ::2]
        feats.append(band.flatten(2).std(dim=2, unbiased=False))
        if min(cur.shape[-2:]) < 6 and level < levels - 1:
            feats.extend(torch.zeros(n, 3, dtype=x.dtype, device=x.device) for _ in range(levels - level - 1))
            break
    return torch.cat(feats, dim=1)


def stats_distance(x: torch.Tensor, y: torch.Tensor, *, levels: int = 4) -> torch.Tensor:
    """Euclidean distance between :func:`texture_statistics` of ``x`` and ``y`` (``(N,)``, any sizes).

    >>> img = torch.rand(1, 3, 32, 32)
    >>> float(stats_distance(img, img))
    0.0
    """
    return (texture_statistics(x, levels=levels) - texture_statistics(y, levels=levels)).norm(dim=1)


class StatsDistance(Metric):
    """Colour-moment and pyramid-band-energy distance to a reference of any size (lower is better)."""

    name = "stats-distance"
    description = "colour moments + Laplacian-pyramid band energies, weight-free (lower is better)"
    higher_is_better = False
    kind = "unpaired"
    references = "Reinhard et al. 2001 (colour moments); Heeger & Bergen 1995 (pyramid statistics)"

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return stats_distance(check_batch(x, "x", unbatched=True), check_batch(y, "y", unbatched=True))
