"""The results store: ``<run dir>/results.sqlite`` plus ``<run dir>/images/``.

* SQLite in WAL mode, one transaction per job (the job row and its output's path land together), so
  ``kill -9`` at any moment loses at most the job in flight and never corrupts the store.
* Output images are content-addressed PNGs (``images/<sha256 of pixels>.png``) written atomically
  (temporary file + rename) *before* the row that points at them is committed.
* Reports read the store with pandas; nothing in a report needs a method to run again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Store"]

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
    PRIMARY KEY (job_key, column)
);
CREATE TABLE IF NOT EXISTS group_scores (
    group_key TEXT NOT NULL, column TEXT NOT NULL,
    task TEXT NOT NULL, dataset TEXT NOT NULL, label TEXT NOT NULL, item TEXT, seed INTEGER,
    metric TEXT NOT NULL, ref TEXT NOT NULL, params TEXT NOT NULL, members TEXT NOT NULL,
    value REAL, extra TEXT, provenance TEXT, error TEXT, created REAL NOT NULL,
    PRIMARY KEY (group_key, column)
);
CREATE TABLE IF NOT EXISTS inputs (
    hash TEXT PRIMARY KEY, path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bad_inputs (
    task TEXT NOT NULL, dataset TEXT NOT NULL, item TEXT NOT NULL, error TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (task, dataset, item)
);
"""


class Store:
    """Read and write one run directory."""

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.root = Path(root)
        self.path = self.root / "results.sqlite"
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"{self.root}: no results.sqlite here (not a texbench run directory)")
        self.images = self.root / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

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

    # ------------------------------------------------------------------------------------------------ jobs
    def job_status(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT job_key, status FROM jobs"))

    def save_image(self, image_u8, *, digest: str) -> str:
        """Write a uint8 ``(H, W, 3)`` image as ``images/<digest>.png`` (atomically) and return its relative path."""
        from texbench.imageio import save_png

        rel = f"images/{digest}.png"
        dest = self.root / rel
        if not dest.is_file():
            save_png(image_u8, dest)
        return rel

    def save_input(self, image, digest: str) -> None:
        """Keep a viewable copy of an input or reference image (for grids)."""
        from texbench.imageio import save_png

        rel = f"images/inputs/{digest}.png"
        if not (self.root / rel).is_file():
            save_png(image, self.root / rel)
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO inputs VALUES (?, ?)", (digest, rel))

    def write_job(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one job row in its own transaction."""
        cols = ["job_key", "task", "dataset", "item", "method", "label", "preset", "params", "version", "seed",
                "task_params", "input_hashes", "status", "error", "seconds", "prepare_seconds", "output",
                "output_hash", "info", "provenance", "env"]
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

    def record_bad_input(self, task: str, dataset: str, item: str, error: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO bad_inputs VALUES (?, ?, ?, ?, ?)",
                              (task, dataset, item, error, time.time()))

    # ---------------------------------------------------------------------------------------------- scores
    def scored_columns(self) -> dict[str, set[str]]:
        """job_key -> columns that hold a value (rows with an error are retried)."""
        out: dict[str, set[str]] = {}
        for k, c in self.conn.execute("SELECT job_key, column FROM scores WHERE value IS NOT NULL"):
            out.setdefault(k, set()).add(c)
        return out

    def write_scores(self, job_key: str, rows: Iterable[Mapping[str, Any]]) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for r in rows:
                self.conn.execute(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_key, r["column"], r["metric"], r["ref"], json.dumps(r.get("params", {}), sort_keys=True),
                     r.get("value"), json.dumps(r.get("provenance", {}), sort_keys=True), r.get("error"),
                     time.time()),
                )

    def group_done(self) -> set[tuple[str, str]]:
        return set(self.conn.execute("SELECT group_key, column FROM group_scores WHERE value IS NOT NULL"))

    def write_group_score(self, row: Mapping[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO group_scores (group_key, column, task, dataset, label, item, seed, metric, "
                "ref, params, members, value, extra, provenance, error, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["group_key"], row["column"], row["task"], row["dataset"], row["label"], row.get("item"),
                 row.get("seed"), row["metric"], row["ref"], json.dumps(row.get("params", {}), sort_keys=True),
                 json.dumps(row["members"]), row.get("value"), json.dumps(row.get("extra", {}), default=str),
                 json.dumps(row.get("provenance", {}), sort_keys=True), row.get("error"), time.time()),
            )

    # ---------------------------------------------------------------------------------------------- pandas
    def jobs_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM jobs ORDER BY task, label, item, seed", self.conn)

    def scores_frame(self):
        import pandas as pd

        q = ("SELECT s.*, j.task, j.dataset, j.item, j.label, j.method, j.seed, j.task_params, j.input_hashes "
             "FROM scores s "
             "JOIN jobs j ON j.job_key = s.job_key WHERE j.status = 'ok'")
        return pd.read_sql_query(q, self.conn)

    def group_scores_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM group_scores", self.conn)

    def bad_inputs_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM bad_inputs", self.conn)

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]
