"""Leaderboards from a results store: pandas tables, Markdown and CSV, no method re-run.

One table per task variant (task, dataset, task parameters; a task with one variant is titled by its
name, see :mod:`texbench.reports.tables`): rows are methods (suite labels); per-image metrics are reported as the mean with a
95% confidence interval (Student t over images × seeds), seed-pair diversity as a mean ± CI over items,
set-level metrics (FID, KID) as their value (mean ± CI over seeds when there are several); for the style
task, ArtFID = (1 + LPIPS to the content) × (1 + FID to the styles) from those means (Wright & Ommer,
"ArtFID: Quantitative Evaluation of Neural Style Transfer", GCPR 2022); then the median seconds per image,
for methods that train per input (Texture Networks, Johnson et al.) the total seconds of their distinct
trainings (``train s``, each cached training counted once), the number of failed jobs, and the rank by
the task's primary metric.

Size: a little over 500 lines because one module holds the table builder and its three renderings
(pandas, Markdown, CSV) that must agree column for column; the ranking rules live in
:mod:`texbench.reports.verdicts` and the oracle columns in :mod:`texbench.reports.oracle`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from texbench import columns as C
from texbench.reports.oracle import ORACLE_MARK, add_oracle_columns, column_notes
from texbench.reports.tables import params_text
from texbench.reports.verdicts import (
    COPIES,
    COPY_METRIC,
    COPYING_RULE,
    RANKS_RULE,
    VS_NEXT,
    copies_mask,
    rank_text,
    rank_with_copies_and_ties,
)
from texbench.store import Store

__all__ = [
    "ARTFID",
    "display_table",
    "grid_name",
    "leaderboard_markdown",
    "leaderboard_tables",
    "md_escape",
    "mean_ci",
    "problems",
    "report_header",
    "write_leaderboard",
]

#: derived column of the style task: (1 + lpips-content) * (1 + fid-style)
ARTFID = "artfid"
#: paired difference to the first-ranked method on the primary metric
VS_FIRST = "vs #1"
#: CSV columns naming a row's table (title) and its task parameters (JSON)
TABLE = "table"
TASK_PARAMS = "task params"
def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the Student-t confidence interval, and count (NaN half-width for n < 2).

    >>> m, h, n = mean_ci([1.0, 2.0, 3.0])
    >>> (m, round(h, 4), n)
    (2.0, 2.4841, 3)
    """
    import numpy as np
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    sem = float(v.std(ddof=1) / math.sqrt(n))
    return float(v.mean()), float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sem), n


class _Directions:
    """Each score column's ranking direction, read from the store (recorded with every score); for rows
    written before texbench stored it, from the installed metric plugins, and the report says so."""

    def __init__(self) -> None:
        self.from_registry: set[str] = set()

    def of(self, scores: Any) -> bool | None:
        """The direction stored with these scores of one column (the first one recorded), else the
        registry's for their metric; None when neither knows (the column is then not marked or ranked by it)."""
        if "higher_is_better" in scores:
            stored = [v for v in scores["higher_is_better"] if v is not None and v == v]  # v == v: not NaN
            if stored:
                return bool(stored[0])
        metric = scores["metric"].iloc[0]
        self.from_registry.add(metric)
        return _registry_direction(metric)

    def warn(self, run: Path) -> None:
        if self.from_registry:
            import sys

            print(f"note: {run}: no ranking direction is stored for the scores of "
                  f"{', '.join(sorted(self.from_registry))} (written by an older texbench); "
                  "it is taken from the installed metric plugins", file=sys.stderr)


def _registry_direction(metric: str) -> bool | None:
    from texbench import registry

    try:
        return bool(registry.metrics.get(metric).higher_is_better)
    except Exception:
        return None


