"""``texbench run``: run (or resume) a benchmark suite and write its leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from texbench.cli.common import MAX_PIXELS_HELP, Command, load_plugins

__all__ = ["command"]


@click.command("run", cls=Command)
@click.option("--suite", default="quick", show_default=True, help="Built-in suite name or path to a .toml file.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<suite name>].")
@click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local", show_default=True,
              help="Where jobs run. local: in this process; a method's exception or sys.exit() fails its job "
                   "only, but os._exit(), a crash or a hang ends or stalls the run (--job-timeout runs the jobs "
                   "in an isolated worker process instead). process: worker processes; a worker that dies or "
                   "times out costs only the job it was running. ray: tasks on a Ray cluster (--ray-address), "
                   "isolated the same way. The scoring pass runs on the same executor.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes for --executor process [default: CPU count].")
@click.option("--job-timeout", type=click.FloatRange(min=0, min_open=True, max=1e9), metavar="SECONDS",
              help="Stop a job that runs longer and record it as failed (overrides the suite's job_timeout; "
                   "a method's own job_timeout wins). With --executor ray the time counts from the task's submission.")
@click.option("--ray-address", metavar="HOST:PORT",
              help="Address of an existing Ray cluster (--executor ray) [default: a cluster this machine "
                   "already runs, else a new local Ray].")
@click.option("--device", help="Override the suite's device (cpu, cuda, auto).")
@click.option("--rerun", is_flag=True, help="Run every job again, even those already stored.")
@click.option("--retry-failed", is_flag=True, help="Run again the jobs that failed before.")
@click.option("--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False), help="Plugin file (repeatable).")
@click.option("--data-root", type=click.Path(file_okay=False), help="Base folder for relative dataset paths.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--max-pixels", type=click.IntRange(min=1), help=MAX_PIXELS_HELP)
@click.option("--plan", "plan", is_flag=True,
              help="Print, per task, the inputs, methods, seeds and jobs, the missing datasets (with the command "
                   "that fetches them) and an estimate of the time from this machine's timings of earlier runs; "
                   "then exit without running anything.")
@click.option("--json", "as_json", is_flag=True,
              help='With --plan: print {"suite": ..., "tasks": {task: {"inputs", "methods", "seeds", "jobs", '
                   '"missing", "estimate_s"}}} as JSON (estimate_s null when a job has no stored timing).')
@click.pass_context
def command(ctx, suite, out, executor, workers, job_timeout, ray_address, device, rerun, retry_failed, plugins,
            data_root, quiet, max_pixels, plan, as_json):
    """Run (or resume) a benchmark suite and write its leaderboard.

    Jobs already in the run directory are skipped, so an interrupted run continues where it stopped.
    SIGINT or SIGTERM stops the workers, keeps every finished job and exits with 128 + the signal's number.
    One run at a time per run directory: a second one refuses, naming the first one's PID.
    """
    import dataclasses

    from texbench.runlock import RunDirectoryBusy
    from texbench.runner import RunInterrupted, run_suite
    from texbench.suite import load_suite

    if as_json and not plan:
        raise click.BadParameter("--json is only for --plan", param_hint="--json")
    load_plugins(plugins)
    s = load_suite(suite)
    if device:
        s = dataclasses.replace(s, device=device)
    if plan:
        _print_plan(s, data_root, as_json)
        return
    group_plugins = (ctx.obj or {}).get("plugins", [])
    try:
        summary = run_suite(s, out or Path("runs") / s.name, executor=executor, workers=workers,
                            ray_address=ray_address, rerun=rerun, retry_failed=retry_failed,
                            plugin_files=[*group_plugins, *plugins], data_root=data_root, progress=not quiet,
                            job_timeout=job_timeout, max_pixels=max_pixels)
    except RunDirectoryBusy as exc:
        raise click.ClickException(str(exc)) from None
    except RunInterrupted as exc:
        click.echo(str(exc), err=True)
        ctx.exit(128 + exc.signum)
    click.echo(f"{summary.ran} jobs run ({summary.failed} failed), {summary.skipped} already done, "
               f"{summary.bad_inputs} bad inputs skipped.")
    click.echo(f"Results: {summary.out / 'results.sqlite'}")
    if summary.leaderboard:
        click.echo(f"Leaderboard: {summary.leaderboard} (and leaderboard.csv, report.html, a grid_*.png per table)")
        click.echo(f"Tables: {'; '.join(_table_titles(summary.out))}")


def _table_titles(out) -> list[str]:
    """The run's leaderboard tables: one per task variant (task, dataset, task parameters)."""
    from texbench.reports.tables import table_of_jobs
    from texbench.store import Store
    from texbench.tasks import TASKS

    with Store(out, readonly=True) as store:
        return list(table_of_jobs(store.jobs_frame(), list(TASKS)))


def _print_plan(suite, data_root, as_json: bool) -> None:
    """``--plan``: the suite's size, missing data and estimated time; nothing is run."""
    import json

    from texbench.plan import format_plan, plan_json, plan_suite

    plans = plan_suite(suite, data_root=data_root)
    click.echo(json.dumps(plan_json(suite, plans), indent=2) if as_json else format_plan(suite, plans))
