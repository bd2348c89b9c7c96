"""Built-in, offline, licence-clean datasets (sources and licences: ``datasets/SOURCES.md``).

Photographs and textures come from the sample images scikit-image ships inside its wheel (public domain
or CC0); the rest are textures generated procedurally here, deterministically (fixed seeds), so they
need no licence. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from texbench.base import Dataset, DatasetItem

__all__ = [
    "BuiltinClean",
    "BuiltinContent",
    "BuiltinStyles",
    "BuiltinTrain",
    "BuiltinTextures",
    "FolderDataset",
    "procedural_texture",
]

_SKIMAGE_LICENSES = {
    "astronaut": "public domain (NASA)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
    "brick": "CC0 (CC0Textures, Bricks25)",
    "grass": "CC0 (linolafett, DeviantArt)",
    "gravel": "CC0 (CC0Textures, Gravel04)",
    "hubble_deep_field": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "coins": "no known copyright restrictions (Brooklyn Museum)",
    "immunohistochemistry": "no known copyright restrictions (CMMI)",
    "retina": "CC0 (Mikael Häggström, Wikimedia Commons)",
}


def _skimage(name: str) -> Callable[[], torch.Tensor]:
    def load() -> torch.Tensor:
        import skimage.data

        arr = getattr(skimage.data, name)()
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        arr = arr[..., :3].astype(np.float32) / 255.0
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    return load


def _item_skimage(name: str) -> DatasetItem:
    return DatasetItem(name.replace("_", "-"), _skimage(name), f"scikit-image skimage.data.{name}",
                       _SKIMAGE_LICENSES[name])


# ------------------------------------------------------------------------------------ procedural textures
def _value_noise(rng: np.random.Generator, size: int, octaves: int, base: int) -> np.ndarray:
    """Periodic fractal value noise in [0, 1], ``size × size``."""
    import torch.nn.functional as F

    out = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2**o
        grid = torch.from_numpy(rng.random((cells, cells)))
        grid = torch.cat([grid, grid[:1]], 0)
        grid = torch.cat([grid, grid[:, :1]], 1)  # wrap so the texture tiles
        up = F.interpolate(grid[None, None], size=(size + size // cells, size + size // cells),
                           mode="bicubic", align_corners=True)[0, 0, :size, :size].numpy()
        out += amp * up
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / (np.ptp(out) + 1e-12)


def _cells(rng: np.random.Generator, size: int) -> np.ndarray:
    n = 40
    pts = rng.random((n, 2)) * size
    colors = 0.25 + 0.7 * rng.random((n, 3)) * np.array([1.0, 0.8, 0.6])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    d = np.full((2, size, size), np.inf)
    idx = np.zeros((size, size), dtype=int)
    for i, (py, px) in enumerate(pts):
        dy = np.abs(yy - py)
        dx = np.abs(xx - px)
        dist = np.hypot(np.minimum(dy, size - dy), np.minimum(dx, size - dx))  # periodic distance
        closer = dist < d[0]
        d[1] = np.where(closer, d[0], np.minimum(d[1], dist))
        d[0] = np.where(closer, dist, d[0])
        idx = np.where(closer, i, idx)
    edge = np.clip((d[1] - d[0]) / 3.0, 0, 1)[..., None]
    return colors[idx] * edge + 0.08 * (1 - edge)


def _marble(rng: np.random.Generator, size: int) -> np.ndarray:
    t = _value_noise(rng, size, 5, 4)
    yy, xx = np.mgrid[0:size, 0:size] / size
    v = 0.5 + 0.5 * np.sin(2 * math.pi * (3 * xx + 2 * yy) + 6.0 * t)
    c1, c2 = np.array([0.93, 0.90, 0.85]), np.array([0.35, 0.30, 0.42])
    return c2 + (c1 - c2) * v[..., None] ** 0.6


def _weave(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    p = size / 16
    over = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(bool)
    warp = 0.5 + 0.5 * np.cos(2 * math.pi * xx / p * 4)
    weft = 0.5 + 0.5 * np.cos(2 * math.pi * yy / p * 4)
    v = np.where(over, warp, weft) * 0.6 + 0.4 * _value_noise(rng, size, 3, 8)
    return np.stack([0.2 + 0.6 * v, 0.3 + 0.4 * v, 0.6 + 0.3 * v], axis=-1)


_PROCEDURAL = {"cells": _cells, "marble": _marble, "weave": _weave}


@functools.lru_cache(maxsize=8)
def _procedural_cached(name: str, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(_PROCEDURAL[name](rng, size), 0, 1).astype(np.float32)


def procedural_texture(name: str, size: int = 256, seed: int = 0) -> torch.Tensor:
    """A deterministic, seamlessly tiling procedural texture ``(3, size, size)`` in [0, 1].

    Args:
        name: ``cells`` (Voronoi cells), ``marble`` (turbulent sine bands) or ``weave`` (plain weave).
        size: side in pixels.
        seed: seeds the random layout.
    """
    if name not in _PROCEDURAL:
        raise ValueError(f"unknown procedural texture {name!r}; known: {', '.join(_PROCEDURAL)}")
    arr = _procedural_cached(name, size, seed)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _item_procedural(name: str, seed: int = 0) -> DatasetItem:
    return DatasetItem(name, functools.partial(procedural_texture, name, 256, seed),
                       f"procedural ({name}, seed {seed}), texbench.datasets.builtin", "generated; no rights reserved")


class BuiltinTextures(Dataset):
    """Texture exemplars: three CC0 photographs shipped with scikit-image and three procedural textures."""

    name = "builtin-textures"
    description = "6 texture exemplars: brick, grass, gravel (CC0, scikit-image) + 3 procedural"
    roles = ("exemplar", "style")
    license = "CC0 / generated"

    def items(self) -> list[DatasetItem]:
        # photographs and procedural textures alternate, so `limit = N` keeps a mix
        return [_item_skimage("brick"), _item_procedural("cells"), _item_skimage("grass"),
                _item_procedural("marble"), _item_skimage("gravel"), _item_procedural("weave")]


class BuiltinContent(Dataset):
    """Content photographs for style transfer (public domain / CC0, scikit-image)."""

    name = "builtin-content"
    description = "4 content photos: astronaut, chelsea, coffee, rocket (public domain / CC0)"
    roles = ("content", "clean")
    license = "public domain / CC0"

    def items(self) -> list[DatasetItem]:
        return [_item_skimage(n) for n in ("astronaut", "chelsea", "coffee", "rocket")]


class BuiltinStyles(Dataset):
    """Style images: the Hubble deep field (public domain) and three procedural patterns."""

    name = "builtin-styles"
    description = "4 style images: hubble-deep-field (public domain) + cells, marble, weave (procedural)"
    roles = ("style",)
    license = "public domain / generated"

    def items(self) -> list[DatasetItem]:
        return [_item_skimage("hubble_deep_field"), _item_procedural("cells", 1),
                _item_procedural("marble", 1), _item_procedural("weave", 1)]


class BuiltinClean(Dataset):
    """Clean photographs for the restoration tasks (public domain / CC0, scikit-image)."""

    name = "builtin-clean"
    description = "4 clean photos for denoising and SR: astronaut, chelsea, coffee, rocket"
    roles = ("clean",)
    license = "public domain / CC0"

    def items(self) -> list[DatasetItem]:
        return [_item_skimage(n) for n in ("astronaut", "chelsea", "coffee", "rocket")]


class BuiltinTrain(Dataset):
    """Training images for methods that learn (Johnson et al.'s transformation networks), offline.

    Disjoint from every image the built-in test sets use (builtin-content, builtin-clean,
    builtin-textures, builtin-styles), so a network is never trained on the image it is tested on.
    """

    name = "builtin-train"
    description = "4 training photos disjoint from the test sets: camera, coins, immunohistochemistry, retina"
    roles = ("train",)
    license = "CC0 / no known copyright restrictions"

    def items(self) -> list[DatasetItem]:
        return [_item_skimage(n) for n in ("camera", "coins", "immunohistochemistry", "retina")]


class FolderDataset(Dataset):
    """Every image file directly inside a folder, in name order (a user's own images, or Kodak24, Set5...)."""

    name = "folder"
    description = "the images in a folder (suite: datasets = { clean = { path = 'DIR' } })"
    roles = ("exemplar", "content", "style", "clean")

    def __init__(self, path: str, *, limit: int | None = None) -> None:
        self.path = Path(path)
        self.limit = limit

    def items(self) -> list[DatasetItem]:
        from texbench.imageio import display_name, list_images, load_image

        files = list_images(self.path)
        if not files:
            raise ValueError(f"dataset folder {display_name(self.path)} contains no images")
        by_stem: dict[str, Path] = {}
        for f in files:  # an item is named by its stem: x.png and x.jpg would silently become one
            if f.stem in by_stem:
                raise ValueError(f"dataset folder {display_name(self.path)}: {display_name(by_stem[f.stem].name)} "
                                 f"and {display_name(f.name)} have the same name {display_name(f.stem)!r}; "
                                 "rename or remove one")
            by_stem[f.stem] = f
        files = files[: self.limit] if self.limit else files
        # names that are not UTF-8 are escaped (caf\\xe9), so ids can be stored and shown
        return [DatasetItem(display_name(f.stem), functools.partial(load_image, f), display_name(f), "")
                for f in files]