def _oneline(text: Any) -> str:
    """An error message as one Markdown-safe line."""
    return " ".join(str(text).split()).replace("`", "'")


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*`<>"})


def md_escape(text: Any) -> str:
    """A name (method label, dataset, item, column) as text in a Markdown table cell or line: one line,
    with the characters Markdown would read as syntax (``|`` ends a cell) backslash-escaped.

    >>> md_escape("a|b *c*")
    'a\\\\|b \\\\*c\\\\*'
    """
    return " ".join(str(text).split()).translate(_MD_SPECIAL)


def _fmt(mean: float, half: float) -> str:
    if not math.isfinite(mean):
        return "—"
    digits = 4 if abs(mean) < 1 else 2
    if math.isfinite(half):
        return f"{mean:.{digits}f} ± {half:.{digits}f}"
    return f"{mean:.{digits}f}"


def _fmt_signed(mean: float, half: float) -> str:
    text = _fmt(mean, half)
    return text if text == "—" or mean < 0 else "+" + text


def _train_seconds(jobs: Any) -> float | None:
    """Total seconds of the distinct trainings behind these jobs (methods that train per input record
    ``train_key``/``train_seconds``, see ``Synthesizer.record_training``); None when none trained."""
    seen: dict[str, float] = {}
    for raw in jobs[C.INFO].dropna() if C.INFO in jobs else []:
        try:
            info = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            continue
        if isinstance(info, dict) and "train_key" in info:
            seen[str(info["train_key"])] = float(info.get("train_seconds") or 0.0)
    return sum(seen.values()) if seen else None


def _paired_vs_first(df: Any, primary_scores: Any) -> None:
    """Add ``vs #1`` columns: each method's mean paired difference to the first-ranked method on the
    primary metric, with its 95% CI over the inputs both have scored.

    An input is identified by what its jobs received (dataset, item, task parameters such as σ, input
    image hashes), never by a name alone; each method's scores are first averaged over seeds per input,
    so n is the number of inputs and extra seeds of a deterministic method do not narrow the interval.
    Paired differences remove the spread between images, so a gap whose interval excludes 0 is a real one
    even where the two methods' own intervals overlap."""
    keys = [C.DATASET, C.ITEM, "task_params", "input_hashes"]
    per_input = primary_scores.groupby([C.LABEL, *keys])[C.VALUE].mean()
    best = df.index[0]
    if best not in per_input.index.get_level_values(0):
        return
    ref = per_input.loc[best]
    for lab in df.index:
        if lab == best:
            m, h, n = 0.0, math.nan, int(ref.notna().sum())
        elif lab in per_input.index.get_level_values(0):
            mine = per_input.loc[lab]
            common = mine.index.intersection(ref.index)
            m, h, n = mean_ci((mine.loc[common] - ref.loc[common]).tolist())
        else:
            m, h, n = math.nan, math.nan, 0
        df.loc[lab, VS_FIRST], df.loc[lab, f"{VS_FIRST} ci95"], df.loc[lab, f"{VS_FIRST} n"] = m, h, n


def _metric_column(order: list[str], ts: Any, metric: str) -> str | None:
    """The first score column computed by ``metric`` (None when the task has none)."""
    if not len(ts):
        return None
    per_image = set(ts[C.COLUMN])
    return next((c for c in order if c in per_image and ts[ts[C.COLUMN] == c]["metric"].iloc[0] == metric), None)


def leaderboard_tables(store: Store) -> dict[str, Any]:
    """Table title -> DataFrame indexed by method label, with ``<col>``, ``<col> ci95``, ``<col> n`` columns,
    ``median s/img``, ``failed`` and ``rank``; ``df.attrs`` holds the column directions, the primary
    metric and the table's ``task``, ``dataset`` and ``task_params``.

    One table per task variant (:mod:`texbench.reports.tables`): a task run on one dataset with one set of
    parameters is titled by its name; one run on several (``denoise`` at σ = 15, 25, 50) has a table per
    variant, ``denoise[kodak24; sigma=25]``, so no row averages over noise levels or datasets.

    Ranking uses only what the store holds: each score's direction and each task's primary metric, both
    recorded when the run scored; for a run written before they were, the registry's and the task's."""
    from texbench.reports.tables import table_of_jobs
    from texbench.tasks import TASKS

    jobs = store.jobs_frame()
    scores = store.scores_frame()
    groups = store.group_scores_frame()
    trajectories = store.trajectories_frame()
    primaries = store.primary_metrics()
    directions = _Directions()
    tables = {}
    known = set(jobs[C.JOB_KEY])
    for title, variant in table_of_jobs(jobs, list(TASKS)).items():
        task, keys = variant["task"], set(variant["job_keys"])
        primary = primaries.get(task) or (TASKS[task].primary_metric if task in TASKS else "")
        df = _task_table(
            jobs[jobs[C.JOB_KEY].isin(keys)],
            scores[scores[C.JOB_KEY].isin(keys)] if len(scores) else scores,
            groups[_members_within(groups, keys, known, task, variant["dataset"])] if len(groups) else groups,
            primary,
            directions,
            trajectories[trajectories[C.JOB_KEY].isin(keys)] if len(trajectories) else trajectories,
        )
        df.attrs.update(task=task, dataset=variant["dataset"], task_params=variant["task_params"])
        tables[title] = df
    directions.warn(store.root)
    return tables


def _members_within(groups: Any, keys: set[str], known: set[str], task: str, dataset: str) -> list[bool]:
    """Which group scores (FID, KID over a set; diversity over seeds) belong to the table of the jobs
    ``keys``: those computed over its jobs only (of the ``known`` jobs the report shows), so a group that
    mixes variants (written before groups were split by task parameters) is in no table; a group naming
    none of the known jobs goes by its own task and dataset."""
    out = []
    for m, t, d in zip(groups["members"], groups[C.TASK], groups[C.DATASET]):
        mine = set(json.loads(m)) & known
        out.append(mine <= keys if mine else (t == task and d == dataset))
    return out


def _task_table(tj: Any, ts: Any, tg: Any, primary: str, directions: _Directions, tt: Any = None) -> Any:
    """One task's leaderboard from its jobs, scores, group scores and oracle trajectories ``tt``, ranked
    by ``primary``."""
    import pandas as pd

    labels = list(dict.fromkeys(tj[C.LABEL]))
    rows: dict[str, dict[str, Any]] = {lab: {} for lab in labels}
    columns: dict[str, bool | None] = {}  # column -> direction, in display order
    for col in dict.fromkeys(ts[C.COLUMN]):
        sub = ts[ts[C.COLUMN] == col]
        columns[col] = directions.of(sub)
        _add_means(rows, sub, col)
    for col in dict.fromkeys(tg[C.COLUMN]) if len(tg) else []:
        sub = tg[tg[C.COLUMN] == col]
        d = directions.of(sub)
        # a distance between the outputs of different seeds measures diversity: there, more is better
        columns[col] = (not d) if (d is not None and sub["ref"].iloc[0] == "seeds") else d
        _add_means(rows, sub, col)
        if sub["ref"].iloc[0] != "seeds":
            _add_sample_sizes(rows, sub, col)
    if {"lpips-content", "fid-style"} <= set(columns):
        # ArtFID (Wright & Ommer 2022): (1 + LPIPS to the content) * (1 + FID to the styles), from the
        # means of its two parts, so it has no interval of its own
        for r in rows.values():
            r[ARTFID] = (1 + r["lpips-content"]) * (1 + r["fid-style"])
            r[f"{ARTFID} ci95"], r[f"{ARTFID} n"] = math.nan, r["fid-style n"]
        columns[ARTFID] = False
    for lab in labels:
        rows[lab].update(_job_columns(tj[tj[C.LABEL] == lab]))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = C.LABEL
    order = list(columns)
    pcol = _primary_column(order, ts, primary)
    if pcol in order:  # the ranking metric first
        order.remove(pcol)
        order.insert(0, pcol)
    oracle = add_oracle_columns(df, tt, ts, columns)
    if oracle:  # beside the final value they qualify, never ranked by
        order = [c for c in order if c not in oracle]
        order[1:1] = oracle
    copy_col = _metric_column(order, ts, COPY_METRIC)
    df[COPIES] = copies_mask(df[copy_col]) if copy_col is not None else False
    if pcol is not None and pcol in df:
        primary_scores = ts[ts[C.COLUMN] == pcol] if len(ts) else ts
        df = rank_with_copies_and_ties(df, primary_scores, pcol, higher_is_better=bool(columns.get(pcol, False)))
        if len(ts) and pcol in set(ts[C.COLUMN]) and len(df) > 1 and math.isfinite(df[pcol].iloc[0]):
            _paired_vs_first(df, primary_scores)
    df.attrs.update(directions=columns, primary=pcol, columns=order, oracle=oracle, copy_column=copy_col)
    return df


#: Fewest samples (images or crops) per set for a Fréchet distance shown without a warning: the feature
#: dimension. With fewer, the sample covariance has rank < d (at most n - 1), so the trace term compares
#: (n - 1)-dimensional subspaces of a d-dimensional distribution and the value is dominated by the
#: small-sample bias (FID of small sets is biased upwards and only comparable at equal n).
MIN_SAMPLES = {"fid": 2048, "sfid": 2023}


def _add_sample_sizes(rows: dict[str, dict[str, Any]], sub: Any, col: str) -> None:
    """``col samples`` (the fewest samples per set, outputs or references, over a label's set scores) and
    ``col unreliable`` (below :data:`MIN_SAMPLES` for the metric) of each label's row."""
    metric = sub["metric"].iloc[0]
    for lab, r in rows.items():
        counts = []
        for extra in sub[sub[C.LABEL] == lab]["extra"]:
            e = json.loads(extra) if isinstance(extra, str) and extra else {}
            sizes = [e[k] for k in ("n_outputs", "n_references") if isinstance(e.get(k), int | float)]
            if sizes:
                counts.append(int(min(sizes)))
        n = min(counts) if counts else None
        r[f"{col} samples"] = n
        r[f"{col} unreliable"] = bool(n is not None and n < MIN_SAMPLES.get(metric, 0))


def _add_means(rows: dict[str, dict[str, Any]], sub: Any, col: str) -> None:
    """``col``, ``col ci95`` and ``col n`` of each label's row, from the scores ``sub`` of that column."""
    for lab, r in rows.items():
        m, h, n = mean_ci(sub[sub[C.LABEL] == lab][C.VALUE].tolist())
        r.update({col: m, f"{col} ci95": h, f"{col} n": n})


def _job_columns(lj: Any) -> dict[str, Any]:
    """One label's median seconds per image, training seconds (if it trained), failures and job count."""
    ok = lj[lj[C.STATUS] == C.STATUS_OK]
    out: dict[str, Any] = {C.MEDIAN_SECONDS: float(ok[C.SECONDS].median()) if len(ok) else math.nan}
    train = _train_seconds(ok)
    if train is not None:
        out[C.TRAIN_SECONDS] = train
    for col, key in ((C.PEAK_RSS, "peak_rss_bytes"), (C.PEAK_CUDA, "peak_cuda_bytes")):
        known = ok[key].dropna() if key in ok else []
        if len(known):  # the median job's peak, in MiB (older run directories have none)
            out[col] = float(known.median()) / 2**20
    out[C.FAILED] = int((lj[C.STATUS] == C.STATUS_FAILED).sum())
    out[C.N] = int(len(lj))
    return out


def _primary_column(order: list[str], ts: Any, primary: str) -> str | None:
    """The column that ranks: the one named like the primary metric, else the first computed by it, else
    the first column."""
    pcol = next((c for c in order if c == primary), None)
    if pcol is None:
        pcol = next((c for c in order if ts[ts[C.COLUMN] == c]["metric"].iloc[0] == primary), None) if len(ts) else None
    if pcol is None and order:
        pcol = order[0]
    return pcol


def _provenance(store: Store) -> list[str]:
    return sorted({f"{k}: {v}" for prov in store.provenances() for k, v in prov.items()})


def report_header(store: Store) -> dict[str, Any]:
    """What every report states first: title, description, suite, code, environment, weights (each
    provenance string once) and whether a random-init fallback was used."""
    meta = store.meta()
    env = meta.get("env", {})
    prov = _provenance(store)
    return {
        "title": f"texbench leaderboard: {meta.get('suite', '?')}",
        "description": meta.get("description") or "",
        "suite": str(meta.get("suite_source", "?")),
        "code": f"texbench {env.get('texbench', '?')}" + (f" (git {env['git']})" if env.get("git") else ""),
        "environment": f"Python {env.get('python', '?')}, torch {env.get('torch', '?')}, "
        f"device {env.get('device', '?')}" + (f" ({env['gpu']})" if env.get("gpu") else "")
        + f", {env.get('torch_threads', '?')} torch threads, {env.get('platform', '?')}",
        "weights": prov,
        "random_init": any("random-init" in p for p in prov),
        "values": "mean ± 95% CI (Student t) over images × seeds; set-level metrics over seeds, with n = the "
        "fewest samples (images or crops) in a set; FID/sFID from fewer samples than their feature dimension "
        "(2048/2023: the covariance is rank-deficient and the value dominated by small-sample bias) are "
        "marked unreliable; KID is the metric for small sets: its estimator is unbiased at any n, which is "
        "also why it can be negative when the two sets are close; "
        "↑ higher is better, ↓ lower is better; `vs #1`: mean paired difference, this method minus the first-ranked, "
        "on the primary metric over the same inputs (seeds averaged per input; 95% CI over inputs)",
        # the copy rule only where it can apply: texture and style tables (a restoration suite has no copies)
        "copying": COPYING_RULE if _has_copying_tasks(store) else None,
        "ranks": RANKS_RULE,
    }


