"""Deep Image Prior: restoration by fitting a randomly initialised generator to one degraded image.

A convolutional encoder-decoder ``g_θ`` with skip connections maps a fixed random code ``z`` to an image;
its weights are fitted to the degraded observation ``v`` alone,

    min_θ ‖ φ(g_θ(z + ε_t)) − v ‖²,    ε_t ~ N(0, σ_reg²)  (redrawn each iteration),

where ``φ`` is the task's degradation: the identity for ``denoise``, the task's own antialiased-bicubic
×4 down-sampler :func:`texbench.tasks.downsample` for ``sr4`` and multiplication by the known-pixel mask
for ``inpaint``. The structure of the network fits natural images faster than noise, so stopping after
a fixed budget (and, for denoising, averaging the outputs of the iterations) acts as the prior.

Settings and where they come from (paper: Ulyanov, Vedaldi, Lempitsky, "Deep Image Prior", CVPR 2018 /
IJCV 2020, arXiv:1711.10925, section 4 and supplementary material; official code:
github.com/DmitryUlyanov/deep-image-prior, notebooks ``denoising.ipynb``, ``super-resolution.ipynb``,
``inpainting.ipynb`` and ``models/skip.py``, ``models/common.py``, ``utils/common_utils.py``):

* network (``skip`` in the official code, used for denoising, ×4 SR and text inpainting): depth 5,
  128 channels down and up, 4 skip channels (1×1 convolutions), 3×3 convolutions with reflection
  padding, stride-2 convolutions to down-sample, bilinear up-sampling, batch norm, LeakyReLU(0.2), a 1×1
  output convolution and a sigmoid. Up-sampling may also be ``nearest`` (used for inpainting) or a
  transposed convolution (``deconv``, which the paper shows produces checkerboard artefacts).
* input ``z``: 32 channels, uniform noise U(0, 1) scaled by 1/10, fixed for the whole run.
* Adam, learning rate 0.01, full-batch (one image).
* ``denoise`` (σ = 25): 1,800 iterations (the paper's colour-denoising table reports DIP after 1,800
  steps; the F16 notebook runs 3,000), input-noise regularisation σ_reg = 1/30, exponential moving
  average of the outputs with decay 0.99 (the "+averaging" row of that table), and the notebook's
  back-tracking (if the fit to the noisy image drops by more than 5 dB in one step, the weights of the
  previous step are restored).
* ``sr4``: 2,000 iterations, σ_reg = 0.03, no averaging (``super-resolution.ipynb``, factor 4). The
  official code uses its own Lanczos-2 down-sampler; texbench uses the task's operator instead, so the
  fit is to exactly the degradation that produced the input.
* ``jpeg`` (JPEG artefact removal, ``denoising.ipynb`` with ``fname = 'data/denoising/snail.jpg'``): the
  notebook's own smaller network, ``skip(3, 3, num_channels_down = num_channels_up = [8, 16, 32, 64,
  128], num_channels_skip = [0, 0, 0, 4, 4], upsample_mode='bilinear', act_fun='LeakyReLU')`` with a
  3-channel input ``z`` (preset ``jpeg``: ``input_depth = 3``, ``channels_per_scale``,
  ``skip_per_scale``), 2,400 iterations, and otherwise the denoising settings of that notebook
  (σ_reg = 1/30, exponential average 0.99, back-tracking at 5 dB, Adam 0.01).
* ``inpaint``: 5,000 iterations, σ_reg = 0.03 (the paper's text-inpainting setting used 6,000 and 128
  skip channels with nearest up-sampling; set those through parameters to reproduce it exactly).

Differences from the official code, on purpose: the network runs on a canvas padded up to a multiple of
``2**depth`` and the output is the centre crop of the task's size (the official code instead crops the
*image* to a multiple of 32, which would change the task); the final output of non-averaged tasks is
``g_θ(z)`` with the unperturbed code. As in the official code, batch norm stays in training mode (batch
statistics of the single image) throughout, including for the final output.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from texbench import tasks as _tasks
from texbench.base import Synthesizer
from texbench.ops.distortion import psnr
from texbench.params import Params, param

__all__ = ["DIP", "DIPParams", "SkipNet", "TASK_DEFAULTS", "forward_operator"]

REFERENCES = (
    "Ulyanov, Vedaldi, Lempitsky. Deep Image Prior. CVPR 2018 / IJCV 2020, arXiv:1711.10925; "
    "github.com/DmitryUlyanov/deep-image-prior"
)

#: The paper's per-task settings used where a parameter is left at ``None``.
TASK_DEFAULTS: dict[str, dict[str, float]] = {
    "denoise": {"iterations": 1800, "reg_noise_std": 1.0 / 30.0, "ema": 0.99, "backtrack_db": 5.0},
    "sr4": {"iterations": 2000, "reg_noise_std": 0.03, "ema": 0.0, "backtrack_db": 0.0},
    "inpaint": {"iterations": 5000, "reg_noise_std": 0.03, "ema": 0.0, "backtrack_db": 0.0},
    "jpeg": {"iterations": 2400, "reg_noise_std": 1.0 / 30.0, "ema": 0.99, "backtrack_db": 5.0},
}


# ----------------------------------------------------------------------------------------------- network
def _conv(c_in: int, c_out: int, kernel: int, *, stride: int = 1, pad: str) -> nn.Conv2d:
    mode = "reflect" if pad == "reflection" else "zeros"
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, padding_mode=mode)


def _norm(channels: int, norm: str) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()


def _conv_block(c_in: int, c_out: int, kernel: int, *, stride: int = 1, pad: str, norm: str, slope: float):
    return nn.Sequential(
        _conv(c_in, c_out, kernel, stride=stride, pad=pad), _norm(c_out, norm), nn.LeakyReLU(slope)
    )


def _upsampler(channels: int, mode: str) -> nn.Module:
    if mode == "deconv":
        return nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)
    if mode == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    return nn.Upsample(scale_factor=2, mode="nearest")


class _Level(nn.Module):
    """One scale of the encoder-decoder: skip branch, down branch (with the deeper levels inside), merge."""

    def __init__(
        self,
        c_in: int,
        c_down: int,
        c_up: int,
        c_skip: int,
        inner: nn.Module | None,
        c_inner: int,
        p: DIPParams,
    ) -> None:
        super().__init__()
        kw = {"pad": p.pad, "norm": p.norm, "slope": p.leaky_slope}
        self.skip = _conv_block(c_in, c_skip, 1, **kw) if c_skip > 0 else None
        self.down = nn.Sequential(
            _conv_block(c_in, c_down, p.kernel_down, stride=2, **kw),
            _conv_block(c_down, c_down, p.kernel_down, **kw),
        )
        self.inner = inner
        c_deep = c_inner if inner is not None else c_down
        self.upsample = _upsampler(c_deep, p.upsample)
        self.merge_norm = _norm(c_skip + c_deep, p.norm)
        self.up = nn.Sequential(
            _conv_block(c_skip + c_deep, c_up, p.kernel_up, **kw), _conv_block(c_up, c_up, 1, **kw)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        if self.inner is not None:
            d = self.inner(d)
        d = self.upsample(d)
        y = d if self.skip is None else torch.cat([self.skip(x), d], dim=1)
        return self.up(self.merge_norm(y))


class SkipNet(nn.Module):
    """The paper's encoder-decoder with skip connections ("skip" in the official code).

    Input ``(N, input_depth, H, W)`` with H, W multiples of ``2**depth``; output ``(N, 3, H, W)`` in (0, 1).

    References:
        Ulyanov et al., Deep Image Prior, arXiv:1711.10925, supplementary material, figure 21.
    """

    def __init__(self, p: DIPParams) -> None:
        super().__init__()
        inner: nn.Module | None = None
        c_inner = 0
        down, up, skip = p.scales()
        for level in reversed(range(p.depth)):
            c_in = p.input_depth if level == 0 else down[level - 1]
            inner = _Level(c_in, down[level], up[level], skip[level], inner, c_inner, p)
            c_inner = up[level]
        self.body = inner
        self.head = nn.Conv2d(up[0], 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))


# ------------------------------------------------------------------------------------------------ params
@dataclasses.dataclass(frozen=True)
class DIPParams(Params):
    """Deep Image Prior settings; ``None`` means the paper's value for the task (:data:`TASK_DEFAULTS`).

    Attributes:
        iterations: Adam steps (denoise 1800, sr4 2000, inpaint 5000).
        lr: Adam learning rate.
        reg_noise_std: σ of the Gaussian perturbation added to ``z`` each step (denoise 1/30, else 0.03).
        ema: decay of the exponential moving average of outputs returned (denoise 0.99; 0 = off).
        backtrack_db: restore the previous weights when the data-fit PSNR drops by more than this in one
            step (denoise 5 dB as in the official notebook; 0 = off).
        input_depth: channels of ``z``.
        input_scale: ``z`` ~ U(0, input_scale).
        depth: number of scales (the canvas is padded to a multiple of ``2**depth``).
        channels_down, channels_up, channels_skip: channels per scale (skip 0 = no skip connection).
        channels_per_scale, skip_per_scale: when not empty, the down/up and skip channels of each scale,
            finest first, one entry per scale (``depth`` of them), replacing the three scalars; the JPEG
            network of the official notebook uses ``[8, 16, 32, 64, 128]`` and ``[0, 0, 0, 4, 4]``.
        kernel_down, kernel_up: convolution sizes of the down and up branches.
        upsample: ``bilinear``, ``nearest`` or ``deconv`` (stride-2 transposed 4×4 convolution).
        norm: ``batch`` or ``none``.
        pad: ``reflection`` or ``zero``.
        leaky_slope: LeakyReLU negative slope.
        report_every: report the output every this many iterations (and after the last) through
            :meth:`~texbench.base.Synthesizer.report_iterate`, when the runner listens (restoration tasks:
            the oracle trajectory of the leaderboard's ``psnr@best``). Does not change the output.
    """

    iterations: int | None = param(None, ge=1)
    lr: float = param(0.01, gt=0)
    reg_noise_std: float | None = param(None, ge=0)
    ema: float | None = param(None, ge=0, lt=1)
    backtrack_db: float | None = param(None, ge=0)
    input_depth: int = param(32, ge=1)
    input_scale: float = 0.1
    depth: int = param(5, ge=1)
    channels_down: int = param(128, ge=1)
    channels_up: int = param(128, ge=1)
    channels_skip: int = param(4, ge=0)
    channels_per_scale: tuple[int, ...] = param((), ge=1)
    skip_per_scale: tuple[int, ...] = param((), ge=0)
    kernel_down: int = param(3, odd=True)
    kernel_up: int = param(3, odd=True)
    upsample: Literal["bilinear", "nearest", "deconv"] = "bilinear"
    norm: Literal["batch", "none"] = "batch"
    pad: Literal["reflection", "zero"] = "reflection"
    leaky_slope: float = 0.2
    report_every: int = param(50, ge=1)

    def scales(self) -> tuple[list[int], list[int], list[int]]:
        """Channels (down, up, skip) of each scale, finest first."""
        for name in ("channels_per_scale", "skip_per_scale"):
            n = len(getattr(self, name))
            if n and n != self.depth:
                raise ValueError(f"parameter {name!r} must have depth={self.depth} entries, got {n}")
        down = list(self.channels_per_scale) or [self.channels_down] * self.depth
        up = list(self.channels_per_scale) or [self.channels_up] * self.depth
        skip = list(self.skip_per_scale) or [self.channels_skip] * self.depth
        return down, up, skip

    def resolved(self, task: str) -> dict[str, float]:
        """The per-task settings with ``None`` replaced by the paper's value for ``task``."""
        if task not in TASK_DEFAULTS:
            raise ValueError(f"task must be one of {sorted(TASK_DEFAULTS)}, got {task!r}")
        return {
            k: (d if getattr(self, k) is None else getattr(self, k)) for k, d in TASK_DEFAULTS[task].items()
        }


# ---------------------------------------------------------------------------------------- the degradation
def forward_operator(task_input: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """φ of a task: maps a candidate clean image ``(N, 3, H, W)`` to the space of the observation.

    ``denoise`` and ``jpeg``: identity (the JPEG notebook fits the compressed image directly); ``sr4``: :func:`texbench.tasks.downsample` with the task's scale (the very
    function that built the input); ``inpaint``: multiplication by ``task_input.mask``.
    """
    if task_input.task in ("denoise", "jpeg"):
        return lambda x: x
    if task_input.task == "sr4":
        scale = int(task_input.degradation.get("scale", 4))
        # looked up through the module at call time, so the task's operator is the one used
        return lambda x: _tasks.downsample(x, scale)
    if task_input.task == "inpaint":
        if task_input.mask is None:
            raise ValueError("task_input.mask is required for the inpaint task")
        mask = task_input.mask
        return lambda x: x * mask.to(x.device, x.dtype)
    raise ValueError(f"dip does not support task {task_input.task!r}")


# ---------------------------------------------------------------------------------------------- the method
class DIP(Synthesizer):
    """Deep Image Prior for denoising, ×4 super-resolution and inpainting.

    ``run`` records per-iteration ``loss`` (the data term) and, when called with ``reference=`` (a clean
    image, for analysis runs only; benchmark runs never pass it), ``psnr`` of the current output (and
    ``psnr_ema`` of the averaged output) to that reference, so over-fitting can be plotted.

    References:
        Ulyanov, Vedaldi, Lempitsky. Deep Image Prior. CVPR 2018, arXiv:1711.10925.
    """

    name: ClassVar[str] = "dip"
    description: ClassVar[str] = (
        "Deep Image Prior: fit a random conv net to the degraded image (Ulyanov 2018)"
    )
    tasks: ClassVar[tuple[str, ...]] = ("denoise", "sr4", "inpaint", "jpeg")
    version: ClassVar[str] = "1"
    references: ClassVar[str] = REFERENCES
    Params: ClassVar[type] = DIPParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # for tests on 64x64 images: a small net, 300 steps (~25 ms a step on one idle CPU thread)
        "tiny": {
            "iterations": 300,
            "input_depth": 8,
            "depth": 3,
            "channels_down": 16,
            "channels_up": 16,
            "channels_skip": 4,
        },
        # the official text-inpainting network (inpainting.ipynb, kate.png)
        "inpaint-text": {"iterations": 6000, "channels_skip": 128, "upsample": "nearest"},
        # the official JPEG artefact-removal network (denoising.ipynb, snail.jpg); 2400 iterations come
        # from the task's defaults
        "jpeg": {"input_depth": 3, "channels_per_scale": (8, 16, 32, 64, 128), "skip_per_scale": (0, 0, 0, 4, 4)},
    }

    def build_net(self, *, seed: int) -> SkipNet:
        """The network with weights initialised from ``seed`` (PyTorch's default initialisers)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SkipNet(self.params)

    def run(
        self,
        task_input: Any,
        *,
        seed: int,
        device: torch.device | str = "cpu",
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fit the network to ``task_input.image`` and return the restored image.

        Args:
            task_input: a :class:`texbench.tasks.TaskInput` of task ``denoise``, ``sr4`` or ``inpaint``.
            seed: seeds the weights, ``z`` and the per-step perturbations.
            device: where to compute.
            reference: optional clean image ``(3, H, W)`` in [0, 1] for per-iteration PSNR curves.

        Returns:
            ``(3, H, W)`` in [0, 1], ``(H, W) == task_input.size``.
        """
        if task_input.task not in self.tasks:
            raise ValueError(f"dip does not support task {task_input.task!r}; tasks: {', '.join(self.tasks)}")
        if task_input.image is None:
            raise ValueError("task_input.image (the degraded image) is required")
        device = torch.device(device)
        p = self.params
        cfg = self.params.resolved(task_input.task)
        iterations, reg_std = int(cfg["iterations"]), float(cfg["reg_noise_std"])
        ema_decay, backtrack_db = float(cfg["ema"]), float(cfg["backtrack_db"])
        h, w = task_input.size
        if reference is not None and tuple(reference.shape) != (3, h, w):
            raise ValueError(f"reference must have shape (3, {h}, {w}), got {tuple(reference.shape)}")
        phi = forward_operator(task_input)
        target = task_input.image.to(device, torch.float32)[None]

        # the network needs sides divisible by 2**depth: run on a padded canvas, crop its centre
        m = 2**p.depth
        hp, wp = -(-h // m) * m, -(-w // m) * m
        top, left = (hp - h) // 2, (wp - w) // 2

        gen = torch.Generator().manual_seed(seed)  # CPU draws: identical on every device
        net = self.build_net(seed=seed).to(device).train()
        z = (torch.rand((1, p.input_depth, hp, wp), generator=gen) * p.input_scale).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=p.lr)

        def crop(x: torch.Tensor) -> torch.Tensor:
            return x[..., top : top + h, left : left + w]

        ref = None if reference is None else reference.to(device, torch.float32)[None]
        losses: list[float] = []
        psnrs: list[float] = []
        psnrs_ema: list[float] = []
        out_avg: torch.Tensor | None = None
        last_state: dict[str, torch.Tensor] | None = None
        last_fit = -math.inf
        n_backtracks = 0
        t0 = time.perf_counter()
        for i in range(iterations):
            opt.zero_grad(set_to_none=True)
            z_in = z + torch.randn(z.shape, generator=gen).to(device) * reg_std if reg_std > 0 else z
            out = crop(net(z_in))
            loss = F.mse_loss(phi(out), target)
            loss.backward()
            loss_v = float(loss.detach())
            losses.append(loss_v)
            step = True
            if backtrack_db > 0:
                fit = -10.0 * math.log10(max(loss_v, 1e-12))
                if last_state is not None and fit < last_fit - backtrack_db:
                    # the fit blew up: go back to the last good weights and skip this step
                    net.load_state_dict(last_state)
                    n_backtracks += 1
                    step = False
                else:
                    last_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    last_fit = fit
            if step:
                opt.step()
                if ema_decay > 0:
                    o = out.detach()
                    out_avg = o if out_avg is None else out_avg * ema_decay + o * (1.0 - ema_decay)
            if reference is not None:
                psnrs.append(float(psnr(out.detach(), ref)))
                if out_avg is not None:
                    psnrs_ema.append(float(psnr(out_avg, ref)))
            if self.wants_iterates and ((i + 1) % p.report_every == 0 or i + 1 == iterations):
                self._report(i + 1, net, z, crop, out_avg if ema_decay > 0 else None)
        seconds = time.perf_counter() - t0

        if ema_decay > 0 and out_avg is not None:
            result = out_avg
        else:
            with torch.no_grad():
                result = crop(net(z))
        info: dict[str, Any] = {
            "loss": [float(f"{v:.6g}") for v in losses],
            "iterations": iterations,
            "seconds_per_iteration": seconds / max(iterations, 1),
            "backtracks": n_backtracks,
            "settings": {"reg_noise_std": reg_std, "ema": ema_decay, "backtrack_db": backtrack_db},
        }
        if reference is not None:
            info["psnr"] = [round(v, 4) for v in psnrs]
            if psnrs_ema:
                info["psnr_ema"] = [round(v, 4) for v in psnrs_ema]
        self.record(**info)
        return result[0].detach().clamp(0.0, 1.0).to(torch.float32)

    def _report(self, iteration: int, net: nn.Module, z: torch.Tensor, crop: Callable, out_avg: Any) -> None:
        """Report what :meth:`run` would return had it stopped here: the running average where the task
        averages, else ``g_θ(z)`` with the unperturbed code (one extra forward pass; batch norm in training
        mode uses the image's own statistics, so the pass changes nothing the fit depends on)."""
        if out_avg is not None:
            image = out_avg
        else:
            with torch.no_grad():
                image = crop(net(z))
        self.report_iterate(iteration, image[0].detach().clamp(0.0, 1.0).float())

    def provenance(self) -> dict[str, str]:
        return {}
