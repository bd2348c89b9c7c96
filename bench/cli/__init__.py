"""The ``texbench`` command line, one module per command group.

=============  ==============================================================  ==========================
command        what it does                                                     module
=============  ==============================================================  ==========================
run            run (or resume) a benchmark suite                               :mod:`texbench.cli.run`
report         regenerate a run's leaderboard and report                       :mod:`texbench.cli.report`
list           installed methods, metrics, datasets, suites, tasks            :mod:`texbench.cli.listing`
synth          one method on a user's images                                   :mod:`texbench.cli.synth`
score          one metric between images, folders or statistics               :mod:`texbench.cli.score`
weights        pretrained weights: list, fetch, verify (per network)          :mod:`texbench.cli.weights`
trained        weights that methods trained themselves: list, clear           :mod:`texbench.cli.trained`
datasets       standard test sets: list, fetch                                 :mod:`texbench.cli.datasets`
lpips          LPIPS 2AFC calibration: train, eval, make-2afc                 :mod:`texbench.cli.lpips`
fid-stats      FID reference statistics of a folder                           :mod:`texbench.cli.fid_stats`
=============  ==============================================================  ==========================

Each module's ``command`` is the click command or group it adds. Third-party packages add commands
through the entry-point group ``texbench.cli`` (a built-in command of the same name wins). Every command
follows one error convention (:mod:`texbench.cli.common`): a user's mistake is one ``Error:`` message
and a non-zero exit, never a traceback. Module level imports only click: ``texbench --help`` stays
fast, and plugin modules load inside the commands that need them.
"""

from __future__ import annotations

from typing import Any

import click

from texbench.cli import (
    datasets,
    fid_stats,
    listing,
    lpips,
    report,
    run,
    score,
    synth,
    trained,
    weights,
)
from texbench.cli.common import Command, Group, load_plugins

__all__ = ["main"]


class MainGroup(Group):
    """The ``texbench`` group: the built-in commands plus those that installed packages declare in the
    entry-point group ``texbench.cli``."""

    def _plugin_commands(self) -> dict[str, Any]:
        from importlib import metadata

        return {ep.name: ep for ep in metadata.entry_points(group="texbench.cli")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._plugin_commands().get(name)
        if ep is None:
            return None
        try:
            return ep.load()
        except Exception as exc:  # a broken plugin is reported by name, and never breaks `texbench --help`
            return _broken_command(name, f"plugin command {name!r} ({ep.value}) failed to load: {exc}")


def _broken_command(name: str, message: str) -> click.Command:
    """A stand-in for a plugin command that cannot be loaded: listed as BROKEN, and running it reports
    ``message`` as an error (whatever arguments it is given)."""

    def fail() -> None:
        raise click.ClickException(message)

    return Command(name, callback=fail, help=f"BROKEN: {message}", add_help_option=False,
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
              help="A local Python file defining Synthesizer/Metric/Dataset plugins (repeatable).")
@click.version_option(package_name="texbench")
@click.pass_context
def main(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """texbench: benchmark image-synthesis methods on the same inputs, score them, rank them."""
    ctx.ensure_object(dict)
    ctx.obj["plugins"] = list(plugins)
    load_plugins(plugins)


for _module in (run, report, listing, synth, score, weights, trained, datasets, lpips, fid_stats):
    main.add_command(_module.command)


if __name__ == "__main__":  # pragma: no cover
    main()
