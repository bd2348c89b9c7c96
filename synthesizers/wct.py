"""Li et al.'s Universal Style Transfer: whitening–colouring transforms (WCT), coarse to fine.

The normalised VGG-19 (the AdaIN encoder's weights and layout: max pooling, reflection padding) encodes
content and style at ``relu5_1``; the content features are *whitened* (mean removed, covariance made the
identity), *coloured* with the style's covariance and mean, blended with the content features and
decoded by a decoder trained to invert the encoder at that layer. The decoded image is the content of
the next, finer level: ``relu5_1 → relu4_1 → relu3_1 → relu2_1 → relu1_1`` (the paper's Fig. 3 and the
authors' ``test_wct.lua``).

The transform, on ``(C, N)`` features with means ``m_c``, ``m_s`` removed (computed in float64):

* whitening: ``f̂_c = E_c D_c^{-1/2} E_cᵀ (f_c − m_c)`` with ``E_c D_c E_cᵀ`` the eigendecomposition of the
  content covariance ``(f_c − m_c)(f_c − m_c)ᵀ / (N − 1)``; eigenvalues below 1e-5 are dropped (the
  authors' threshold);
* colouring: ``f_cs = E_s D_s^{1/2} E_sᵀ f̂_c + m_s`` with the style covariance's eigendecomposition
  (eigenvalues below 1e-5 dropped);
* blend: ``α f_cs + (1 − α) f_c``, α = 0.6 (``-alpha 0.6`` in the authors' code, the paper's figures).

``eps`` (default 0, the authors' Torch code) is added to the content covariance's diagonal before the
whitening; the widely used PyTorch port (``sunshineatnoon/PytorchWCT``) adds the identity (``eps = 1``),
which damps the whitening on low-variance directions. With ``eps = 0`` and full-rank covariances the
whitened features have identity covariance and the coloured ones exactly the style's covariance and mean.

Decoders (:class:`MirrorDecoder`): the mirror of the encoder up to each level — its 3×3 convolutions in
reverse order with input and output channels swapped, reflection padding, ReLU after each but the last,
nearest-neighbour ×2 up-sampling where the encoder pools (the authors' ``feature_invertor_conv{k}_1``, as
converted in the PyTorch port). The ``relu4_1`` one has exactly the AdaIN decoder's shape.

Training (texbench trains the five decoders itself, one per level, cached by :mod:`texbench.trained` and
shared by every preset and α that uses the same training parameters): Adam on

    L = ‖I_o − I_i‖² + λ ‖Φ(I_o) − Φ(I_i)‖²,  λ = 1,

both terms mean squared errors, ``Φ`` the encoder at the decoder's level (the paper's Eq. 1; λ = 1, and
pixel and feature weights 1 as in the WCT-TF re-implementation's training script, whose learning rate
1e-4 with inverse decay 5e-5 per step, batch 8 and 256² crops are the defaults here). The paper trains
on MS-COCO (``train_images``); preset ``offline`` trains on ``builtin-train`` instead.

Budget of the defaults (160 000 steps per decoder, WCT-TF's ``max_iter``): a GPU job. Measured on this
machine's 2 CPU cores shared with other jobs (load average about 15), one step at batch 2 of 32² crops
took 10-15 s for the ``relu5_1`` decoder (13M parameters), 7-9 s for ``relu4_1``, 3-5 s for ``relu3_1``,
1-2 s for ``relu2_1`` and 0.1 s for ``relu1_1``: neither the paper preset nor ``offline`` fits on such a
CPU; ``tiny`` (one step per decoder) is for tests.

Preset ``relu4``: single-level WCT on ``relu4_1`` with Huang & Belongie's AdaIN decoder (trained to
invert the same encoder at the same layer): no training at all.

Departures, written down:

* Input size: the content keeps its size; it is reflect-padded at the bottom and right to a multiple of
  the deepest level's stride (16 at ``relu5_1``) and the output cropped back. Images need sides of at
  least twice that stride (32 px; 16 px for ``relu4_1`` alone).
* Training crops: random ``train_size`` crops of each training image (upscaled first when smaller);
  WCT-TF first resizes the shorter side to 512.
* The intermediate images between levels are not clipped (as the authors' code); the final one is.
* The style image is resized (antialiased bicubic) to shorter side ``style_size`` (512; the authors'
  latest code uses 768).

References:
    Li, Fang, Yang, Wang, Lu & Yang, "Universal Style Transfer via Feature Transforms", NeurIPS 2017
    (arXiv:1705.08086); code github.com/Yijunmaverick/UniversalStyleTransfer.
    Huang & Belongie, ICCV 2017 (the AdaIN decoder of preset ``relu4``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.base import Synthesizer
from texbench.nets.adain import adain_networks, run_decoder
from texbench.nets.vgg19 import LAYER_NAMES, VGG19Features, layer_channels
from texbench.params import Params, param
from texbench.synthesizers.adain import reflect_pad_to, resize_shorter

__all__ = [
    "EIGEN_THRESHOLD",
    "LEVELS",
    "WCT",
    "MirrorDecoder",
    "WCTParams",
    "colour",
    "encoder",
    "reconstruction_loss",
    "wct",
    "wct_transfer",
    "whiten",
]

#: eigenvalues below this are dropped from both transforms (the authors' code)
EIGEN_THRESHOLD = 1e-5
#: the paper's levels, coarse to fine
LEVELS: tuple[str, ...] = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")


# ------------------------------------------------------------------------------------------- the maths
def _centre(feat: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if feat.ndim != 2:
        raise ValueError(f"{name} must have shape (C, N), got {tuple(feat.shape)}")
    if feat.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 positions, got {feat.shape[1]}")
    f = feat.double()
    mean = f.mean(1, keepdim=True)
    return f - mean, mean


def _eig(centred: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    cov = centred @ centred.T / (centred.shape[1] - 1)
    vals, vecs = torch.linalg.eigh(cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device))
    keep = vals >= EIGEN_THRESHOLD
    return vals[keep], vecs[:, keep]


def whiten(feat: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Whitening transform of ``(C, N)`` features (float64 out): mean removed, covariance → identity.

    Args:
        feat: ``(C, N)`` features (N positions).
        eps: added to the covariance's diagonal before its inverse square root (authors' code: 0; the
            PyTorch port: 1).

    >>> w = whiten(torch.randn(3, 500) * 5)
    >>> torch.allclose(torch.cov(w), torch.eye(3, dtype=w.dtype), atol=1e-8)
    True
    """
    centred, _ = _centre(feat, "feat")
    vals, vecs = _eig(centred, eps)
    return vecs @ torch.diag(vals.rsqrt()) @ vecs.T @ centred


