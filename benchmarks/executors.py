"""Throughput of the executors: the same suite run locally, on 2 worker processes and on Ray with 2 CPUs.

``python -m benchmarks executors [--suites patch patch32 quick] [--workers 2] [--threads N]
[--ray-address HOST:PORT]``

Each (suite, executor) runs in a fresh Python process with its own empty feature cache (the real
weights, if cached, are linked in), as ``texbench run`` would, and times two phases: jobs (from the call
to :func:`texbench.runner.run_suite` to the start of the scoring pass: expansion, input copies, the
jobs) and scoring. The report is not written (it does not depend on the executor). Ray runs on a local
Ray started in that process with ``num_cpus`` = ``--workers`` (start-up not timed), or on an existing
cluster given by ``--ray-address``.

Suites: ``patch`` is 16 texture jobs of the patch baselines (Kwatra's texture optimisation and
Efros-Leung at 96 px, 4 exemplars, 2 seeds, seconds each; the texture task's metrics) — jobs long enough
that the workers' start-up (importing torch) is not all that is timed; ``quick`` is the built-in quick
suite; ``patch32`` is ``patch`` with 4 seeds (32 jobs): the workers' start-up is paid once per run, so
the speed-up grows with the jobs' total. The patch baselines are not single-threaded under torch: a
local run gives each job all the cores as intra-op threads (Kwatra's patch search runs 1.9x faster on 2
threads than on 1 here, Efros-Leung 1.16x), which 2 one-thread workers can only match. ``--threads 1``
gives each run's driver one thread, so the local run is single-threaded and the rows measure what the
executors add on single-threaded work.
On a machine shared with other work the numbers move with its load: the load average (``os.getloadavg``)
is printed before and after each run, beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATCH_SUITE = """
name = "patch-baselines"
seeds = [0, 1]
device = "cpu"
allow_random_init = true
[[task]]
name = "texture"
datasets = { exemplar = "builtin-textures" }
limit = 4
image_size = 96
params = { size = 96 }
methods = [{ name = "kwatra" }, { name = "efros-leung", preset = "tiny" }]
"""

EXECUTORS = ("local", "process", "ray")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def _child(suite: str, executor: str, workers: int, ray_address: str | None, out: Path) -> dict:
    """Run one suite on one executor in this process; the timings of its two phases."""
    import texbench.runner as runner
    from texbench.suite import load_suite

    marks: dict[str, float] = {}
    score_run = runner.score_run

    def timed_score_run(*args, **kwargs):
        marks["scoring_start"] = time.perf_counter()
        score_run(*args, **kwargs)
        marks["scoring_end"] = time.perf_counter()

    runner.score_run = timed_score_run
    if executor == "ray" and not ray_address:
        import ray

        # address="local": a new Ray of its own, never a head that happens to run on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    s = load_suite(suite)
    t0 = time.perf_counter()
    summary = runner.run_suite(s, out, executor=executor, workers=workers, ray_address=ray_address,
                               progress=False, write_report=False)
    t1 = time.perf_counter()
    return {"jobs": marks["scoring_start"] - t0, "scoring": marks["scoring_end"] - marks["scoring_start"],
            "total": t1 - t0, "ran": summary.ran, "failed": summary.failed}


def _run_one(suite: str, executor: str, workers: int, ray_address: str | None, tmp: Path,
             threads: int | None = None) -> dict:
    """:func:`_child` in a fresh interpreter with a private feature cache."""
    from texbench.env import texbench_home

    home = tmp / f"home-{executor}"
    home.mkdir(parents=True)
    weights = texbench_home() / "weights"
    if weights.is_dir():
        (home / "weights").symlink_to(weights)
    env = {**os.environ, "TEXBENCH_HOME": str(home), "TEXBENCH_TRAINED": str(home / "trained"),
           "RAY_USAGE_STATS_ENABLED": "0"}
    if threads:  # torch's intra-op threads (and BLAS') of the driver, hence of a local run and of scoring
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "benchmarks", "executors", "--child", suite, executor, str(workers),
           ray_address or "", str(tmp / f"run-{executor}")]
    before = _load()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if res.returncode != 0:
        raise SystemExit(f"{executor} run failed:\n{res.stderr[-3000:]}")
    timing = json.loads(res.stdout.strip().splitlines()[-1])
    timing["load"] = f"{before} -> {_load()}"
    return timing


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[2:] if argv is None else argv)
    if argv and argv[0] == "--child":
        suite, executor, workers, address, out = argv[1:6]
        print(json.dumps(_child(suite, executor, int(workers), address or None, Path(out))))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks executors", description=__doc__.split("\n")[0])
    parser.add_argument("--suites", nargs="*", default=["patch", "quick"], help="patch, patch32, quick or suite files")
    parser.add_argument("--workers", type=int, default=2, help="process workers and Ray CPUs (default 2)")
    parser.add_argument("--executors", nargs="*", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--ray-address", help="an existing Ray cluster instead of a local one")
    parser.add_argument("--threads", type=int, help="torch/BLAS threads of each run's driver (default: torch's "
                        "own, all cores): 1 times the executors on single-threaded work, where a local run "
                        "cannot use the second core through torch's intra-op threads")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    print(f"{os.cpu_count()} CPUs; load average (1/5 min) at start {_load()}; workers/Ray CPUs {args.workers}; "
          f"driver threads {args.threads or 'torch default'}")
    for name in args.suites:
        with tempfile.TemporaryDirectory(prefix="texbench-executors-") as d:
            tmp = Path(d)
            suite = name
            if name in ("patch", "patch32"):  # patch32: the same with 4 seeds, twice the jobs
                suite = str(tmp / f"{name}.toml")
                text = PATCH_SUITE if name == "patch" else PATCH_SUITE.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]")
                Path(suite).write_text(text)
            print(f"\nsuite {name}")
            print(f"{'executor':<10}{'jobs s':>9}{'scoring s':>11}{'total s':>9}{'jobs x':>8}{'scoring x':>11}"
                  f"{'total x':>9}  ran  failed  load before -> after", flush=True)
            base = None
            for ex in args.executors:  # each row as soon as it is measured: a later failure loses none
                try:
                    r = _run_one(suite, ex, args.workers, args.ray_address, tmp, args.threads)
                except SystemExit as exc:
                    print(f"{ex:<10}failed: {str(exc).splitlines()[-1]}", flush=True)
                    continue
                base = r if ex == "local" else base
                ratio = {k: base[k] / r[k] if base else float("nan") for k in ("jobs", "scoring", "total")}
                print(f"{ex:<10}{r['jobs']:>9.1f}{r['scoring']:>11.1f}{r['total']:>9.1f}{ratio['jobs']:>7.2f}x"
                      f"{ratio['scoring']:>10.2f}x{ratio['total']:>8.2f}x  {r['ran']:>3}  {r['failed']:>6}  {r['load']}",
                      flush=True)