def _has_copying_tasks(store: Store) -> bool:
    """Whether the run has texture or style jobs, the tasks scored for copying."""
    jobs = store.jobs_frame()
    return bool(len(jobs)) and bool(jobs["task"].isin(["texture", "style"]).any())


RANDOM_INIT_WARNING = ("WARNING: some scores use randomly initialised networks (offline fallback); they are not "
                       "comparable with published numbers.")


def display_table(df: Any) -> Any:
    """The leaderboard table as shown: rank, ``mean ± ci`` strings with direction arrows, seconds, failures."""
    import pandas as pd

    show = pd.DataFrame(index=df.index)
    if C.RANK in df:
        show[C.RANK] = rank_text(df)
    if df.attrs.get("copy_column") and COPIES in df:
        show[COPIES] = [COPIES if c else "" for c in df[COPIES]]
    for col in df.attrs.get("columns", []):
        d = df.attrs["directions"].get(col)
        arrow = " ↑" if d else (" ↓" if d is False else "")
        cells = [_fmt(m, h) for m, h in zip(df[col], df[f"{col} ci95"])]
        if col == C.BEST_ITERATION:
            cells = [f"{m:.0f}" if math.isfinite(m) else "—" for m in df[col]]
        if col in df.attrs.get("oracle", ()):
            arrow = f"{ORACLE_MARK}{arrow}"
        if f"{col} samples" in df:  # set-level: the sample size, and a mark where it is too small
            cells = [c if not isinstance(n, int | float) or not math.isfinite(n)
                     else f"{c} (n={int(n)}{', unreliable' if bad else ''})"
                     for c, n, bad in zip(cells, df[f"{col} samples"], df[f"{col} unreliable"])]
        show[col + arrow] = cells
        if col == df.attrs.get("primary") and VS_FIRST in df:
            show[VS_FIRST] = ["—" if i == 0 else _fmt_signed(m, h)
                              for i, (m, h) in enumerate(zip(df[VS_FIRST], df[f"{VS_FIRST} ci95"]))]
        if col == df.attrs.get("primary") and f"{VS_NEXT} verdict" in df and len(df) > 1:
            show[VS_NEXT] = _vs_next_text(df)
    show[C.MEDIAN_SECONDS] = [f"{s:.3g}" if math.isfinite(s) else "—" for s in df[C.MEDIAN_SECONDS]]
    for col in (C.PEAK_RSS, C.PEAK_CUDA):
        if col in df:
            show[col] = [f"{v:.0f}" if isinstance(v, float) and math.isfinite(v) else "—" for v in df[col]]
    if C.TRAIN_SECONDS in df:
        show[C.TRAIN_SECONDS] = [f"{s:.3g}" if isinstance(s, float) and math.isfinite(s) else "—"
                                 for s in df[C.TRAIN_SECONDS]]
    show[C.FAILED] = [f"{f}/{n}" for f, n in zip(df[C.FAILED], df[C.N])]
    return show


