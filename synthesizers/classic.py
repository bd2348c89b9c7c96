"""Classic, weight-free baselines: one per task.

* ``random-phase``: random-phase noise texture synthesis (Galerne, Gousseau, Morel 2011);
* ``bicubic``: bicubic ×4 up-sampling;
* ``gaussian-filter``: Gaussian smoothing as the simplest denoiser;
* ``nl-means``: non-local means (Buades et al. 2005) from scikit-image;
* ``reinhard``: colour transfer in lαβ space (Reinhard et al. 2001) for the style task;
* ``identity``: the degraded input itself (``jpeg``, ``denoise``), the row every restoration method must beat.

For ``jpeg`` no deblocking filter from a maintained PyPI library was found (scikit-image, OpenCV and
Pillow ship none), so the classic row is ``nl-means`` at the noise level estimated from the compressed
image (:func:`estimate_noise_sigma`), the fallback the benchmark's issue names.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.ops.filters import gaussian_window
from texbench.params import Params, param

__all__ = ["Bicubic", "GaussianFilter", "Identity", "NLMeans", "RandomPhaseNoise", "ReinhardColorTransfer",
           "periodic_component", "random_phase_noise", "reinhard_transfer"]


def _require(inp, attr: str, method: str) -> torch.Tensor:
    t = getattr(inp, attr)
    if t is None:
        raise ValueError(f"{method}: task input has no {attr!r} image")
    return t


# ------------------------------------------------------------------------------------------ random-phase noise
def periodic_component(u: torch.Tensor) -> torch.Tensor:
    """Moisan's periodic component of ``u`` ``(C, H, W)``: ``u`` minus its smooth component.

    Removes the cross-shaped artefacts the discrete Fourier transform sees at the borders of a
    non-periodic image, while keeping the image's texture.

    References:
        L. Moisan, "Periodic plus smooth image decomposition", J. Math. Imaging Vis. 39, 2011.
    """
    u = u.double()
    _, h, w = u.shape
    v = torch.zeros_like(u)
    v[:, 0, :] += u[:, -1, :] - u[:, 0, :]
    v[:, -1, :] += u[:, 0, :] - u[:, -1, :]
    v[:, :, 0] += u[:, :, -1] - u[:, :, 0]
    v[:, :, -1] += u[:, :, 0] - u[:, :, -1]
    q = torch.arange(h, dtype=torch.float64).view(h, 1)
    r = torch.arange(w, dtype=torch.float64).view(1, w)
    denom = 2 * torch.cos(2 * math.pi * q / h) + 2 * torch.cos(2 * math.pi * r / w) - 4
    denom[0, 0] = 1.0
    s_hat = torch.fft.fft2(v) / denom
    s_hat[:, 0, 0] = 0
    return u - torch.fft.ifft2(s_hat).real


def random_phase_noise(
    exemplar: torch.Tensor, size: tuple[int, int], *, generator: torch.Generator, periodic: bool = True
) -> torch.Tensor:
    """Random-phase noise (RPN): the exemplar's Fourier modulus with a random phase shared by all channels.

    Larger outputs use the "spot" extension: the exemplar's normalised, mean-free spot is embedded in a
    zero image of the output size, so the output has the exemplar's mean and per-pixel variance.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1].
        size: output ``(H, W)``.
        generator: CPU generator for the random phase.
        periodic: use Moisan's periodic component of the exemplar (avoids border cross artefacts).

    Returns:
        ``(3, H, W)`` float32, clipped to [0, 1].

    References:
        B. Galerne, Y. Gousseau, J.-M. Morel, "Random phase textures: theory and synthesis",
        IEEE TIP 20(1), 2011.
    """
    u = periodic_component(exemplar) if periodic else exemplar.double()
    c, h, w = u.shape
    big_h, big_w = max(size[0], h), max(size[1], w)
    mean = u.mean(dim=(1, 2), keepdim=True)
    spot = torch.zeros(c, big_h, big_w, dtype=torch.float64)
    top, left = (big_h - h) // 2, (big_w - w) // 2
    spot[:, top : top + h, left : left + w] = (u - mean) / math.sqrt(h * w)
    noise = torch.randn(big_h, big_w, generator=generator, dtype=torch.float64)
    phase = torch.fft.fft2(noise)
    phase = phase / phase.abs().clamp_min(1e-12)  # a random phase with the symmetry of a real image
    out = torch.fft.ifft2(torch.fft.fft2(spot) * phase).real * math.sqrt(big_h * big_w) + mean
    return out[:, : size[0], : size[1]].clamp(0, 1).float()


@dataclasses.dataclass(frozen=True)
class RandomPhaseParams(Params):
    """``periodic``: use the exemplar's periodic component (the paper's default)."""

    periodic: bool = True


class RandomPhaseNoise(Synthesizer):
    """Random-phase noise texture synthesis (Galerne et al. 2011): fast, exact for micro-textures."""

    name = "random-phase"
    description = "random-phase noise (Galerne et al. 2011): exemplar spectrum, random phase"
    tasks = ("texture",)
    references = "Galerne, Gousseau, Morel, IEEE TIP 2011"
    Params = RandomPhaseParams
    presets = {"tiny": {}}

    def run(self, task_input, *, seed, device):
        ex = _require(task_input, "image", self.name)
        gen = torch.Generator().manual_seed(seed)
        out = random_phase_noise(ex.cpu(), task_input.size, generator=gen, periodic=self.params.periodic)
        return out.to(device)


# ------------------------------------------------------------------------------------------------ bicubic x4
@dataclasses.dataclass(frozen=True)
class BicubicParams(Params):
    """``antialias`` matters only for down-sampling; up-sampling uses the plain Keys kernel (a = -0.75 in
    torch, PyTorch's convention; MATLAB uses a = -0.5)."""

    mode: Literal["bicubic", "bilinear", "nearest"] = "bicubic"


class Bicubic(Synthesizer):
    """Bicubic ×4 up-sampling: the reference point every SR method is compared with."""

    name = "bicubic"
    description = "bicubic x4 up-sampling (torch interpolate, align_corners=False)"
    tasks = ("sr4",)
    references = "R. Keys, 'Cubic convolution interpolation for digital image processing', IEEE TASSP 1981"
    Params = BicubicParams
    presets = {"tiny": {}}

    def run(self, task_input, *, seed, device):
        lr = _require(task_input, "image", self.name).to(device)
        kwargs = {} if self.params.mode == "nearest" else {"align_corners": False}
        out = F.interpolate(lr[None], size=tuple(task_input.size), mode=self.params.mode, **kwargs)
        return out[0].clamp(0, 1)


# ------------------------------------------------------------------------------------------------- denoisers
@dataclasses.dataclass(frozen=True)
class GaussianFilterParams(Params):
    """Standard deviation of the Gaussian in pixels; ``None`` picks ``0.4 + σ_noise/25`` (σ on 0-255)."""

    sigma_px: float | None = None


class GaussianFilter(Synthesizer):
    """Gaussian smoothing: the floor any denoiser must beat."""

    name = "gaussian-filter"
    description = "Gaussian smoothing (reflect padding), width from the noise level"
    tasks = ("denoise",)
    references = "textbook linear filtering (e.g. Gonzalez & Woods, Digital Image Processing)"
    Params = GaussianFilterParams
    presets = {"tiny": {}}

    def run(self, task_input, *, seed, device):
        noisy = _require(task_input, "image", self.name).to(device).float()
        sigma = self.params.sigma_px
        if sigma is None:
            noise = task_input.degradation.get("sigma")
            if noise is None:
                noise = 255.0 * estimate_noise_sigma(noisy)
                self.record(estimated_sigma=noise)
            sigma = 0.4 + float(noise) / 25.0
        k = gaussian_window(sigma, truncate=3.0, dtype=noisy.dtype, device=noisy.device)
        r = k.numel() // 2
        x = noisy[None]
        mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
        x = F.pad(x, (r, r, r, r), mode=mode)
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        x = F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
        return x[0].clamp(0, 1)


def estimate_noise_sigma(image: torch.Tensor) -> float:
    """Standard deviation of additive white Gaussian noise in ``image``, on the image's own scale.

    Donoho's robust estimator: the median absolute value of the finest diagonal wavelet coefficients
    divided by 0.6745 (the MAD of a unit normal), here with the orthonormal Haar wavelet (the 2×2 block
    difference ``(a − b − c + d) / 2``), per channel, averaged over channels. Image structure barely
    reaches that sub-band, so on natural images it reads the noise; scikit-image's ``estimate_sigma``
    does the same with a Daubechies-2 wavelet (and needs PyWavelets).

    Args:
        image: float ``(C, H, W)`` (or ``(H, W)``), at least 2×2.

    Returns:
        σ, same units as ``image``.

    References:
        D. L. Donoho, I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 1994.
    """
    x = image.detach().cpu().double()  # float64 on the CPU: some devices (MPS) have no float64
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"image must be (C, H, W) with H, W >= 2, got shape {tuple(image.shape)}")
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[:, :h, :w]
    hh = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2
    return float((hh.abs().flatten(1).median(dim=1).values / 0.6744897501960817).mean())


