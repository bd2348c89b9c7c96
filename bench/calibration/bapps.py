"""BAPPS data: the 2AFC triplets and JND pairs of Zhang et al.'s perceptual-similarity dataset.

Layout: ``<root>/2afc/<split>/<category>/{ref,p0,p1,judge}/`` (images and ``.npy`` judgments sharing a
stem) and ``<root>/jnd/<split>/<category>/{p0,p1,same}/``. Patches load at 64×64 with PIL's bilinear
filter, as the reference does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "IMAGE_EXTS",
    "JND_DIRS",
    "TWOAFC_DIRS",
    "BAPPSFormatError",
    "JNDDataset",
    "TwoAFCDataset",
    "find_category_dirs",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
TWOAFC_DIRS = ("ref", "p0", "p1", "judge")
JND_DIRS = ("p0", "p1", "same")


class BAPPSFormatError(ValueError):
    """A directory does not follow the BAPPS layout."""


def _stems(d: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in exts}


def _index_category(root: Path, subdirs: tuple[str, ...], npy: str) -> list[dict[str, Path]]:
    """Pair the files of one BAPPS category directory by stem; raise on any mismatch."""
    if not root.is_dir():
        raise BAPPSFormatError(f"{root} is not a directory")
    missing = [s for s in subdirs if not (root / s).is_dir()]
    if missing:
        raise BAPPSFormatError(
            f"{root} is not a BAPPS category directory: missing sub-folder(s) {', '.join(missing)} "
            f"(expected {', '.join(s + '/' for s in subdirs)})"
        )
    files = {s: _stems(root / s, (".npy",) if s == npy else IMAGE_EXTS) for s in subdirs}
    keys = set(files[subdirs[0]])
    for s in subdirs[1:]:
        if set(files[s]) != keys:
            only_a = sorted(keys - set(files[s]))[:3]
            only_b = sorted(set(files[s]) - keys)[:3]
            raise BAPPSFormatError(
                f"{root}: {subdirs[0]}/ and {s}/ hold different items "
                f"(only in {subdirs[0]}/: {only_a}; only in {s}/: {only_b})"
            )
    if not keys:
        raise BAPPSFormatError(f"{root}: no items found in {subdirs[0]}/")
    return [{s: files[s][k] for s in subdirs} for k in sorted(keys)]


def find_category_dirs(
    root: str | os.PathLike, mode: Literal["2afc", "jnd"], split: str = "val"
) -> list[Path]:
    """Category directories of a BAPPS tree.

    ``root`` may be the dataset root (holding ``2afc/`` and ``jnd/``), a split directory
    (``2afc/val``) or one category directory (``2afc/val/cnn``).

    Raises:
        BAPPSFormatError: nothing in BAPPS layout was found.
    """
    root = Path(root)
    need = TWOAFC_DIRS if mode == "2afc" else JND_DIRS
    if not root.is_dir():
        raise BAPPSFormatError(f"{root} does not exist or is not a directory")
    if (root / need[0]).is_dir():
        return [root]
    for cand in (root / mode / split, root):
        if cand.is_dir():
            cats = [d for d in sorted(cand.iterdir()) if d.is_dir() and (d / need[0]).is_dir()]
            if cats:
                return cats
    raise BAPPSFormatError(
        f"no BAPPS {mode} data under {root}: expected {root}/{mode}/{split}/<category>/"
        f"{{{','.join(need)}}}/ (or a category directory itself)"
    )


def _load_patch(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if rgb.size != (size, size):  # the reference rescales with PIL's bilinear filter
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _load_fraction(path: Path) -> float:
    arr = np.load(path, allow_pickle=False)
    if arr.size != 1:
        raise BAPPSFormatError(f"{path}: expected a single judgment, got shape {arr.shape}")
    v = float(arr.reshape(-1)[0])
    if not 0.0 <= v <= 1.0:
        raise BAPPSFormatError(f"{path}: judgment {v} is outside [0, 1]")
    return v


class TwoAFCDataset(torch.utils.data.Dataset):
    """BAPPS 2AFC triplets from one or more category directories.

    Items: ``{"ref", "p0", "p1"}`` float ``(3, S, S)`` in [0, 1] and ``"judge"`` (float32 scalar, the
    fraction preferring ``p1``), plus ``"category"``.

    Raises:
        BAPPSFormatError: a directory lacks ``ref/ p0/ p1/ judge/`` or their items do not match.
    """

    def __init__(self, dirs: Sequence[str | os.PathLike], *, load_size: int = 64) -> None:
        self.load_size = load_size
        self.items: list[tuple[str, dict[str, Path]]] = []
        for d in dirs:
            d = Path(d)
            self.items += [(d.name, it) for it in _index_category(d, TWOAFC_DIRS, "judge")]

    def __len__(self) -> int:
        return len(self.items)

    def judge(self, i: int) -> torch.Tensor:
        """The judgment of item ``i`` alone (float32 scalar), without loading images."""
        return torch.tensor(_load_fraction(self.items[i][1]["judge"]), dtype=torch.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cat, it = self.items[i]
        out: dict[str, Any] = {k: _load_patch(it[k], self.load_size) for k in ("ref", "p0", "p1")}
        out["judge"] = self.judge(i)
        out["category"] = cat
        return out


class JNDDataset(torch.utils.data.Dataset):
    """BAPPS JND pairs: ``{"p0", "p1"}`` images and ``"same"`` (fraction judging them identical)."""

    def __init__(self, dirs: Sequence[str | os.PathLike], *, load_size: int = 64) -> None:
        self.load_size = load_size
        self.items: list[tuple[str, dict[str, Path]]] = []
        for d in dirs:
            d = Path(d)
            self.items += [(d.name, it) for it in _index_category(d, JND_DIRS, "same")]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cat, it = self.items[i]
        out: dict[str, Any] = {k: _load_patch(it[k], self.load_size) for k in ("p0", "p1")}
        out["same"] = torch.tensor(_load_fraction(it["same"]), dtype=torch.float32)
        out["category"] = cat
        return out
