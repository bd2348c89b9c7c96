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

__all__ = ["report_html", "write_html"]

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

    show = display_table(df)
    raw: dict[str, str | None] = {}  # displayed column -> column of df holding its sortable number
    for c in show.columns:
        base = c[:-2] if c.endswith((" ↑", " ↓")) else c
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
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


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
            ok = lj[lj[C.STATUS] == C.STATUS_OK]
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


def report_html(store: Store, tables: dict[str, Any] | None = None, *, max_items: int = 50) -> str:
    """The whole report as one HTML document (image links relative to the run directory)."""
    from texbench.reports.leaderboard import RANDOM_INIT_WARNING, leaderboard_tables, problems, report_header
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
                 f"<li>values: {_e(h['values'])}; click a column to sort</li></ul>")
    if h["random_init"]:
        parts.append(f'<p class="warn">{_e(RANDOM_INIT_WARNING)}</p>')
    jobs = store.jobs_frame()
    scores = store.scores_frame()
    inputs = store.input_paths()
    for task, df in tables.items():
        desc = TASKS[task].description if task in TASKS else ""
        tj = jobs[jobs[C.TASK] == task]
        parts.append(f"<h2>{_e(task)}</h2>" + (f"<p>{_e(desc)}</p>" if desc else ""))
        parts.append(f"<p>dataset: {_e(', '.join(sorted(set(tj[C.DATASET]))))}; primary metric: "
                     f"{_e(df.attrs.get('primary'))}</p>")
        parts.append(_table(df))
        parts.append(f"<h3>Outputs ({_e(task)})</h3>")
        parts.append(_gallery(jobs, scores, inputs, task, df.attrs.get("primary"), max_items))
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
