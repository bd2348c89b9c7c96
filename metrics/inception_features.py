"""Inception features for FID, KID, sFID and SiFID: batched extraction through the shared feature cache,
and the random-crop protocol of the texture task.

One call extracts every requested block of the FID Inception network in one pass for the images
whose features are not cached yet (:func:`extract_features`), so FID and KID on the same images share
one pass, and a benchmark run never extracts the same image twice: cache keys are the image identity
(:func:`texbench.metrics.feature_cache.image_key`), the weights provenance, the extractor version, the
preprocessing (``resize``) and the block.

Results do not depend on the batch size or on which other images share a batch: every image is
resized on its own, and the network has no cross-sample operation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import torch

from texbench.base import Metric
from texbench.metrics.checks import check_images
from texbench.metrics.feature_cache import FeatureCache, default_cache, image_key
from texbench.nets import inception
from texbench.nets.inception import (
    BLOCK_DIMS,
    FID_INCEPTION,
    TAPS,
    ResizeMode,
    load_fid_inception,
    preprocess,
)

__all__ = ["EXTRACTOR_VERSION", "SET_FEATURES", "InceptionSetMetric", "extract_features", "random_crops"]

#: bumped whenever extracted values change for the same weights and inputs (invalidates disk caches).
#: 2: SiFID's pre-pool taps (``conv2d_2b``, ``conv2d_4a``) and sFID's ``mixed_6d_1x1_7`` were added.
#: 3: ``resize="clean"`` is clean-fid's clean mode (clipped bicubic result, ``(v - 128) / 128`` input).
EXTRACTOR_VERSION = "3"
DEFAULT_BATCH_SIZE = 32
#: what every set metric's pass extracts, so FID, KID and sFID on the same images share one pass:
#: pool3 (FID, KID) and sFID's 7 × 17 × 17 slice of ``Mixed_6d.branch1x1``
SET_FEATURES: tuple[int | str, ...] = (2048, "mixed_6d_1x1_7")


def _net_id(provenance: str) -> str:
    return f"{provenance}/v{EXTRACTOR_VERSION}"


def extract_features(
    images: Sequence[torch.Tensor],
    *,
    dims: Sequence[int | str] = (2048,),
    resize: ResizeMode = "pytorch-fid",
    device: torch.device | str = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: FeatureCache | None = None,
    weights_path=None,
) -> tuple[dict[int | str, list[np.ndarray]], str]:
    """FID-Inception features of each image at each requested block, through the feature cache.

    Args:
        images: float ``(3, H, W)`` RGB images in [0, 1], any sizes.
        dims: blocks (64, 192, 768, 2048) and named taps (:data:`texbench.nets.inception.TAPS`), all
            computed in one pass.
        resize: preprocessing, ``"pytorch-fid"``, ``"clean"`` or ``"none"`` (native size, as SiFID).
        device: where the network runs.
        batch_size: images per forward pass (results do not depend on it).
        cache: a :class:`FeatureCache`; default the process-wide one (memory + ``$TEXBENCH_HOME/features``).
        weights_path: explicit copy of the weights file.

    Returns:
        ``({dim: [features per image]}, provenance)``: float32 arrays ``(2048,)`` for pool3 and
        ``(C, h, w)`` for the spatial blocks and taps; the provenance of the weights.
    """
    imgs = check_images(images, "images")
    dims = list(dict.fromkeys(d if isinstance(d, str) else int(d) for d in dims))
    if not dims or any(d not in BLOCK_DIMS + TAPS for d in dims):
        raise ValueError(f"dims must be a non-empty subset of {BLOCK_DIMS + TAPS}, got {dims}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cache = default_cache() if cache is None else cache
    net, prov = load_fid_inception(device, path=weights_path)
    persistent = not prov.startswith("random-init")
    keys = [image_key(img) for img in imgs]
    prefix = f"{_net_id(prov)}/{resize}"
    found: dict[tuple[int | str, str], np.ndarray] = {}
    todo: dict[str, torch.Tensor] = {}
    for img, key in zip(imgs, keys, strict=True):
        for d in dims:
            if (d, key) in found or key in todo:
                continue
            arr = cache.get(f"{prefix}/{d}/{key}", persistent=persistent)
            if arr is None:
                todo[key] = img
            else:
                found[(d, key)] = arr
    if todo:
        # group by size (only matters for resize="none"; resized inputs all become 299x299 and share batches)
        groups: dict[tuple[int, int], list[str]] = {}
        for key, img in todo.items():
            size = (inception.INPUT_SIZE,) * 2 if resize != "none" else tuple(img.shape[-2:])
            groups.setdefault(size, []).append(key)
        dev = torch.device(device)
        for group in groups.values():
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                batch = torch.cat([preprocess(todo[k][None].to(dev, torch.float32), resize) for k in chunk])
                out = net.forward_preprocessed(batch, dims)
                for d, feats in out.items():
                    feats = feats.cpu().numpy()
                    for k, f in zip(chunk, feats, strict=True):
                        found[(d, k)] = f
                        cache.put(f"{prefix}/{d}/{k}", f, persistent=persistent)
    return {d: [found[(d, k)] for k in keys] for d in dims}, prov


def random_crops(
    images: Sequence[torch.Tensor], size: int, per_image: int, *, seed: int
) -> list[torch.Tensor]:
    """``per_image`` random ``size × size`` crops of each image (the texture FID/KID protocol).

    Crop positions are uniform over the valid offsets and drawn from a generator seeded by
    ``(seed, image identity, crop index)``, so an image gets the same crops whatever set it is in and
    in whatever order (exemplar crops, and their cached features, are shared by every method).

    Raises:
        ValueError: an image is smaller than ``size`` (the message names it).
    """
    if size < 1 or per_image < 1:
        raise ValueError(f"crop size and crops per image must be >= 1, got {size} and {per_image}")
    out = []
    for i, img in enumerate(images):
        h, w = img.shape[-2:]
        if h < size or w < size:
            raise ValueError(f"image {i} is {w}x{h}, smaller than the crop size {size}")
        ident = image_key(img)
        for k in range(per_image):
            digest = hashlib.sha256(f"crop:{seed}:{ident}:{k}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            top = int(rng.integers(0, h - size + 1))
            left = int(rng.integers(0, w - size + 1))
            out.append(img[:, top : top + size, left : left + size])
    return out


# ------------------------------------------------------------------------------ set-level metric base
class InceptionSetMetric(Metric):
    """Shared plumbing of the set-level Inception metrics (FID, KID, sFID): images or folders → one
    feature vector per image through the feature cache, the provenance of the weights and the protocol
    recorded with a score.

    Every pass extracts all of :data:`SET_FEATURES`; ``feature`` says which one the metric compares
    (pool3 for FID and KID, ``"mixed_6d_1x1_7"`` flattened to ``feature_dim`` = 2023 for sFID).
    Subclasses' params carry ``resize``, ``crop_size`` and ``crops_per_image`` (:class:`~texbench.metrics.fid.FIDParams`).
    """

    kind = "set"
    feature: int | str = 2048
    feature_dim: int = 2048
    batch_size: int = 32
    weights_path: str | None = None

    def provenance(self) -> dict[str, str]:
        _, prov = load_fid_inception(self.device, path=self.weights_path)
        return {FID_INCEPTION.name: prov}

    def _protocol(self) -> dict[str, str]:
        return {
            "resize": self.params.resize,
            "crop_size": str(self.params.crop_size),
            "crops_per_image": str(self.params.crops_per_image),
        }

    def features(self, images: Sequence[torch.Tensor], *, seed: int = 0, name: str = "images") -> np.ndarray:
        """The metric's features ``(n, feature_dim)`` of ``images`` (or of their random crops), float64
        (spatial maps flattened in ``(C, h, w)`` order)."""
        imgs = check_images(images, name)
        if self.params.crop_size:
            imgs = random_crops(imgs, self.params.crop_size, self.params.crops_per_image, seed=seed)
        if not imgs:
            return np.zeros((0, self.feature_dim))
        feats, _ = extract_features(
            imgs,
            dims=SET_FEATURES,
            resize=self.params.resize,
            device=self.device,
            batch_size=self.batch_size,
            weights_path=self.weights_path,
        )
        return np.stack([f.reshape(-1) for f in feats[self.feature]]).astype(np.float64)

    def folder_features(self, folder: str | os.PathLike, *, seed: int = 0, chunk: int = 64) -> np.ndarray:
        """The metric's features of every image directly inside ``folder`` (sorted by name), in chunks."""
        from texbench.imageio import list_images, load_image

        files = list_images(folder)
        if not files:
            raise ValueError(f"{folder}: no images found")
        parts = []
        for start in range(0, len(files), chunk):
            imgs = [load_image(f) for f in files[start : start + chunk]]
            parts.append(self.features(imgs, seed=seed, name=str(folder)))
        return np.concatenate(parts)
