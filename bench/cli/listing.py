"""``texbench list``: installed methods, metrics, datasets, suites and tasks (broken plugins reported)."""

from __future__ import annotations

import click

from texbench.cli.common import Command

__all__ = ["command"]


def _section(title, reg, fmt) -> None:
    from texbench import registry

    click.echo(f"{title}:")
    for name in reg.names():
        try:
            cls = reg.get(name)
            click.echo(f"  {name:22s} {fmt(cls)}")
        except registry.PluginError as exc:
            click.echo(f"  {name:22s} BROKEN: {exc}")
    click.echo("")


def _method_line(cls) -> str:
    import importlib.util

    missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
    extra = f" (needs: pip install {' '.join(missing)})" if missing else ""
    return f"[{', '.join(cls.tasks)}] {cls.description}{extra}"


@click.command("list", cls=Command)
@click.argument("what", required=False, type=click.Choice(["methods", "metrics", "datasets", "suites", "tasks"]))
def command(what):
    """Show installed methods, metrics, datasets, suites and tasks (broken plugins are reported)."""
    from texbench import registry
    from texbench.suite import builtin_suites
    from texbench.tasks import TASKS

    if what in (None, "tasks"):
        click.echo("tasks:")
        for t in TASKS.values():
            click.echo(f"  {t.name:22s} {t.description} (primary metric: {t.primary_metric})")
        click.echo("")
    if what in (None, "methods"):
        _section("methods", registry.synthesizers, _method_line)
    if what in (None, "metrics"):
        _section("metrics", registry.metrics,
                 lambda c: f"[{c.kind}, {'higher' if c.higher_is_better else 'lower'} is better] {c.description}")
    if what in (None, "datasets"):
        _section("datasets", registry.datasets, lambda c: c.description)
    if what in (None, "suites"):
        import tomllib

        click.echo("suites:")
        for name, text in builtin_suites().items():
            click.echo(f"  {name:22s} {tomllib.loads(text).get('description', '')}")
