"""Johnson et al.'s image transformation networks, the perceptual losses and images they are trained with,
and the training loop.

Losses, as the paper writes them (Section 3.2-3.3), for a batch they are averaged over the images:

* feature reconstruction ``ℓ_feat = ‖φ_j(ŷ) − φ_j(y)‖² / (C_j H_j W_j)`` at ``relu2_2``;
* style reconstruction ``ℓ_style = Σ_j ‖G_j(ŷ) − G_j(y_s)‖²_F`` with ``G_j = φ_j φ_jᵀ / (C_j H_j W_j)``
  (:func:`texbench.ops.gram.gram_matrix` with ``normalize="all"``, :data:`GRAM_NORM`) at ``relu1_2,
  relu2_2, relu3_3, relu4_3`` (one weight for all layers, the paper's sum; the Torch code's
  ``MSECriterion`` on the Gram matrices also divides each layer by ``C_j²``: ``style_layer_norm="mse"``).
  :func:`style_loss` is this batch-averaged sum over a dict of layers, not :func:`texbench.ops.gram.style_loss`
  (Gatys' per-image weighted sum): its float order is part of what trained networks were trained on;
* total variation ``ℓ_TV`` = mean over pixels of the squared differences of horizontal and vertical
  neighbours (on the [0, 1] scale).

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

Output range: the paper's "scaled tanh" to [0, 255] is ``(1 + tanh) / 2`` on texbench's [0, 1] scale; the
network's input is the image mapped to [-1, 1].

References:
    Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
    ECCV 2016 (arXiv:1603.08155), and its supplementary material.
    Ulyanov, Vedaldi & Lempitsky, "Instance Normalization: The Missing Ingredient for Fast Stylization",
    arXiv:1607.08022, 2016.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.ops.gram import GramNorm, gram_matrix
from texbench.ops.resize import resize
from texbench.trained import subsample_curve

__all__ = [
    "GRAM_NORM",
    "ResidualBlock",
    "SRNet",
    "StyleNet",
    "TrainingImages",
    "content_loss",
    "pixel_loss",
    "style_loss",
    "total_variation",
    "train_network",
]

#: the paper's Gram normalisation, ``G_j = φ_j φ_jᵀ / (C_j H_j W_j)``
GRAM_NORM: GramNorm = "all"

_COCO_HELP = (
    "The paper trains on MS-COCO train2014 (80k images): download "
    "http://images.cocodataset.org/zips/train2014.zip, unzip it and pass train_images=/path/to/train2014, "
    "or train offline on texbench's own images with train_images=builtin-train (preset 'offline')."
)



# ------------------------------------------------------------------------------------------------ losses
def content_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss ``‖x − y‖² / (C·H·W)`` per image, averaged over the batch."""
    return (x - y).pow(2).mean()


def pixel_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss ``‖x − y‖² / (C·H·W)`` per image, averaged over the batch (the paper's ``ℓ_pixel``):
    the normalised distance of :func:`content_loss`, taken on the images instead of their features."""
    return content_loss(x, y)


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
        d = (gram_matrix(feats[name], normalize=GRAM_NORM) - target).pow(2).sum(dim=(1, 2)).mean()
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


# ------------------------------------------------------------------------------------------ training
def train_network(
    net: nn.Module,
    step_loss: Callable[[torch.Generator], tuple[torch.Tensor, dict[str, float]]],
    *,
    iterations: int,
    lr: float,
    seed: int,
    restart_at: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Adam on ``net``'s parameters for ``iterations`` steps of ``step_loss(generator)``; returns the final
    loss and terms and the (subsampled) loss curve.

    ``restart_at``: 0-based steps before which the optimiser starts afresh (where ``step_loss`` switches
    to a loss of another scale, Adam's moment estimates of the old one would set the first step sizes).
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    curve: list[float] = []
    parts: dict[str, float] = {}
    for i in range(iterations):
        if i and i in restart_at:
            opt = torch.optim.Adam(net.parameters(), lr=lr)
        opt.zero_grad(set_to_none=True)
        loss, parts = step_loss(gen)
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    net.eval()
    steps, values = subsample_curve(curve, 100)
    return {"iterations": iterations, "final_loss": curve[-1], "final_terms": parts,
            "loss_curve": values, "loss_curve_steps": steps}  # fmt: skip
