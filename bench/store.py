"""The results store: ``<run dir>/results.sqlite`` plus ``<run dir>/images/``.

* SQLite in WAL mode, one transaction per job (the job row and its output's path land together), so
  ``kill -9`` at any moment loses at most the job in flight and never corrupts the store.
* Output images are content-addressed PNGs (``images/<sha256 of pixels>.png``) written atomically
  (temporary file + rename) *before* the row that points at them is committed.
* Every score carries what ranking needs: its metric's direction (``higher_is_better``), and the
  ``tasks`` table holds each task's primary metric, so a report ranks the same whether or not the
  metric plugins can still be imported when it is regenerated.
* Reports read the store with pandas; nothing in a report needs a method to run again.
* This is the only module that speaks SQL: the runner and the reports call the named queries below.
  Run directories written by older versions are migrated when opened (missing columns and tables are
  added; opened read-only they are read as they are, and what they lack reads as empty or NULL).
* Per job, beside its row: its peak memory (``peak_rss_bytes``, ``peak_cuda_bytes``) and, for iterative
  methods on restoration tasks, its oracle trajectory (``trajectories``: the primary metric of each
  reported iterate against the clean image), written in the job's own transaction.
* A run directory keeps every job it ever ran, but reports show exactly the jobs of the suite as it was
  last run (``suite_jobs``, replaced by each run): jobs of an older version of the suite (other
  parameters, another plugin under the same name) are *superseded*, kept and counted, never mixed into
  a row. Run directories written before this was recorded show all their jobs.
* ``Store(root, readonly=True)`` (what ``texbench report`` uses) never writes, so it works on read-only
  media; a file that is not an SQLite database is a :class:`StoreError` saying what to do.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Store", "StoreError", "fault_message"]


class StoreError(ValueError):
    """A ``results.sqlite`` that cannot be used (not a database, or corrupt); the message says what to do."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_key TEXT PRIMARY KEY,
    task TEXT NOT NULL, dataset TEXT NOT NULL, item TEXT NOT NULL,
    method TEXT NOT NULL, label TEXT NOT NULL, preset TEXT, params TEXT NOT NULL, version TEXT NOT NULL,
    seed INTEGER NOT NULL, task_params TEXT NOT NULL, input_hashes TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, seconds REAL, prepare_seconds REAL,
    output TEXT, output_hash TEXT, info TEXT, provenance TEXT, env TEXT, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    job_key TEXT NOT NULL, column TEXT NOT NULL, metric TEXT NOT NULL, ref TEXT NOT NULL,
    params TEXT NOT NULL, value REAL, provenance TEXT, error TEXT, created REAL NOT NULL,
    higher_is_better INTEGER,
    PRIMARY KEY (job_key, column)
);
CREATE TABLE IF NOT EXISTS group_scores (
    group_key TEXT NOT NULL, column TEXT NOT NULL,
    task TEXT NOT NULL, dataset TEXT NOT NULL, label TEXT NOT NULL, item TEXT, seed INTEGER,
    metric TEXT NOT NULL, ref TEXT NOT NULL, params TEXT NOT NULL, members TEXT NOT NULL,
    value REAL, extra TEXT, provenance TEXT, error TEXT, created REAL NOT NULL,
    higher_is_better INTEGER,
    PRIMARY KEY (group_key, column)
);
CREATE TABLE IF NOT EXISTS inputs (
    hash TEXT PRIMARY KEY, path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bad_inputs (
    task TEXT NOT NULL, dataset TEXT NOT NULL, item TEXT NOT NULL, error TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (task, dataset, item)
);
CREATE TABLE IF NOT EXISTS tasks (
    task TEXT PRIMARY KEY, primary_metric TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suite_jobs (
    job_key TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS trajectories (
    job_key TEXT PRIMARY KEY,
    metric TEXT NOT NULL, ref TEXT NOT NULL, higher_is_better INTEGER,
    iterations TEXT NOT NULL, "values" TEXT NOT NULL, seconds REAL, created REAL NOT NULL
);
"""

#: columns added since the first release: table -> [(column, declaration)], added on open when missing
_ADDED_COLUMNS = {
    "scores": [("higher_is_better", "INTEGER"), ("metric_version", "TEXT")],
    "group_scores": [("higher_is_better", "INTEGER"), ("metric_version", "TEXT")],
    # peak memory of the job (texbench.probes.PeakMemory): NULL where unknown and in older run directories
    "jobs": [("peak_rss_bytes", "INTEGER"), ("peak_cuda_bytes", "INTEGER")],
}
#: the version of scores stored before versions were recorded (NULL ``metric_version``)
_FIRST_METRIC_VERSION = "1"


def _current(metric: str, stored: str | None, current_version: Callable[[str], str | None] | None) -> bool:
    """Whether a stored value of ``metric`` (stored version ``stored``, NULL = the first) is current."""
    if current_version is None:
        return True
    now = current_version(metric)
    return now is None or (stored or _FIRST_METRIC_VERSION) == now


def fault_message(exc: BaseException) -> str | None:
    """One line saying what to do about an SQLite fault the user can fix (a corrupt file, a full disk, a
    read-only run directory), or None for any other exception."""
    if isinstance(exc, sqlite3.DatabaseError) and _is_corruption(exc):  # found corrupt after it opened
        return f"results.sqlite is corrupt ({exc}): move it aside or use another --out"
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    text = str(exc).lower()
    if "disk is full" in text:
        return f"cannot write the results store: {exc}; free some space or use another --out"
    if "readonly" in text or "read-only" in text:
        return f"cannot write the results store ({exc}): the run directory is read-only; use another --out"
    return None


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is bad (not locked, not read-only, not full)."""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "not a database" in text


def _stored_direction(value: Any) -> int | None:
    """A metric direction as stored: 1 (higher is better), 0 (lower is better) or NULL (unknown)."""
    return None if value is None else int(bool(value))


class Store:
    """Read and write one run directory."""

    def __init__(self, root: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        """Open (or, with ``create``, make) the run directory ``root``.

        Args:
            root: the run directory.
            create: create the directory and the database if they do not exist.
            readonly: open without ever writing (reports; read-only media). Implies not ``create``.

        Raises:
            FileNotFoundError: ``root`` holds no ``results.sqlite`` (and ``create`` is false).
            StoreError: ``results.sqlite`` is not a valid SQLite database.
        """
        self.root = Path(root)
        self.path = self.root / "results.sqlite"
        self.readonly = readonly
        if (readonly or not create) and not self.path.is_file():
            raise FileNotFoundError(f"{self.root}: no results.sqlite here (not a texbench run directory)")
        self.images = self.root / "images"
        try:
            if readonly:
                self.conn = self._connect_readonly()
            else:
                self.images.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(_SCHEMA)
                self._migrate()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _is_corruption(exc):
                raise
            raise StoreError(f"{self.path} is not a valid database ({exc}): move it aside or use another --out") from None

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that never writes the database: ``mode=ro`` (SQLite may still create its ``-shm``
        index beside a WAL database, which a concurrent writer needs); in a folder that is not writable
        (read-only media), or where that fails, ``immutable=1``, which creates nothing."""
        import os

        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        if not os.access(self.root, os.W_OK):  # nobody can be writing here: read the file as it is
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            if _is_corruption(exc):
                raise
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn

    def _migrate(self) -> None:
        """Add the columns that run directories of older versions lack (their values stay NULL)."""
        for table, added in _ADDED_COLUMNS.items():
            have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for column, decl in added:
                if column not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ meta
    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            for k, v in values.items():
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, json.dumps(v, default=str)))

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def set_primary_metrics(self, primary: Mapping[str, str]) -> None:
        """Record each task's primary (ranking) metric."""
        with self.conn:
            self.conn.execute("BEGIN")
            for task, metric in primary.items():
                self.conn.execute("INSERT OR REPLACE INTO tasks VALUES (?, ?)", (task, metric))

    def set_suite_jobs(self, job_keys: Iterable[str]) -> None:
        """Record the job keys of the suite as it is now (replacing the previous run's): reports show
        these jobs only, the others are superseded."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM suite_jobs")
            self.conn.executemany("INSERT OR IGNORE INTO suite_jobs VALUES (?)", [(k,) for k in job_keys])

    def suite_jobs(self) -> set[str] | None:
        """The job keys of the suite as last run; None for run directories written before they were
        recorded (then every stored job counts)."""
        if not self._has_table("suite_jobs"):
            return None
        keys = {k for (k,) in self.conn.execute("SELECT job_key FROM suite_jobs")}
        return keys or None

    def superseded_count(self) -> int:
        """Stored jobs that are not part of the suite as last run (kept, never reported in a row)."""
        if self.suite_jobs() is None:
            return 0
        return self.conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE job_key NOT IN (SELECT job_key FROM suite_jobs)").fetchone()[0]

    def clear_bad_inputs(self) -> None:
        """Forget the bad inputs recorded by earlier runs (each run records its own)."""
        with self.conn:
            self.conn.execute("DELETE FROM bad_inputs")

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    def _current(self, alias: str) -> str:
        """SQL condition: ``alias.job_key`` is a job of the current suite (always true for older runs)."""
        if self.suite_jobs() is None:
            return "1"
        return f"{alias}.job_key IN (SELECT job_key FROM suite_jobs)"

    def primary_metrics(self) -> dict[str, str]:
        """Task -> its recorded primary metric (empty for runs written before it was recorded)."""
        return dict(self.conn.execute("SELECT task, primary_metric FROM tasks"))

    # ------------------------------------------------------------------------------------------------ jobs
    def job_status(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT job_key, status FROM jobs"))

    def ok_outputs(self) -> dict[str, str]:
        """job_key -> output path (relative to the run directory) of every job that succeeded."""
        return dict(self.conn.execute("SELECT job_key, output FROM jobs WHERE status = 'ok'"))

    def save_image(self, image_u8, *, digest: str) -> str:
        """Write a uint8 ``(H, W, 3)`` image as ``images/<digest>.png`` (atomically) and return its relative path."""
        from texbench.imageio import save_png

        rel = f"images/{digest}.png"
        dest = self.root / rel
        if not dest.is_file():
            save_png(image_u8, dest)
        return rel

    def save_output(self, output_u8, *, digest: str, kind: str = "image") -> str:
        """Write a quantised output of :mod:`texbench.outputs` kind ``kind`` as ``images/<digest><suffix>``
        (atomically; an image as PNG, a volume as ``.npy`` with its slice montage beside it) and return its
        relative path."""
        from texbench.imageio import atomic_write_bytes, save_png
        from texbench.outputs import output_kind, preview_path

        if kind == "image":
            return self.save_image(output_u8, digest=digest)
        k = output_kind(kind)
        rel = f"images/{digest}{k.suffix}"
        dest = self.root / rel
        if not dest.is_file():
            atomic_write_bytes(dest, k.encode(output_u8))
        preview = k.preview(output_u8)
        if preview is not None and not (self.root / preview_path(rel)).is_file():
            save_png(preview, self.root / preview_path(rel))
        return rel

    def save_output_bytes(self, data: bytes, *, digest: str, kind: str = "image") -> str:
        """:meth:`save_output` for an output a worker already encoded (:meth:`OutputKind.encode`); returns
        its relative path."""
        from texbench.files import atomic_write_bytes
        from texbench.imageio import save_png
        from texbench.outputs import output_kind, preview_path

        k = output_kind(kind)
        rel = f"images/{digest}{k.suffix}"
        dest = self.root / rel
        if not dest.is_file():
            atomic_write_bytes(dest, data)
        if k.name != "image" and not (self.root / preview_path(rel)).is_file():
            preview = k.preview(k.decode_uint8(data))
            if preview is not None:
                save_png(preview, self.root / preview_path(rel))
        return rel

    def save_input(self, image, digest: str) -> None:
        """Keep a viewable copy of an input or reference image (for grids)."""
        from texbench.imageio import save_png

        rel = f"images/inputs/{digest}.png"
        if not (self.root / rel).is_file():
            save_png(image, self.root / rel)
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO inputs VALUES (?, ?)", (digest, rel))

    def input_paths(self) -> dict[str, str]:
        """Input image hash -> its stored copy's path (relative to the run directory)."""
        return dict(self.conn.execute("SELECT hash, path FROM inputs"))

    def write_job(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one job row in its own transaction (with its trajectory, if it has one: a
        ``{metric, ref, higher_is_better, iterations, values, seconds}`` dict under ``trajectory``)."""
        cols = ["job_key", "task", "dataset", "item", "method", "label", "preset", "params", "version", "seed",
                "task_params", "input_hashes", "status", "error", "seconds", "prepare_seconds", "output",
                "output_hash", "info", "provenance", "env", "peak_rss_bytes", "peak_cuda_bytes"]
        values = [row.get(c) for c in cols]
        for i, c in enumerate(cols):
            if c in ("params", "task_params", "input_hashes", "info", "provenance", "env") and values[i] is not None:
                values[i] = json.dumps(values[i], default=str, sort_keys=True)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM scores WHERE job_key = ?", (row["job_key"],))
            self.conn.execute(
                f"INSERT OR REPLACE INTO jobs ({', '.join(cols)}, created) VALUES ({', '.join('?' * len(cols))}, ?)",
                [*values, time.time()],
            )
            self._write_trajectory(row["job_key"], row.get("trajectory"))

    def _write_trajectory(self, job_key: str, t: Mapping[str, Any] | None) -> None:
        """Replace a job's trajectory (inside :meth:`write_job`'s transaction): a re-run leaves no stale curve."""
        self.conn.execute("DELETE FROM trajectories WHERE job_key = ?", (job_key,))
        if t:
            self.conn.execute(
                'INSERT INTO trajectories (job_key, metric, ref, higher_is_better, iterations, "values", seconds, '
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job_key, t["metric"], t["ref"], _stored_direction(t.get("higher_is_better")),
                 json.dumps([int(i) for i in t["iterations"]]), json.dumps([float(v) for v in t["values"]]),
                 t.get("seconds"), time.time()))

    def record_bad_input(self, task: str, dataset: str, item: str, error: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO bad_inputs VALUES (?, ?, ?, ?, ?)",
                              (task, dataset, item, error, time.time()))

    # ---------------------------------------------------------------------------------------------- scores
    def scored_columns(self, current_version: Callable[[str], str | None] | None = None) -> dict[str, set[str]]:
        """job_key -> columns that hold a value (rows with an error are retried).

        With ``current_version`` (metric name -> its version, or ``None`` when unknown), a value stored
        by another version of its metric does not count: it is recomputed, never reused."""
        out: dict[str, set[str]] = {}
        q = "SELECT job_key, column, metric, metric_version FROM scores WHERE value IS NOT NULL"
        for k, c, metric, version in self.conn.execute(q):
            if _current(metric, version, current_version):
                out.setdefault(k, set()).add(c)
        return out

    def write_scores(self, job_key: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace one job's scores in one transaction.

        Each row: ``column``, ``metric``, ``ref``, and optionally ``params``, ``value``, ``provenance``,
        ``error`` and ``higher_is_better`` (the metric's direction, which ranking needs)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for r in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO scores (job_key, column, metric, ref, params, value, provenance, "
                    "error, created, higher_is_better, metric_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_key, r["column"], r["metric"], r["ref"], json.dumps(r.get("params", {}), sort_keys=True),
                     r.get("value"), json.dumps(r.get("provenance", {}), sort_keys=True), r.get("error"),
                     time.time(), _stored_direction(r.get("higher_is_better")), r.get("metric_version")),
                )

    def group_done(self, current_version: Callable[[str], str | None] | None = None) -> set[tuple[str, str]]:
        """``(group_key, column)`` of the group scores that hold a value of the metric's current version
        (see :meth:`scored_columns`)."""
        q = "SELECT group_key, column, metric, metric_version FROM group_scores WHERE value IS NOT NULL"
        return {(g, c) for g, c, metric, version in self.conn.execute(q) if _current(metric, version, current_version)}

    def write_group_score(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one set-level or seed-pair score (with ``higher_is_better`` like a score)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO group_scores (group_key, column, task, dataset, label, item, seed, metric, "
                "ref, params, members, value, extra, provenance, error, created, higher_is_better, metric_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["group_key"], row["column"], row["task"], row["dataset"], row["label"], row.get("item"),
                 row.get("seed"), row["metric"], row["ref"], json.dumps(row.get("params", {}), sort_keys=True),
                 json.dumps(row["members"]), row.get("value"), json.dumps(row.get("extra", {}), default=str),
                 json.dumps(row.get("provenance", {}), sort_keys=True), row.get("error"), time.time(),
                 _stored_direction(row.get("higher_is_better")), row.get("metric_version")),
            )

    def provenances(self) -> list[dict[str, str]]:
        """Each distinct weights provenance (``{name: "sha256:..." or "random-init:seed=N"}``) recorded
        with a job, a score or a group score, decoded."""
        rows = self.conn.execute(
            "SELECT DISTINCT provenance FROM scores UNION SELECT DISTINCT provenance FROM group_scores "
            "UNION SELECT DISTINCT provenance FROM jobs"
        )
        return [json.loads(p) for (p,) in rows if p]

    def metric_error_counts(self) -> list[tuple[str, str, int]]:
        """(column, error message, count) of the scores that failed, on successful jobs, then of the
        group scores that failed (of the current suite's jobs only, as every report query)."""
        rows = self.conn.execute(
            "SELECT s.column, s.error, COUNT(*) FROM scores s JOIN jobs j ON j.job_key = s.job_key "
            f"WHERE s.error IS NOT NULL AND j.status = 'ok' AND {self._current('j')} GROUP BY s.column, s.error"
        ).fetchall()
        current = self.suite_jobs()
        groups: dict[tuple[str, str], int] = {}
        for column, error, members in self.conn.execute(
                "SELECT column, error, members FROM group_scores WHERE error IS NOT NULL ORDER BY column, error"):
            if current is None or set(json.loads(members)) <= current:
                groups[(column, error)] = groups.get((column, error), 0) + 1
        return rows + [(c, e, n) for (c, e), n in groups.items()]

    # ---------------------------------------------------------------------------------------------- pandas
    def jobs_frame(self):
        import pandas as pd

        return pd.read_sql_query(f"SELECT * FROM jobs j WHERE {self._current('j')} ORDER BY task, label, item, seed",
                                 self.conn)

    def scores_frame(self):
        import pandas as pd

        q = ("SELECT s.*, j.task, j.dataset, j.item, j.label, j.method, j.seed, j.task_params, j.input_hashes "
             "FROM scores s "
             f"JOIN jobs j ON j.job_key = s.job_key WHERE j.status = 'ok' AND {self._current('j')}")
        return pd.read_sql_query(q, self.conn)

    def group_scores_frame(self):
        import pandas as pd

        frame = pd.read_sql_query("SELECT * FROM group_scores", self.conn)
        current = self.suite_jobs()
        if current is None or not len(frame):
            return frame
        # a group score counts only if every job it was computed over is one of the current suite's
        keep = [set(json.loads(m)) <= current for m in frame["members"]]
        return frame[keep].reset_index(drop=True)

    def trajectories_frame(self):
        """The oracle trajectories of the current suite's successful jobs, one row per job, with the job's
        task, dataset, item, label and seed; ``iterations`` and ``values`` decoded to lists. Empty for run
        directories written before trajectories were stored."""
        import pandas as pd

        if not self._has_table("trajectories"):
            return pd.DataFrame(columns=["job_key", "metric", "ref", "higher_is_better", "iterations", "values",
                                         "task", "dataset", "item", "label", "seed"])
        q = ('SELECT t.job_key, t.metric, t.ref, t.higher_is_better, t.iterations, t."values", t.seconds, '
             "j.task, j.dataset, j.item, j.label, j.seed, j.task_params, j.input_hashes FROM trajectories t "
             f"JOIN jobs j ON j.job_key = t.job_key WHERE j.status = 'ok' AND {self._current('j')} "
             "ORDER BY j.task, j.label, j.item, j.seed")
        frame = pd.read_sql_query(q, self.conn)
        for c in ("iterations", "values"):
            frame[c] = [json.loads(v) for v in frame[c]]
        return frame

    def bad_inputs_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM bad_inputs", self.conn)

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]
