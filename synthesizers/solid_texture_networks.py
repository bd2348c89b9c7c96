"""3D Texture Networks (Gutiérrez, Rabin, Galerne & Hurtut, CGF 2019): solid textures on demand.

A generator of 3-D convolutions, fed multi-scale 3-D noise, is trained once per exemplar so that 2-D slices
of its volumes along the three axes match the exemplar(s) in VGG-19 Gram statistics; any sub-volume is then
generated on demand, and separately generated neighbours join seamlessly, because the noise is a function of
absolute voxel coordinates and every convolution is "valid" (no padding): a block is computed with the
margin its receptive field needs, then cropped.

Where each fact comes from: the authors' code (github.com/JorgeGtz/SolidTextureNets, ``train_slice.py`` and
``sample_on_demand.py``, read for this module); the paper's text could not be opened from here.

Generator (``MultiScaleGen3D`` there):

* ``scales`` = 6 noise volumes ``z_0`` (finest) … ``z_5`` of 3 channels (the code's ``z[0..5]``,
  ``n_input_ch = 3``), scale k covering voxels ``2^k`` apart;
* every noise volume goes through a block of 3×3×3, 3×3×3, 1×1×1 convolutions without padding, each followed
  by 3-D batch norm (momentum 0.1) and a LeakyReLU (slope 0.01, torch's default as the code's
  ``F.leaky_relu``), ``channels`` = 4 filters (``ch_step=4`` in both scripts);
* from the coarsest scale down: nearest ×2 up-sampling then batch norm of the running tensor (``Up_Bn3D``),
  cropped to the finer branch, joined coarse-first by channel concatenation, and mixed by a block of the
  joined width; widths 4, 8, …, 24 (84,963 parameters, counted here); a final 1×1×1 convolution to RGB (Caffe scale, as the 2-D Texture
  Networks: ``image = rgb / 255 + mean``).

On demand (the code's ``dep_values`` margins and ``Shift3D``): texbench computes, per axis, the window of
every scale's noise that a requested block ``[o, o + S)`` depends on (:func:`noise_windows`): the
output of scale k on ``[a, b)`` needs the join's input on ``[a − 2, b + 2)`` (two 3-wide valid convolutions),
hence ``z_k`` on ``[a − 4, b + 4)`` and the coarser output on ``[⌊(a − 2)/2⌋, ⌊(b + 1)/2⌋ + 1)``; the
up-sampled coarse tensor is cropped at offset ``(a − 2) − 2·⌊(a − 2)/2⌋`` (0 or 1: the code's parity
shifts); the coarsest block needs ``z`` on ``[a − 2, b + 2)``. For ``o`` a multiple of 32 these are the code's
margins 4, 5, 6, 6, 6, 4 voxels. Sampling noise is the code's spatially seeded generator (a cell seed from
scale, channel and coordinates, then ``wang_hash64`` and ``xorshift64*``; :func:`coordinate_noise`), so two
blocks see the same noise where they overlap.

Training (``train_slice.py``): Adam, learning rate 0.1, 3000 iterations, for each of the three directions
``batch_size`` = 8 slices of 128 × 128 × 1 voxels (each its own forward pass, as there), loss the mean over
slices and directions of the Gram MSE on ``relu1_1 … relu5_1`` of Gatys' normalised VGG-19 with average
pooling (Gram divided by C·H·W, mean over the C² entries, weight 1: texbench's ``gram_norm="all"`` with
``layer_weights="inverse-channels"``), each direction against its own exemplar (one exemplar for all three by
default).

Departures, written down:

* the slice's position is drawn at random on all three axes in ``[0, 2^(scales−1))`` (the code draws it on
  the slice's own axis only), so every crop parity that on-demand sampling uses at arbitrary offsets is
  trained;
* after training, batch-norm statistics are recomputed over ``calibration_batches`` fresh slices and
  sampling runs in eval mode (the code samples in training mode, where a block's values depend on the block:
  on-demand tiling is then not exact);
* the sampling hash's scale period is ``scales`` (the code's 5, with 6 scales, gives scales 0 and 5 the same
  cell seeds); the job seed is mixed into the cell seed (seed 0 leaves the code's values).

References:
    Gutiérrez, Rabin, Galerne & Hurtut, "On demand solid texture synthesis using deep 3D networks",
    Computer Graphics Forum 39(1), 2020 (online 2019; arXiv/HAL hal-01678122); code:
    github.com/JorgeGtz/SolidTextureNets.
    Ulyanov et al., ICML 2016 (the 2-D multi-scale generator it extends).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.nets.vgg19 import LAYER_NAMES, STYLE_LAYERS, VGG19Features, VGGPadding, VGGPooling, VGGWeights
from texbench.ops.gram import GramNorm, LayerWeights, gram_matrix, style_loss
from texbench.params import Params, param
from texbench.trained import calibrate_batch_norm, subsample_curve

__all__ = [
    "SolidGenerator",
    "TextureNetworks3D",
    "TextureNetworks3DParams",
    "coordinate_noise",
    "noise_windows",
    "train_solid_generator",
]

_MEAN_RGB_255 = (123.68, 116.779, 103.939)  # Caffe's ImageNet mean pixel, RGB (the code's BGR mean reversed)
_SPATIAL_PERIOD = 65536  # the code's cellseed: coordinates taken modulo 2^16
_CURVE_POINTS = 101


@dataclasses.dataclass(frozen=True)
class TextureNetworks3DParams(Params):
    """Parameters of :class:`TextureNetworks3D` (defaults: the authors' ``train_slice.py``).

    Attributes:
        scales: noise volumes / resolutions (code: 6).
        channels: filters of a branch block (code: ``ch_step=4``); the join after k scales has ``channels·k``.
        noise_channels: channels of each noise volume (code: 3).
        leaky_slope: LeakyReLU slope (code: torch's default 0.01).
        output_scale: the RGB layer works on Caffe's 0-255 scale (as the code and 2-D Texture Networks).
        train_size: side of the square training slices (code: 128).
        batch_size: slices per direction and iteration (code: 8).
        iterations: Adam steps (code: 3000).
        lr: Adam's learning rate (code: 0.1, constant).
        calibration_batches: slices per direction used to recompute the batch-norm statistics.
        train_seed: seeds the initialisation, the training noise and slice positions (NOT the job seed).
        weights, pooling, vgg_padding: the VGG-19 (code: Gatys' normalised VGG-19, average pooling).
        style_layers, gram_norm, layer_weights: the Gram loss (code: ``r11 … r51``, Gram / C·H·W, MSE).
    """

    scales: int = param(6, ge=1)
    channels: int = param(4, ge=1)
    noise_channels: int = param(3, ge=1)
    leaky_slope: float = param(0.01, ge=0)
    output_scale: float = param(255.0, gt=0)
    train_size: int = param(128, ge=8)
    batch_size: int = param(8, ge=1)
    iterations: int = param(3000, ge=0)
    lr: float = param(0.1, gt=0)
    calibration_batches: int = param(4, ge=0)
    train_seed: int = 0
    weights: VGGWeights = "normalised"
    pooling: VGGPooling = "avg"
    vgg_padding: VGGPadding = "zeros"
    style_layers: tuple[str, ...] = param(STYLE_LAYERS, nonempty=True, choices=LAYER_NAMES)
    gram_norm: GramNorm = "all"
    layer_weights: LayerWeights = "inverse-channels"


# ------------------------------------------------------------------------------------------------ the noise
def _wang_hash64(key: np.ndarray) -> np.ndarray:
    u = np.uint64
    key = (~key) + (key << u(21))
    key = key ^ (key >> u(24))
    key = (key + (key << u(3))) + (key << u(8))
    key = key ^ (key >> u(14))
    key = (key + (key << u(2))) + (key << u(4))
    key = key ^ (key >> u(28))
    return key + (key << u(31))


def _xorshift64star(x: np.ndarray) -> np.ndarray:
    u = np.uint64
    x = x ^ (x >> u(12))
    x = x ^ (x << u(25))
    x = x ^ (x >> u(27))
    x = x * u(0x2545F4914F6CDD1D)
    return x.astype(np.float32) / np.float32(18446744073709551615.0)


def coordinate_noise(
    scale: int, window: Sequence[tuple[int, int]], channels: int, *, seed: int = 0, scale_period: int = 6
) -> torch.Tensor:
    """Uniform noise in [0, 1] that is a function of (scale, channel, absolute voxel coordinates, seed).

    The authors' ``sample_noise``: a cell seed ``((scale mod s)·s·3·P² + (ch mod 3)·3·P² + z·P² + y·P + x)``
    with coordinates modulo ``P = 65536`` (1 if 0), hashed by ``wang_hash64`` and turned into a float by
    ``xorshift64*``; the job ``seed`` is mixed in by XOR with ``seed · 0x9E3779B97F4A7C15`` before hashing.

    Args:
        scale: the noise volume's scale.
        window: per axis ``(start, stop)`` in that scale's coordinates (any integers, negative too).
        channels: channels.
        seed: the job seed.
        scale_period: ``s`` above (the code's 5; here the number of scales, see the module docstring).

    Returns:
        float32 ``(1, channels, n_0, n_1, n_2)``.
    """
    u = np.uint64
    p = _SPATIAL_PERIOD
    axes = [np.mod(np.arange(a, b, dtype=np.int64), p).astype(np.uint64) for a, b in window]
    ch = np.arange(channels, dtype=np.uint64)[:, None, None, None]
    x, y, z = axes[0][None, :, None, None], axes[1][None, None, :, None], axes[2][None, None, None, :]
    cell = (u(scale % scale_period) * u(scale_period * 3 * p * p) + (ch % u(3)) * u(3 * p * p)
            + z * u(p * p) + y * u(p) + x)
    cell = np.where(cell == 0, u(1), cell)
    with np.errstate(over="ignore"):
        key = cell ^ (u(seed % 2**64) * u(0x9E3779B97F4A7C15))
        noise = _xorshift64star(_wang_hash64(key))
    return torch.from_numpy(np.ascontiguousarray(noise))[None]


def noise_windows(origin: Sequence[int], size: Sequence[int], scales: int) -> tuple[list[list[tuple[int, int]]],
                                                                                    list[list[int]]]:
    """The noise each scale needs to generate the block ``[origin, origin + size)``, and the crops.

    Returns:
        ``(windows, offsets)``: ``windows[k][axis] = (start, stop)`` of ``z_k`` in scale-k coordinates
        (k = 0 finest); ``offsets[k][axis]`` (k < scales − 1) the crop of the up-sampled scale-(k+1) tensor.

    >>> w, o = noise_windows((0, 0, 0), (32, 32, 32), 6)
    >>> [wk[0][0] for wk in w], [wk[0][1] - 32 // 2**k for k, wk in enumerate(w)]
    ([-4, -5, -6, -6, -6, -4], [4, 5, 6, 6, 6, 4])
    """
    windows: list[list[tuple[int, int]]] = [[] for _ in range(scales)]
    offsets: list[list[int]] = [[] for _ in range(scales - 1)]
    for o, s in zip(origin, size, strict=True):
        a, b = int(o), int(o) + int(s)
        for k in range(scales):
            if k == scales - 1:
                windows[k].append((a - 2, b + 2))
                break
            windows[k].append((a - 4, b + 4))
            ca, cb = (a - 2) // 2, (b + 1) // 2 + 1
            offsets[k].append((a - 2) - 2 * ca)
            a, b = ca, cb
    return windows, offsets


# ---------------------------------------------------------------------------------------------- generator
def _block(cin: int, cout: int, slope: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, c_in in ((3, cin), (3, cout), (1, cout)):
        layers += [nn.Conv3d(c_in, cout, k), nn.BatchNorm3d(cout, momentum=0.1), nn.LeakyReLU(slope)]
    return nn.Sequential(*layers)


class SolidGenerator(nn.Module):
    """The multi-scale 3-D generator (the code's ``MultiScaleGen3D``; see the module docstring).

    Input: noise volumes ``z_0 … z_{K−1}`` (finest first) on the windows of :func:`noise_windows`, and the
    crop offsets from there. Output: ``(N, 3, D, H, W)`` on the requested block (linear; about [0, 1]).
    """

    def __init__(self, scales: int = 6, channels: int = 4, noise_channels: int = 3, leaky_slope: float = 0.01,
                 output_scale: float = 255.0) -> None:
        super().__init__()
        self.scales = scales
        self.branches = nn.ModuleList(_block(noise_channels, channels, leaky_slope) for _ in range(scales))
        # joins[k] mixes scale k (finest = 0) with everything coarser: width channels·(scales − k)
        self.up_norms = nn.ModuleList(nn.BatchNorm3d(channels * (scales - 1 - k)) for k in range(scales - 1))
        self.joins = nn.ModuleList(
            _block(channels * (scales - k), channels * (scales - k), leaky_slope) for k in range(scales - 1)
        )
        self.to_rgb = nn.Conv3d(channels * scales, 3, 1)
        self.output_scale = output_scale
        self.register_buffer("mean", torch.tensor(_MEAN_RGB_255).view(1, 3, 1, 1, 1) / 255.0, persistent=False)

    def forward(self, noise: Sequence[torch.Tensor], offsets: Sequence[Sequence[int]]) -> torch.Tensor:
        if len(noise) != self.scales:
            raise ValueError(f"noise must hold {self.scales} volumes, got {len(noise)}")
        y = self.branches[-1](noise[-1])
        for k in range(self.scales - 2, -1, -1):
            fine = self.branches[k](noise[k])
            up = self.up_norms[k](F.interpolate(y, scale_factor=2, mode="nearest"))
            (od, oh, ow), (d, h, w) = offsets[k], fine.shape[-3:]
            y = self.joins[k](torch.cat([up[..., od : od + d, oh : oh + h, ow : ow + w], fine], 1))
        return self.to_rgb(y) / self.output_scale + self.mean


def build_generator(p: TextureNetworks3DParams) -> SolidGenerator:
    """The untrained generator of ``p``, initialised (torch's defaults) from ``p.train_seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.train_seed)
        return SolidGenerator(p.scales, p.channels, p.noise_channels, p.leaky_slope, p.output_scale)


def generate(gen: SolidGenerator, origin: Sequence[int], size: Sequence[int], *, seed: int,
             device: torch.device) -> torch.Tensor:
    """The block ``[origin, origin + size)`` of the solid texture of ``seed``: float ``(3, D, H, W)``, unclipped.

    Blocks generated separately equal the same voxels of a larger block (to float rounding)."""
    windows, offsets = noise_windows(origin, size, gen.scales)
    c = gen.branches[0][0].in_channels
    noise = [coordinate_noise(k, w, c, seed=seed, scale_period=gen.scales).to(device) for k, w in enumerate(windows)]
    with torch.no_grad():
        return gen(noise, offsets)[0]


# ------------------------------------------------------------------------------------------------ training
def _slice_of(gen: SolidGenerator, axis: int, size: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """One training slice ``(1, 3, size, size)`` across ``axis`` at a random position, from fresh noise."""
    return gen(*_slice_noise(gen, axis, size, rng, device)).squeeze(axis + 2)


def _slice_noise(gen: SolidGenerator, axis: int, size: int, rng: torch.Generator,
                 device: torch.device) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Noise and crop offsets of a ``size × size × 1`` slice across ``axis`` at a random position."""
    period = 2 ** (gen.scales - 1)
    origin = [int(v) for v in torch.randint(0, period, (3,), generator=rng)]
    shape = [size, size, size]
    shape[axis] = 1
    windows, offsets = noise_windows(origin, shape, gen.scales)
    c = gen.branches[0][0].in_channels
    noise = [torch.rand((1, c, *(b - a for a, b in w)), generator=rng).to(device) for w in windows]
    return noise, offsets


def train_solid_generator(
    exemplars: Sequence[torch.Tensor], p: TextureNetworks3DParams, net: VGG19Features, *, device: torch.device
) -> tuple[SolidGenerator, dict[str, Any]]:
    """Train a generator whose slices across axis a have the Gram statistics of ``exemplars[a]``.

    Args:
        exemplars: three ``(3, h, w)`` images in [0, 1], one per slice axis (the same one three times for a
            single exemplar).
        p: parameters.
        net: frozen VGG-19 returning ``p.style_layers``.
        device: where to train.

    Returns:
        The generator (eval mode) and ``{"loss_curve", "loss_start", "loss_end", "iterations"}`` (loss: the
        mean over slices and directions, as the code's ``loss_history``; start and end on the same held-out
        slices, the end in eval mode).
    """
    gen = build_generator(p).to(device)
    layers = tuple(p.style_layers)
    with torch.no_grad():
        targets = []
        for ex in exemplars:
            feats = net(ex[None].float().to(device))
            targets.append([gram_matrix(feats[n], normalize=p.gram_norm) for n in layers])

    def loss_of(img: torch.Tensor, axis: int) -> torch.Tensor:
        feats = net(img)
        grams = [gram_matrix(feats[n], normalize=p.gram_norm) for n in layers]
        return style_loss(grams, targets[axis], layer_weights=p.layer_weights).mean()

    def held_out() -> float:
        rng = torch.Generator().manual_seed(p.train_seed + 1)
        with torch.no_grad():
            return float(sum(loss_of(_slice_of(gen, a, p.train_size, rng, device).clamp(0, 1), a) for a in range(3)) / 3)

    rng = torch.Generator().manual_seed(p.train_seed)
    with torch.inference_mode(False), torch.enable_grad():
        gen.eval()
        loss_start = held_out()
        gen.train()
        opt = torch.optim.Adam(gen.parameters(), lr=p.lr)
        curve: list[float] = []
        for it in range(1, p.iterations + 1):
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for axis in range(3):
                for _ in range(p.batch_size):  # one slice per pass, as the code (memory at 128²)
                    loss = loss_of(_slice_of(gen, axis, p.train_size, rng, device), axis) / (3 * p.batch_size)
                    loss.backward()
                    total += float(loss.detach())
            opt.step()
            curve.append(total)
            if not math.isfinite(total):
                raise RuntimeError(f"texture-networks-3d: training diverged at iteration {it} (loss {total})")
        with torch.no_grad():
            drawn = [0]

            def draw() -> tuple[list[torch.Tensor], list[list[int]]]:  # slices across the three axes in turn
                drawn[0] += 1
                return _slice_noise(gen, drawn[0] % 3, p.train_size, rng, device)

            calibrate_batch_norm(_Unpacked(gen), draw, 3 * p.calibration_batches)
        gen.eval()
        loss_end = held_out()
    return gen, {"loss_curve": curve, "loss_start": loss_start, "loss_end": loss_end, "iterations": p.iterations}


class _Unpacked(nn.Module):
    """``gen`` called as ``gen(*inputs)``: the one-argument form :func:`calibrate_batch_norm` calls."""

    def __init__(self, gen: SolidGenerator) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, inputs: tuple[list[torch.Tensor], list[list[int]]]) -> torch.Tensor:
        return self.gen(*inputs)


# ---------------------------------------------------------------------------------------------- the method
class TextureNetworks3D(Synthesizer):
    """3D Texture Networks: a 3-D generator trained per exemplar on slices, sampled on demand.

    ``prepare`` trains the generator (or loads it from :mod:`texbench.trained`); ``run`` returns the block
    ``[0, size)³`` of the solid texture of the job seed; :meth:`sample` any block at any offset.

    References:
        Gutiérrez, Rabin, Galerne & Hurtut, CGF 2019 (hal-01678122); github.com/JorgeGtz/SolidTextureNets.
    """

    name = "texture-networks-3d"
    description = "Gutiérrez et al.: 3-D multi-scale generator trained on slices (VGG-19 Gram), on demand"
    tasks = ("solid",)
    version = "1"
    references = "Gutiérrez, Rabin, Galerne & Hurtut, CGF 2019, 'On demand solid texture synthesis using deep 3D networks'"
    Params = TextureNetworks3DParams
    presets = {
        # tests: seconds, not a texture (the suite 'solid' trains it longer, 60 iterations at 32²: one
        # minute on this CPU, where the Gram loss falls from 9e-3 to 2.5e-4 on pebbles)
        "tiny": {"scales": 3, "train_size": 24, "batch_size": 1, "iterations": 4,
                 "calibration_batches": 1, "style_layers": ("relu1_1", "relu2_1")},
        "fast": {"train_size": 64, "batch_size": 2, "iterations": 300},
    }

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._nets: dict[str, VGG19Features] = {}
        self._generators: dict[tuple[str, str], SolidGenerator] = {}
        self._provenance: dict[str, str] = {}

    def _net(self, device: torch.device) -> VGG19Features:
        if str(device) not in self._nets:
            p: TextureNetworks3DParams = self.params
            layers = tuple(n for n in LAYER_NAMES if n in p.style_layers)
            net = VGG19Features(layers, weights=p.weights, pooling=p.pooling, padding=p.vgg_padding,
                                random_seed=p.train_seed)
            self._nets[str(device)] = net.to(device)
        return self._nets[str(device)]

    @staticmethod
    def _exemplars(task_input: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if getattr(task_input, "task", None) != "solid":
            raise ValueError(f"texture-networks-3d supports task 'solid', got {getattr(task_input, 'task', None)!r}")
        exs = tuple(task_input.exemplars) or (task_input.image,) * 3
        if len(exs) != 3:
            raise ValueError(f"task_input.exemplars must hold 3 images (one per axis), got {len(exs)}")
        for ex in exs:
            if not isinstance(ex, torch.Tensor) or ex.ndim != 3 or ex.shape[0] != 3:
                raise ValueError(f"solid task needs task_input.image, a (3, H, W) exemplar, got {getattr(ex, 'shape', ex)}")
        return exs  # type: ignore[return-value]

    def _key(self, exs: Sequence[torch.Tensor]) -> str:
        from texbench.imageio import image_hash

        return "+".join(image_hash(e) for e in exs)

    def prepare(self, task_input: Any, *, seed: int, device: torch.device) -> None:
        """Train (or load) the generator for the exemplar(s); ``seed`` is not used (see ``train_seed``)."""
        from texbench.trained import load_or_train

        device = torch.device(device)
        exs = self._exemplars(task_input)
        net = self._net(device)
        p: TextureNetworks3DParams = self.params
        fields = {"method": self.name, "version": self.version, "params": self.params_dict(),
                  "exemplars": self._key(exs), "vgg19": net.provenance, "train_seed": p.train_seed}

        def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            gen, info = train_solid_generator(exs, p, net, device=device)
            return gen.state_dict(), info

        trained = load_or_train(fields, train)
        gen = build_generator(p)
        gen.load_state_dict(trained.state, strict=True)
        self._generators[(fields["exemplars"], str(device))] = gen.to(device).requires_grad_(False).eval()
        self._provenance = {"vgg19": net.provenance, "generator": trained.provenance()}
        info = trained.record["info"]
        its, curve = subsample_curve(info["loss_curve"], _CURVE_POINTS)
        self.record_training(trained)
        self.record(train_loss_start=info["loss_start"], train_loss_end=info["loss_end"], loss_curve=curve,
                    loss_curve_iterations=its)

    def sample(self, task_input: Any, origin: Sequence[int], size: Sequence[int], *, seed: int,
               device: torch.device) -> torch.Tensor:
        """The block ``[origin, origin + size)`` (voxels, axes D, H, W) of the solid texture of ``seed``:
        float ``(3, *size)`` in [0, 1]. Any offset (negative too) and any size."""
        device = torch.device(device)
        if len(origin) != 3 or len(size) != 3 or min(size) < 1:
            raise ValueError(f"origin and size must be 3 integers (size positive), got {origin} and {size}")
        key = (self._key(self._exemplars(task_input)), str(device))
        if key not in self._generators:
            self.prepare(task_input, seed=seed, device=device)
        return generate(self._generators[key], origin, size, seed=seed, device=device).clamp(0, 1).float()

    def run(self, task_input: Any, *, seed: int, device: torch.device) -> torch.Tensor:
        return self.sample(task_input, (0, 0, 0), tuple(task_input.size), seed=seed, device=device)

    def provenance(self) -> dict[str, str]:
        return dict(self._provenance)
