"""Shared base of the metrics computed on VGG-19 features (``gram-distance``, ``vgg-content-distance``):
one lazily built, frozen :class:`texbench.nets.vgg19.VGG19Features` per metric, and its provenance."""

from __future__ import annotations

from typing import Any

from texbench.base import Metric
from texbench.nets.vgg19 import VGG19Features

__all__ = ["VGGFeatureMetric"]


class VGGFeatureMetric(Metric):
    """A metric holding one lazily built, frozen VGG-19 extractor cut after the layers it needs.

    Subclasses' params carry ``weights``, ``pooling`` and ``padding``; :meth:`feature_layers` names the
    layers.
    """

    def __init__(self, params: Any = None, *, device: Any = "cpu") -> None:
        super().__init__(params, device=device)
        self._extractor: VGG19Features | None = None

    def feature_layers(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def extractor(self) -> VGG19Features:
        if self._extractor is None:
            p = self.params
            self._extractor = VGG19Features(
                self.feature_layers(), weights=p.weights, pooling=p.pooling, padding=p.padding
            ).to(self.device)
        return self._extractor

    def provenance(self) -> dict[str, str]:
        return {"vgg19": self.extractor.provenance}
