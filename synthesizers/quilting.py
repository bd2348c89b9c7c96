"""Image quilting (Efros & Freeman 2001): texture synthesis and texture transfer.

Square blocks of the exemplar are laid in raster order with an overlap of one sixth of the block side.
Each new block is drawn at random among the exemplar blocks whose overlap error with what is already
placed is within ``(1 + tolerance)`` of the best one, then pasted along the *minimum-error boundary
cut*, a shortest path through the overlap's squared-difference surface found by dynamic programming.

The overlap errors of all candidate blocks are computed at once: the SSD between a template strip and
every window of the exemplar is ``Σ E² - 2 Σ E·T + Σ T²``, the cross term one convolution and the
``Σ E²`` term a float64 integral image (:class:`OverlapError`). :class:`NaiveOverlapError` is the Python loop over candidate
windows kept as the speed reference of ``python -m benchmarks patch``.

References:
    A. A. Efros and W. T. Freeman, "Image quilting for texture synthesis and transfer", SIGGRAPH 2001.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from texbench.base import Synthesizer
from texbench.ops.color import luminance
from texbench.ops.patches import check_exemplar
from texbench.params import Params, param

__all__ = [
    "ImageQuilting",
    "QuiltingParams",
    "QuiltingTransfer",
    "QuiltingTransferParams",
    "boundary_cut_mask",
    "min_error_boundary_cut",
    "NaiveOverlapError",
    "OverlapError",
    "quilt",
    "quilt_transfer",
]

#: absolute slack (per compared value) added to the tolerance so float32 rounding never hides exact matches
_ABS_SLACK = 1e-6


# -------------------------------------------------------------------------------------------- boundary cut
def min_error_boundary_cut(error: np.ndarray) -> np.ndarray:
    """Minimum-cost vertical path through an error surface, by dynamic programming.

    The path visits one column per row and moves by at most one column between consecutive rows; its
    cost is the sum of ``error`` along it.

    Args:
        error: ``(h, w)`` non-negative costs (the squared difference of two blocks over their overlap).

    Returns:
        ``(h,)`` int64 column of the path in each row, every value in ``[0, w)``.

    >>> min_error_boundary_cut(np.array([[1., 0., 1.], [0., 1., 1.], [1., 0., 1.]])).tolist()
    [1, 0, 1]
    """
    e = np.asarray(error, dtype=np.float64)
    if e.ndim != 2 or e.size == 0:
        raise ValueError(f"error must be a non-empty 2-D array, got shape {e.shape}")
    h, w = e.shape
    acc = e.copy()
    inf = np.full(1, np.inf)
    for i in range(1, h):
        prev = acc[i - 1]
        left = np.concatenate([inf, prev[:-1]])
        right = np.concatenate([prev[1:], inf])
        acc[i] += np.minimum(np.minimum(left, prev), right)
    path = np.empty(h, dtype=np.int64)
    path[-1] = int(np.argmin(acc[-1]))
    for i in range(h - 2, -1, -1):
        c = path[i + 1]
        lo, hi = max(0, c - 1), min(w, c + 2)
        path[i] = lo + int(np.argmin(acc[i, lo:hi]))
    return path


def boundary_cut_mask(
    old: torch.Tensor, new: torch.Tensor, overlap: int, *, left: bool, top: bool
) -> torch.Tensor:
    """Where the new block replaces the old canvas content, cutting along the minimum-error boundaries.

    Args:
        old: ``(C, B, B)`` canvas content under the new block (only the overlap is used).
        new: ``(C, B, B)`` the new block.
        overlap: overlap width in pixels.
        left, top: whether the block overlaps a block on its left / above.

    Returns:
        ``(B, B)`` bool, True where the new block's pixel is kept. Outside the overlap strips it is
        always True; left of the vertical cut and above the horizontal cut it is False.
    """
    b = new.shape[-1]
    mask = torch.ones(b, b, dtype=torch.bool)
    diff = ((new - old) ** 2).sum(0).double().cpu().numpy()
    cols = np.arange(b)
    if left:
        path = min_error_boundary_cut(diff[:, :overlap])
        mask &= torch.from_numpy(cols[None, :] >= path[:, None])
    if top:
        path = min_error_boundary_cut(diff[:overlap, :].T)
        mask &= torch.from_numpy(cols[:, None] >= path[None, :])
    return mask.to(new.device)


# ------------------------------------------------------------------------------------------- overlap errors
def _strips(block: int, overlap: int, left: bool, top: bool) -> list[tuple[int, int, int, int]]:
    """The overlap region as disjoint rectangles ``(y0, x0, h, w)`` inside the block (an L when both)."""
    strips = []
    if left:
        strips.append((0, 0, block, overlap))
    if top:
        x0 = overlap if left else 0
        strips.append((0, x0, overlap, block - x0))
    return strips


class OverlapError:
    """SSD between a target and every ``B × B`` window of one exemplar, over part of the block, all at once.

    ``SSD(i, j) = Σ_R E² - 2 Σ_R E·T + Σ_R T²`` over the region ``R``: the ``Σ E²`` term comes from a
    float64 integral image, the cross term from one FFT correlation of the exemplar (whose spectrum is
    computed once) with the template masked to ``R``. Correlating at the exemplar's own size is exact for
    every valid block position (no wrap-around reaches them).

    Args:
        exemplar: ``(C, h, w)``.
    """

    def __init__(self, exemplar: torch.Tensor) -> None:
        import scipy.fft

        self._fft = scipy.fft
        self.exemplar = exemplar
        ex = exemplar.detach().double().cpu().numpy()
        self.size = ex.shape[-2:]
        # scipy's float64 FFT: several times faster than torch's float64 FFT on CPU here
        self.spectrum = scipy.fft.rfft2(ex, axes=(-2, -1))
        plane = (ex**2).sum(0)
        self.integral = np.pad(plane.cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def _window_sums(self, y0: int, x0: int, h: int, w: int, ny: int, nx: int) -> np.ndarray:
        s = self.integral
        return (
            s[y0 + h : y0 + h + ny, x0 + w : x0 + w + nx]
            - s[y0 : y0 + ny, x0 + w : x0 + w + nx]
            - s[y0 + h : y0 + h + ny, x0 : x0 + nx]
            + s[y0 : y0 + ny, x0 : x0 + nx]
        )

    def __call__(
        self, target: torch.Tensor, regions: list[tuple[int, int, int, int]], block: int
    ) -> torch.Tensor:
        """Costs ``(h - B + 1, w - B + 1)`` float64 of matching ``target (C, B, B)`` over ``regions``.

        ``regions`` are disjoint rectangles ``(y0, x0, rh, rw)`` inside the block; entry ``(i, j)``
        belongs to the block whose top-left corner is ``(i, j)``.
        """
        ny, nx = self.size[0] - block + 1, self.size[1] - block + 1
        mask = np.zeros((block, block))
        sums = np.zeros((ny, nx))
        for y0, x0, h, w in regions:
            mask[y0 : y0 + h, x0 : x0 + w] = 1.0
            sums += self._window_sums(y0, x0, h, w, ny, nx)
        tmpl = target.detach().double().cpu().numpy() * mask
        spec = self._fft.rfft2(tmpl, s=self.size, axes=(-2, -1))
        cross = self._fft.irfft2((self.spectrum * spec.conj()).sum(0), s=self.size)[:ny, :nx]
        cost = np.maximum(sums - 2.0 * cross + (tmpl**2).sum(), 0.0)
        return torch.from_numpy(cost).to(target.device)


class NaiveOverlapError(OverlapError):
    """Reference for :class:`OverlapError`: a Python loop over every candidate window (slow on purpose)."""

    def __call__(self, target, regions, block):
        ex = self.exemplar.double().cpu().numpy()
        tg = target.double().cpu().numpy()
        mask = np.zeros(tg.shape[1:], dtype=bool)
        for y0, x0, h, w in regions:
            mask[y0 : y0 + h, x0 : x0 + w] = True
        ny, nx = ex.shape[1] - block + 1, ex.shape[2] - block + 1
        cost = np.empty((ny, nx))
        for i in range(ny):
            for j in range(nx):
                d = ex[:, i : i + block, j : j + block] - tg
                cost[i, j] = (d * d)[:, mask].sum()
        return torch.from_numpy(cost).to(target.device)


def _pick(cost: torch.Tensor, tolerance: float, slack: float, gen: torch.Generator) -> tuple[int, int]:
    """A uniformly random position among those with ``cost <= (1 + tolerance) · min + slack``."""
    flat = cost.reshape(-1)
    ok = torch.nonzero(flat <= flat.min() * (1.0 + tolerance) + slack).reshape(-1).cpu()
    k = int(ok[torch.randint(ok.numel(), (1,), generator=gen)])
    return divmod(k, cost.shape[1])


# ------------------------------------------------------------------------------------------------ synthesis
@dataclasses.dataclass(frozen=True)
class QuiltingParams(Params):
    """Image quilting parameters (Efros & Freeman 2001, section 2.1).

    Attributes:
        patch_size: block side ``B`` in pixels; the paper's one free parameter, "big enough to capture
            the relevant structures" (clamped to the exemplar's shorter side).
        overlap_ratio: overlap width as a fraction of ``B`` (the paper: 1/6).
        tolerance: candidates within ``(1 + tolerance)`` of the best overlap error are drawn uniformly
            (the paper: 0.1).
    """

    patch_size: int = param(32, ge=2)
    overlap_ratio: float = param(1.0 / 6.0, gt=0, lt=0.5)
    tolerance: float = param(0.1, ge=0)


def _block_and_overlap(patch_size: int, ratio: float, exemplar: torch.Tensor) -> tuple[int, int]:
    block = min(patch_size, *exemplar.shape[-2:])
    return block, max(1, min(block - 1, round(block * ratio)))


def quilt(
    exemplar: torch.Tensor,
    size: tuple[int, int],
    params: QuiltingParams,
    *,
    generator: torch.Generator,
    error_cls: type[OverlapError] = OverlapError,
) -> torch.Tensor:
    """Synthesise a texture of ``size`` by image quilting.

    Args:
        exemplar: ``(3, h, w)`` in [0, 1].
        size: output ``(H, W)``, any size (also larger than the exemplar).
        params: :class:`QuiltingParams`.
        generator: CPU generator driving every random choice.
        error_cls: :class:`OverlapError`, or :class:`NaiveOverlapError` for the speed reference.

    Returns:
        ``(3, H, W)`` in [0, 1].
    """
    ex = check_exemplar(exemplar, "exemplar", min_size=2)
    h_out, w_out = size
    block, ov = _block_and_overlap(params.patch_size, params.overlap_ratio, ex)
    step = block - ov
    nby = max(1, math.ceil((h_out - ov) / step))
    nbx = max(1, math.ceil((w_out - ov) / step))
    canvas = torch.zeros(3, nby * step + ov, nbx * step + ov, device=ex.device)
    overlap_error = error_cls(ex)
    ny, nx = ex.shape[1] - block + 1, ex.shape[2] - block + 1
    for by in range(nby):
        for bx in range(nbx):
            y, x = by * step, bx * step
            left, top = bx > 0, by > 0
            regions = _strips(block, ov, left, top)
            old = canvas[:, y : y + block, x : x + block]
            if not regions:
                k = int(torch.randint(ny * nx, (1,), generator=generator))
                py, px = divmod(k, nx)
            else:
                cost = overlap_error(old, regions, block)
                n_values = 3 * sum(rh * rw for _, _, rh, rw in regions)
                py, px = _pick(cost, params.tolerance, _ABS_SLACK * n_values, generator)
            new = ex[:, py : py + block, px : px + block]
            mask = boundary_cut_mask(old, new, ov, left=left, top=top)
            canvas[:, y : y + block, x : x + block] = torch.where(mask, new, old)
    return canvas[:, :h_out, :w_out].clamp(0, 1)


class ImageQuilting(Synthesizer):
    """Image quilting for texture synthesis (Efros & Freeman 2001)."""

    name = "quilting"
    description = (
        "image quilting: random blocks within tolerance, minimum-error boundary cut (Efros & Freeman 2001)"
    )
    tasks = ("texture",)
    version = "1"
    references = (
        "A. A. Efros, W. T. Freeman, Image quilting for texture synthesis and transfer, SIGGRAPH 2001"
    )
    Params = QuiltingParams
    presets = {"tiny": {"patch_size": 16}}

    def run(self, task_input, *, seed, device):
        if task_input.image is None:
            raise ValueError("quilting needs task_input.image (the exemplar)")
        gen = torch.Generator().manual_seed(int(seed))
        ex = check_exemplar(task_input.image, "task_input.image", min_size=2).to(device)
        out = quilt(ex, tuple(task_input.size), self.params, generator=gen)
        block, ov = _block_and_overlap(self.params.patch_size, self.params.overlap_ratio, ex)
        self.record(block=block, overlap=ov)
        return out


# --------------------------------------------------------------------------------------------- transfer
@dataclasses.dataclass(frozen=True)
class QuiltingTransferParams(Params):
    """Image-quilting texture transfer (Efros & Freeman 2001, section 3).

    Attributes:
        patch_size: block side of the first pass; each later pass shrinks it by a third (the paper).
        overlap_ratio: overlap as a fraction of the block (1/6).
        tolerance: candidate tolerance as in synthesis (0.1).
        iterations: number of passes ``N`` (the paper: 3 to 5).

    Pass ``i = 1..N`` weighs the texture term by ``α_i = 0.8 (i - 1)/(N - 1) + 0.1`` and the
    correspondence term (luminance of the style block vs the content block) by ``1 - α_i``; from the
    second pass the texture term also compares the whole block with the previous pass's result. Each
    term is a mean squared error (divided by its number of values) so that terms over areas of
    different sizes are commensurate; the style luminance is affinely matched to the content's mean and
    standard deviation first (the paper's "luminance remapping").
    """

    patch_size: int = param(36, ge=3)
    overlap_ratio: float = param(1.0 / 6.0, gt=0, lt=0.5)
    tolerance: float = param(0.1, ge=0)
    iterations: int = param(3, ge=1)


def quilt_transfer(
    style: torch.Tensor, content: torch.Tensor, params: QuiltingTransferParams, *, generator: torch.Generator
) -> torch.Tensor:
    """Render ``content`` with blocks of ``style`` by iterated image quilting with a correspondence term.

    Args:
        style: ``(3, h, w)`` in [0, 1], the texture source.
        content: ``(3, H, W)`` in [0, 1], the target; the result has its size.
        params: :class:`QuiltingTransferParams`.
        generator: CPU generator.

    Returns:
        ``(3, H, W)`` in [0, 1].
    """
    src = check_exemplar(style, "style", min_size=3)
    tgt = check_exemplar(content, "content", min_size=1)
    h_out, w_out = tgt.shape[-2:]
    ls, lt = luminance(src), luminance(tgt)
    ls = (ls - ls.mean()) / ls.std().clamp_min(1e-6) * lt.std() + lt.mean()
    src_error, lum_error = OverlapError(src), OverlapError(ls)
    previous: torch.Tensor | None = None
    n = params.iterations
    for it in range(n):
        alpha = 0.8 * it / (n - 1) + 0.1 if n > 1 else 0.1
        block, ov = _block_and_overlap(
            max(3, round(params.patch_size * (2.0 / 3.0) ** it)), params.overlap_ratio, src
        )
        step = block - ov
        nby = max(1, math.ceil((h_out - ov) / step))
        nbx = max(1, math.ceil((w_out - ov) / step))
        ch, cw = nby * step + ov, nbx * step + ov
        # the canvas may overhang the content: pad the targets by replication so every block has a target
        pad = (0, cw - w_out, 0, ch - h_out)
        lt_c = F.pad(lt[None], pad, mode="replicate")[0]
        prev_c = F.pad(previous[None], pad, mode="replicate")[0] if previous is not None else None
        canvas = torch.zeros(3, ch, cw, device=src.device)
        ny, nx = src.shape[1] - block + 1, src.shape[2] - block + 1
        full = [(0, 0, block, block)]
        for by in range(nby):
            for bx in range(nbx):
                y, x = by * step, bx * step
                left, top = bx > 0, by > 0
                regions = _strips(block, ov, left, top)
                old = canvas[:, y : y + block, x : x + block]
                corr = lum_error(lt_c[:, y : y + block, x : x + block], full, block) / (block * block)
                texture = torch.zeros(ny, nx, dtype=torch.float64, device=src.device)
                if regions:
                    texture += src_error(old, regions, block) / (3 * sum(rh * rw for _, _, rh, rw in regions))
                if prev_c is not None:
                    texture += src_error(prev_c[:, y : y + block, x : x + block], full, block) / (
                        3 * block * block
                    )
                cost = alpha * texture + (1.0 - alpha) * corr
                py, px = _pick(cost, params.tolerance, _ABS_SLACK, generator)
                new = src[:, py : py + block, px : px + block]
                mask = boundary_cut_mask(old, new, ov, left=left, top=top)
                canvas[:, y : y + block, x : x + block] = torch.where(mask, new, old)
        previous = canvas[:, :h_out, :w_out]
    assert previous is not None
    return previous.clamp(0, 1)


class QuiltingTransfer(Synthesizer):
    """Image-quilting texture transfer (Efros & Freeman 2001), the classic entry of the ``style`` task."""

    name = "quilting-transfer"
    description = "image-quilting texture transfer: iterated quilting with a luminance correspondence term"
    tasks = ("style",)
    version = "1"
    references = (
        "A. A. Efros, W. T. Freeman, Image quilting for texture synthesis and transfer, SIGGRAPH 2001"
    )
    Params = QuiltingTransferParams
    presets = {"tiny": {"patch_size": 12, "iterations": 2}}

    def run(self, task_input, *, seed, device):
        task_input.require(self.name, "content", "style")
        gen = torch.Generator().manual_seed(int(seed))
        style = check_exemplar(task_input.style, "task_input.style", min_size=3).to(device)
        content = check_exemplar(task_input.content, "task_input.content").to(device)
        out = quilt_transfer(style, content, self.params, generator=gen)
        if tuple(out.shape[-2:]) != tuple(task_input.size):
            raise ValueError(
                f"task_input.size {task_input.size} differs from the content size {tuple(out.shape[-2:])}"
            )
        return out
