"""How well a distance agrees with people: the 2AFC score and JND mAP, per BAPPS category.

* 2AFC: ``mean((d0 < d1)(1 − judge) + (d1 < d0) judge + ½ [d0 = d1])`` per category;
* JND: the average precision of ``same`` judgments ranked by increasing distance (VOC area under the
  interpolated precision-recall curve);
* the paper's baselines beside LPIPS: L2 (PSNR ranks pairs identically) and SSIM, both in CIELAB as the
  reference evaluation computes them by default (``--colorspace Lab``: ``lpips.L2`` and ``lpips.DSSIM``
  on the patches quantised to uint8 like its ``tensor2im``), and the human ceiling of each 2AFC category,
  ``mean(p² + (1 − p)²)`` over its triplets (p: the fraction of judges preferring one patch), the
  agreement a random judge has with another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from texbench.calibration.bapps import BAPPSFormatError, JNDDataset, TwoAFCDataset, find_category_dirs

__all__ = [
    "BASELINES",
    "DistanceFn",
    "dssim_lab_distance",
    "evaluate",
    "evaluate_baselines",
    "evaluate_lpips",
    "format_table",
    "human_ceiling",
    "jnd_map",
    "l2_lab_distance",
    "score_2afc",
]

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def score_2afc(d0: np.ndarray, d1: np.ndarray, judge: np.ndarray) -> float:
    """Fraction of human judgments a distance agrees with; ties count half.

    >>> score_2afc(np.array([0.1, 0.5, 0.3]), np.array([0.2, 0.4, 0.3]), np.array([0.0, 1.0, 0.5]))
    1.0
    >>> score_2afc(np.array([0.1]), np.array([0.2]), np.array([0.8]))
    0.2
    """
    d0, d1, judge = (np.asarray(a, dtype=np.float64) for a in (d0, d1, judge))
    s = (d0 < d1) * (1.0 - judge) + (d1 < d0) * judge + (d0 == d1) * 0.5
    return float(s.mean())


def jnd_map(ds: np.ndarray, same: np.ndarray) -> float:
    """JND average precision: pairs ranked by increasing distance should be the ones judged "same".

    Precision/recall of the cumulative ``same`` mass, area under the interpolated (monotone) precision
    envelope (PASCAL VOC, all points), as in the reference.

    >>> round(jnd_map(np.array([0.1, 0.2, 0.9]), np.array([1.0, 1.0, 0.0])), 6)
    1.0
    """
    ds, same = np.asarray(ds, dtype=np.float64), np.asarray(same, dtype=np.float64)
    order = np.argsort(ds, kind="stable")
    s = same[order]
    tp = np.cumsum(s)
    fp = np.cumsum(1.0 - s)
    total = s.sum()
    if total <= 0:
        return float("nan")
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).tiny)
    rec = tp / total
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _lab_patches(x: torch.Tensor) -> list[np.ndarray]:
    """``(N, 3, H, W)`` in [0, 1] -> CIELAB ``(H, W, 3)`` float64 arrays, as the reference makes them: its
    loader's [−1, 1] tensor, ``tensor2im`` (``(t + 1) · 127.5`` in float32, truncated to uint8), then
    ``skimage.color.rgb2lab``."""
    from skimage.color import rgb2lab

    t = (x.detach().float().cpu() - 0.5) / 0.5
    u8 = ((t + 1.0) * 127.5).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    return [rgb2lab(im) for im in u8]


def l2_lab_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference's ``lpips.L2`` (Lab): ``½ mean((L_x − L_y)² / 100²)`` over pixels and channels.

    Args:
        x, y: ``(N, 3, H, W)`` in [0, 1].

    Returns:
        ``(N,)`` float64. PSNR is a decreasing function of the same mean, so it ranks pairs alike.
    """
    return torch.tensor(
        [0.5 * np.mean((a / 100.0 - b / 100.0) ** 2) for a, b in zip(_lab_patches(x), _lab_patches(y), strict=True)],
        dtype=torch.float64,
    )


