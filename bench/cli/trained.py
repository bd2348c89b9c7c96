"""``texbench trained list|clear``: the weights that methods trained themselves, cached by input hash."""

from __future__ import annotations

import json

import click

from texbench.cli.common import Group

__all__ = ["command"]


@click.group("trained", cls=Group)
def command():
    """Weights that methods trained themselves (Texture Networks, Johnson et al.), cached by input hash."""


@command.command("list")
def trained_list():
    """Each cached training: method, when, how long it took, size."""
    from texbench.trained import trained_dir

    root = trained_dir()
    click.echo(f"cache: {root}")
    for meta in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            rec = json.loads(meta.read_text())
        except (OSError, ValueError):
            click.echo(f"  {meta.stem[:16]}  unreadable record")
            continue
        f = rec.get("fields", {})
        pt = meta.with_suffix(".pt")
        size = f"{pt.stat().st_size / 1e6:.1f} MB" if pt.exists() else "weights missing"
        click.echo(f"  {meta.stem[:16]}  {f.get('method', '?'):18s} {rec.get('created', '?')}  "
                   f"{rec.get('train_seconds', 0):.1f} s  {size}")


def _method_of(root, stem: str) -> str | None:
    try:
        return json.loads((root / f"{stem}.json").read_text()).get("fields", {}).get("method")
    except (OSError, ValueError):
        return None


@command.command("clear")
@click.option("--method", help="Only the trainings of this method.")
@click.option("--yes", is_flag=True, help="Do not ask.")
def trained_clear(method, yes):
    """Remove cached trainings (all, or one method's): the next run trains again. Without --method, also
    the leftovers of interrupted writes (weights without a record, temporary files)."""
    from texbench.trained import trained_dir

    root = trained_dir()
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else []
    doomed = [f for f in files if method is None or _method_of(root, f.name.split(".", 1)[0]) == method]
    keys = {f.name.split(".", 1)[0] for f in doomed if f.suffix == ".pt" or f.suffix == ".json"}
    if not doomed:
        click.echo("nothing to delete")
        return
    if not yes:
        click.confirm(f"{len(keys)} cached training(s) ({len(doomed)} files) in {root} will be deleted. Go on?",
                      abort=True)
    for f in doomed:
        f.unlink(missing_ok=True)
    click.echo(f"deleted {len(keys)} ({len(doomed)} files)")
