"""Gram (style) distance in VGG-19 space: how far an image's feature statistics are from a reference's.

``gram_distance(x, y) = Σ_i w_i² ‖G_i(x) − G_i(y)‖²_F`` over ``relu1_1, relu2_1, relu3_1, relu4_1,
relu5_1`` with ``G = FᵀF / N_positions`` and ``w_i = 1/C_i``: exactly the style loss that Gatys et al.
minimise (:func:`texbench.ops.gram.style_loss`), so the value a method reaches is comparable
with the loss curve of ``gatys``. Grams are accumulated in float64; images of any size are compared
(an unpaired metric), one image at a time, so the value does not depend on the batch. The functional is
differentiable: gradients flow back to ``x`` and ``y`` (the Gram loss as a training loss).

References:
    Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015;
    "Image style transfer using convolutional neural networks", CVPR 2016.
"""

from __future__ import annotations

import dataclasses

import torch

from texbench.metrics.checks import check_pair
from texbench.metrics.vgg_feature_metric import VGGFeatureMetric
from texbench.nets.vgg19 import LAYER_NAMES, STYLE_LAYERS, VGG19Features, VGGPadding, VGGPooling, VGGWeights
from texbench.ops.gram import GramNorm, LayerWeights, gram_matrix, style_loss
from texbench.params import Params, param

__all__ = ["GramDistance", "GramDistanceParams", "gram_distance"]


def gram_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    extractor: VGG19Features,
    layers: tuple[str, ...] = STYLE_LAYERS,
    gram_norm: GramNorm = "positions",
    layer_weights: LayerWeights = "inverse-channels",
) -> torch.Tensor:
    """Gram distance of each image of ``x`` to the matching (or the single) image of ``y``.

    Args:
        x: ``(N, 3, H, W)`` RGB in [0, 1].
        y: ``(N, 3, h, w)`` or ``(1, 3, h, w)`` RGB in [0, 1], any size.
        extractor: a :class:`VGG19Features` returning at least ``layers``.
        layers: the layers compared.
        gram_norm, layer_weights: as in :func:`texbench.ops.gram.style_loss`.

    Returns:
        ``(N,)`` float64, >= 0; 0 for identical images.

    References:
        Gatys, Ecker & Bethge, NeurIPS 2015.
    """
    x, y = check_pair(x, y, same_size=False, shared_reference=True)
    n = x.shape[0]

    def grams(img: torch.Tensor) -> list[torch.Tensor]:
        f = extractor(img[None].float())
        return [gram_matrix(f[name].double(), normalize=gram_norm) for name in layers]

    y_grams = grams(y[0]) if y.shape[0] == 1 else None
    out = torch.empty(n, dtype=torch.float64, device=x.device)
    for i in range(n):
        gy = y_grams if y_grams is not None else grams(y[i])
        out[i] = style_loss(grams(x[i]), gy, layer_weights=layer_weights)[0]
    return out


@dataclasses.dataclass(frozen=True)
class GramDistanceParams(Params):
    """Parameters of :class:`GramDistance` (defaults: Gatys et al.'s style representation)."""

    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    padding: VGGPadding = "zeros"
    layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=LAYER_NAMES)
    gram_norm: GramNorm = "positions"
    layer_weights: LayerWeights = "inverse-channels"


class GramDistance(VGGFeatureMetric):
    """VGG-19 Gram (style) distance to a reference of any size; lower is better.

    References:
        Gatys, Ecker & Bethge, NeurIPS 2015; CVPR 2016.
    """

    name = "gram-distance"
    description = "VGG-19 Gram-matrix (style) distance, Gatys et al.'s style loss"
    higher_is_better = False
    kind = "unpaired"
    is_differentiable = True
    references = "Gatys, Ecker & Bethge, NeurIPS 2015 and CVPR 2016"
    Params = GramDistanceParams

    def feature_layers(self) -> tuple[str, ...]:
        return tuple(self.params.layers)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = self.params
        return gram_distance(
            x.to(self.device),
            y.to(self.device),
            extractor=self.extractor,
            layers=p.layers,
            gram_norm=p.gram_norm,
            layer_weights=p.layer_weights,
        )
