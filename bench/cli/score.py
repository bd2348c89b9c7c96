"""``texbench score``: one metric between two images, two folders (paired by name) or two distributions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from texbench.cli.common import MAX_PIXELS_HELP, Command, parse_params

__all__ = ["command", "paired_files"]


def paired_files(a: Path, b: Path) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """``(pairs, only in a, only in b)``: two files are one pair; two folders pair images by file stem.

    Raises:
        click.UsageError: one is a file and the other a folder.
    """
    from texbench.imageio import display_name

    if a.is_file() and b.is_file():
        return [(a.name, a, b)], [], []
    if a.is_dir() and b.is_dir():
        fa, fb = _by_stem(a), _by_stem(b)
        common = sorted(set(fa) & set(fb))
        only_a = [display_name(k) for k in sorted(set(fa) - set(fb))]
        only_b = [display_name(k) for k in sorted(set(fb) - set(fa))]
        return [(k, fa[k], fb[k]) for k in common], only_a, only_b
    raise click.UsageError("A and B must both be files or both be folders")


def _load_all(files: list[Path], errors: list[str]) -> list:
    """The images of ``files`` that can be read; a message per file that cannot is added to ``errors``."""
    from texbench.imageio import ImageError, load_image

    out = []
    for f in files:
        try:
            out.append(load_image(f))
        except ImageError as exc:
            errors.append(str(exc))
    return out


def _by_stem(folder: Path) -> dict[str, Path]:
    """Stem -> image file of ``folder``; two files with one stem (x.png, x.jpg) are an error naming both."""
    from texbench.imageio import display_name, list_images

    out: dict[str, Path] = {}
    for p in list_images(folder):
        if p.stem in out:
            raise click.UsageError(f"{display_name(folder)}: {display_name(out[p.stem].name)} and "
                                   f"{display_name(p.name)} have the same name; rename or remove one")
        out[p.stem] = p
    return out


def _score_sets(m, a: Path, b: Path, seed: int) -> dict:
    from texbench.imageio import list_images

    if hasattr(m, "compute_paths"):
        return m.compute_paths(a, b)
    errors: list[str] = []
    xs = _load_all(list_images(a) if a.is_dir() else [a], errors)
    ys = _load_all(list_images(b) if b.is_dir() else [b], errors)
    if not xs or not ys:
        raise click.ClickException(f"no readable image in {a if not xs else b}" +
                                   (f" ({'; '.join(errors)})" if errors else ""))
    result = m.compute_sets(xs, ys, seed=seed)
    if errors:
        result["unreadable"] = errors
    return result


#: pairs per metric call when scoring folders (equal-size neighbours only; values do not depend on it)
PAIR_BATCH = 16
#: image decoding threads (PIL releases the GIL while it decodes, so they overlap the metric's work)
DECODE_THREADS = 2


def _load_pair(item: tuple[str, Path, Path]) -> tuple[str, Any, Any, str | None]:
    """``(name, x, y, error)``: both images as ``(1, 3, H, W)``, or the message of the one that failed."""
    from texbench.imageio import ImageError, display_name, load_image

    name, fa, fb = item
    name = display_name(name)
    try:  # one unreadable file costs its pair, not the folder
        return name, load_image(fa)[None], load_image(fb)[None], None
    except ImageError as exc:
        return name, None, None, str(exc)


def _decoded(pairs: list[tuple[str, Path, Path]], ahead: int):
    """:func:`_load_pair` of every pair, in order, decoded by a thread pool at most ``ahead`` pairs ahead
    (bounded memory on large folders)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    if len(pairs) <= 1:
        yield from map(_load_pair, pairs)
        return
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="texbench-decode") as pool:
        todo = iter(pairs)
        queue = deque(pool.submit(_load_pair, it) for it in islice(todo, ahead))
        while queue:
            done = queue.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                queue.append(pool.submit(_load_pair, nxt))
            yield done


