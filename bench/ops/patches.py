"""Shared patch utilities of the classic patch-based synthesizers and of the copying measure.

All functions work on float images ``(C, H, W)`` and on *patch vectors* laid out channel-major, the
layout of :func:`torch.nn.functional.unfold`: a ``p × p`` patch of a ``C``-channel image is a vector of
``C·p·p`` values ordered ``(c, dy, dx)``. Patch positions are indexed by their top-left corner; the
linear index of the patch at ``(y, x)`` in an image of width ``W`` is ``y · (W - p + 1) + x``.

References:
    Efros & Leung, "Texture synthesis by non-parametric sampling", ICCV 1999;
    Efros & Freeman, "Image quilting for texture synthesis and transfer", SIGGRAPH 2001;
    Kwatra et al., "Texture optimization for example-based synthesis", SIGGRAPH 2005.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

__all__ = [
    "PatchIndex",
    "aggregate_patches",
    "check_exemplar",
    "extract_patches",
    "gather_patches",
    "grid_positions",
    "nearest_patches",
    "single_threaded",
    "window_sums",
]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch's CPU operators on one thread inside the block, restoring the setting after.

    For sequential loops of small operators (Efros-Leung's per-batch products): they gain nothing from
    intra-op threads, and OpenMP's spin-waiting made them ~15x slower on a loaded 2-core machine.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_exemplar(image: object, name: str = "image", *, min_size: int = 1) -> torch.Tensor:
    """Validate a float ``(3, H, W)`` image and return it as contiguous float32.

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: wrong shape, or smaller than ``min_size`` in either dimension.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {image.dtype}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{name} must have shape (3, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) < min_size:
        raise ValueError(
            f"{name} is {image.shape[-1]}x{image.shape[-2]}, smaller than the {min_size}-pixel minimum"
        )
    return image.float().contiguous()


def grid_positions(length: int, size: int, step: int) -> torch.Tensor:
    """Top-left coordinates ``0, step, 2·step, ...`` of windows of ``size`` covering ``[0, length)``.

    The last window is placed flush with the end, so every coordinate is covered.

    >>> grid_positions(10, 4, 3).tolist()
    [0, 3, 6]
    >>> grid_positions(11, 4, 3).tolist()
    [0, 3, 6, 7]
    """
    if size > length:
        raise ValueError(f"window size {size} is larger than the length {length}")
    pos = list(range(0, length - size + 1, max(1, step)))
    if pos[-1] != length - size:
        pos.append(length - size)
    return torch.tensor(pos, dtype=torch.long)


def extract_patches(image: torch.Tensor, size: int) -> torch.Tensor:
    """All stride-1 ``size × size`` patches of ``image (C, H, W)`` as rows ``(N, C·size²)``, raster order."""
    return F.unfold(image[None], size)[0].T.contiguous()