@dataclasses.dataclass(frozen=True)
class NLMeansParams(Params):
    """scikit-image ``denoise_nl_means`` settings; ``h = h_factor · σ`` with σ the known noise level
    (estimated with :func:`estimate_noise_sigma` when the input carries none)."""

    patch_size: int = 5
    patch_distance: int = 6
    h_factor: float = 0.8
    fast_mode: bool = True


class NLMeans(Synthesizer):
    """Non-local means (Buades, Coll, Morel 2005), scikit-image's implementation."""

    name = "nl-means"
    description = "non-local means (Buades et al. 2005), scikit-image"
    tasks = ("denoise", "jpeg")  # jpeg: at the noise level estimated from the compressed image
    references = "A. Buades, B. Coll, J.-M. Morel, 'A non-local algorithm for image denoising', CVPR 2005"
    Params = NLMeansParams
    presets = {"tiny": {"patch_distance": 3}}

    def run(self, task_input, *, seed, device):
        from skimage.restoration import denoise_nl_means

        image = _require(task_input, "image", self.name)
        noisy = image.detach().cpu().double().permute(1, 2, 0).numpy()
        if "sigma" in task_input.degradation:
            sigma = float(task_input.degradation["sigma"]) / 255.0
        else:
            sigma = estimate_noise_sigma(image)
            self.record(estimated_sigma=sigma * 255.0)
        p = self.params
        out = denoise_nl_means(
            noisy, h=p.h_factor * sigma, sigma=sigma, patch_size=p.patch_size,
            patch_distance=p.patch_distance, fast_mode=p.fast_mode, channel_axis=-1,
        )
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float().clamp(0, 1).to(device)