def _vs_next_text(df: Any) -> list[str]:
    """The ``vs next`` cells: the paired difference to the next-ranked method and its verdict."""
    out = []
    for m, h, n, v in zip(df[VS_NEXT], df[f"{VS_NEXT} ci95"], df[f"{VS_NEXT} n"], df[f"{VS_NEXT} verdict"]):
        if v == "untested":
            out.append(f"too few pairs (n={int(n)})")
        elif v:
            out.append(f"{_fmt_signed(m, h)} (n={int(n)}): {v}")
        else:
            out.append("—")
    return out


def problems(store: Store) -> dict[str, list[str]]:
    """One-line messages: failed jobs, metric errors, skipped inputs (each list may be empty)."""
    jobs = store.jobs_frame()
    failed = jobs[jobs[C.STATUS] == C.STATUS_FAILED]
    out: dict[str, list[str]] = {"Failures": [], "Metric errors": [], "Skipped inputs": []}
    for _, r in failed.iterrows():
        out["Failures"].append(f"{r[C.TASK]} / {r[C.LABEL]} / {r[C.ITEM]} / seed {r[C.SEED]}: {_oneline(r[C.ERROR])}")
    errs = store.metric_error_counts()
    out["Metric errors"] = [f"{col} ({n}×): {_oneline(err)}" for col, err, n in errs]
    bad = store.bad_inputs_frame()
    out["Skipped inputs"] = [f"{r['task']} / {r['dataset']} / {r['item']}: {_oneline(r['error'])}"
                             for _, r in bad.iterrows()]
    return out


