"""An HTML report of a run: the leaderboards (sortable), then each item's inputs and outputs side by side
(up to ``max_items`` items per task, 50 by default, at the lowest seed).

``report.html`` sits in the run directory and links the stored PNGs by relative path, so the folder can
be copied or served as it is; it needs no network and no JavaScript library (a few lines sort the
tables). Like the Markdown leaderboard it is regenerated from the store alone, and it states the suite,
the code version, the environment and the weights behind every number.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from texbench import columns as C
from texbench.outputs import preview_path
from texbench.store import Store

__all__ = ["report_html", "tradeoff_svg", "write_html"]

_ROLE_ORDER = ("exemplar", "content", "style", "degraded", "clean")

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer} td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold;background:#eef7ee}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}
.row{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:14px}
figure{margin:0;width:140px;font-size:12px} figure img{width:140px;height:140px;object-fit:contain;
background:#eee;image-rendering:pixelated} figcaption{overflow:hidden;text-overflow:ellipsis}
.missing{width:140px;height:140px;background:#f8e0e0;display:flex;align-items:center;justify-content:center}
code{background:#f5f5f5}
figure.plot{width:auto;margin:.5em 0 1.5em} figure.plot figcaption{font-size:13px;color:#444}
p.notes{font-size:13px;color:#444;max-width:1100px}
tr.copies td{color:#777;font-style:italic}
svg.tradeoff{font-size:11px;margin:.2em 0 1.5em} svg.tradeoff text{fill:#222}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click', function(){
    var i = th.cellIndex, tb = th.closest('table').tBodies[0], rows = Array.from(tb.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    var key = function(r){ var v = parseFloat(r.cells[i].dataset.v); return isNaN(v) ? null : v; };
    rows.sort(function(a, b){
      var x = key(a), y = key(b);
      if (x === null && y === null) {
        var t = a.cells[i].textContent.localeCompare(b.cells[i].textContent);
        return asc ? t : -t;
      }
      if (x === null) return 1; if (y === null) return -1;
      return asc ? x - y : y - x;
    });
    rows.forEach(function(r){ tb.appendChild(r); });
  });
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return repr(f) if math.isfinite(f) else ""


def _table(df: Any) -> str:
    """One leaderboard table; the best mean of each metric column is highlighted."""
    from texbench.reports.leaderboard import display_table
    from texbench.reports.oracle import ORACLE_MARK

    show = display_table(df)
    raw: dict[str, str | None] = {}  # displayed column -> column of df holding its sortable number
    for c in show.columns:
        base = c[:-2] if c.endswith((" ↑", " ↓")) else c
        base = base.removesuffix(ORACLE_MARK)
        raw[c] = base if base in df else None
    best: dict[str, Any] = {}
    for c, base in raw.items():
        if base is None or base not in df.attrs.get("columns", []):
            continue
        d = df.attrs["directions"].get(base)
        vals = df[base].astype(float)
        if d is not None and vals.notna().any():
            best[c] = vals.max() if d else vals.min()
    head = "".join(f"<th>{_e(c)}</th>" for c in [C.LABEL, *show.columns])
    body = []
    for label, row in show.iterrows():
        cells = [f'<td data-v="">{_e(label)}</td>']
        for c in show.columns:
            base = raw[c]
            v = df.at[label, base] if base is not None else None
            cls = ' class="best"' if c in best and v is not None and _num(v) and float(v) == best[c] else ""
            cells.append(f'<td{cls} data-v="{_num(v)}">{_e(row[c])}</td>')
        copies = bool(df.at[label, "copies"]) if "copies" in df else False
        body.append(('<tr class="copies">' if copies else "<tr>") + "".join(cells) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).

    >>> _ticks(37.0, 171.0)
    [50.0, 100.0, 150.0]
    """
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    raw = span / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [float(round(first + i * step, 10)) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tradeoff_svg(df: Any, task: str, *, width: int = 720, height: int = 360) -> str:
    """The quality/innovation trade-off of one task as inline SVG: each method's primary metric (mean, 95%
    CI bar) against its mean copy-fraction (square-root scale), the copy threshold as a dashed line, the
    methods marked ``copies`` in grey and the Pareto frontier (no other method both copies less and scores
    better) as a line; ``""`` when the task has no copying measure or no method has both numbers.

    Each point is a ``<circle class="method">`` with ``data-label``, ``data-x`` (copy-fraction) and ``data-y``
    (primary mean), so a test or a script can read the picture back."""
    from texbench.reports.verdicts import COPIES, COPY_THRESHOLD

    ccol, pcol = df.attrs.get("copy_column"), df.attrs.get("primary")
    if not ccol or not pcol or ccol not in df or pcol not in df:
        return ""
    pts = []
    for label in df.index:
        x, y = float(df.at[label, ccol]), float(df.at[label, pcol])
        h = float(df.at[label, f"{pcol} ci95"]) if f"{pcol} ci95" in df else math.nan
        if math.isfinite(x) and math.isfinite(y):
            pts.append((str(label), x, y, h if math.isfinite(h) else 0.0, bool(df.at[label, COPIES])
                        if COPIES in df else False))
    if not pts:
        return ""
    higher = bool(df.attrs.get("directions", {}).get(pcol))
    left, right, top, bottom = 64, 150, 16, 44
    pw, ph = width - left - right, height - top - bottom
    ylo = min(p[2] - p[3] for p in pts)
    yhi = max(p[2] + p[3] for p in pts)
    if ylo >= 0 and not higher:
        ylo = 0.0  # a distance: its axis starts at 0
    pad = 0.05 * (yhi - ylo if yhi > ylo else max(abs(yhi), 1.0))
    ylo, yhi = ylo - (pad if ylo != 0 else 0), yhi + pad

    def sx(v: float) -> float:  # square-root scale: spreads the small fractions where the threshold is
        return left + pw * math.sqrt(min(max(v, 0.0), 1.0))

    def sy(v: float) -> float:
        return top + ph * (1 - (v - ylo) / (yhi - ylo))

    out = [f'<svg class="tradeoff" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" data-task="{_e(task)}">',
           f"<title>{_e(task)}: {_e(pcol)} against {_e(ccol)} per method</title>",
           f'<rect x="{sx(COPY_THRESHOLD):.1f}" y="{top}" width="{sx(1) - sx(COPY_THRESHOLD):.1f}" height="{ph}" '
           'fill="#f6eeee"/>',
           f'<line x1="{sx(COPY_THRESHOLD):.1f}" y1="{top}" x2="{sx(COPY_THRESHOLD):.1f}" y2="{top + ph}" '
           'stroke="#b55" stroke-dasharray="4 3"/>',
           f'<text x="{sx(COPY_THRESHOLD) + 4:.1f}" y="{top + 12}">copies (&gt; {COPY_THRESHOLD})</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    for t in (0.0, 0.01, 0.05, 0.2, 0.5, 1.0):
        out.append(f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" stroke="#888"/>'
                   f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(ylo, yhi):
        out.append(f'<line x1="{left - 4}" y1="{sy(t):.1f}" x2="{left}" y2="{sy(t):.1f}" stroke="#888"/>'
                   f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(ccol)} '
               "(verbatim-copied patches, √ scale; less copies)</text>")
    out.append(f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f"{_e(pcol)} {'↑' if higher else '↓'} (mean, 95% CI)</text>")
    # Pareto frontier: sweep by copy-fraction, keep each point better than every one that copies less
    frontier, best = [], None
    for p in sorted(pts, key=lambda p: (p[1], -p[2] if higher else p[2])):
        if best is None or (p[2] > best if higher else p[2] < best):
            frontier.append(p)
            best = p[2]
    if len(frontier) > 1:
        path = " ".join(f"{sx(p[1]):.1f},{sy(p[2]):.1f}" for p in frontier)
        out.append(f'<polyline class="frontier" points="{path}" fill="none" stroke="#4a7" stroke-width="1.5"/>')
    for label, x, y, h, copies in pts:
        colour = "#999" if copies else "#2a62b8"
        if h > 0:
            out.append(f'<line x1="{sx(x):.1f}" y1="{sy(y - h):.1f}" x2="{sx(x):.1f}" y2="{sy(y + h):.1f}" '
                       f'stroke="{colour}"/>')
        out.append(f'<circle class="method" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{colour}" '
                   f'data-label="{_e(label)}" data-x="{x!r}" data-y="{y!r}" data-copies="{int(copies)}">'
                   f"<title>{_e(label)}: {_e(pcol)} {y:.4g}, {_e(ccol)} {x:.3f}</title></circle>")
        out.append(f'<text x="{sx(x) + 8:.1f}" y="{sy(y) + 4:.1f}">{_e(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _gallery(
    jobs: Any, scores: Any, inputs: dict[str, str], task: str, primary: str | None, max_items: int
) -> str:
    """Per item (lowest seed): its inputs, then each method's output with its primary score.

    ``jobs``/``scores``: the store's frames; ``inputs``: input hash -> stored path."""
    tj = jobs[jobs[C.TASK] == task]
    labels = list(dict.fromkeys(tj[C.LABEL]))
    prim = {}
    if primary and len(scores):
        ps = scores[(scores[C.TASK] == task) & (scores[C.COLUMN] == primary)]
        prim = dict(zip(ps[C.JOB_KEY], ps[C.VALUE]))
    out = []
    items = list(dict.fromkeys(tj[C.ITEM]))
    for item in items[:max_items]:
        ij = tj[tj[C.ITEM] == item].sort_values(C.SEED)
        hashes = json.loads(ij.iloc[0]["input_hashes"])
        figs = []
        for role in _ROLE_ORDER:
            if role in hashes and hashes[role] in inputs:
                src = _e(inputs[hashes[role]])
                figs.append(f'<figure><a href="{src}"><img src="{src}" loading="lazy" alt="{_e(role)}"></a>'
                            f"<figcaption>{_e(role)}</figcaption></figure>")
        for lab in labels:
            lj = ij[ij[C.LABEL] == lab]
            ok = lj[(lj[C.STATUS] == C.STATUS_OK) & lj[C.OUTPUT].notna()]  # a job stored without an image shows none
            if len(ok):
                r = ok.iloc[0]
                v = prim.get(r[C.JOB_KEY])
                score = f" · {primary} {float(v):.4g}" if v is not None and _num(v) else ""
                # a volume links to its .npy and shows its slice montage (texbench.outputs)
                href, src = _e(r[C.OUTPUT]), _e(preview_path(r[C.OUTPUT]))
                figs.append(f'<figure><a href="{href}"><img src="{src}" loading="lazy" alt="{_e(lab)}"></a>'
                            f'<figcaption title="{_e(lab)}">{_e(lab)}{_e(score)}</figcaption></figure>')
            else:
                err = lj.iloc[0][C.ERROR] if len(lj) else "not run"
                figs.append(f'<figure><div class="missing" title="{_e(err)}">failed</div>'
                            f"<figcaption>{_e(lab)}</figcaption></figure>")
        out.append(f"<h4>{_e(item)}</h4><div class=\"row\">{''.join(figs)}</div>")
    if len(items) > max_items:
        out.append(f"<p>… and {len(items) - max_items} more items (all are in <code>images/</code>).</p>")
    return "\n".join(out)


def _trajectories(trajectories: Any, task: str) -> str:
    """One table's oracle trajectories (``task``: its title) as an inline SVG figure under a heading (empty when it has none);
    a failure costs the picture, never the page."""
    from texbench.reports.curves import trajectory_svg

    tt = trajectories  # already the table's own (one task variant)
    if not len(tt):
        return ""
    try:
        svg = trajectory_svg(tt)
    except Exception as exc:  # noqa: BLE001  a picture must never cost the report
        return f'<p class="warn">trajectory plot not drawn: {_e(exc)}</p>'
    return f"<h3>Trajectories ({_e(task)})</h3>{svg}" if svg else ""


def report_html(store: Store, tables: dict[str, Any] | None = None, *, max_items: int = 50) -> str:
    """The whole report as one HTML document (image links relative to the run directory)."""
    from texbench.reports.leaderboard import (
        RANDOM_INIT_WARNING,
        leaderboard_tables,
        problems,
        report_header,
    )
    from texbench.reports.oracle import column_notes
    from texbench.reports.tables import params_text, table_of_jobs
    from texbench.tasks import TASKS

    tables = leaderboard_tables(store) if tables is None else tables
    h = report_header(store)
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_e(h['title'])}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{_e(h['title'])}</h1>"]
    if h["description"]:
        parts.append(f"<p>{_e(h['description'])}</p>")
    weights = "; ".join(f"<code>{_e(p)}</code>" for p in h["weights"]) or "none (weight-free methods and metrics)"
    parts.append(f"<ul><li>suite: <code>{_e(h['suite'])}</code></li><li>code: {_e(h['code'])}</li>"
                 f"<li>environment: {_e(h['environment'])}</li><li>weights: {weights}</li>"
                 f"<li>values: {_e(h['values'])}; click a column to sort</li>"
                 f"<li>ranks: {_e(h['ranks'])}</li>"
                 + (f"<li>copying: {_e(h['copying'])}</li>" if h["copying"] else "") + "</ul>")
    if h["random_init"]:
        parts.append(f'<p class="warn">{_e(RANDOM_INIT_WARNING)}</p>')
    jobs = store.jobs_frame()
    scores = store.scores_frame()
    inputs = store.input_paths()
    trajectories = store.trajectories_frame()
    known = set(jobs[C.JOB_KEY])
    variants = table_of_jobs(jobs, list(TASKS))
    for title, df in tables.items():
        task = df.attrs.get("task", title)
        desc = TASKS[task].description if task in TASKS else ""
        # the table's own jobs (one task variant: dataset and task parameters), else all of the task's
        keys = set(variants[title]["job_keys"]) if title in variants else set(jobs[jobs[C.TASK] == task][C.JOB_KEY])
        tj = jobs[jobs[C.JOB_KEY].isin(keys & known)]
        parts.append(f"<h2>{_e(title)}</h2>" + (f"<p>{_e(desc)}</p>" if desc else ""))
        parts.append(f"<p>dataset: {_e(df.attrs.get('dataset', ', '.join(sorted(set(tj[C.DATASET])))))}; "
                     f"task parameters: {_e(params_text(df.attrs.get('task_params')))}; primary metric: "
                     f"{_e(df.attrs.get('primary'))}</p>")
        parts.append(_table(df))
        parts += [f'<p class="notes">{_e(n)}</p>' for n in column_notes(df)]
        picture = tradeoff_svg(df, title)
        if picture:
            parts.append(f"<h3>Quality against copying ({_e(title)})</h3>{picture}")
        tt = trajectories[trajectories[C.JOB_KEY].isin(keys)] if len(trajectories) else trajectories
        parts.append(_trajectories(tt, title))
        parts.append(f"<h3>Outputs ({_e(title)})</h3>")
        ts = scores[scores[C.JOB_KEY].isin(keys)] if len(scores) else scores
        parts.append(_gallery(tj, ts, inputs, task, df.attrs.get("primary"), max_items))
    for title, items in problems(store).items():
        if items:
            parts.append(f"<h2>{_e(title)}</h2><ul>" + "".join(f"<li>{_e(m)}</li>" for m in items) + "</ul>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


def write_html(store: Store, tables: dict[str, Any] | None = None, out_dir: str | Path | None = None) -> Path:
    """Write ``report.html`` into the run directory (atomically) and return its path."""
    from texbench.imageio import atomic_write_bytes

    out = Path(out_dir) if out_dir else store.root
    dest = out / "report.html"
    atomic_write_bytes(dest, report_html(store, tables).encode())
    return dest
