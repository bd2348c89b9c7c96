"""Oracle trajectories as inline SVG: the primary metric of each reported iterate against the iteration,
one line per job (input × seed), one colour per method, the best iterate of each job marked.

Plain SVG written here (no plotting library, no script), so ``report.html`` stays one self-contained page.
"""

from __future__ import annotations

import html
import math
from typing import Any

from texbench import columns as C

__all__ = ["trajectory_svg"]

#: colour-blind-safe categorical palette (Okabe & Ito)
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
_W, _H = 640, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 150, 24, 40


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi].

    >>> _ticks(0, 1800)
    [0.0, 500.0, 1000.0, 1500.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def trajectory_svg(tt: Any, *, max_lines: int = 60) -> str:
    """One SVG figure of a task's trajectories (``Store.trajectories_frame()`` rows of one task); empty
    string when there are none.

    Args:
        tt: rows with ``label``, ``item``, ``seed``, ``metric``, ``higher_is_better``, ``iterations``,
            ``values``.
        max_lines: draw at most this many jobs (the first ones of each method in turn); the caption says
            how many were left out.
    """
    if tt is None or not len(tt):
        return ""
    metric = str(tt["metric"].iloc[0])
    hib = tt["higher_is_better"].iloc[0]
    hib = True if hib is None or hib != hib else bool(hib)
    labels = list(dict.fromkeys(tt[C.LABEL]))
    # round-robin over methods so that every method is drawn when the cap bites
    by_label = {lab: [r for _, r in tt[tt[C.LABEL] == lab].iterrows()] for lab in labels}
    rows: list[Any] = []
    depth = 0
    while len(rows) < max_lines and any(depth < len(v) for v in by_label.values()):
        rows += [v[depth] for v in by_label.values() if depth < len(v)][: max_lines - len(rows)]
        depth += 1
    points = [(i, v) for r in rows for i, v in zip(r["iterations"], r["values"]) if math.isfinite(v)]
    if not points:
        return ""
    x0, x1 = 0.0, float(max(i for i, _ in points))
    y0, y1 = min(v for _, v in points), max(v for _, v in points)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(i: float) -> float:
        return _LEFT + (i - x0) / max(x1 - x0, 1e-9) * pw

    def sy(v: float) -> float:
        return _TOP + (y1 - v) / (y1 - y0) * ph

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
           f'role="img" aria-label="{e(metric)} of the reported iterates against the iteration">',
           f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" y1="{_TOP + ph}" x2="{sx(t):.1f}" y2="{_TOP + ph + 4}" stroke="#999"/>'
                   f'<text x="{sx(t):.1f}" y="{_TOP + ph + 16}" font-size="11" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{_LEFT - 4}" y1="{sy(t):.1f}" x2="{_LEFT + pw}" y2="{sy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{_LEFT - 6}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{_LEFT + pw / 2}" y="{_H - 6}" font-size="12" text-anchor="middle">iteration</text>'
               f'<text x="14" y="{_TOP + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {_TOP + ph / 2})">{e(metric)} vs clean (oracle)</text>')
    colour = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(labels)}
    for r in rows:
        pts = [(i, v) for i, v in zip(r["iterations"], r["values"]) if math.isfinite(v)]
        if not pts:
            continue
        c = colour[r[C.LABEL]]
        path = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in pts)
        bi, bv = (max if hib else min)(pts, key=lambda p: p[1])
        title = e(f"{r[C.LABEL]} / {r[C.ITEM]} / seed {r[C.SEED]}: best {metric} {bv:.4g} at iteration {bi}, "
                  f"last {pts[-1][1]:.4g} at {pts[-1][0]}")
        out.append(f'<g><title>{title}</title><polyline fill="none" stroke="{c}" stroke-width="1.3" '
                   f'stroke-opacity="0.8" points="{path}"/>'
                   f'<circle cx="{sx(bi):.1f}" cy="{sy(bv):.1f}" r="3" fill="{c}"/></g>')
    for k, lab in enumerate(labels):
        y = _TOP + 12 + 16 * k
        out.append(f'<line x1="{_LEFT + pw + 10}" y1="{y}" x2="{_LEFT + pw + 28}" y2="{y}" stroke="{colour[lab]}" '
                   f'stroke-width="2"/><text x="{_LEFT + pw + 32}" y="{y + 4}" font-size="11">{e(str(lab))}</text>')
    out.append("</svg>")
    left_out = len(tt) - len(rows)
    caption = (f"{e(metric)} of each reported iterate against the clean image (an oracle: the method never sees "
               f"it), one line per input × seed; a dot marks each line's best iterate")
    if left_out:
        caption += f"; {left_out} more runs not drawn"
    return f'<figure class="plot">{"".join(out)}<figcaption>{caption}.</figcaption></figure>'
