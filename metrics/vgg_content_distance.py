"""VGG-19 content (feature) distance: the content loss of Gatys et al. between two aligned images.

``vgg_content_distance(x, y) = mean((F(x) − F(y))²)`` over the C·H·W entries of ``relu4_2`` (Gatys et
al.'s content layer), with the normalised VGG-19 by default: the content term that ``gatys`` minimises
for the style task. Differences accumulate in float64, one image at a time (independent of the batch).
The functional is differentiable: gradients flow back to ``x`` and ``y``.

References:
    Gatys, Ecker & Bethge, "Image style transfer using convolutional neural networks", CVPR 2016.
"""

from __future__ import annotations

import dataclasses

import torch

from texbench.metrics.checks import check_pair
from texbench.metrics.vgg_feature_metric import VGGFeatureMetric
from texbench.nets.vgg19 import CONTENT_LAYER, LAYER_NAMES, VGG19Features, VGGPadding, VGGPooling, VGGWeights
from texbench.params import Params, param

__all__ = ["VGGContentDistance", "VGGContentDistanceParams", "vgg_content_distance"]


def vgg_content_distance(
    x: torch.Tensor, y: torch.Tensor, *, extractor: VGG19Features, layer: str = CONTENT_LAYER
) -> torch.Tensor:
    """Mean squared ``layer`` feature difference per image pair.

    Args:
        x: ``(N, 3, H, W)`` RGB in [0, 1].
        y: ``(N, 3, H, W)`` RGB in [0, 1], pixel-aligned with ``x``.
        extractor: a :class:`VGG19Features` returning ``layer``.
        layer: VGG-19 layer name.

    Returns:
        ``(N,)`` float64, >= 0; 0 for identical images.

    References:
        Gatys, Ecker & Bethge, CVPR 2016 (eq. 1, as a mean rather than half a sum).
    """
    x, y = check_pair(x, y)
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(x.shape[0]):
        fx = extractor(x[i : i + 1].float())[layer].double()
        fy = extractor(y[i : i + 1].float())[layer].double()
        out[i] = (fx - fy).pow(2).mean()
    return out


@dataclasses.dataclass(frozen=True)
class VGGContentDistanceParams(Params):
    """Parameters of :class:`VGGContentDistance` (defaults: Gatys et al.'s content representation)."""

    layer: str = param(CONTENT_LAYER, choices=LAYER_NAMES)
    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    padding: VGGPadding = "zeros"


class VGGContentDistance(VGGFeatureMetric):
    """VGG-19 ``relu4_2`` feature distance to the content image; lower is better.

    References:
        Gatys, Ecker & Bethge, CVPR 2016.
    """

    name = "vgg-content-distance"
    description = "VGG-19 relu4_2 mean squared feature distance (Gatys et al.'s content loss)"
    higher_is_better = False
    kind = "paired"
    is_differentiable = True
    references = "Gatys, Ecker & Bethge, CVPR 2016"
    Params = VGGContentDistanceParams

    def feature_layers(self) -> tuple[str, ...]:
        return (self.params.layer,)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return vgg_content_distance(
            x.to(self.device), y.to(self.device), extractor=self.extractor, layer=self.params.layer
        )