# ----------------------------------------------------------------------------------------- Reinhard transfer
_RGB2LMS = ((0.3811, 0.5783, 0.0402), (0.1967, 0.7244, 0.0782), (0.0241, 0.1288, 0.8444))
_LMS2LAB = ((1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)),
            (1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)),
            (1 / math.sqrt(2), -1 / math.sqrt(2), 0.0))


def _to_lab(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(_RGB2LMS, dtype=torch.float64)
    lms = torch.einsum("ij,jhw->ihw", m, x.double()).clamp_min(1e-4)
    return torch.einsum("ij,jhw->ihw", torch.tensor(_LMS2LAB, dtype=torch.float64), torch.log10(lms))


def _from_lab(lab: torch.Tensor) -> torch.Tensor:
    lms = 10 ** torch.einsum("ij,jhw->ihw", torch.linalg.inv(torch.tensor(_LMS2LAB, dtype=torch.float64)), lab)
    return torch.einsum("ij,jhw->ihw", torch.linalg.inv(torch.tensor(_RGB2LMS, dtype=torch.float64)), lms)


def reinhard_transfer(content: torch.Tensor, style: torch.Tensor, *, strength: float = 1.0) -> torch.Tensor:
    """Match the mean and standard deviation of each lαβ channel of ``content`` to ``style``.

    Args:
        content: ``(3, H, W)`` in [0, 1].
        style: ``(3, h, w)`` in [0, 1].
        strength: 1 for the full transfer, 0 for the unchanged content.

    References:
        E. Reinhard, M. Ashikhmin, B. Gooch, P. Shirley, "Color Transfer between Images",
        IEEE Computer Graphics and Applications 21(5), 2001.
    """
    lc, ls = _to_lab(content), _to_lab(style)
    mc, sc = lc.mean(dim=(1, 2), keepdim=True), lc.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    ms, ss = ls.mean(dim=(1, 2), keepdim=True), ls.std(dim=(1, 2), keepdim=True)
    out = _from_lab((lc - mc) * (ss / sc) + ms)
    return (strength * out + (1 - strength) * content.double()).clamp(0, 1).float()


@dataclasses.dataclass(frozen=True)
class ReinhardParams(Params):
    """``strength`` blends the transferred result with the content (1 = the paper)."""

    strength: float = param(1.0, ge=0, le=1)


class ReinhardColorTransfer(Synthesizer):
    """Global colour-statistics transfer (Reinhard et al. 2001): the classic style-transfer floor."""

    name = "reinhard"
    description = "colour transfer in l-alpha-beta space (Reinhard et al. 2001)"
    tasks = ("style",)
    references = "Reinhard, Ashikhmin, Gooch, Shirley, IEEE CG&A 2001"
    Params = ReinhardParams
    presets = {"tiny": {}}

    def run(self, task_input, *, seed, device):
        c = _require(task_input, "content", self.name).cpu()
        s = _require(task_input, "style", self.name).cpu()
        return reinhard_transfer(c, s, strength=self.params.strength).to(device)


# ------------------------------------------------------------------------------------------------- identity
class Identity(Synthesizer):
    """The degraded input returned unchanged: the baseline row of a restoration leaderboard (for ``jpeg``,
    the compressed image itself)."""

    name = "identity"
    description = "the degraded input itself (baseline row for jpeg and denoise)"
    tasks = ("jpeg", "denoise")
    references = "none: a baseline"

    def run(self, task_input, *, seed, device):
        if task_input.task not in self.tasks:
            raise ValueError(f"identity does not support task {task_input.task!r}; tasks: {', '.join(self.tasks)}")
        return _require(task_input, "image", self.name).detach().to(device, torch.float32).clamp(0, 1)