def _metric_values(m, xs: list, ys: list) -> list[tuple[float | None, str | None]]:
    """``(value, error)`` per pair of one batch of equal-size pairs: one metric call for the batch; if it
    fails, pair by pair, so that the error lands on the pair that caused it."""
    import torch

    try:
        with torch.no_grad():
            v = m(torch.cat(xs).to(m.device), torch.cat(ys).to(m.device))
        return [(float(t), None) for t in v.double().cpu()]
    except (ValueError, RuntimeError):
        if len(xs) == 1:
            try:
                with torch.no_grad():
                    return [(float(m(xs[0].to(m.device), ys[0].to(m.device))[0]), None)]
            except (ValueError, RuntimeError) as exc:  # e.g. an image too small for the metric's window
                return [(None, f"{type(exc).__name__}: {exc}")]
        return [r for x, y in zip(xs, ys, strict=True) for r in _metric_values(m, [x], [y])]


def _score_pairs(m, kind: str, a: Path, b: Path) -> dict:
    """Score every pair of ``a`` and ``b``: images decoded off the main thread, neighbouring pairs of one
    size scored in batches of :data:`PAIR_BATCH`; the rows keep the pairs' order."""
    pairs, only_a, only_b = paired_files(a, b)
    rows: list[dict[str, Any]] = []
    pending: list[tuple[str, Any, Any]] = []

    def flush() -> None:
        if pending:
            values = _metric_values(m, [p[1] for p in pending], [p[2] for p in pending])
            for (name, _, _), (v, err) in zip(pending, values, strict=True):
                rows.append({"name": name, "value": v} if err is None else {"name": name, "value": None, "error": err})
            pending.clear()

    for name, x, y, err in _decoded(pairs, ahead=2 * PAIR_BATCH):
        if err is None and kind == "paired" and x.shape != y.shape:
            err = f"sizes differ: {tuple(x.shape[-2:])} vs {tuple(y.shape[-2:])}"
        if err is not None:
            flush()
            rows.append({"name": name, "value": None, "error": err})
            continue
        if pending and (pending[0][1].shape != x.shape or pending[0][2].shape != y.shape or len(pending) == PAIR_BATCH):
            flush()
        pending.append((name, x, y))
    flush()
    vals = [r["value"] for r in rows if r["value"] is not None and math.isfinite(r["value"])]
    return {"pairs": rows, "mean": sum(vals) / len(vals) if vals else None, "only_in_a": only_a, "only_in_b": only_b}


def _failures(result: dict) -> str | None:
    """Why the command must exit non-zero (pairs or files that could not be scored), or None."""
    if "pairs" in result:
        bad = [r for r in result["pairs"] if r["value"] is None]
        if not result["pairs"]:
            return "no pair of images to score (no file name is in both A and B)"
        if bad:
            return f"{len(bad)} of {len(result['pairs'])} pairs could not be scored"
        return None
    if result.get("unreadable"):
        return f"{len(result['unreadable'])} unreadable files were left out of the sets"
    return None


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
        # the weights are printed once, below: set metrics also return their provenance entries flat
        for k, v in result.items():
            if k not in ("metric", "params", "unreadable", "provenance") and k not in result["provenance"]:
                click.echo(f"{k}: {v}")
        for e in result.get("unreadable", []):
            click.echo(f"unreadable (not scored): {e}", err=True)
    if result["provenance"]:
        click.echo("weights: " + ", ".join(f"{k}={v}" for k, v in result["provenance"].items()), err=True)


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
@click.option("--max-pixels", type=click.IntRange(min=1), help=MAX_PIXELS_HELP)
def command(metric, a, b, as_json, params, net, weights, device, seed, max_pixels):
    """Score METRIC between two images or two folders (paired by file name; unmatched names are listed).

    Set-level metrics (FID, KID) compare the two folders as distributions. Pairs or files that cannot be
    read are reported and the others scored; the exit status is then 1.
    """
    from texbench import registry
    from texbench.env import resolve_device
    from texbench.imageio import pixel_budget

    p = parse_params(params)
    if net:
        p["net"] = net
    if weights:
        p["weights"] = weights
    cls = registry.metrics.get(metric)
    m = cls.from_config(p, device=resolve_device(device))
    a, b = Path(a), Path(b)
    result: dict = {"metric": metric, "params": m.params_dict(), "provenance": m.provenance()}
    with pixel_budget(max_pixels):
        result.update(_score_sets(m, a, b, seed) if cls.kind == "set" else _score_pairs(m, cls.kind, a, b))
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        _print_result(result)
    failure = _failures(result)
    if failure:
        raise click.ClickException(failure)
