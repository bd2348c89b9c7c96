"""Classic restoration baselines: BM3D denoising and Lanczos up-sampling.

* :class:`BM3D`: colour BM3D (CBM3D: block matching in the luminance of an opponent colour transform,
  collaborative Wiener filtering) from the authors' ``bm3d`` package (Tampere University; PyPI
  ``bm3d==4.0.3``, which needs ``bm4d`` and its bundled binaries). Its licence allows non-commercial use
  only, so it is an optional dependency imported when the method runs, never by ``import texbench``.
* :class:`Lanczos`: separable Lanczos-``a`` interpolation (a = 3 by default), with Pillow's conventions
  (pixel centres at half-integers, taps outside the image dropped and the weights renormalised), computed
  in float64 without quantising the low-resolution input.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from texbench.base import Synthesizer
from texbench.params import Params, param

__all__ = ["BM3D", "BM3DParams", "Lanczos", "LanczosParams", "lanczos_matrix", "lanczos_resize"]


# ---------------------------------------------------------------------------------------------------- BM3D
@dataclasses.dataclass(frozen=True)
class BM3DParams(Params):
    """BM3D settings.

    Attributes:
        sigma: noise standard deviation on the 0-255 scale; ``None`` takes the task's σ (the noise level
            is known, as in the comparisons of the BM3D and Deep Image Prior papers).
        profile: the package's parameter profile (``np`` = normal profile of the paper).
        colorspace: colour transform for the block matching (``opp`` = opponent, as in CBM3D).
    """

    sigma: float | None = param(None, gt=0)
    profile: Literal["np", "refilter", "high"] = "np"
    colorspace: Literal["opp", "YCbCr"] = "opp"


class BM3D(Synthesizer):
    """Colour BM3D denoising (the authors' ``bm3d`` package).

    References:
        Dabov, Foi, Katkovnik, Egiazarian. Color image denoising via sparse 3D collaborative filtering with
        grouping constraint in luminance-chrominance space. ICIP 2007; Mäkinen, Azzari, Foi. Collaborative
        filtering of correlated noise. IEEE TIP 2020 (the package).
    """

    name: ClassVar[str] = "bm3d"
    description: ClassVar[str] = "colour BM3D denoising (bm3d package, non-commercial licence)"
    tasks: ClassVar[tuple[str, ...]] = ("denoise",)
    version: ClassVar[str] = "1"
    references: ClassVar[str] = "Dabov et al., ICIP 2007 (CBM3D); Mäkinen, Azzari, Foi, IEEE TIP 2020"
    Params: ClassVar[type] = BM3DParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}}
    requires: ClassVar[tuple[str, ...]] = ("bm3d",)

    def run(self, task_input: Any, *, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
        if task_input.task not in self.tasks:
            raise ValueError(f"bm3d does not support task {task_input.task!r}")
        if task_input.image is None:
            raise ValueError("task_input.image (the noisy image) is required")
        sigma = self.params.sigma
        if sigma is None:
            sigma = task_input.degradation.get("sigma")
            if sigma is None:
                raise ValueError("the task input has no degradation['sigma']: set the bm3d parameter sigma")
        try:
            import bm3d
        except ImportError as exc:
            raise ImportError(
                "method bm3d needs the bm3d package (non-commercial licence): pip install bm3d==4.0.3"
            ) from exc
        noisy = task_input.image.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()
        out = bm3d.bm3d_rgb(
            noisy, float(sigma) / 255.0, profile=self.params.profile, colorspace=self.params.colorspace
        )
        out = np.clip(np.asarray(out, dtype=np.float64), 0.0, 1.0)
        return torch.from_numpy(out).permute(2, 0, 1).to(torch.float32).contiguous()

    def provenance(self) -> dict[str, str]:
        try:
            from importlib.metadata import version

            return {"bm3d-package": f"bm3d=={version('bm3d')}"}
        except Exception:  # the package is missing: run() will say so
            return {}


# ------------------------------------------------------------------------------------------------- Lanczos
def lanczos_matrix(n_in: int, n_out: int, *, a: int = 3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Interpolation matrix ``(n_out, n_in)`` of Lanczos-``a`` up-sampling along one axis.

    Output pixel ``i`` samples the input at ``u = (i + 0.5) · n_in / n_out − 0.5``; input pixels within
    distance ``a`` get weight ``sinc(d) · sinc(d / a)``; rows are normalised to sum to 1 (taps outside the
    image are dropped, Pillow's convention). Only for up-sampling (``n_out >= n_in``): down-sampling
    would need the kernel widened to avoid aliasing.

    >>> m = lanczos_matrix(4, 16)
    >>> bool(torch.allclose(m.sum(1), torch.ones(16, dtype=torch.float64)))
    True
    """
    if n_out < n_in:
        raise ValueError(f"lanczos_matrix is for up-sampling: n_out={n_out} < n_in={n_in}")
    if a < 1:
        raise ValueError(f"a must be >= 1, got {a}")
    u = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    d = torch.arange(n_in, dtype=torch.float64)[None, :] - u[:, None]
    w = torch.sinc(d) * torch.sinc(d / a) * (d.abs() < a)
    return (w / w.sum(dim=1, keepdim=True)).to(dtype)


def lanczos_resize(image: torch.Tensor, size: tuple[int, int], *, a: int = 3) -> torch.Tensor:
    """Up-sample ``(3, h, w)`` or ``(N, 3, h, w)`` in [0, 1] to ``size = (H, W)`` with Lanczos-``a``.

    Computed in float64, clipped to [0, 1], returned in the input's dtype.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim not in (3, 4):
        raise ValueError(f"image must have shape (3, h, w) or (N, 3, h, w), got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    mh = lanczos_matrix(h, size[0], a=a).to(image.device)
    mw = lanczos_matrix(w, size[1], a=a).to(image.device)
    out = mh @ image.to(torch.float64) @ mw.T
    return out.clamp(0.0, 1.0).to(image.dtype)


@dataclasses.dataclass(frozen=True)
class LanczosParams(Params):
    """Lanczos settings: ``a`` lobes (3 is Pillow's and most tools' Lanczos)."""

    a: int = param(3, ge=1)


class Lanczos(Synthesizer):
    """Lanczos ×4 up-sampling of the low-resolution input (a classic SR baseline).

    References:
        Duchon. Lanczos filtering in one and two dimensions. J. Appl. Meteorology 18, 1979.
    """

    name: ClassVar[str] = "lanczos"
    description: ClassVar[str] = "Lanczos-3 up-sampling (classic SR baseline)"
    tasks: ClassVar[tuple[str, ...]] = ("sr4",)
    version: ClassVar[str] = "1"
    references: ClassVar[str] = "Duchon, J. Appl. Meteorology 1979"
    Params: ClassVar[type] = LanczosParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}}

    def run(self, task_input: Any, *, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
        if task_input.task not in self.tasks:
            raise ValueError(f"lanczos does not support task {task_input.task!r}")
        if task_input.image is None:
            raise ValueError("task_input.image (the low-resolution image) is required")
        lr = task_input.image.to(torch.device(device), torch.float32)
        return lanczos_resize(lr, tuple(task_input.size), a=self.params.a).to(torch.float32)
