"""Verdicts of a leaderboard (#13): which methods copy, and which neighbours are tied.

Two rules decide a task's order beyond its primary metric, and every leaderboard header states both:

* **Copying.** In tasks scored with the copying measure (texture against the exemplar, style against the
  style image), a method whose mean ``copy-fraction`` is above :data:`COPY_THRESHOLD` is marked
  :data:`COPIES` and ranked after every method that synthesises.
* **Ties.** Adjacent methods of one group (synthesising, copying) whose paired difference on the primary
  metric has a 95% interval containing 0 share a rank (``1–2``); with fewer than :data:`MIN_PAIRS` common
  inputs no verdict is drawn.

References:
    B. Galerne, A. Leclaire, J. Rabin, "A texture synthesis model based on semi-discrete optimal transport
    in patch space", SIAM J. Imaging Sci. 2018 (nearest-neighbour copy maps: innovation vs. copying).
"""

from __future__ import annotations

import math
from typing import Any

from texbench import columns as C

__all__ = [
    "COPIES",
    "COPYING_RULE",
    "COPY_METRIC",
    "COPY_THRESHOLD",
    "MIN_PAIRS",
    "RANKS_RULE",
    "RANK_HI",
    "VS_NEXT",
    "copies_mask",
    "paired_difference",
    "per_input_means",
    "rank_text",
    "rank_with_copies_and_ties",
]

#: the copying measure's metric (texbench.metrics.copying) whose column marks copies
COPY_METRIC = "copy-fraction"
#: A method whose mean copy-fraction is above this is marked "copies" and ranked after every method that
#: synthesises. copy-fraction (texbench.metrics.copying) is the share of an output's 8x8 patches whose
#: nearest exemplar (texture) or style-image (style) patch is within RMS 0.01 (~2.5 grey levels, the PNG
#: quantisation): at distance ~0, a verbatim copy (the nearest-neighbour copy maps of Galerne, Leclaire &
#: Rabin, SIAM J. Imaging Sci. 2018). Without copying such a patch arises only where output and exemplar
#: are both nearly flat. Measured on the quick suite's texture and style tasks (README, "Reading a
#: leaderboard"): the methods that synthesise average 0 (random-phase, Gatys, AdaIN), 0.001 (Reinhard)
#: and 0.019 (patch-OT, up to 0.068 on the smooth marble: hence a method's mean, not each image); the
#: methods that paste average 0.17 (quilting-transfer, tiny preset: 8-12 px blocks, so few 8x8 patches
#: avoid a seam) and 0.73 (quilting). 0.05, one patch in twenty a verbatim copy, lies in that gap, near
#: its geometric middle (0.056); a method measured between 0.02 and 0.17 is near the line either way.
COPY_THRESHOLD = 0.05
#: boolean column: the method copies (mean copy-fraction > COPY_THRESHOLD)
COPIES = "copies"
#: the worst rank a method can take given its ties (``rank`` is the best); ``1–2`` when they differ
RANK_HI = "rank hi"
#: paired difference to the next-ranked method on the primary metric (what decides a tie)
VS_NEXT = "vs next"
#: fewest inputs scored by two adjacent methods for a tie-or-win verdict: the Student-t interval needs 2
MIN_PAIRS = 2


def copies_mask(copy_fraction: Any, threshold: float = COPY_THRESHOLD) -> Any:
    """Which methods copy: mean copy-fraction above ``threshold`` (a missing score copies nothing).

    >>> import pandas as pd
    >>> copies_mask(pd.Series([0.73, 0.02, float("nan")])).tolist()
    [True, False, False]
    """
    return copy_fraction.astype(float).gt(threshold)


def per_input_means(primary_scores: Any) -> Any:
    """Each label's primary score per input, seeds averaged (the pairing unit of ``vs #1`` and ties)."""
    keys = [C.DATASET, C.ITEM, "task_params", "input_hashes"]
    return primary_scores.groupby([C.LABEL, *keys])[C.VALUE].mean()


def paired_difference(per_input: Any, a: str, b: str) -> tuple[float, float, int]:
    """Mean of ``b - a`` over the inputs both labels have scored, its Student-t 95% half-width and n.

    Pairing removes the spread between images; the t interval (not a bootstrap) because n is the number
    of inputs, often 4-24, where the percentile bootstrap's interval is too narrow (with 4 inputs it has
    only 35 distinct resamples)."""
    labels = set(per_input.index.get_level_values(0)) if len(per_input) else set()
    if a not in labels or b not in labels:
        return math.nan, math.nan, 0
    mine, other = per_input.loc[a], per_input.loc[b]
    common = mine.index.intersection(other.index)
    # the leaderboard's own interval; imported here because the leaderboard imports this module
    from texbench.reports.leaderboard import mean_ci

    return mean_ci((other.loc[common] - mine.loc[common]).tolist())