def colour(white: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Colouring transform: give whitened ``(C, N)`` features the covariance and mean of ``(C, M)`` ``style``.

    Returns float64 ``(C, N)``.
    """
    if white.ndim != 2 or style.ndim != 2 or white.shape[0] != style.shape[0]:
        raise ValueError(f"white and style must be (C, N) and (C, M), got {tuple(white.shape)}, {tuple(style.shape)}")
    centred, mean = _centre(style, "style")
    vals, vecs = _eig(centred, 0.0)
    return vecs @ torch.diag(vals.sqrt()) @ vecs.T @ white.double() + mean


def wct(content: torch.Tensor, style: torch.Tensor, *, alpha: float = 0.6, eps: float = 0.0) -> torch.Tensor:
    """WCT of ``(1, C, H, W)`` content features with ``(1, C, H', W')`` style features, blended by ``alpha``.

    Returns ``(1, C, H, W)`` in ``content``'s dtype.
    """
    if content.ndim != 4 or style.ndim != 4 or content.shape[:2] != style.shape[:2] or content.shape[0] != 1:
        raise ValueError(f"content and style must be (1, C, H, W) features, got {tuple(content.shape)}, "
                         f"{tuple(style.shape)}")
    c = content[0].flatten(1)
    cs = colour(whiten(c, eps), style[0].flatten(1)).to(content.dtype)
    return (alpha * cs + (1.0 - alpha) * c).reshape(content.shape)


# ------------------------------------------------------------------------------------------- networks
def _stride(level: str) -> int:
    """Down-sampling factor of the encoder at ``level`` (1 at relu1_1, 16 at relu5_1)."""
    return 2 ** sum(1 for n in LAYER_NAMES[: LAYER_NAMES.index(level)] if n.startswith("pool"))


def _mirror_plan(level: str) -> list[tuple[int, int, bool]]:
    """(in, out, upsample ×2 after this conv) of the decoder mirroring the encoder up to ``level``."""
    names = LAYER_NAMES[: LAYER_NAMES.index(level) + 1]
    convs, cin = [], 3
    for n in names:
        if n.startswith("relu"):
            convs.append((n, cin, layer_channels(n)))
            cin = layer_channels(n)
    plan = []
    for n, c_in, c_out in reversed(convs):
        # the encoder pooled just before every relu{b}_1 with b ≥ 2: the mirror up-samples just after it
        plan.append((c_out, c_in, n.endswith("_1") and n != "relu1_1"))
    return plan


class MirrorDecoder(nn.Module):
    """Decoder inverting the normalised VGG-19 at ``level``: ``(N, C, H/s, W/s)`` → RGB ``(N, 3, H, W)``.

    Args:
        level: one of :data:`LEVELS`.

    The output is not clipped (callers clip). Initialisation: torch's default for ``Conv2d``.
    """

    def __init__(self, level: str) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.plan = _mirror_plan(level)
        self.convs = nn.ModuleList(nn.Conv2d(ci, co, 3, padding=1, padding_mode="reflect") for ci, co, _ in self.plan)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if feat.ndim != 4 or feat.shape[1] != self.plan[0][0]:
            raise ValueError(f"feat must have shape (N, {self.plan[0][0]}, h, w), got {tuple(feat.shape)}")
        return run_decoder(self.convs, [up for _, _, up in self.plan], feat)


@functools.lru_cache(maxsize=16)
def _shared_encoder(level: str, device: str, context: tuple[tuple[str, str], ...]) -> VGG19Features:
    # the weights settings (texbench.weights.resolution_context, random-init policy included) are part of
    # the key, so that a network built under one setting is never served under another
    return VGG19Features((level,), weights="normalised", pooling="max", padding="reflect",
                         channels_last=False).to(device)  # fmt: skip


def encoder(level: str, device: torch.device | str) -> VGG19Features:
    """The shared, frozen normalised VGG-19 (the AdaIN encoder's weights and layout) cut at ``level``
    (built once per process, level and device)."""
    from texbench.weights import resolution_context

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return _shared_encoder(level, str(torch.device(device)), resolution_context())


def reconstruction_loss(
    enc: VGG19Features, dec: nn.Module, images: torch.Tensor, level: str, feature_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """The decoder's training loss ``‖I_o − I_i‖² + λ ‖Φ(I_o) − Φ(I_i)‖²`` (both means) on ``(N, 3, H, W)``."""
    with torch.no_grad():
        f = enc(images)[level]
    out = dec(f)
    pixel = F.mse_loss(out, images)
    feature = F.mse_loss(enc(out)[level], f)
    return pixel + feature_weight * feature, {"pixel": pixel.item(), "feature": feature.item()}


def wct_transfer(
    stages: Sequence[tuple[str, VGG19Features, nn.Module]],
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    alpha: float = 0.6,
    eps: float = 0.0,
) -> torch.Tensor:
    """Multi-level WCT: ``(3, H, W)`` content and ``(3, h, w)`` style in [0, 1] → ``(3, H, W)`` in [0, 1].

    Args:
        stages: ``(level, encoder, decoder)`` in the order applied (coarse to fine); each encoder returns
            its level (:func:`encoder`).
        content, style: RGB images with sides of at least twice the deepest level's stride.
        alpha: blend weight of the transformed features.
        eps: added to the content covariance before whitening.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not stages:
        raise ValueError("stages must hold at least one (level, encoder, decoder)")
    deepest = max((level for level, _, _ in stages), key=_stride)
    stride = _stride(deepest)
    for name, img in (("content", content), ("style", style)):
        if img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"{name} must have shape (3, H, W), got {tuple(img.shape)}")
        if min(img.shape[-2:]) < 2 * stride:
            raise ValueError(f"{name} is {img.shape[-1]}x{img.shape[-2]}: needs sides of at least {2 * stride} px "
                             f"for {deepest}")
    h, w = content.shape[-2:]
    with torch.no_grad():
        x = reflect_pad_to(content[None], stride)
        for level, enc, dec in stages:
            fs = enc(style[None].to(content))[level]
            x = dec(wct(enc(x)[level], fs, alpha=alpha, eps=eps))
    return x[0, :, :h, :w].clamp(0, 1)


# ------------------------------------------------------------------------------------------- the method
@dataclasses.dataclass(frozen=True)
class WCTParams(Params):
    """Parameters of :class:`WCT` (defaults: the paper's and the authors' code; training: see the module).

    Attributes:
        alpha: blend between the transformed and the content features (0.6).
        eps: added to the content covariance's diagonal before whitening (authors' Torch code: 0).
        style_size: the style image's shorter side is resized to this (512; 0 = as is).
        levels: the levels, applied in this order (the paper: relu5_1 … relu1_1).
        decoder: ``"trained"`` (texbench's decoders, trained on ``train_images``) or ``"adain"`` (Huang &
            Belongie's decoder: ``levels = ["relu4_1"]`` only; preset ``relu4``).
        train_images: folder of training images (the paper: MS-COCO) or a dataset name (``builtin-train``).
        max_train_images: use the first N images (0 = all).
        iterations: Adam steps per decoder (160 000, WCT-TF's).
        batch_size: images per step (8).
        train_size: side of the random training crops (256).
        lr: Adam learning rate (1e-4); ``lr_decay``: the rate is ``lr / (1 + lr_decay · step)`` (5e-5).
        feature_weight: λ, the feature loss's weight against the pixel loss (the paper's 1).
        train_seed: seeds initialisation and crop sampling (part of the training key).
    """

    alpha: float = param(0.6, ge=0, le=1)
    eps: float = param(0.0, ge=0)
    style_size: int = param(512, ge=0)
    levels: tuple[str, ...] = param(LEVELS, nonempty=True, choices=LEVELS)
    decoder: Literal["trained", "adain"] = "trained"
    train_images: str = "~/data/coco/train2014"
    max_train_images: int = param(0, ge=0)
    iterations: int = param(160000, ge=1)
    batch_size: int = param(8, ge=1)
    train_size: int = param(256, ge=32, multiple_of=16)
    lr: float = param(1e-4, gt=0)
    lr_decay: float = param(5e-5, ge=0)
    feature_weight: float = param(1.0, ge=0)
    train_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must not repeat a level, got {list(self.levels)}")
        if self.decoder == "adain" and tuple(self.levels) != ("relu4_1",):
            raise ValueError(f"decoder 'adain' inverts relu4_1 only: levels must be ['relu4_1'], got {list(self.levels)}")
        if 0 < self.style_size < 32:
            raise ValueError(f"style_size must be 0 or at least 32, got {self.style_size}")


_TRAINING_FIELDS = ("max_train_images", "iterations", "batch_size", "train_size", "lr", "lr_decay",
                    "feature_weight", "train_seed")


def _train_decoder(level: str, enc: VGG19Features, images: Any, p: WCTParams, device: torch.device) -> tuple[
        dict[str, torch.Tensor], dict[str, Any]]:
    """Train the decoder of ``level`` (seeded init and crops); returns its state dict and a summary."""
    from texbench.trained import subsample_curve

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.train_seed)
        dec = MirrorDecoder(level)
    dec = dec.to(device).train()
    gen = torch.Generator().manual_seed(p.train_seed)
    opt = torch.optim.Adam(dec.parameters(), lr=p.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + p.lr_decay * step))
    curve: list[float] = []
    terms: dict[str, float] = {}
    for _ in range(p.iterations):
        x = images.random_crops(p.batch_size, p.train_size, gen).to(device)
        opt.zero_grad(set_to_none=True)
        loss, terms = reconstruction_loss(enc, dec, x, level, p.feature_weight)
        loss.backward()
        opt.step()
        sched.step()
        curve.append(float(loss.detach()))
    steps, values = subsample_curve(curve, 100)
    info = {"level": level, "iterations": p.iterations, "final_loss": curve[-1], "final_terms": terms,
            "loss_curve": values, "loss_curve_steps": steps}  # fmt: skip
    return dec.state_dict(), info


class WCT(Synthesizer):
    """Universal style transfer (Li et al.): WCT at relu5_1 … relu1_1 with decoders texbench trains itself.

    ``prepare`` trains (or loads from the cache) one decoder per level; ``run`` is a feed-forward pass
    per level. The job seed does not enter. Recorded per job: ``train_key`` (of the set of decoders),
    ``train_seconds`` (their trainings' total), ``train_cached``, ``train_keys`` (one per level).

    References:
        Li, Fang, Yang, Wang, Lu & Yang, "Universal Style Transfer via Feature Transforms", NeurIPS 2017.
    """

    name = "wct"
    description = ("Li et al.'s universal style transfer: whitening-colouring transforms at relu5_1..relu1_1 "
                   "with decoders trained by texbench (preset relu4: one level, AdaIN decoder, no training)")
    tasks = ("style",)
    version = "1"
    references = "Li, Fang, Yang, Wang, Lu & Yang, NeurIPS 2017 (arXiv:1705.08086)"
    Params = WCTParams
    presets = {
        "relu4": {"levels": ("relu4_1",), "decoder": "adain"},
        "offline": {"train_images": "builtin-train"},
        "tiny": {"train_images": "builtin-train", "iterations": 1, "batch_size": 1, "train_size": 32,
                 "style_size": 64},
    }  # fmt: skip

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._decoders: dict[tuple[str, str], tuple[nn.Module, Any]] = {}
        self._images: Any = None  # the training images (TrainingImages), read once
        self._provenance: dict[str, str] = {}

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)

    def _training_fields(self, level: str, enc: VGG19Features, images_hash: str) -> dict[str, Any]:
        p = self.params
        return {"method": self.name, "version": self.version, "level": level, "encoder": enc.provenance,
                "train_images": images_hash, **{k: getattr(p, k) for k in _TRAINING_FIELDS}}  # fmt: skip

    def stages(self, device: torch.device) -> list[tuple[str, VGG19Features, nn.Module]]:
        """``(level, encoder, decoder)`` in the order applied; the decoders trained now, loaded from the
        cache, or (``decoder="adain"``) the AdaIN one."""
        p: WCTParams = self.params
        device = torch.device(device)
        if p.decoder == "adain":
            enc, dec = adain_networks(device)
            self._provenance = {"vgg19-normalised": enc.provenance, "adain-decoder": dec.provenance}
            return [("relu4_1", enc, dec)]
        from texbench.synthesizers.johnson_networks import TrainingImages
        from texbench.trained import load_or_train

        out, trainings = [], []
        for level in p.levels:
            enc = encoder(level, device)
            memo = (level, str(device))
            if memo not in self._decoders:
                if self._images is None:
                    self._images = TrainingImages(p.train_images, max_images=p.max_train_images)
                images = self._images
                trained = load_or_train(self._training_fields(level, enc, images.hash),
                                        lambda level=level, enc=enc, images=images: _train_decoder(
                                            level, enc, images, p, device))
                dec = MirrorDecoder(level)
                dec.load_state_dict(trained.state, strict=True)
                self._decoders[memo] = (dec.to(device).requires_grad_(False).eval(), trained)
            dec, trained = self._decoders[memo]
            out.append((level, enc, dec))
            trainings.append(trained)
        keys = [t.key for t in trainings]
        self._provenance = {"vgg19-normalised": out[0][1].provenance,
                            **{f"decoder-{lv}": t.provenance() for lv, t in zip(p.levels, trainings)}}
        self.record(train_key=hashlib.sha256(",".join(keys).encode()).hexdigest(), train_keys=keys,
                    train_seconds=sum(float(t.record.get("train_seconds", 0.0)) for t in trainings),
                    train_cached=all(t.cached for t in trainings),
                    train_final_losses={lv: t.record.get("info", {}).get("final_loss")
                                        for lv, t in zip(p.levels, trainings)})  # fmt: skip
        return out

    def _check(self, task_input: Any) -> None:
        task_input.require(self.name, "content", "style", task="style")

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        self._check(task_input)
        self.stages(device)

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        self._check(task_input)
        device = torch.device(device)
        p: WCTParams = self.params
        stages = self.stages(device)
        content = task_input.content.float().to(device)
        style = resize_shorter(task_input.style.float().to(device), p.style_size)
        t0 = time.perf_counter()
        out = wct_transfer(stages, content, style, alpha=p.alpha, eps=p.eps)
        self.record(inference_seconds=time.perf_counter() - t0)
        return out