def leaderboard_markdown(store: Store, tables: dict[str, Any] | None = None) -> str:
    """The whole leaderboard as Markdown: header (suite, code, environment, weights) + one table per task
    variant (:func:`leaderboard_tables`)."""
    from texbench.tasks import TASKS

    tables = leaderboard_tables(store) if tables is None else tables
    h = report_header(store)
    lines = [f"# {h['title']}", ""]
    if h["description"]:
        lines += [h["description"], ""]
    lines += [f"- suite: `{h['suite']}`", f"- code: {h['code']}", f"- environment: {h['environment']}"]
    lines.append("- weights: " + ("; ".join(f"`{p}`" for p in h["weights"]) if h["weights"]
                                  else "none (weight-free methods and metrics)"))
    if h["random_init"]:
        lines.append(f"- **{RANDOM_INIT_WARNING}**")
    lines += [f"- values: {h['values']}", f"- ranks: {h['ranks']}"]
    if h["copying"]:
        lines.append(f"- copying: {h['copying']}")
    superseded = store.superseded_count()
    if superseded:
        lines.append(f"- superseded: {superseded} older jobs in this run directory belong to an earlier version "
                     "of the suite; they are kept in results.sqlite and counted in no row")
    lines.append("")
    for title, df in tables.items():
        task = df.attrs.get("task", title)
        desc = TASKS[task].description if task in TASKS else ""
        lines += [f"## {md_escape(title)}" + (f": {desc}" if desc else ""), ""]
        lines.append(f"dataset: {md_escape(df.attrs.get('dataset', '?'))}; "
                     f"task parameters: {md_escape(params_text(df.attrs.get('task_params')))}; "
                     f"primary metric: {md_escape(df.attrs.get('primary'))}")
        lines.append("")
        shown = display_table(df).reset_index()
        shown = shown.rename(columns=md_escape).map(md_escape)
        lines += [shown.to_markdown(index=False), ""]
        lines += [f"- {md_escape(n)}" for n in column_notes(df)] + ([""] if column_notes(df) else [])
        grid = store.root / grid_name(title)
        if grid.is_file():
            lines += [f"![{md_escape(title)} examples]({grid.name})", ""]
    for title, items in problems(store).items():
        if items:
            # failures and metric errors quote their message as code; skipped inputs read as prose
            if title == "Skipped inputs":
                lines += [f"## {title}", "", *[f"- {md_escape(m)}" for m in items], ""]
            else:
                lines += [f"## {title}", "", *[_code_after_colon(m) for m in items], ""]
    return "\n".join(lines)


