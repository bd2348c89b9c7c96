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
    is re-run)."""
    from texbench.reports.leaderboard import write_leaderboard
    from texbench.store import Store

    with Store(run_dir, create=False) as store:
        if not no_grids:
            from texbench.reports.grid import write_grids

            write_grids(store)
        md = write_leaderboard(store)
    if fmt == "html":
        click.echo(str(md.with_name("report.html")))
    else:
        click.echo((md if fmt == "md" else md.with_suffix(".csv")).read_text())
