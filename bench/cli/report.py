"""``texbench report``: regenerate a run's leaderboard, report and grids from its store."""

from __future__ import annotations

import click

from texbench.cli.common import Command

__all__ = ["command"]


@click.command("report", cls=Command)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md", show_default=True,
              help="What to print (html: the path of report.html).")
@click.option("--no-grids", is_flag=True, help="Do not redraw the image grids.")
def command(run_dir, fmt, no_grids):
    """Regenerate the leaderboard (Markdown, CSV, report.html) of RUN_DIR from its stored results (no method
    is re-run): one table per task variant, i.e. per task, dataset and task parameters (denoise at sigma 15
    and 50 are two tables, titled like `texbench run --plan` names them)."""
    import os

    from texbench.reports.leaderboard import leaderboard_markdown, leaderboard_tables, write_leaderboard
    from texbench.store import Store

    # read-only: a report never changes the results, and a run on read-only media (an archive, a CD, a
    # colleague's folder) still reports; there the files cannot be rewritten and the tables are printed
    with Store(run_dir, readonly=True) as store:
        if not os.access(run_dir, os.W_OK):
            if fmt != "md":
                raise click.ClickException(f"{run_dir} is read-only: cannot write leaderboard.{fmt}; "
                                           "copy the run directory elsewhere, or use --format md")
            click.echo(f"note: {run_dir} is read-only; leaderboard.md is printed, not rewritten", err=True)
            click.echo(leaderboard_markdown(store, leaderboard_tables(store)))
            return
        if not no_grids:
            from texbench.reports.grid import write_grids

            write_grids(store)
        md = write_leaderboard(store)
    if fmt == "html":
        click.echo(str(md.with_name("report.html")))
    else:
        click.echo((md if fmt == "md" else md.with_suffix(".csv")).read_text())
