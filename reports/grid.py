"""Image grids: for each leaderboard table (task variant), rows of examples with their input(s) and every method's output."""

from __future__ import annotations

import json
from pathlib import Path

from texbench import columns as C
from texbench.store import Store

__all__ = ["make_grid", "write_grids"]

_ROLE_ORDER = ("exemplar", "content", "style", "degraded", "clean")


def make_grid(rows: list[list[tuple[str, Path | None]]], *, cell: int = 128, pad: int = 4):
    """Compose a labelled grid (a PIL image) from rows of ``(title, image path or None)``."""
    from PIL import Image, ImageDraw

    ncols = max(len(r) for r in rows)
    title_h = 14
    W = ncols * (cell + pad) + pad
    H = len(rows) * (cell + title_h + pad) + pad
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for ri, row in enumerate(rows):
        y = pad + ri * (cell + title_h + pad)
        for ci, (title, path) in enumerate(row):
            x = pad + ci * (cell + pad)
            draw.text((x, y), title[:22], fill="black")
            if path is None or not Path(path).is_file():
                draw.rectangle([x, y + title_h, x + cell - 1, y + title_h + cell - 1], outline="gray")
                continue
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
                canvas.paste(im, (x + (cell - im.width) // 2, y + title_h + (cell - im.height) // 2))
    return canvas


def write_grids(store: Store, *, max_rows: int = 4, cell: int = 128) -> list[Path]:
    """Write one grid per leaderboard table into the run directory (``grid_<task>.png``, or for one variant
    of a task run on several datasets or parameters ``grid_<task>_<dataset>_<params>.png``, see
    :func:`texbench.reports.leaderboard.grid_name`): up to ``max_rows`` items, seed with the lowest
    number, inputs first (the degraded input for restoration tasks), then each method's output (for a volume,
    its middle slices along the three axes above a row of random slices)."""
    import io

    from texbench.imageio import atomic_write_bytes
    from texbench.outputs import preview_path
    from texbench.reports.leaderboard import grid_name
    from texbench.reports.tables import table_of_jobs
    from texbench.tasks import TASKS, task_output_kind

    jobs = store.jobs_frame()
    inputs = store.input_paths()
    written = []
    for title, variant in table_of_jobs(jobs, list(TASKS)).items():
        task = variant["task"]
        tj = jobs[jobs[C.JOB_KEY].isin(set(variant["job_keys"]))]
        labels = list(dict.fromkeys(tj[C.LABEL]))
        rows = []
        for item in list(dict.fromkeys(tj[C.ITEM]))[:max_rows]:
            ij = tj[tj[C.ITEM] == item].sort_values(C.SEED)
            first = ij.iloc[0]
            hashes = json.loads(first["input_hashes"])
            row = [(role, store.root / inputs[hashes[role]]) for role in _ROLE_ORDER if role in hashes and hashes[role] in inputs]
            for lab in labels:
                lj = ij[(ij[C.LABEL] == lab) & (ij[C.STATUS] == C.STATUS_OK)]
                # a volume is shown by its slice montage (texbench.outputs.volume_preview)
                row.append((lab, store.root / preview_path(lj.iloc[0][C.OUTPUT]) if len(lj) else None))
            rows.append(row)
        if not rows:
            continue
        buf = io.BytesIO()
        # volumes: a montage of six slices per cell, drawn twice as large to stay legible
        size = cell * 2 if task_output_kind(task) == "volume" else cell
        make_grid(rows, cell=size).save(buf, format="PNG")
        dest = store.root / grid_name(title)
        atomic_write_bytes(dest, buf.getvalue())
        written.append(dest)
    return written