def grid_name(title: str) -> str:
    """The image grid file of a leaderboard table: ``grid_<task>.png`` for a task with one variant,
    ``grid_<safe title>.png`` for a variant (``grid_denoise_kodak24_sigma_25.png``)."""
    from texbench.reports.tables import file_stem

    return f"grid_{file_stem(title)}.png"


def _code_after_colon(message: str) -> str:
    head, _, tail = message.partition(": ")
    return f"- {md_escape(head)}: `{tail}`"


def write_leaderboard(store: Store, out_dir: str | Path | None = None) -> Path:
    """Write ``leaderboard.md``, ``leaderboard.csv`` (long format: one row per table × method, with the
    ``task``, ``table``, ``dataset`` and ``task params`` (JSON) of its table) and
    ``report.html`` (tables + every item's outputs), and return the Markdown path."""
    import pandas as pd

    from texbench.imageio import atomic_write_bytes

    out = Path(out_dir) if out_dir else store.root
    tables = leaderboard_tables(store)
    md = leaderboard_markdown(store, tables)
    frames = []
    for title, df in tables.items():
        f = df.reset_index()
        # which table a row belongs to, and what defines it, so that a combined CSV stays unambiguous
        f.insert(0, C.TASK, df.attrs.get("task", title))
        f.insert(1, TABLE, title)
        f.insert(2, C.DATASET, df.attrs.get("dataset", ""))
        f.insert(3, TASK_PARAMS, json.dumps(df.attrs.get("task_params") or {}, sort_keys=True))
        frames.append(f)
    csv = pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""
    atomic_write_bytes(out / "leaderboard.md", md.encode())
    atomic_write_bytes(out / "leaderboard.csv", csv.encode())
    try:  # the browsable report comes last: a failure there never costs the tables
        from texbench.reports.html import write_html

        write_html(store, tables, out)
    except Exception as exc:  # noqa: BLE001
        import sys

        print(f"warning: report.html not written: {exc}", file=sys.stderr)
    return out / "leaderboard.md"
