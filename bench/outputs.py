"""Output kinds: what a task's outputs are, and how each kind is checked, stored, viewed and scored.

Every task declares an :attr:`~texbench.tasks.Task.output_kind`; the executors, the store, the scoring pass,
the reports and ``texbench synth`` ask the kind instead of testing for a task by name:

* ``image``: a float ``(3, H, W)`` in [0, 1], quantised once to uint8 ``(H, W, 3)`` and stored as PNG;
  per-image metrics score it against the reference of their role.
* ``volume``: a solid texture, float ``(3, D, H, W)`` in [0, 1], quantised once (same rounding) to uint8
  ``(D, H, W, 3)`` and stored losslessly as ``.npy`` (content-addressed like the images: the file name is
  the SHA-256 of the voxels and shape), with a PNG preview beside it (:func:`volume_preview`). Per-image
  metrics score 2-D slices (:func:`scored_slices`), each against its axis' exemplar, averaged over the three
  axes; the ref role ``cross-slices`` compares slices of different axes with each other.

Slice axes: axis 0 cuts ``volume[:, i]`` (an ``H × W`` image), axis 1 ``volume[:, :, i]`` (``D × W``),
axis 2 ``volume[:, :, :, i]`` (``D × H``). With three exemplars, the reference of role ``r`` for axis ``a`` is
``r:a`` (e.g. ``exemplar:1``), falling back to ``r``.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CROSS_SLICES", "OUTPUT_KINDS", "SLICES_PER_AXIS", "ImageKind", "OutputKind", "VolumeKind",
           "axis_slice", "check_tensor", "load_volume", "output_kind", "preview_path", "scored_slices", "volume_preview",
           "volume_to_uint8"]

#: ref role of the cross-slice consistency check (slices of one axis against slices of another)
CROSS_SLICES = "cross-slices"
#: slices scored per axis: evenly spaced (see :func:`scored_slices`)
SLICES_PER_AXIS = 4
_PREVIEW_SUFFIX = ".slices.png"


def _quantised(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to the 8-bit levels it would be stored at (any shape, values in [0, 1])."""
    return t.detach().to("cpu", torch.float64).clamp(0, 1).mul(255).round().div(255).float()


