"""Texture Networks for stylisation (Ulyanov et al., ICML 2016, Sec. 4): a generator trained per style.

The texture generator of :mod:`texbench.synthesizers.texture_networks`, conditioned on a content image:
at every scale the content image, down-sampled to that scale, is concatenated with that scale's noise
and the result is the input of the scale's branch. The generator is trained, once per style image, on
random crops of a set of training photographs (never on the test content image) so that its output
keeps each crop's ``relu4_2`` features (content loss) and takes the style image's Gram matrices on
``relu1_1 … relu5_1`` (style loss); stylising an image is then one forward pass, at the content's size.

Where each fact comes from: the authors' Torch code (read at github.com/vicident/texture_nets, a fork
of DmitryUlyanov/texture_nets: ``stylization_train.lua``, ``stylization_process.lua``,
``models/pyramid.lua``, ``models/pyramid_32.lua``, ``src/descriptor_net.lua``, ``src/texture_loss.lua``,
``src/content_loss.lua``). The paper's text could not be opened from here; "paper" below means the brief's
description of its Section 4 (content down-sampled to each scale and concatenated with the noise).

Generator (:class:`StylizationGenerator`):

* the branches and joins of :class:`~texbench.synthesizers.texture_networks.MultiScaleGenerator`
  (3×3, 3×3, 1×1 convolutions of 8 filters, batch norm, LeakyReLU; batch norm of both inputs before
  each concatenation; widths ``8·k`` after the k-th join; a 1×1 convolution to RGB);
* input of scale k: the content image average-pooled to the scale's size (the code's
  ``SpatialAveragePooling(ratio)`` on the image; :func:`torch.nn.functional.adaptive_avg_pool2d` here,
  which is the same for sizes divisible by the ratio and also handles odd sizes, where the sizes of
  :func:`~texbench.synthesizers.texture_networks.scale_sizes` are rounded up) concatenated with
  ``noise_channels`` = 3 channels of uniform [0, 1) noise (the code's ``noise_depth`` 3), so each branch
  reads 6 channels;
* ``scales`` = 6, the code's six ratios 32 … 1 (the texture method's default is the paper's 5): widths 8 … 48,
  118 K parameters (batch norm included);
* the output has the content's size; the RGB layer works on Caffe's 0-255 mean-subtracted scale, as in
  the texture method (``output_scale`` = 255), and samples are clipped to [0, 1].

Loss, per training image (then averaged over the batch):

* style: per layer ``relu1_1 … relu5_1`` the mean squared difference of the Gram matrices normalised by
  C·H·W (the code's ``TextureLoss``: ``MSECriterion`` on ``G / nElement``), i.e.
  :func:`~texbench.ops.gram.style_loss` with ``gram_norm="all"`` and ``1/C`` layer weights,
  summed over layers, times ``style_weight`` = 1e3 (the code's default);
* content: the mean squared difference of ``relu4_2`` against the training crop's own ``relu4_2`` (the
  code's ``ContentLoss``, texbench's Gatys content loss), times ``content_weight`` = 0.6 (the code's);
* the style image is resized so its longer side is ``style_size`` = 256 (the code scales it to
  ``image_size`` with ``image.scale``).

Training: Adam, learning rate 0.1, batches of 16 crops of 256×256, 3000 iterations, the learning rate
multiplied by 0.8 every 300 iterations (all the code's defaults), fresh noise every iteration; the code
trained on the ImageNet validation set (``train_images``, default ``~/data/imagenet/val``; preset
``offline`` uses texbench's ``builtin-train``, disjoint from the test images).

Choices and departures, written down:

* the VGG-19 is texbench's normalised VGG-19 with average pooling (as the texture method and Gatys'
  module), not the code's Caffe VGG-19 with max pooling; its activations have another scale, so the
  authors' weights 1e3 / 0.6 do not give exactly the authors' balance between style and content;
* training images are random ``train_size`` crops (the code read whole images pre-resized to 256×256);
* the code's training noise was drawn once and kept ("dummy storage"); fresh noise per iteration is
  used here (the paper's generator takes noise as an input, and fresh noise is what sampling sees);
* after training the batch-norm statistics are recomputed exactly over ``calibration_batches`` batches
  of training crops with fresh noise and the output uses them (eval mode), so an output does not depend
  on the batch it is computed in (the code ran its model in training mode at test time);
* LeakyReLU slope 0.01 and circular padding, as the texture method (``pyramid_32.lua``'s LeakyReLU and
  the code's default circular convolutions).

Measured here (2 CPU cores, the real normalised VGG-19, preset ``offline`` with ``scales=4,
train_size=64, batch_size=4, iterations=200, lr_decay_every=100``; style: builtin-styles' Hubble deep
field, content: builtin-content's astronaut at 128 px, never trained on; ~60 s of training): with the
default weights the output's style term (×1e3) fell to 0.06 (the content image's own: 3.8) and its
``relu4_2`` content term was 1.63 (a flat grey image's: 2.48): a dark, dotted image in which the figure
is still recognisable; ``content_weight=6`` gave 0.72 / 1.32 and a clearer figure. The authors' 0.6 is
kept as the default; no paper-scale training (3000 iterations, batch 16, 256 px) has been run here.

Preset ``tiny`` (tests) trains for seconds on a CPU: 3 scales, 32 px crops, 25 iterations, style layers
``relu1_1 … relu3_1`` and content layer ``relu3_1`` (a shallower VGG-19).

Caching: :func:`texbench.trained.load_or_train` keyed by method name and version, the parameters without
the ``train_images`` path, the training images' hash, the style image's hash, the VGG-19's provenance
and ``train_seed``. The job seed only draws the noise of the forward pass.

Size: a little over the house's ~500 lines: the stylisation generator, its objective, training and the
method are one paper's model, read together (the generator blocks come from
:mod:`texbench.synthesizers.texture_networks`).

References:
    Ulyanov, Lebedev, Vedaldi & Lempitsky, "Texture Networks: Feed-forward Synthesis of Textures and
    Stylized Images", ICML 2016 (arXiv:1603.03417); code: github.com/DmitryUlyanov/texture_nets.
    Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.nets.vgg19 import (
    CONTENT_LAYER,
    LAYER_NAMES,
    STYLE_LAYERS,
    VGG19Features,
    VGGPadding,
    VGGPooling,
    VGGWeights,
)
from texbench.ops.gram import GramNorm, LayerWeights, gram_matrix, style_loss
from texbench.params import Params, param
from texbench.synthesizers.texture_networks import (
    CURVE_POINTS,
    MultiScaleGenerator,
    Padding,
    check_generator_params,
    noise_pyramid,
    scale_sizes,
)
from texbench.trained import calibrate_batch_norm, subsample_curve

__all__ = [
    "StylizationGenerator",
    "TextureNetworksStyle",
    "TextureNetworksStyleParams",
    "build_stylization_generator",
    "style_grams",
    "stylization_inputs",
    "stylization_objective",
    "train_stylization_network",
]

_HELP = (
    "The authors trained on the ImageNet validation set (50k images): pass train_images=/path/to/folder "
    "of natural photographs (ImageNet val, or COCO train2014 as johnson-style), or train offline on "
    "texbench's own images with train_images=builtin-train (preset 'offline')."
)


@dataclasses.dataclass(frozen=True)
class TextureNetworksStyleParams(Params):
    """Parameters of :class:`TextureNetworksStyle` (defaults: the authors' ``stylization_train.lua``).

    Attributes:
        train_images: folder of training photographs (the code: ImageNet val) or a texbench dataset name
            (``builtin-train``: offline, disjoint from the test images).
        max_train_images: use the first N images (0 = all).
        scales: K (the code: 6 ratios 32 … 1).
        channels: filters of each branch block.
        noise_channels: noise channels concatenated with the content at each scale (the code: 3).
        padding, leaky_slope, output_scale: as :class:`~texbench.synthesizers.texture_networks.
            TextureNetworksParams`.
        train_size: side of the random training crops (the code: 256).
        batch_size: crops per iteration (16).
        iterations: Adam steps (3000).
        lr: Adam's learning rate (0.1).
        lr_decay, lr_decay_every: the learning rate is multiplied by ``lr_decay`` every ``lr_decay_every``
            iterations (0.8 every 300).
        style_size: the style image is resized so its longer side is this (256; 0 = as is).
        style_weight, content_weight: weights of the style and content terms (the code: 1e3, 0.6).
        content_layer: relu4_2.
        style_layers, gram_norm, layer_weights: the style term (see the module docstring).
        calibration_batches: batches of training crops used to recompute the batch-norm statistics.
        train_seed: seeds initialisation, crops and training noise (not the job seed).
        weights, pooling, vgg_padding: the VGG-19 (see :class:`~texbench.synthesizers.gatys.GatysParams`).
    """

    train_images: str = "~/data/imagenet/val"
    max_train_images: int = param(0, ge=0)
    scales: int = param(6, ge=1)
    channels: int = param(8, ge=1)
    noise_channels: int = param(3, ge=0)
    padding: Padding = "circular"
    leaky_slope: float = param(0.01, ge=0)
    output_scale: float = param(255.0, gt=0)
    train_size: int = 256
    batch_size: int = param(16, ge=1)
    iterations: int = param(3000, ge=0)
    lr: float = param(0.1, gt=0)
    lr_decay: float = param(0.8, gt=0, le=1)
    lr_decay_every: int = param(300, ge=1)
    style_size: int = param(256, ge=0)
    style_weight: float = param(1e3, ge=0)
    content_weight: float = param(0.6, ge=0)
    content_layer: str = param(CONTENT_LAYER, choices=LAYER_NAMES)
    style_layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=LAYER_NAMES)
    gram_norm: GramNorm = "all"
    layer_weights: LayerWeights = "inverse-channels"
    calibration_batches: int = param(4, ge=0)
    train_seed: int = 0
    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    vgg_padding: VGGPadding = "zeros"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_generator_params(self)


# ---------------------------------------------------------------------------------------------- generator
class StylizationGenerator(MultiScaleGenerator):
    """The multi-scale generator whose branch k reads the content at scale k concatenated with noise.

    Args: as :class:`~texbench.synthesizers.texture_networks.MultiScaleGenerator`; ``noise_channels`` is
    the noise part only (each branch reads ``3 + noise_channels`` channels).

    Input: a list of K tensors ``(N, 3 + noise_channels, h_k, w_k)`` from :func:`stylization_inputs`,
    coarsest first. Output: ``(N, 3, H, W)`` at the finest size (linear; about [0, 1] once trained).

    References:
        Ulyanov et al., ICML 2016, Sec. 4.
    """

    def __init__(
        self,
        scales: int = 6,
        channels: int = 8,
        noise_channels: int = 3,
        padding: Padding = "circular",
        leaky_slope: float = 0.01,
        output_scale: float = 255.0,
    ) -> None:
        super().__init__(scales, channels, 3 + noise_channels, padding, leaky_slope, output_scale)
        self.content_noise_channels = noise_channels


def stylization_inputs(
    content: torch.Tensor, scales: int, noise_channels: int, *, generator: torch.Generator
) -> list[torch.Tensor]:
    """The generator's inputs for ``content``: per scale, coarsest first, the content average-pooled to
    the scale's size concatenated with uniform [0, 1) noise.

    Args:
        content: ``(N, 3, H, W)`` in [0, 1], on any device.
        scales: K.
        noise_channels: noise channels per scale.
        generator: CPU generator of the noise (the same draws on every device).

    Returns:
        K tensors ``(N, 3 + noise_channels, h_k, w_k)`` with sizes from
        :func:`~texbench.synthesizers.texture_networks.scale_sizes`.
    """
    if content.ndim != 4 or content.shape[1] != 3:
        raise ValueError(f"content must have shape (N, 3, H, W), got {tuple(content.shape)}")
    size = tuple(content.shape[-2:])
    noise = noise_pyramid(size, scales, noise_channels, batch=content.shape[0], generator=generator)
    out = []
    for z, (h, w) in zip(noise, scale_sizes(size, scales), strict=True):
        c = content if (h, w) == size else F.adaptive_avg_pool2d(content, (h, w))
        out.append(torch.cat([c, z.to(device=content.device, dtype=content.dtype)], 1))
    return out


def build_stylization_generator(p: TextureNetworksStyleParams) -> StylizationGenerator:
    """The untrained generator of ``p``, initialised (torch's defaults) from ``p.train_seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.train_seed)
        return StylizationGenerator(
            p.scales, p.channels, p.noise_channels, p.padding, p.leaky_slope, p.output_scale
        )


# ------------------------------------------------------------------------------------------------- loss
def stylization_objective(
    images: torch.Tensor,
    contents: torch.Tensor,
    style_targets: Sequence[torch.Tensor],
    net: VGG19Features,
    p: TextureNetworksStyleParams,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-image training objective ``style_weight·L_style + content_weight·L_content``.

    Args:
        images: ``(N, 3, H, W)`` generator outputs (raw, not clipped).
        contents: ``(N, 3, H, W)`` the content images they were generated from, in [0, 1].
        style_targets: per layer of ``p.style_layers`` ``(1, C, C)`` Gram matrices (``p.gram_norm``).
        net: VGG-19 returning ``p.style_layers`` and ``p.content_layer``.
        p: weights, layers, normalisation.

    Returns:
        ``(objective (N,), content term (N,))``, the content term unweighted.

    References:
        Ulyanov et al., ICML 2016, Sec. 4; Gatys, Ecker & Bethge, CVPR 2016.
    """
    feats = net(images)
    with torch.no_grad():
        target = net(contents)[p.content_layer]
    grams = [gram_matrix(feats[n], normalize=p.gram_norm) for n in p.style_layers]
    ls = style_loss(grams, style_targets, layer_weights=p.layer_weights)
    lc = (feats[p.content_layer] - target).pow(2).flatten(1).mean(1)
    return p.style_weight * ls + p.content_weight * lc, lc


def style_grams(style: torch.Tensor, net: VGG19Features, p: TextureNetworksStyleParams) -> list[torch.Tensor]:
    """Gram matrices ``(1, C, C)`` of the style image ``(3, H, W)``, resized to ``p.style_size`` (longer side)."""
    from texbench.tasks import resize

    s = style.float()
    if p.style_size:
        h, w = s.shape[-2:]
        k = p.style_size / max(h, w)
        s = resize(s, (max(1, round(h * k)), max(1, round(w * k))))
    dev = next(net.parameters()).device
    with torch.no_grad():
        feats = net(s[None].to(dev))
        return [gram_matrix(feats[n], normalize=p.gram_norm) for n in p.style_layers]


def train_stylization_network(
    style: torch.Tensor,
    crops: Callable[[int, torch.Generator], torch.Tensor],
    p: TextureNetworksStyleParams,
    net: VGG19Features,
    *,
    device: torch.device,
) -> tuple[StylizationGenerator, dict[str, Any]]:
    """Train a stylisation generator for ``style`` on content crops.

    Args:
        style: ``(3, h, w)`` in [0, 1].
        crops: ``crops(n, generator)`` → ``(n, 3, train_size, train_size)`` training crops in [0, 1] (CPU).
        p: parameters.
        net: frozen VGG-19 returning ``p.style_layers`` and ``p.content_layer``.
        device: where to train.

    Returns:
        The trained generator (eval mode, on ``device``) and ``{"loss_curve": [...] (batch mean per
        iteration), "content_curve": [...], "iterations"}``.

    References:
        Ulyanov et al., ICML 2016, Sec. 4.
    """
    gen = build_stylization_generator(p).to(device)
    rng = torch.Generator().manual_seed(p.train_seed)

    def draw() -> list[torch.Tensor]:
        x = crops(p.batch_size, rng).to(device)
        return stylization_inputs(x, p.scales, p.noise_channels, generator=rng)

    with torch.inference_mode(False), torch.enable_grad():
        targets = style_grams(style, net, p)
        opt = torch.optim.Adam(gen.parameters(), lr=p.lr)
        gen.train()
        curve: list[float] = []
        content_curve: list[float] = []
        for it in range(1, p.iterations + 1):
            inputs = draw()
            contents = inputs[-1][:, :3]
            loss, lc = stylization_objective(gen(inputs), contents, targets, net, p)
            loss = loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append(float(loss.detach()))
            content_curve.append(float(lc.detach().mean()))
            if not math.isfinite(curve[-1]):
                raise RuntimeError(
                    f"texture-networks-style: training diverged at iteration {it} ({curve[-1]})"
                )
            if it % p.lr_decay_every == 0:
                for group in opt.param_groups:
                    group["lr"] *= p.lr_decay
        with torch.no_grad():
            calibrate_batch_norm(gen, draw, p.calibration_batches)
    gen.eval()
    return gen, {"loss_curve": curve, "content_curve": content_curve, "iterations": p.iterations}


# ---------------------------------------------------------------------------------------------- the method
class TextureNetworksStyle(Synthesizer):
    """Texture Networks' stylisation: a multi-scale generator, conditioned on the content image at every
    scale, trained per style image on training photographs; one forward pass per output.

    ``prepare`` trains (or loads from :mod:`texbench.trained`) the generator for ``task_input.style``;
    ``run`` feeds the content image (resized to ``task_input.size`` if needed) with noise drawn from the
    job seed. Recorded per job: ``train_key``, ``train_seconds``, ``train_cached``, ``train_final_loss``,
    ``loss_curve`` / ``loss_curve_iterations`` (subsampled), ``inference_seconds``.

    References:
        Ulyanov, Lebedev, Vedaldi & Lempitsky, ICML 2016 (arXiv:1603.03417), Sec. 4.
    """

    name = "texture-networks-style"
    description = (
        "Ulyanov et al.: a multi-scale feed-forward generator (content + noise at every scale) trained per "
        "style with VGG-19 Gram and relu4_2 content losses"
    )
    tasks = ("style",)
    version = "1"
    references = "Ulyanov, Lebedev, Vedaldi & Lempitsky, ICML 2016 (arXiv:1603.03417)"
    Params = TextureNetworksStyleParams
    presets = {
        # tests: seconds on a CPU
        "tiny": {
            "train_images": "builtin-train",
            "scales": 3,
            "train_size": 32,
            "batch_size": 2,
            "iterations": 25,
            "lr_decay_every": 10,
            "style_size": 48,
            "calibration_batches": 2,
            "style_layers": ("relu1_1", "relu2_1", "relu3_1"),
            "content_layer": "relu3_1",
        },
        "offline": {"train_images": "builtin-train"},
    }

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._nets: dict[str, VGG19Features] = {}
        self._images: Any = None
        self._generators: dict[tuple[str, str], tuple[StylizationGenerator, Any]] = {}
        self._provenance: dict[str, str] = {}

    # -------------------------------------------------------------------------------------- plumbing
    def _net(self, device: torch.device) -> VGG19Features:
        key = str(device)
        if key not in self._nets:
            p: TextureNetworksStyleParams = self.params
            wanted = (*p.style_layers, p.content_layer)
            layers = tuple(n for n in LAYER_NAMES if n in wanted)
            net = VGG19Features(
                layers, weights=p.weights, pooling=p.pooling, padding=p.vgg_padding, random_seed=p.train_seed
            )
            self._nets[key] = net.to(device)
        return self._nets[key]

    def training_images(self) -> Any:
        """The :class:`~texbench.synthesizers.johnson_networks.TrainingImages` of ``train_images`` (loaded once)."""
        from texbench.synthesizers.johnson_networks import TrainingImages

        if self._images is None:
            p: TextureNetworksStyleParams = self.params
            try:
                self._images = TrainingImages(p.train_images, max_images=p.max_train_images)
            except ValueError as e:
                raise ValueError(f"{self.name}: {e} ({_HELP})") from e
        return self._images

    def _check(self, task_input: Any) -> torch.Tensor:
        if getattr(task_input, "task", None) not in self.tasks:
            raise ValueError(f"{self.name} runs on the style task, got {getattr(task_input, 'task', None)!r}")
        for name in ("content", "style"):
            img = getattr(task_input, name, None)
            if not isinstance(img, torch.Tensor):
                raise ValueError(f"task_input.{name} must be a (3, H, W) tensor, got {type(img).__name__}")
            if img.ndim != 3 or img.shape[0] != 3:
                raise ValueError(f"task_input.{name} must have shape (3, H, W), got {tuple(img.shape)}")
        return task_input.style

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        """Train (or load) the generator for ``task_input.style``; ``seed`` is not used (``train_seed`` is)."""
        self.generator(self._check(task_input), device=device)

    def generator(self, style: torch.Tensor, *, device: torch.device) -> StylizationGenerator:
        """The trained generator for the style image ``style`` ``(3, H, W)`` on ``device``."""
        from texbench.imageio import image_hash
        from texbench.trained import load_or_train

        device = torch.device(device)
        p: TextureNetworksStyleParams = self.params
        key = (image_hash(style), str(device))
        if key in self._generators:
            gen, trained = self._generators[key]
        else:
            net = self._net(device)
            images = self.training_images()
            params = self.params_dict()
            params.pop("train_images", None)  # the images enter by their hash, not by their path
            fields = {
                "method": self.name,
                "version": self.version,
                "params": params,
                "train_images": images.hash,
                "style": key[0],
                "vgg19": net.provenance,
                "train_seed": p.train_seed,
            }

            def crops(n: int, rng: torch.Generator) -> torch.Tensor:
                return images.random_crops(n, p.train_size, rng)

            def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
                gen, info = train_stylization_network(style, crops, p, net, device=device)
                return gen.state_dict(), info

            trained = load_or_train(fields, train)
            gen = build_stylization_generator(p)
            gen.load_state_dict(trained.state, strict=True)
            gen = gen.to(device).requires_grad_(False).eval()
            self._generators[key] = (gen, trained)
            self._provenance = {"vgg19": net.provenance, "generator": trained.provenance()}
        info = trained.record["info"]
        its, curve = subsample_curve(info["loss_curve"], CURVE_POINTS)
        self.record_training(trained)
        self.record(
            train_final_loss=info["loss_curve"][-1] if info["loss_curve"] else None,
            loss_curve=curve,
            loss_curve_iterations=its,
        )
        return gen

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        import time

        device = torch.device(device)
        p: TextureNetworksStyleParams = self.params
        gen = self.generator(self._check(task_input), device=device)
        content = task_input.content.float()
        size = tuple(task_input.size)
        if tuple(content.shape[-2:]) != size:
            from texbench.tasks import resize

            content = resize(content, size)
        t0 = time.perf_counter()
        inputs = stylization_inputs(
            content[None].to(device),
            p.scales,
            p.noise_channels,
            generator=torch.Generator().manual_seed(seed),
        )
        with torch.no_grad():
            out = gen(inputs)[0].clamp(0, 1)
        self.record(inference_seconds=time.perf_counter() - t0)
        return out.float()

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)
