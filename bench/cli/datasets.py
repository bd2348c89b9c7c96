"""``texbench datasets list|fetch``: the standard test sets and their local copies."""

from __future__ import annotations

import click

from texbench.cli.common import Group

__all__ = ["command"]


@click.group("datasets", cls=Group)
def command() -> None:
    """Standard test sets (Kodak24, CBSD68, Set5, Set14, DIP's images): list them, fetch them with checksums."""


@command.command("list")
def datasets_list() -> None:
    """Each standard set: whether its verified copy is present, where, and where it comes from."""
    from texbench.datasets.standard import dataset_dir, missing_files, standard_sets

    for name, s in standard_sets().items():
        bad = missing_files(name)
        state = "ok" if not bad else ("missing" if len(bad) == len(s.files) else f"{len(bad)} files missing/bad")
        url = "downloadable" if all(u for _, _, u in s.files) else "--from DIR only"
        click.echo(f"{name:10s} {len(s.files):3d} files  {state:18s} {dataset_dir(name)}")
        click.echo(f"{'':10s} {s.description}; {s.license}; {url}")


@command.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False),
              help="Copy the files from this folder (searched recursively by name) instead of downloading.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def datasets_fetch(names, from_dir, quiet) -> None:
    """Fetch NAMES into the texbench cache, verifying every file's sha256 (files already there are kept)."""
    from texbench.datasets.standard import DatasetFetchError, fetch_set, standard_sets

    unknown = [n for n in names if n not in standard_sets()]
    if unknown:
        raise click.ClickException(f"unknown standard set(s) {', '.join(unknown)}; known: {', '.join(standard_sets())}")
    failed = []
    for name in names:
        try:
            click.echo(f"{name}: {fetch_set(name, from_dir=from_dir, progress=not quiet)}")
        except DatasetFetchError as exc:
            click.echo(str(exc), err=True)
            failed.append(name)
    if failed:
        raise click.ClickException(f"not fetched: {', '.join(failed)}")