def check_tensor(out: Any, size: tuple[int, ...], method: str) -> torch.Tensor:
    """A method's output as a float CPU tensor clamped to [0, 1].

    Raises:
        TypeError, ValueError: one line naming ``method``: not a tensor, not of shape ``(3, *size)``, values
            not finite or outside [0, 1] ± 1e-3.
    """
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{method} returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != (3, *size):
        raise ValueError(f"{method} returned shape {tuple(out.shape)}, expected {(3, *size)}")
    out = out.detach().float().cpu()
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise ValueError(f"{method} returned {bad} non-finite values (NaN or inf)")
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{method} returned values in [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return out.clamp(0, 1)


def volume_to_uint8(volume: torch.Tensor) -> np.ndarray:
    """Quantise a float ``(3, D, H, W)`` volume in [0, 1] to uint8 ``(D, H, W, 3)``, rounding half to even
    (as :func:`texbench.imageio.to_uint8` does for images).

    >>> volume_to_uint8(torch.full((3, 2, 1, 1), 0.5))[1, 0, 0].tolist()
    [128, 128, 128]
    """
    if not isinstance(volume, torch.Tensor):
        raise TypeError(f"volume must be a torch.Tensor, got {type(volume).__name__}")
    if volume.ndim != 4 or volume.shape[0] != 3:
        raise ValueError(f"volume must have shape (3, D, H, W), got {tuple(volume.shape)}")
    from texbench.imageio import to_uint8

    _, d, h, w = volume.shape
    # the images' quantisation on the volume seen as one (3, D·H, W) image
    return to_uint8(volume.reshape(3, d * h, w)).reshape(d, h, w, 3)


def load_volume(path: str | os.PathLike) -> torch.Tensor:
    """Read a stored volume (uint8 ``(D, H, W, 3)`` ``.npy``) as float ``(3, D, H, W)`` in [0, 1].

    Raises:
        ValueError: the file does not hold a uint8 ``(D, H, W, 3)`` array.
    """
    return _volume_tensor(np.load(path, allow_pickle=False), Path(path).name)


def _volume_tensor(arr: np.ndarray, name: str) -> torch.Tensor:
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected a uint8 (D, H, W, 3) volume, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(arr).permute(3, 0, 1, 2).float() / 255.0


def axis_slice(volume: torch.Tensor, axis: int, index: int) -> torch.Tensor:
    """The ``(3, ·, ·)`` slice of a ``(3, D, H, W)`` volume at ``index`` across ``axis`` (0, 1 or 2)."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    return volume.select(axis + 1, index)


def scored_slices(length: int, count: int = SLICES_PER_AXIS) -> list[int]:
    """Indices of the slices scored along an axis of ``length`` voxels: ``count`` evenly spaced, the
    k-th at ``floor((k + 1/2)·length / count)`` (the middle slice when ``count`` is 1).

    >>> scored_slices(64)
    [8, 24, 40, 56]
    """
    n = max(1, min(count, length))
    return [int((k + 0.5) * length / n) for k in range(n)]


def volume_preview(volume_u8: np.ndarray, *, seed: int = 0, random_slices: int = 1) -> np.ndarray:
    """A uint8 ``(rows·S, 3·S, 3)`` montage of slices of a ``(D, H, W, 3)`` volume: the first row the three
    axis-aligned middle slices (axis 0, 1, 2), then ``random_slices`` rows of slices at positions drawn from
    ``seed`` (the grids and report.html show it for volume outputs). Slices are padded to the largest side."""
    d, h, w, _ = volume_u8.shape
    side = max(d, h, w)
    rng = np.random.default_rng(seed)
    rows = [[d // 2, h // 2, w // 2]] + [[int(rng.integers(n)) for n in (d, h, w)] for _ in range(random_slices)]
    out = np.full((len(rows) * side, 3 * side, 3), 255, dtype=np.uint8)
    for r, idx in enumerate(rows):
        cuts = (volume_u8[idx[0]], volume_u8[:, idx[1]], volume_u8[:, :, idx[2]])
        for a, s in enumerate(cuts):
            out[r * side : r * side + s.shape[0], a * side : a * side + s.shape[1]] = s
    return out


def preview_path(rel: str) -> str:
    """The viewable picture of a stored output: the output itself for an image, the slice montage for a
    volume (``x.npy`` → ``x.slices.png``)."""
    return rel[: -len(".npy")] + _PREVIEW_SUFFIX if rel.endswith(".npy") else rel


class OutputKind:
    """How outputs of one kind are checked, quantised, written, read back and scored (see the module)."""

    name: str = ""
    #: the stored file's extension
    suffix: str = ""
    #: dimensions of ``TaskInput.size``
    ndim: int = 2

    def check(self, out: Any, size: tuple[int, ...], method: str) -> torch.Tensor:
        """``out`` as a float CPU tensor clamped to [0, 1] (:func:`check_tensor`)."""
        return check_tensor(out, size, method)

    def quantise(self, out: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def encode(self, arr: np.ndarray) -> bytes:
        """The stored file's bytes for a quantised output."""
        raise NotImplementedError

    def load(self, path: str | os.PathLike) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, data: bytes, *, name: str = "output") -> torch.Tensor:
        """:meth:`load` for the stored file's bytes held in memory (outputs travel from workers encoded)."""
        raise NotImplementedError

    def decode_uint8(self, data: bytes) -> np.ndarray:
        """The quantised array :meth:`encode` wrote into ``data``."""
        raise NotImplementedError

    def preview(self, arr: np.ndarray) -> np.ndarray | None:
        """A uint8 ``(H, W, 3)`` picture to store beside the output, or None when the output is one."""
        return None

    def score(self, metric: Any, out: torch.Tensor, references: Mapping[str, torch.Tensor], ref: str) -> float:
        """One per-image score of the saved output ``out`` against the reference of role ``ref``."""
        raise NotImplementedError


