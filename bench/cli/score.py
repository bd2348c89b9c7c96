"""``texbench score``: one metric between two images, two folders (paired by name) or two distributions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from texbench.cli.common import Command, parse_params

__all__ = ["command", "paired_files"]


def paired_files(a: Path, b: Path) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """``(pairs, only in a, only in b)``: two files are one pair; two folders pair images by file stem.

    Raises:
        click.UsageError: one is a file and the other a folder.
    """
    from texbench.imageio import list_images

    if a.is_file() and b.is_file():
        return [(a.name, a, b)], [], []
    if a.is_dir() and b.is_dir():
        fa = {p.stem: p for p in list_images(a)}
        fb = {p.stem: p for p in list_images(b)}
        common = sorted(set(fa) & set(fb))
        return [(k, fa[k], fb[k]) for k in common], sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
    raise click.UsageError("A and B must both be files or both be folders")


def _score_sets(m, a: Path, b: Path, seed: int) -> dict:
    from texbench.imageio import list_images, load_image

    if hasattr(m, "compute_paths"):
        return m.compute_paths(a, b)
    xs = [load_image(f) for f in (list_images(a) if a.is_dir() else [a])]
    ys = [load_image(f) for f in (list_images(b) if b.is_dir() else [b])]
    return m.compute_sets(xs, ys, seed=seed)


def _score_pairs(m, kind: str, a: Path, b: Path) -> dict:
    from texbench.imageio import load_image

    pairs, only_a, only_b = paired_files(a, b)
    rows: list[dict[str, Any]] = []
    for name, fa, fb in pairs:
        x, y = load_image(fa)[None], load_image(fb)[None]
        if kind == "paired" and x.shape != y.shape:
            rows.append({"name": name, "value": None, "error": f"sizes differ: {tuple(x.shape[-2:])} vs {tuple(y.shape[-2:])}"})
            continue
        v = float(m(x.to(m.device), y.to(m.device))[0])
        rows.append({"name": name, "value": v})
    vals = [r["value"] for r in rows if r["value"] is not None and math.isfinite(r["value"])]
    return {"pairs": rows, "mean": sum(vals) / len(vals) if vals else None, "only_in_a": only_a, "only_in_b": only_b}


def _print_result(result: dict) -> None:
    if "pairs" in result:
        for r in result["pairs"]:
            val = f"{r['value']:.6g}" if r["value"] is not None else f"ERROR {r['error']}"
            click.echo(f"{r['name']:30s} {val}")
        mean = result["mean"]
        click.echo(f"{'mean':30s} {mean:.6g}  ({len(result['pairs'])} pairs)" if mean is not None else "mean: no valid pair")
        for side, names in (("A", result["only_in_a"]), ("B", result["only_in_b"])):
            if names:
                click.echo(f"only in {side} (not scored): {', '.join(names)}", err=True)
    else:
        for k, v in result.items():
            if k not in ("metric", "params"):
                click.echo(f"{k}: {v}")
    if result["provenance"]:
        click.echo(f"weights: {result['provenance']}", err=True)


@click.command("score", cls=Command)
@click.argument("metric")
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--param", "params", multiple=True, help="key=value metric parameter (repeatable).")
@click.option("--net", help="Backbone, for metrics that have one (lpips: alex, vgg, squeeze).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Calibrated weights file, for metrics that take one (lpips).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for set metrics that sample (KID).")
def command(metric, a, b, as_json, params, net, weights, device, seed):
    """Score METRIC between two images or two folders (paired by file name; unmatched names are listed).

    Set-level metrics (FID, KID) compare the two folders as distributions.
    """
    from texbench import registry
    from texbench.env import resolve_device

    p = parse_params(params)
    if net:
        p["net"] = net
    if weights:
        p["weights"] = weights
    cls = registry.metrics.get(metric)
    m = cls.from_config(p, device=resolve_device(device))
    a, b = Path(a), Path(b)
    result: dict = {"metric": metric, "params": m.params_dict(), "provenance": m.provenance()}
    result.update(_score_sets(m, a, b, seed) if cls.kind == "set" else _score_pairs(m, cls.kind, a, b))
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        _print_result(result)
