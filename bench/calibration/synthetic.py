"""A small **synthetic** 2AFC/JND dataset in the exact BAPPS layout: a test fixture, not human data.

The BAPPS dataset cannot be downloaded here; :func:`make_synthetic_2afc` writes patches cut from
scikit-image's bundled photographs and procedural patterns, distorted (noise, blur, JPEG, colour shift,
warp), judged by a documented proxy observer (:func:`proxy_distance`). Its numbers say nothing about
human perception.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DISTORTIONS", "make_synthetic_2afc", "proxy_distance"]


def _builtin_sources(seed: int) -> dict[str, list[np.ndarray]]:
    """Float RGB images in [0, 1]: scikit-image's bundled photos and procedural patterns."""
    from skimage import data as skd

    natural = [
        np.asarray(getattr(skd, n)(), dtype=np.float32) / 255.0
        for n in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    rng = np.random.default_rng(seed)
    size = 256
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    procedural = []
    for _ in range(4):
        f1, f2 = rng.uniform(2, 12, size=2)
        th = rng.uniform(0, np.pi)
        g = 0.5 + 0.5 * np.sin(2 * np.pi * (f1 * (xx * np.cos(th) + yy * np.sin(th))))
        h = 0.5 + 0.5 * np.sin(2 * np.pi * f2 * (xx - yy) + rng.uniform(0, 6))
        c = rng.uniform(0.2, 1.0, size=(3,)).astype(np.float32)
        procedural.append(np.clip(g[..., None] * c + 0.3 * h[..., None] * (1 - c), 0, 1))
    check = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2)[..., None] * np.array([0.9, 0.7, 0.3], np.float32)
    procedural.append(check + 0.05)
    blobs = rng.random((size // 16, size // 16, 3)).astype(np.float32)
    blobs = np.kron(blobs, np.ones((16, 16, 1), np.float32))
    from scipy.ndimage import gaussian_filter

    procedural.append(np.clip(gaussian_filter(blobs, (6, 6, 0)), 0, 1))
    return {
        "natural": [np.ascontiguousarray(a, dtype=np.float32) for a in natural],
        "procedural": [np.ascontiguousarray(a, dtype=np.float32) for a in procedural],
    }


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    h, w = img.shape[:2]
    s = int(rng.integers(size, max(size + 1, min(h, w) // 2)))
    top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    t = torch.from_numpy(np.ascontiguousarray(img[top : top + s, left : left + s])).permute(2, 0, 1)[None]
    if s != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].clamp(0, 1)


DISTORTIONS = ("noise", "blur", "jpeg", "color", "warp")


def _distort(x: torch.Tensor, kind: str, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """One distortion of ``x`` (3,S,S) in [0,1]; ``strength`` in (0, 1]."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    if kind == "noise":
        return (x + torch.randn(x.shape, generator=gen) * 0.2 * strength).clamp(0, 1)
    if kind == "blur":
        sigma = 0.3 + 2.5 * strength
        r = int(math.ceil(3 * sigma))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        k = k / k.sum()
        y = F.conv2d(F.pad(x[:, None], (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
        return y[:, 0].clamp(0, 1)
    if kind == "jpeg":
        import io

        from PIL import Image

        q = int(round(90 - 85 * strength))
        arr = (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=max(q, 2))
        buf.seek(0)
        with Image.open(buf) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)
    if kind == "color":
        gains = 1 + torch.from_numpy(rng.uniform(-0.5, 0.5, size=3).astype(np.float32)) * strength
        shift = torch.from_numpy(rng.uniform(-0.15, 0.15, size=3).astype(np.float32)) * strength
        return (x * gains.view(3, 1, 1) + shift.view(3, 1, 1)).clamp(0, 1)
    if kind == "warp":
        s = x.shape[-1]
        coarse = torch.randn((1, 2, 4, 4), generator=gen) * 0.06 * strength
        flow = F.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        lin = torch.linspace(-1, 1, s)
        grid = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), dim=-1)[None] + flow
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=True)[
            0
        ].clamp(0, 1)
    raise ValueError(f"unknown distortion {kind!r}; known: {DISTORTIONS}")


def proxy_distance(ref: torch.Tensor, p: torch.Tensor) -> float:
    """The synthetic observer's internal distance: ``(1 − SSIM(luma)) + ΔE*ab/100`` (mean CIE76).

    Structural dissimilarity of the luminance plus the mean CIELAB colour difference, a classic
    full-reference pair chosen because it is independent of any network LPIPS uses.
    """
    from skimage.color import rgb2lab
    from skimage.metrics import structural_similarity

    a = ref.permute(1, 2, 0).double().numpy()
    b = p.permute(1, 2, 0).double().numpy()
    w = np.array([0.299, 0.587, 0.114])
    ssim = structural_similarity(a @ w, b @ w, data_range=1.0, gaussian_weights=True, sigma=1.5)
    de = np.sqrt(((rgb2lab(a) - rgb2lab(b)) ** 2).sum(-1)).mean()
    return float((1.0 - ssim) + de / 100.0)


def make_synthetic_2afc(
    out: str | os.PathLike,
    *,
    n_train: int = 400,
    n_val: int = 200,
    n_jnd: int = 200,
    size: int = 64,
    seed: int = 0,
    observers_train: int = 2,
    observers_val: int = 5,
    temperature: float = 0.05,
    progress: bool = True,
) -> Path:
    """Write a small **synthetic** dataset in the exact BAPPS layout (a test fixture, not human data).

    Layout (as BAPPS): ``out/2afc/{train,val}/<category>/{ref,p0,p1,judge}/NNNNNN.{png,npy}`` and
    ``out/jnd/val/<category>/{p0,p1,same}/``; categories ``synthetic_natural`` (crops of scikit-image's
    astronaut, coffee, chelsea, rocket) and ``synthetic_procedural`` (gratings, checkerboard, blobs).
    ``out/SYNTHETIC.md`` says so.

    Triplets: a random crop (``size``×``size``) is the reference; ``p0`` and ``p1`` are two distortions
    drawn independently from noise, blur, JPEG, colour shift and warp at random strengths.

    Proxy observer (documented, deterministic given ``seed``): each simulated observer prefers ``p1``
    with probability ``σ((D(ref,p0) − D(ref,p1)) / T)`` where ``D`` is :func:`proxy_distance` and
    ``T = temperature``; ``judge`` is the fraction of ``observers_train`` (train) or ``observers_val``
    (val) independent observers choosing ``p1`` (BAPPS has 2 and 5). JND: ``p0`` is the reference,
    ``p1`` one distortion (a quarter of them at strength ≤ 0.05), and each of 3 observers answers "same"
    with probability ``exp(−D / (2T))``.

    Returns:
        ``out`` as a Path.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-patch ops: thread start-up would dominate
    try:
        return _make_synthetic_2afc(
            Path(out),
            n_train,
            n_val,
            n_jnd,
            size,
            seed,
            observers_train,
            observers_val,
            temperature,
            progress,
        )
    finally:
        torch.set_num_threads(threads)


def _make_synthetic_2afc(
    out: Path, n_train: int, n_val: int, n_jnd: int, size: int, seed: int,
    observers_train: int, observers_val: int, temperature: float, progress: bool,
) -> Path:  # fmt: skip
    from PIL import Image
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    sources = _builtin_sources(seed)
    cats = {f"synthetic_{k}": v for k, v in sources.items()}

    def save_png(t: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = (t.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(path)

    def save_npy(v: float, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.array([v], dtype=np.float32))

    def quantised(t: torch.Tensor) -> torch.Tensor:  # what is stored on disk is what is judged
        return torch.round(t.clamp(0, 1) * 255) / 255

    jobs = [("2afc", "train", n_train), ("2afc", "val", n_val), ("jnd", "val", n_jnd)]
    bar = tqdm(total=sum(n for *_, n in jobs), desc="make-2afc (synthetic)", disable=not progress)
    for mode, split, n in jobs:
        per_cat = [n // len(cats) + (1 if i < n % len(cats) else 0) for i in range(len(cats))]
        for (cat, imgs), count in zip(cats.items(), per_cat, strict=True):
            base = out / mode / split / cat
            for i in range(count):
                ref = quantised(_crop(imgs[int(rng.integers(len(imgs)))], size, rng))
                name = f"{i:06d}"
                if mode == "2afc":
                    ps = []
                    for _ in range(2):
                        kind = DISTORTIONS[int(rng.integers(len(DISTORTIONS)))]
                        ps.append(quantised(_distort(ref, kind, float(rng.uniform(0.1, 1.0)), rng)))
                    d0, d1 = proxy_distance(ref, ps[0]), proxy_distance(ref, ps[1])
                    prob = 1.0 / (1.0 + math.exp(-(d0 - d1) / temperature))
                    k = observers_train if split == "train" else observers_val
                    judge = float(rng.binomial(k, prob)) / k
                    save_png(ref, base / "ref" / f"{name}.png")
                    save_png(ps[0], base / "p0" / f"{name}.png")
                    save_png(ps[1], base / "p1" / f"{name}.png")
                    save_npy(judge, base / "judge" / f"{name}.npy")
                else:
                    kind = DISTORTIONS[int(rng.integers(len(DISTORTIONS)))]
                    strength = float(
                        rng.uniform(0.0, 0.05) if rng.random() < 0.25 else rng.uniform(0.05, 0.6)
                    )
                    p = quantised(_distort(ref, kind, strength, rng))
                    psame = math.exp(-proxy_distance(ref, p) / (2 * temperature))
                    same = float(rng.binomial(3, psame)) / 3
                    save_png(ref, base / "p0" / f"{name}.png")
                    save_png(p, base / "p1" / f"{name}.png")
                    save_npy(same, base / "same" / f"{name}.npy")
                bar.update(1)
    bar.close()
    (out / "SYNTHETIC.md").write_text(
        "# SYNTHETIC 2AFC/JND data (texbench lpips make-2afc)\n\n"
        "NOT human judgments. Generated by texbench as a test fixture in the exact BAPPS layout.\n"
        f"Proxy observer: P(choose p1) = sigmoid((D(ref,p0) - D(ref,p1)) / {temperature}), "
        "D = (1 - SSIM(luma)) + mean CIE76 dE / 100; judge = fraction of simulated observers "
        f"({observers_train} train, {observers_val} val). JND: P(same) = exp(-D / {2 * temperature}), 3 observers.\n"
        f"Distortions: {', '.join(DISTORTIONS)}. Seed {seed}, patch size {size}.\n"
        "Scores on this data say nothing about human perception; train on real BAPPS for that.\n"
    )
    return out
