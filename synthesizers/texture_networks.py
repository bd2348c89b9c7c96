"""Texture Networks (Ulyanov et al., ICML 2016): a small multi-scale generator trained per texture.

A feed-forward generator ``g(z)`` is trained, once per exemplar, so that its samples match the exemplar's
VGG-19 Gram matrices (the loss of Gatys et al., the same normalised VGG-19, layers and normalisation as
:mod:`texbench.synthesizers.gatys`); a new texture is then one forward pass from fresh noise, at any size
(the generator is fully convolutional, so it samples larger textures than it was trained on).

Where each fact comes from: the paper's text where it was checked, otherwise a copy of the authors'
Torch code (read at github.com/vicident/texture_nets, a fork of DmitryUlyanov/texture_nets:
``models/pyramid.lua``, ``texture_train.lua``). The paper's text itself could not be opened from here,
so the figures marked "paper" are as stated in the task brief and its abstract-level descriptions.

Generator:

* K noise tensors ``z_1 … z_K`` of ``noise_channels`` channels, uniform in [0, 1) (the code's
  ``NoiseFill`` on 3 channels), at the output size and at sizes halved K − 1 times (rounded up, so any
  output size works);
* each noise tensor goes through a convolution block: 3×3, 3×3, 1×1 convolutions of ``channels`` = 8
  filters (the code's ``conv_num``), each followed by batch normalisation and a LeakyReLU;
* from the coarsest scale up, the running tensor is up-sampled ×2 (nearest neighbour, cropped to the finer
  size), both it and the finer branch are batch-normalised (the code's "batch norm before merging"),
  joined by channel concatenation, and a 3×3, 3×3, 1×1 block of the joined width mixes them, so the width
  is ``channels·k`` after the k-th join;
* a final 1×1 convolution maps the full-resolution tensor to RGB.

K = 5 by default: with it the widths run from 8 to 40 and the network has 72 K parameters (batch-norm
included), matching the paper's description ("from a minimum of 8 to a maximum of 40", "about 65 K
parameters"); the code's ``pyramid.lua`` uses 6 scales (widths up to 48, 117 K parameters):
``scales=6`` gives it. Convolutions pad circularly (the paper's circular convolutions; the code's
``-circ`` option, off by default there).

Training: Adam with learning rate 0.1, batches of 16 noise samples at 256×256 (the code's defaults),
2000 iterations (the code's default is 1000 and its README trains 1500), the learning rate multiplied by
0.7 every 200 iterations from iteration 1000 on (the code's schedule). The loss per sample is
:func:`~texbench.ops.gram.style_loss` against the exemplar's Gram matrices (the exemplar at
its own size, layers ``relu1_1 … relu5_1``), averaged over the batch.

Departures, written down:

* texbench's VGG-19 takes RGB in [0, 1], the authors' Caffe VGG took BGR × 255 minus the mean pixel. The
  generator keeps the authors' output scale: its 1×1 RGB layer emits the 0-255 mean-subtracted scale and
  a fixed step maps that to [0, 1] (``image = rgb / output_scale + mean / 255``, ``output_scale`` = 255).
  This matters: Adam's learning rate 0.1 is tuned for that scale; with the RGB layer on the [0, 1] scale
  (``output_scale=1``) the pebbles exemplar collapsed to a flat dark image (Gram loss 6.5 after 200
  iterations at 64 px, batch 4; 0.47 after 80 iterations with ``output_scale=255``). Samples are clipped
  to [0, 1], as the authors' code clipped when it de-processed;
* the authors' code used ReLU in its blocks, the paper's figure LeakyReLU; LeakyReLU (slope 0.01,
  Torch's default) is used and the slope is a parameter (0 gives ReLU);
* after training, the batch-norm running statistics are recomputed exactly (cumulative average over
  ``calibration_batches`` batches of fresh noise with the final weights) and sampling uses them (eval
  mode), so a sample does not depend on the batch it is drawn in and one image is one forward pass.

Caching: the trained generator is stored by :func:`texbench.trained.load_or_train` under a key of the
method name and version, the parameters (``train_seed`` included), the exemplar's :func:`image_hash`
and the VGG-19 weights' provenance. The job seed only draws the sampling noise: jobs with seeds 0, 1, 2 on
one exemplar share one trained generator.

Size: a little over the house's ~500 lines: the generator, its Gram loss, the training loop and the
method are one paper's model, read together; the networks and losses shared with other methods live in
:mod:`texbench.nets` and :mod:`texbench.ops`.

References:
    Ulyanov, Lebedev, Vedaldi & Lempitsky, "Texture Networks: Feed-forward Synthesis of Textures and
    Stylized Images", ICML 2016 (arXiv:1603.03417); code: github.com/DmitryUlyanov/texture_nets.
    Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.nets.vgg19 import LAYER_NAMES, STYLE_LAYERS, VGG19Features, VGGPadding, VGGPooling, VGGWeights
from texbench.ops.gram import GramNorm, LayerWeights, gram_matrix, style_loss
from texbench.params import Params, param
from texbench.trained import calibrate_batch_norm, subsample_curve

__all__ = [
    "CURVE_POINTS",
    "MultiScaleGenerator",
    "TextureNetworks",
    "TextureNetworksParams",
    "build_generator",
    "check_generator_params",
    "noise_pyramid",
    "scale_sizes",
    "texture_loss",
    "train_texture_network",
]

Padding = Literal["circular", "zeros", "reflect"]
CURVE_POINTS = 101  # loss-curve points kept in a job's record (both Texture Networks methods)
_MEAN_RGB_255 = (123.68, 116.779, 103.939)  # Caffe's ImageNet mean pixel, RGB order


@dataclasses.dataclass(frozen=True)
class TextureNetworksParams(Params):
    """Parameters of :class:`TextureNetworks` (defaults: the paper's texture setting).

    Attributes:
        scales: K, the number of noise tensors / resolutions (paper: 5; the authors' code: 6).
        channels: filters of each branch block; the k-th join block has ``channels·(k+1)``.
        noise_channels: channels of each noise tensor (the authors' code: 3).
        padding: padding of the generator's convolutions: ``"circular"`` (the paper), ``"zeros"`` or
            ``"reflect"``.
        leaky_slope: negative slope of the LeakyReLUs (0 gives the ReLU of the authors' code).
        output_scale: the RGB layer's output is divided by this and the ImageNet mean pixel is added:
            255 reproduces the authors' generator, which emitted Caffe's input (0-255 scale, mean
            subtracted), the scale their learning rate 0.1 was tuned for (on the [0, 1] scale, Adam at
            0.1 collapses the samples to a flat dark image; measured here).
        train_size: side of the square samples trained on (the output size is the task's).
        batch_size: noise samples per training iteration.
        iterations: Adam steps.
        lr: Adam's learning rate.
        lr_decay: factor applied to the learning rate every ``lr_decay_every`` iterations from
            ``lr_decay_start`` on (1 = none).
        lr_decay_start: first iteration at which the learning rate decays.
        lr_decay_every: decay period in iterations.
        calibration_batches: batches of fresh noise used to recompute the batch-norm statistics after
            training.
        train_seed: seeds the generator's initialisation and the training noise (NOT the job seed).
        weights, pooling, vgg_padding: the VGG-19 (see :class:`~texbench.synthesizers.gatys.GatysParams`).
        style_layers, gram_norm, layer_weights: the Gram loss, as Gatys' texture setting.
    """

    scales: int = param(5, ge=1)
    channels: int = param(8, ge=1)
    noise_channels: int = param(3, ge=1)
    padding: Padding = "circular"
    leaky_slope: float = param(0.01, ge=0)
    output_scale: float = param(255.0, gt=0)
    train_size: int = 256
    batch_size: int = param(16, ge=1)
    iterations: int = param(2000, ge=0)
    lr: float = param(0.1, gt=0)
    lr_decay: float = param(0.7, gt=0, le=1)
    lr_decay_start: int = 1000
    lr_decay_every: int = param(200, ge=1)
    calibration_batches: int = param(4, ge=0)
    train_seed: int = 0
    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    vgg_padding: VGGPadding = "zeros"
    style_layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=LAYER_NAMES)
    gram_norm: GramNorm = "positions"
    layer_weights: LayerWeights = "inverse-channels"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_generator_params(self)


def check_generator_params(p: Any) -> None:
    """Checks that tie the generator's fields together, shared by the parameters of the Texture Networks
    methods (each field's own bounds are declared with it): ``train_size`` leaves the coarsest scale at
    least one pixel, and ``batch_size`` × the coarsest scale's area gives batch norm at least two values
    per channel; ``ValueError`` naming the fields."""
    # both depend on scales, train_size and batch_size together: not a bound of any one field
    if p.train_size < 2 ** (p.scales - 1):
        raise ValueError(f"train_size ({p.train_size}) must be >= 2^(scales-1) = {2 ** (p.scales - 1)}")
    coarsest = math.ceil(p.train_size / 2 ** (p.scales - 1))
    if p.batch_size * coarsest**2 < 2:
        raise ValueError(
            f"batch_size {p.batch_size} × coarsest scale {coarsest}×{coarsest} gives batch-norm a single "
            "value per channel in training: raise batch_size or train_size, or lower scales"
        )


# ---------------------------------------------------------------------------------------------- generator
def scale_sizes(size: tuple[int, int], scales: int) -> list[tuple[int, int]]:
    """Sizes of the K noise tensors, coarsest first: the output size halved (rounded up) K − 1 times.

    >>> scale_sizes((56, 40), 3)
    [(14, 10), (28, 20), (56, 40)]
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    out = [(h, w)]
    for _ in range(scales - 1):
        h, w = -(-h // 2), -(-w // 2)
        out.append((h, w))
    return out[::-1]


def noise_pyramid(
    size: tuple[int, int], scales: int, channels: int, *, batch: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """Uniform [0, 1) noise ``(batch, channels, h_k, w_k)`` for every scale, coarsest first, on the CPU
    (the same draws on every device)."""
    return [torch.rand((batch, channels, h, w), generator=generator) for h, w in scale_sizes(size, scales)]


def _conv_block(cin: int, cout: int, padding: Padding, slope: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, c_in in ((3, cin), (3, cout), (1, cout)):
        layers += [
            nn.Conv2d(c_in, cout, k, padding=k // 2, padding_mode=padding),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(slope),
        ]
    return nn.Sequential(*layers)


class MultiScaleGenerator(nn.Module):
    """The multi-scale generator of Texture Networks (see the module docstring).

    Args:
        scales: K.
        channels: filters of a branch block.
        noise_channels: channels of each noise tensor.
        padding: convolution padding mode.
        leaky_slope: LeakyReLU slope.
        output_scale: the 1×1 RGB layer works on Caffe's scale: ``image = to_rgb(h) / output_scale + mean``
            (see :class:`TextureNetworksParams`).

    Input: a list of K noise tensors ``(N, noise_channels, h_k, w_k)``, coarsest first, sizes from
    :func:`scale_sizes`. Output: ``(N, 3, H, W)`` (linear; about [0, 1] once trained).

    References:
        Ulyanov et al., ICML 2016, Fig. 2.
    """

    def __init__(
        self,
        scales: int = 5,
        channels: int = 8,
        noise_channels: int = 3,
        padding: Padding = "circular",
        leaky_slope: float = 0.01,
        output_scale: float = 255.0,
    ) -> None:
        super().__init__()
        self.scales, self.noise_channels = scales, noise_channels
        self.branches = nn.ModuleList(
            _conv_block(noise_channels, channels, padding, leaky_slope) for _ in range(scales)
        )
        # batch norm of both inputs right before each concatenation (the paper found it essential)
        self.norm_coarse = nn.ModuleList(nn.BatchNorm2d(channels * k) for k in range(1, scales))
        self.norm_fine = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(1, scales))
        self.joins = nn.ModuleList(
            _conv_block(channels * (k + 1), channels * (k + 1), padding, leaky_slope)
            for k in range(1, scales)
        )
        self.to_rgb = nn.Conv2d(channels * scales, 3, 1)
        self.output_scale = output_scale
        # the ImageNet mean pixel (RGB) the authors' Caffe-space output was relative to
        self.register_buffer("mean", torch.tensor(_MEAN_RGB_255).view(1, 3, 1, 1) / 255.0, persistent=False)

    def forward(self, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(noise) != self.scales:
            raise ValueError(f"noise must hold {self.scales} tensors, got {len(noise)}")
        h = self.branches[0](noise[0])
        for k in range(1, self.scales):
            fine = self.branches[k](noise[k])
            up = F.interpolate(h, scale_factor=2, mode="nearest")[..., : fine.shape[-2], : fine.shape[-1]]
            h = self.joins[k - 1](torch.cat([self.norm_coarse[k - 1](up), self.norm_fine[k - 1](fine)], 1))
        return self.to_rgb(h) / self.output_scale + self.mean


def build_generator(p: TextureNetworksParams) -> MultiScaleGenerator:
    """The untrained generator of ``p``, initialised (torch's defaults) from ``p.train_seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.train_seed)
        return MultiScaleGenerator(
            p.scales, p.channels, p.noise_channels, p.padding, p.leaky_slope, p.output_scale
        )


# ------------------------------------------------------------------------------------------------- loss
def texture_loss(
    images: torch.Tensor,
    targets: Sequence[torch.Tensor],
    net: VGG19Features,
    *,
    layers: Sequence[str] = STYLE_LAYERS,
    gram_norm: GramNorm = "positions",
    layer_weights: LayerWeights = "inverse-channels",
) -> torch.Tensor:
    """Gatys' Gram loss of each image against the target Gram matrices.

    Args:
        images: ``(N, 3, H, W)`` RGB, [0, 1] nominally (not clipped: the generator's raw output is trained).
        targets: per layer ``(1, C_i, C_i)`` Gram matrices of the exemplar.
        net: the VGG-19 returning ``layers``.

    Returns:
        ``(N,)``: :func:`~texbench.ops.gram.style_loss` per image.

    References:
        Gatys, Ecker & Bethge, NeurIPS 2015; Ulyanov et al., ICML 2016, eq. (3).
    """
    feats = net(images)
    grams = [gram_matrix(feats[n], normalize=gram_norm) for n in layers]
    return style_loss(grams, targets, layer_weights=layer_weights)


def train_texture_network(
    exemplar: torch.Tensor, p: TextureNetworksParams, net: VGG19Features, *, device: torch.device
) -> tuple[MultiScaleGenerator, dict[str, Any]]:
    """Train a generator to produce textures with the Gram statistics of ``exemplar``.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1], any size.
        p: parameters (architecture, schedule, loss, ``train_seed``).
        net: frozen VGG-19 returning ``p.style_layers``.
        device: where to train.

    Returns:
        The trained generator (eval mode, on ``device``) and ``{"loss_curve": [...] (one value per
        iteration, the batch mean), "loss_start", "loss_end" (mean loss on one fixed held-out noise
        batch, before training in train mode and after in eval mode on the clipped output, as sampled),
        "iterations"}``.

    References:
        Ulyanov et al., ICML 2016, Sec. 3-4.
    """
    gen = build_generator(p).to(device)
    rng = torch.Generator().manual_seed(p.train_seed)
    size = (p.train_size, p.train_size)
    layers = tuple(p.style_layers)

    def loss_of(images: torch.Tensor) -> torch.Tensor:
        return texture_loss(
            images, targets, net, layers=layers, gram_norm=p.gram_norm, layer_weights=p.layer_weights
        )

    def draw() -> list[torch.Tensor]:
        return [
            z.to(device)
            for z in noise_pyramid(size, p.scales, p.noise_channels, batch=p.batch_size, generator=rng)
        ]

    with torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():
            feats = net(exemplar[None].float().to(device))
            targets = [gram_matrix(feats[n], normalize=p.gram_norm) for n in layers]
            del feats
            held_out = draw()
            gen.train()
            # the untrained generator in train mode: eval-mode statistics are not estimated yet
            loss_start = float(loss_of(gen(held_out)).mean())
            gen.load_state_dict(build_generator(p).state_dict())  # undo the running-statistics update
        opt = torch.optim.Adam(gen.parameters(), lr=p.lr)
        curve: list[float] = []
        for it in range(1, p.iterations + 1):
            loss = loss_of(gen(draw())).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append(float(loss.detach()))
            if not math.isfinite(curve[-1]):
                raise RuntimeError(
                    f"texture-networks: training diverged at iteration {it} (loss {curve[-1]})"
                )
            if it >= p.lr_decay_start and it % p.lr_decay_every == 0:
                for group in opt.param_groups:
                    group["lr"] *= p.lr_decay
        with torch.no_grad():
            calibrate_batch_norm(gen, draw, p.calibration_batches)
            gen.eval()
            loss_end = float(loss_of(gen(held_out).clamp(0, 1)).mean())
    info = {"loss_curve": curve, "loss_start": loss_start, "loss_end": loss_end, "iterations": p.iterations}
    return gen, info


# ---------------------------------------------------------------------------------------------- the method
class TextureNetworks(Synthesizer):
    """Texture Networks: a multi-scale generator trained per exemplar, sampled from noise in one pass.

    ``prepare`` trains the generator for the exemplar (or loads it from the cache of trained weights;
    :mod:`texbench.trained`); ``run`` calls ``prepare`` itself when needed, then draws noise seeded by the
    job seed at ``task_input.size`` and returns one sample.

    Diagnostics recorded per job: ``train_cached`` (whether the generator came from the cache),
    ``train_seconds`` (of the training that produced it), ``train_loss_start`` / ``train_loss_end``
    (Gram loss on a held-out noise batch before and after training), ``loss_curve`` and
    ``loss_curve_iterations`` (the training curve, subsampled), ``train_key``.

    References:
        Ulyanov, Lebedev, Vedaldi & Lempitsky, ICML 2016 (arXiv:1603.03417).
    """

    name = "texture-networks"
    description = (
        "Ulyanov et al.: a multi-scale feed-forward generator trained per texture (VGG-19 Gram loss)"
    )
    tasks = ("texture",)
    version = "1"
    references = "Ulyanov, Lebedev, Vedaldi & Lempitsky, ICML 2016 (arXiv:1603.03417)"
    Params = TextureNetworksParams
    presets = {
        # tests: seconds on a CPU; a larger step makes up for the 30 iterations
        "tiny": {
            "scales": 3,
            "channels": 8,
            "train_size": 32,
            "batch_size": 2,
            "iterations": 30,
            "lr": 0.3,
            "lr_decay_start": 15,
            "lr_decay_every": 5,
            "calibration_batches": 2,
            "style_layers": ("relu1_1", "relu2_1", "relu3_1"),
        },
        "fast": {
            "train_size": 128,
            "batch_size": 4,
            "iterations": 500,
            "lr_decay_start": 250,
            "lr_decay_every": 50,
        },
    }

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._nets: dict[str, VGG19Features] = {}
        self._generators: dict[tuple[str, str], tuple[MultiScaleGenerator, Any]] = {}
        self._provenance: dict[str, str] = {}

    def _net(self, device: torch.device) -> VGG19Features:
        key = str(device)
        if key not in self._nets:
            p: TextureNetworksParams = self.params
            layers = tuple(n for n in LAYER_NAMES if n in p.style_layers)
            # random-init fallback seeded by train_seed: the loss, hence the generator, depends on it
            net = VGG19Features(
                layers, weights=p.weights, pooling=p.pooling, padding=p.vgg_padding, random_seed=p.train_seed
            )
            self._nets[key] = net.to(device)
        return self._nets[key]

    def _fields(self, task_input: Any, vgg_provenance: str) -> tuple[dict[str, Any], torch.Tensor]:
        from texbench.imageio import image_hash

        if task_input.task not in self.tasks:
            raise ValueError(f"texture-networks supports tasks {self.tasks}, got {task_input.task!r}")
        ex = task_input.image
        if ex is None:
            raise ValueError("texture task needs task_input.image (the exemplar)")
        if not isinstance(ex, torch.Tensor) or ex.ndim != 3 or ex.shape[0] != 3:
            raise ValueError(f"task_input.image must be a (3, H, W) tensor, got {getattr(ex, 'shape', ex)}")
        fields = {
            "method": self.name,
            "version": self.version,
            "params": self.params_dict(),
            "exemplar": image_hash(ex),
            "vgg19": vgg_provenance,
            "train_seed": self.params.train_seed,
        }
        return fields, ex

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        """Train (or load) the generator for ``task_input.image``; ``seed`` is not used (see ``train_seed``)."""
        from texbench.trained import load_or_train

        device = torch.device(device)
        net = self._net(device)
        fields, exemplar = self._fields(task_input, net.provenance)
        p: TextureNetworksParams = self.params

        def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            gen, info = train_texture_network(exemplar, p, net, device=device)
            return gen.state_dict(), info

        trained = load_or_train(fields, train)
        gen = build_generator(p)
        gen.load_state_dict(trained.state, strict=True)
        gen = gen.to(device).requires_grad_(False).eval()
        self._generators[(fields["exemplar"], str(device))] = (gen, trained)
        self._provenance = {"vgg19": net.provenance, "generator": trained.provenance()}
        info = trained.record["info"]
        its, curve = subsample_curve(info["loss_curve"], CURVE_POINTS)
        self.record_training(trained)  # train_key, train_seconds, train_cached: the leaderboard's "train s"
        self.record(
            train_loss_start=info["loss_start"],
            train_loss_end=info["loss_end"],
            loss_curve=curve,
            loss_curve_iterations=its,
        )

    def generator(self, task_input: Any, *, device: torch.device) -> MultiScaleGenerator:
        """The trained generator for ``task_input`` on ``device`` (training or loading it if needed)."""
        from texbench.imageio import image_hash

        device = torch.device(device)
        if task_input.image is None or task_input.task not in self.tasks:
            self._fields(task_input, "")  # raises the input error
        key = (image_hash(task_input.image), str(device))
        if key not in self._generators:
            self.prepare(task_input, seed=0, device=device)
        return self._generators[key][0]

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        p: TextureNetworksParams = self.params
        gen = self.generator(task_input, device=device)
        noise = noise_pyramid(
            tuple(task_input.size),
            p.scales,
            p.noise_channels,
            batch=1,
            generator=torch.Generator().manual_seed(seed),
        )
        with torch.no_grad():
            out = gen([z.to(device) for z in noise])
        return out[0].clamp(0, 1).float()

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)
