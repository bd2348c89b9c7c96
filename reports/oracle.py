"""Leaderboard columns beside the ranked ones: the oracle trajectory columns (``<metric>@best``, ``best
iter``) and the sentences that explain special columns under a table (oracle, shift-tolerant diversity,
peak memory).
"""

from __future__ import annotations

import math
from typing import Any

from texbench import columns as C

__all__ = ["COLUMN_NOTES", "ORACLE_MARK", "add_oracle_columns", "column_notes"]

#: appended to the displayed name of an oracle column (a value no method could choose by itself)
ORACLE_MARK = " (oracle)"
#: what the column notes under a table say, by the column they explain
COLUMN_NOTES = {
    C.AT_BEST: "{col} (oracle): the best {metric} among the method's reported intermediate outputs and its "
    "final output, each scored against the clean image, which the method never sees, so no method could "
    "pick that iterate by itself; it shows what stopping at the right iteration would give (over-fitting "
    "shows as {col} above {metric}). best iter (oracle): the median iteration of that iterate. Ranking uses "
    "the final value.",
    "diversity": "diversity: mean LPIPS between the outputs of two seeds for the same input, after "
    "circularly shifting one onto the other where they agree best (FFT cross-correlation), so outputs "
    "that are shifted copies of one image score 0 (pixel-aligned LPIPS would rate them diverse); a "
    "deterministic method scores 0.",
    C.PEAK_RSS: "peak RSS MiB: the median job's high-water mark of the resident memory of the process that "
    "ran it (with the local executor that process is also the driver); peak CUDA MiB: torch's maximum "
    "allocated memory on the GPU during the job.",
}


def add_oracle_columns(df: Any, tt: Any, ts: Any, columns: dict[str, bool | None]) -> list[str]:
    """``<metric>@best`` (mean ± CI over jobs of the best score among a job's reported iterates and its
    final output) and ``best iter`` (median iteration of that iterate; the final output counts as the
    last reported iteration), for the labels whose jobs stored a trajectory; returns the columns added.

    An oracle: the iterates are scored against the reference the method never sees, so no method could
    choose that iterate itself. It shows what stopping at the right time would give (Deep Image Prior's
    over-fitting), beside the final value that ranks."""
    if tt is None or not len(tt):
        return []
    metric = tt["metric"].iloc[0]
    hib = tt["higher_is_better"].iloc[0]
    hib = True if hib is None or hib != hib else bool(hib)  # NULL: PSNR-like
    final = {}
    if len(ts):
        fs = ts[(ts["metric"] == metric) & (ts["ref"] == tt["ref"].iloc[0])]
        final = dict(zip(fs[C.JOB_KEY], fs[C.VALUE]))
    best_col = metric + C.AT_BEST
    per_label: dict[str, tuple[list[float], list[int]]] = {}
    for _, r in tt[tt["metric"] == metric].iterrows():
        points = list(zip(r["values"], r["iterations"]))
        f = final.get(r[C.JOB_KEY])
        if f is not None and math.isfinite(f):
            points.append((float(f), max(r["iterations"])))
        points = [pt for pt in points if math.isfinite(pt[0])]
        if not points:
            continue
        value, it = (max if hib else min)(points, key=lambda pt: pt[0])
        vals, its = per_label.setdefault(r[C.LABEL], ([], []))
        vals.append(value)
        its.append(it)
    if not per_label:
        return []
    import numpy as np

    for lab in df.index:
        vals, its = per_label.get(lab, ([], []))
        df.loc[lab, best_col], df.loc[lab, f"{best_col} ci95"], df.loc[lab, f"{best_col} n"] = _mean_ci(vals)
        df.loc[lab, C.BEST_ITERATION] = float(np.median(its)) if its else math.nan
        df.loc[lab, f"{C.BEST_ITERATION} ci95"], df.loc[lab, f"{C.BEST_ITERATION} n"] = math.nan, len(its)
    columns[best_col], columns[C.BEST_ITERATION] = hib, None
    return [best_col, C.BEST_ITERATION]


def column_notes(df: Any) -> list[str]:
    """One sentence per special column the table shows (oracle columns, shift-tolerant diversity, peak
    memory), for the line under the table."""
    notes = []
    for col in df.attrs.get("oracle", ()):
        if col.endswith(C.AT_BEST):
            notes.append(COLUMN_NOTES[C.AT_BEST].format(col=col, metric=col[: -len(C.AT_BEST)]))
    if "diversity" in df.attrs.get("columns", ()):
        notes.append(COLUMN_NOTES["diversity"])
    if C.PEAK_RSS in df or C.PEAK_CUDA in df:
        notes.append(COLUMN_NOTES[C.PEAK_RSS])
    return notes


def _mean_ci(values: list[float]) -> tuple[float, float, int]:
    from texbench.reports.leaderboard import mean_ci

    return mean_ci(values)
