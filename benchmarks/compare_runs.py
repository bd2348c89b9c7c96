"""Compare the stored results of two run directories, value for value.

    python -m benchmarks.compare_runs RUN_A RUN_B [--tolerance 0]

Two runs of the same suite with the same seeds must store the same jobs (same keys: task, inputs, method,
version, parameters, seed), the same outputs (the sha256 of every output's pixels) and the same scores
(per image, per seed pair and per set). This is how a refactor proves it changed no number: run the suite
before and after into two directories and compare them. Exit status 0 when everything is equal (within
``--tolerance``, absolute, default exact), 1 otherwise; every difference is printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def _load(run: Path):
    from texbench.store import Store

    store = Store(run, create=False)
    try:
        jobs = store.jobs_frame().set_index("job_key")
        scores = store.scores_frame().set_index(["job_key", "column"])
        groups = store.group_scores_frame().set_index(["group_key", "column"])
    finally:
        store.close()
    return jobs, scores, groups


def _same(a, b, tol: float) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) == (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    return abs(float(a) - float(b)) <= tol


def compare(run_a: Path, run_b: Path, *, tolerance: float = 0.0) -> list[str]:
    """Every difference between the two runs' stored jobs, outputs and scores, one line each."""
    ja, sa, ga = _load(run_a)
    jb, sb, gb = _load(run_b)
    diffs: list[str] = []
    for name, a, b in (("job", ja, jb), ("score", sa, sb), ("group score", ga, gb)):
        only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
        diffs += [f"{name} {k} only in {run_a}" for k in only_a]
        diffs += [f"{name} {k} only in {run_b}" for k in only_b]
    common_jobs = ja.index.intersection(jb.index)
    for k in common_jobs:
        for col in ("status", "output_hash"):
            if ja.at[k, col] != jb.at[k, col]:
                diffs.append(f"job {k} ({ja.at[k, 'label']}/{ja.at[k, 'item']}): {col} {ja.at[k, col]} != {jb.at[k, col]}")
    for a, b, name in ((sa, sb, "score"), (ga, gb, "group score")):
        for k in a.index.intersection(b.index):
            va, vb = a.at[k, "value"], b.at[k, "value"]
            if not _same(va, vb, tolerance):
                diffs.append(f"{name} {k}: {va!r} != {vb!r}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--tolerance", type=float, default=0.0, help="absolute tolerance on scores (default: exact)")
    args = ap.parse_args(argv)
    diffs = compare(args.run_a, args.run_b, tolerance=args.tolerance)
    ja, sa, ga = _load(args.run_a)
    for d in diffs:
        print(d)
    print(
        f"{len(ja)} jobs, {sa['value'].notna().sum()} scores, {ga['value'].notna().sum()} group scores in "
        f"{args.run_a}: " + ("identical in " + str(args.run_b) if not diffs else f"{len(diffs)} difference(s)")
    )
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