def rank_with_copies_and_ties(df: Any, primary_scores: Any, pcol: str, *, higher_is_better: bool) -> Any:
    """Order and rank ``df`` by ``pcol``: methods that synthesise first, then those marked :data:`COPIES`,
    then those without a primary score; within each group best first.

    Adjacent methods of one group whose paired difference on the primary metric (:func:`paired_difference`)
    has a 95% interval containing 0 share a rank: ``rank`` is the best and :data:`RANK_HI` the worst
    position each may take (1 and 2 for a tied pair, shown "1–2"). With fewer than :data:`MIN_PAIRS`
    common inputs no verdict is drawn: ``vs next n`` says how few, and the rank is shown with "?"."""
    import pandas as pd

    copies = df[COPIES].astype(bool) if COPIES in df else pd.Series(False, index=df.index)
    value = df[pcol].astype(float)
    missing = ~value.map(math.isfinite)
    key = (-value if higher_is_better else value).where(~missing, 0.0)
    order = (df.assign(_group=(missing * 2 + copies.astype(int)), _key=key)
             .sort_values(["_group", "_key"], kind="stable").index)
    df = df.loc[order].copy()
    n = len(df)
    per_input = per_input_means(primary_scores) if len(primary_scores) else primary_scores
    groups = (missing * 2 + copies.astype(int)).loc[order].tolist()
    vals = df[pcol].astype(float).tolist()
    link: list[str] = []  # between position i and i + 1: "tie", "win", "untested" or "" (different groups)
    nxt: list[tuple[float, float, int]] = []
    for i in range(n - 1):
        a, b = df.index[i], df.index[i + 1]
        if groups[i] != groups[i + 1] or groups[i] >= 2:
            link.append("")
            nxt.append((math.nan, math.nan, 0))
            continue
        m, h, k = paired_difference(per_input, a, b) if len(per_input) else (math.nan, math.nan, 0)
        if k < MIN_PAIRS or not math.isfinite(h):
            link.append("untested")
        else:
            link.append("tie" if abs(m) <= h else "win")
        nxt.append((m, h, k))
    nxt.append((math.nan, math.nan, 0))
    lo = [float(i + 1) if math.isfinite(vals[i]) else math.nan for i in range(n)]
    hi = list(lo)
    for i, verdict in enumerate(link):
        if verdict == "tie":  # only neighbours share: A~B and B~C leave A 1–2, B 1–3, C 2–3
            lo[i + 1] = float(i + 1)
            hi[i] = float(i + 2)
    df[C.RANK], df[RANK_HI] = lo, hi
    df[VS_NEXT] = [t[0] for t in nxt]
    df[f"{VS_NEXT} ci95"] = [t[1] for t in nxt]
    df[f"{VS_NEXT} n"] = [t[2] for t in nxt]
    df[f"{VS_NEXT} verdict"] = [*link, ""]
    return df


#: the copy rule as every leaderboard header states it
COPYING_RULE = (
    f"texture and style methods whose mean copy-fraction is above {COPY_THRESHOLD} are marked `copies` and "
    "ranked after every method that synthesises; copy-fraction is the share of an output's 8×8 patches whose "
    "nearest exemplar (style-image) patch is within RMS 0.01, i.e. at distance ~0: a verbatim copy "
    "(nearest-neighbour copy maps, Galerne, Leclaire & Rabin 2018); without copying this happens only in "
    f"flat areas: {COPY_THRESHOLD} (one patch in twenty) lies between the means measured for methods that "
    "synthesise (≤ 0.02) and for those that paste (≥ 0.17) on the quick suite"
)
#: the tie rule as every leaderboard header states it
RANKS_RULE = (
    "adjacent methods (of the same group: synthesising, copying) whose paired difference on the primary metric "
    "(`vs next`: the next-ranked method minus this one, over the inputs both scored, seeds averaged per input, "
    "Student-t 95% interval with n = inputs; like `vs #1` it is the lower-ranked minus the higher-ranked, so "
    "negative on a ↑ metric and positive on a ↓ one) "
    "contains 0 share a rank, shown as `1–2`; with fewer than "
    f"{MIN_PAIRS} common inputs no tie or win is claimed: the rank carries `?` and `vs next` says too few pairs"
)


def rank_text(df: Any) -> list[str]:
    """Ranks as shown: ``2``; ``1–2`` for a tie with a neighbour; ``?`` after a rank left untested against a
    neighbour (fewer than :data:`MIN_PAIRS` common inputs); ``—`` without a primary score."""
    hi = df[RANK_HI] if RANK_HI in df else df[C.RANK]
    verdicts = list(df[f"{VS_NEXT} verdict"]) if f"{VS_NEXT} verdict" in df else [""] * len(df)
    out = []
    for i, (lo, up) in enumerate(zip(df[C.RANK], hi)):
        if not math.isfinite(lo):
            out.append("—")
            continue
        text = f"{int(lo)}–{int(up)}" if math.isfinite(up) and up > lo else str(int(lo))
        untested = verdicts[i] == "untested" or (i > 0 and verdicts[i - 1] == "untested")
        out.append(text + ("?" if untested else ""))
    return out