def _reference(references: Mapping[str, torch.Tensor], ref: str) -> torch.Tensor:
    t = references.get(ref)
    if t is None:
        raise ValueError(f"no reference {ref!r} (references: {', '.join(references) or 'none'})")
    return t


def _compare(metric: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    return _compare_batch(metric, x[None], y[None])[0]


def _compare_batch(metric: Any, xs: torch.Tensor, ys: torch.Tensor) -> list[float]:
    """``metric`` on ``(N, 3, H, W)`` outputs against ``(N, …)`` references, or one reference ``(1, …)``
    shared by all (given once to an ``unpaired`` metric, which accepts it and computes its features once;
    repeated for the others)."""
    if ys.shape[0] == 1 and xs.shape[0] > 1 and getattr(metric, "kind", None) != "unpaired":
        ys = ys.expand(xs.shape[0], *ys.shape[1:])
    with torch.no_grad():
        return [float(v) for v in metric(xs.to(metric.device), ys.to(metric.device))]


class ImageKind(OutputKind):
    name, suffix, ndim = "image", ".png", 2

    def quantise(self, out):
        from texbench.imageio import to_uint8

        return to_uint8(out)

    def encode(self, arr):
        from texbench.imageio import encode_png

        return encode_png(arr)

    def decode(self, data, *, name="output"):
        from texbench.imageio import decode_image

        return decode_image(data, name=name)

    def decode_uint8(self, data):
        from texbench.imageio import to_uint8

        return to_uint8(self.decode(data))

    def load(self, path):
        from texbench.imageio import load_image

        return load_image(path)

    def score(self, metric, out, references, ref):
        return _compare(metric, out, _quantised(_reference(references, ref)))


class VolumeKind(OutputKind):
    name, suffix, ndim = "volume", ".npy", 3

    def quantise(self, out):
        return volume_to_uint8(out)

    def encode(self, arr):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        return buf.getvalue()

    def load(self, path):
        return load_volume(path)

    def decode(self, data, *, name="output"):
        return _volume_tensor(self.decode_uint8(data), name)

    def decode_uint8(self, data):
        return np.load(io.BytesIO(data), allow_pickle=False)

    def preview(self, arr):
        # one seed for all: volumes of one size show slices at the same positions, method beside method
        return volume_preview(arr, seed=0)

    def score(self, metric, out, references, ref):
        """Mean over the scored slices of the three axes (:func:`scored_slices`) of ``metric(slice, exemplar
        of its axis)``; for ``ref == "cross-slices"``, the mean over axis pairs (0, 1), (0, 2), (1, 2) and slice
        positions of ``metric(slice of axis a, slice of axis b)`` at the same index (how alike the volume looks
        in different directions: a volume that only stacks one 2-D texture along an axis scores badly)."""
        if ref == CROSS_SLICES:
            values = []
            for a, b in itertools.combinations(range(3), 2):
                idx = scored_slices(min(out.shape[a + 1], out.shape[b + 1]))
                xs = torch.stack([axis_slice(out, a, i) for i in idx])
                ys = torch.stack([axis_slice(out, b, i) for i in idx])
                values += _compare_batch(metric, xs, ys)
            return float(np.mean(values))
        values = []
        for a in range(3):  # one batch per axis: its slices share a size and an exemplar
            per_axis = f"{ref}:{a}"
            target = _quantised(_reference(references, per_axis if per_axis in references else ref))
            xs = torch.stack([axis_slice(out, a, i) for i in scored_slices(out.shape[a + 1])])
            values += _compare_batch(metric, xs, target[None])
        return float(np.mean(values))


OUTPUT_KINDS: dict[str, OutputKind] = {k.name: k for k in (ImageKind(), VolumeKind())}


def output_kind(name: str) -> OutputKind:
    """The :class:`OutputKind` called ``name`` (``image`` or ``volume``)."""
    try:
        return OUTPUT_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown output kind {name!r}; kinds: {', '.join(OUTPUT_KINDS)}") from None