def dssim_lab_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference's ``lpips.DSSIM`` (Lab): ``(1 − SSIM) / 2`` with scikit-image's SSIM (7×7 uniform
    window, sample covariance, ``data_range=100``, mean over the three channels).

    Args:
        x, y: ``(N, 3, H, W)`` in [0, 1], at least 7×7.

    Returns:
        ``(N,)`` float64.
    """
    from skimage.metrics import structural_similarity

    vals = [
        (1.0 - structural_similarity(a, b, data_range=100.0, channel_axis=2)) / 2.0
        for a, b in zip(_lab_patches(x), _lab_patches(y), strict=True)
    ]
    return torch.tensor(vals, dtype=torch.float64)


#: The baseline rows of the paper's 2AFC table: label -> distance.
BASELINES: dict[str, DistanceFn] = {"L2 / PSNR (Lab)": l2_lab_distance, "SSIM (Lab)": dssim_lab_distance}


def human_ceiling(root: str | os.PathLike, split: str = "val") -> dict[str, dict[str, float]]:
    """The human 2AFC ceiling per category: ``mean(p² + (1 − p)²)`` over its triplets.

    A judge agrees with another one with probability ``p² + (1 − p)²`` when a fraction ``p`` of judges
    prefer ``p1`` (Zhang et al. 2018, Sec. 4.1).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "cat"
    >>> for s in ("ref", "p0", "p1", "judge"): (d / s).mkdir(parents=True)
    >>> for i, p in enumerate((0.0, 0.5)):
    ...     np.save(d / "judge" / f"{i}.npy", np.array([p]))
    ...     for s in ("ref", "p0", "p1"): (d / s / f"{i}.png").touch()
    >>> human_ceiling(d)["2afc"]["cat"]
    0.75

    Returns:
        ``{"2afc": {category: ceiling, ..., "mean": ...}}``.
    """
    cats = find_category_dirs(root, "2afc", split)
    res = {}
    for cat in cats:
        ds = TwoAFCDataset([cat])
        p = np.array([float(ds.judge(i)) for i in range(len(ds))], dtype=np.float64)
        res[cat.name] = float(np.mean(p**2 + (1.0 - p) ** 2))
    res["mean"] = float(np.mean(list(res.values())))
    return {"2afc": res}


def evaluate_baselines(
    data: str | os.PathLike, split: str = "val", batch_size: int = 50, progress: bool = True
) -> dict[str, dict[str, dict[str, float]]]:
    """The paper's reference rows on ``data``: the human ceiling, then :data:`BASELINES` (2AFC and JND)."""
    out: dict[str, dict[str, dict[str, float]]] = {"human": human_ceiling(data, split)}
    for label, fn in BASELINES.items():
        out[label] = evaluate(fn, data, split=split, batch_size=batch_size, progress=progress)
    return out


def _loader(ds: torch.utils.data.Dataset, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)


def _score_category(distance: DistanceFn, mode: str, cat: Path, batch_size: int, load_size: int,
                    workers: int, progress: bool) -> float:
    """The 2AFC score or the JND mAP of ``distance`` on one category directory."""
    from tqdm.auto import tqdm

    if mode == "2afc":
        d0s, d1s, js = [], [], []
        data = _loader(TwoAFCDataset([cat], load_size=load_size), batch_size, workers)
        for b in tqdm(data, desc=f"2afc/{cat.name}", disable=not progress):
            d0s.append(distance(b["ref"], b["p0"]).double().cpu())
            d1s.append(distance(b["ref"], b["p1"]).double().cpu())
            js.append(b["judge"].double())
        return score_2afc(torch.cat(d0s).numpy(), torch.cat(d1s).numpy(), torch.cat(js).numpy())
    dd, ss = [], []
    data = _loader(JNDDataset([cat], load_size=load_size), batch_size, workers)
    for b in tqdm(data, desc=f"jnd/{cat.name}", disable=not progress):
        dd.append(distance(b["p0"], b["p1"]).double().cpu())
        ss.append(b["same"].double())
    return jnd_map(torch.cat(dd).numpy(), torch.cat(ss).numpy())


def evaluate(
    distance: DistanceFn,
    root: str | os.PathLike,
    *,
    split: str = "val",
    modes: Sequence[str] = ("2afc", "jnd"),
    batch_size: int = 50,
    load_size: int = 64,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """2AFC score per category and JND mAP per category of a BAPPS tree.

    Args:
        distance: ``(N,3,S,S), (N,3,S,S) in [0,1] -> (N,)`` (e.g. ``LPIPSNet`` under ``inference_mode``).
        root: dataset root, split or category directory (see :func:`find_category_dirs`).
        modes: which judgments to score; a mode whose data is absent is skipped when the other exists.

    Returns:
        ``{"2afc": {category: score, ..., "mean": ...}, "jnd": {...}}`` with scores in [0, 1].

    Raises:
        BAPPSFormatError: none of ``modes`` has data under ``root``.
    """
    out: dict[str, dict[str, float]] = {}
    errors = []
    for mode in modes:
        try:
            cats = find_category_dirs(root, mode, split)  # type: ignore[arg-type]
        except BAPPSFormatError as exc:
            errors.append(str(exc))
            continue
        res = {cat.name: _score_category(distance, mode, cat, batch_size, load_size, workers, progress)
               for cat in cats}
        res["mean"] = float(np.mean(list(res.values())))
        out[mode] = res
    if not out:
        raise BAPPSFormatError("; ".join(errors))
    return out


def evaluate_lpips(net: str, weights: str | None, data: str | os.PathLike, split: str = "val",
                   batch_size: int = 50, device: str = "cpu") -> dict[str, dict[str, float]]:
    """:func:`evaluate` of LPIPS with backbone ``net`` and a calibrated checkpoint ``weights`` (``None``:
    the official v0.1 linear layers)."""
    # The LPIPS network lives with the metric plugins: imported here, when used (the top floor's rule).
    from texbench.nets.lpips import LPIPSNet, load_calibrated

    model = load_calibrated(weights, net)[0] if weights else LPIPSNet(net)
    model = model.to(device).eval()

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(a.to(device), b.to(device))

    return evaluate(dist, data, split=split, batch_size=batch_size)


def format_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Markdown table like the paper's: one row per model, 2AFC per category then JND, in percent."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for label, res in results.items():
        row = {}
        for mode, per_cat in res.items():
            for cat, v in per_cat.items():
                row[f"{mode.upper()} {cat}"] = 100.0 * v
        rows[label] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    # the human row has no JND value: an empty cell, not "nan"
    return df.to_markdown(floatfmt=".1f", missingval="")