def gather_patches(image: torch.Tensor, size: int, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """The patches of ``image (C, H, W)`` with top-left corners ``(ys, xs)`` (each ``(Q,)``), as ``(Q, C·size²)``."""
    d = torch.arange(size, device=image.device)
    rows = (ys.to(image.device)[:, None] + d)[:, :, None]  # (Q, p, 1)
    cols = (xs.to(image.device)[:, None] + d)[:, None, :]  # (Q, 1, p)
    patches = image[:, rows, cols]  # (C, Q, p, p)
    return patches.permute(1, 0, 2, 3).reshape(ys.numel(), -1)


def aggregate_patches(
    patches: torch.Tensor,
    ys: torch.Tensor,
    xs: torch.Tensor,
    size: int,
    out_hw: tuple[int, int],
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted average of overlapping patches placed at ``(ys, xs)``; the inverse of :func:`gather_patches`.

    Args:
        patches: ``(Q, C·size²)`` patch vectors.
        ys, xs: ``(Q,)`` top-left corners.
        size: patch side.
        out_hw: ``(H, W)`` of the result; every pixel should be covered by at least one patch.
        weights: ``(Q,)`` non-negative patch weights (default 1).

    Returns:
        ``(C, H, W)``: each pixel the weighted mean of the values the covering patches give it (0 where
        no patch covers it).
    """
    q = patches.shape[0]
    c = patches.shape[1] // (size * size)
    h, w = out_hw
    dev = patches.device
    d = torch.arange(size, device=dev)
    lin = (ys.to(dev)[:, None, None] + d[None, :, None]) * w + (xs.to(dev)[:, None, None] + d[None, None, :])
    lin = lin.reshape(-1)  # (Q·p·p)
    wts = torch.ones(q, device=dev, dtype=patches.dtype) if weights is None else weights.to(patches.dtype)
    vals = (patches.reshape(q, c, size * size) * wts[:, None, None]).permute(1, 0, 2).reshape(c, -1)
    num = torch.zeros(c, h * w, device=dev, dtype=patches.dtype).index_add_(1, lin, vals)
    den = torch.zeros(h * w, device=dev, dtype=patches.dtype).index_add_(
        0, lin, wts[:, None].expand(q, size * size).reshape(-1)
    )
    return (num / den.clamp_min(torch.finfo(patches.dtype).tiny)).reshape(c, h, w)


def window_sums(plane: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sums of every ``h × w`` window of a 2-D ``plane (H, W)``, in float64 via an integral image.

    Returns:
        ``(H - h + 1, W - w + 1)`` float64, entry ``(i, j)`` the sum of ``plane[i:i+h, j:j+w]``.
    """
    s = F.pad(plane.double().cumsum(0).cumsum(1), (1, 0, 1, 0))
    return s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]


class PatchIndex:
    """Exact nearest-neighbour search (squared L2) among all stride-1 ``size × size`` patches of an image.

    Distances to every candidate are ``‖q‖² - 2 q·p + ‖p‖²``, one fused matrix product per band of
    candidate rows, so memory stays bounded; the bands (patch matrices and norms) are built once and
    kept when they fit in ``cache_values`` floats, so repeated searches (Kwatra's iterations) do not
    unfold the image again. Brute force is exact, and BLAS makes it as fast as an ANN library's flat index.

    Args:
        image: ``(C, H, W)`` image whose patches are the candidates.
        size: patch side.
        chunk_values: bound on the number of candidate values in one band.
        cache_values: keep the bands if they hold at most this many values in all.
    """

    def __init__(
        self, image: torch.Tensor, size: int, *, chunk_values: int = 1 << 23, cache_values: int = 1 << 26
    ) -> None:
        c, h, w = image.shape
        self.image, self.size = image, size
        self.ny, self.nx = h - size + 1, w - size + 1
        if self.ny < 1 or self.nx < 1:
            raise ValueError(f"patch size {size} is larger than the image ({w}x{h})")
        dim = c * size * size
        self.rows_per_chunk = max(1, chunk_values // (self.nx * dim))
        self._bands: list[tuple[int, torch.Tensor, torch.Tensor]] | None = None
        if self.ny * self.nx * dim <= cache_values:
            self._bands = list(self._iter_bands())

    def _iter_bands(self):
        for r0 in range(0, self.ny, self.rows_per_chunk):
            r1 = min(self.ny, r0 + self.rows_per_chunk)
            cand = extract_patches(self.image[:, r0 : r1 + self.size - 1], self.size)
            yield r0 * self.nx, cand, (cand * cand).sum(1)

    def search(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest patches of ``queries (Q, C·size²)``.

        Returns:
            ``(dist2 (Q,), index (Q,))``: squared distances (clamped at 0) and the linear index
            ``y · (W - size + 1) + x`` of the nearest patch.
        """
        best = torch.full((queries.shape[0],), float("inf"), device=queries.device, dtype=queries.dtype)
        best_idx = torch.zeros(queries.shape[0], dtype=torch.long, device=queries.device)
        for start, cand, cand_sq in self._bands if self._bands is not None else self._iter_bands():
            dist = torch.addmm(cand_sq[None, :], queries, cand.T, beta=1.0, alpha=-2.0)
            val, idx = dist.min(1)
            better = val < best
            best = torch.where(better, val, best)
            best_idx = torch.where(better, idx + start, best_idx)
        return (best + (queries * queries).sum(1)).clamp_min(0), best_idx


def nearest_patches(
    queries: torch.Tensor, image: torch.Tensor, size: int, *, chunk_values: int = 1 << 23
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact nearest neighbours of patch vectors among all stride-1 patches of ``image`` (one-off search).

    Args:
        queries: ``(Q, C·size²)`` patch vectors.
        image: ``(C, H, W)`` image whose patches are the candidates.
        size: patch side.
        chunk_values: bound on the number of candidate values unfolded at once.

    Returns:
        ``(dist2 (Q,), index (Q,))`` as :meth:`PatchIndex.search`.
    """
    return PatchIndex(image, size, chunk_values=chunk_values, cache_values=0).search(queries)
