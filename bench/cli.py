"""The ``texbench`` command line: run, report, list, synth, score, weights (+ plugin commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["main"]


def _load_plugins(files) -> None:
    from texbench.registry import PluginError, load_plugin_file

    for f in files:
        try:
            names = load_plugin_file(f)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from None
        if not names:
            click.echo(f"warning: plugin file {f} defines no Synthesizer, Metric or Dataset", err=True)


def _reraise_weights(exc: BaseException) -> None:
    """Weights errors are handled by the group (message, exit code 2), not as generic usage errors."""
    from texbench.weights import WeightsError

    if isinstance(exc, WeightsError):
        raise exc


def _parse_params(pairs) -> dict:
    from texbench.params import parse_value

    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"expected key=value, got {p!r}", param_hint="--param")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


class _Group(click.Group):
    """Adds commands that plugins declare in the entry-point group ``texbench.cli``, and turns a missing
    or corrupt weights file into its message and exit code 2 (never a traceback)."""

    def invoke(self, ctx):
        from texbench.weights import WeightsError

        try:
            return super().invoke(ctx)
        except WeightsError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)

    def _plugin_commands(self) -> dict:
        from importlib import metadata

        cmds = {}
        for ep in metadata.entry_points(group="texbench.cli"):
            cmds[ep.name] = ep
        return cmds

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._plugin_commands().get(name)
        if ep is None:
            return None
        try:
            return ep.load()
        except Exception as exc:
            raise click.ClickException(f"plugin command {name!r} ({ep.value}) failed to load: {exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
              help="A local Python file defining Synthesizer/Metric/Dataset plugins (repeatable).")
@click.version_option(package_name="texbench")
@click.pass_context
def main(ctx, plugins):
    """texbench: benchmark image-synthesis methods on the same inputs, score them, rank them."""
    ctx.ensure_object(dict)
    ctx.obj["plugins"] = list(plugins)
    _load_plugins(plugins)


# ------------------------------------------------------------------------------------------------------- run
@main.command()
@click.option("--suite", default="quick", show_default=True, help="Built-in suite name or path to a .toml file.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<suite name>].")
@click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, help="Processes for --executor process [default: CPU count].")
@click.option("--ray-address", help="Address of an existing Ray cluster (--executor ray).")
@click.option("--device", help="Override the suite's device (cpu, cuda, auto).")
@click.option("--rerun", is_flag=True, help="Run every job again, even those already stored.")
@click.option("--retry-failed", is_flag=True, help="Run again the jobs that failed before.")
@click.option("--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False), help="Plugin file (repeatable).")
@click.option("--data-root", type=click.Path(file_okay=False), help="Base folder for relative dataset paths.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def run(ctx, suite, out, executor, workers, ray_address, device, rerun, retry_failed, plugins, data_root, quiet):
    """Run (or resume) a benchmark suite and write its leaderboard.

    Jobs already in the run directory are skipped, so an interrupted run continues where it stopped.
    """
    import dataclasses

    from texbench.runner import run_suite
    from texbench.suite import SuiteError, load_suite

    _load_plugins(plugins)
    try:
        s = load_suite(suite)
        if device:
            s = dataclasses.replace(s, device=device)
        summary = run_suite(s, out or Path("runs") / s.name, executor=executor, workers=workers,
                            ray_address=ray_address, rerun=rerun, retry_failed=retry_failed,
                            plugin_files=[*ctx.obj["plugins"], *plugins], data_root=data_root, progress=not quiet)
    except (SuiteError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{summary.ran} jobs run ({summary.failed} failed), {summary.skipped} already done, "
               f"{summary.bad_inputs} bad inputs skipped.")
    click.echo(f"Results: {summary.out / 'results.sqlite'}")
    if summary.leaderboard:
        click.echo(f"Leaderboard: {summary.leaderboard} (and leaderboard.csv, report.html, grid_<task>.png)")


# ---------------------------------------------------------------------------------------------------- report
@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md", show_default=True,
              help="What to print (html: the path of report.html).")
@click.option("--no-grids", is_flag=True, help="Do not redraw the image grids.")
def report(run_dir, fmt, no_grids):
    """Regenerate the leaderboard (Markdown, CSV, report.html) of RUN_DIR from its stored results (no method
    is re-run)."""
    from texbench.reports.leaderboard import write_leaderboard
    from texbench.store import Store

    try:
        store = Store(run_dir, create=False)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    with store:
        if not no_grids:
            from texbench.reports.grid import write_grids

            write_grids(store)
        md = write_leaderboard(store)
    if fmt == "html":
        click.echo(str(md.with_name("report.html")))
    else:
        click.echo((md if fmt == "md" else md.with_suffix(".csv")).read_text())


# ------------------------------------------------------------------------------------------------------ list
@main.command("list")
@click.argument("what", required=False, type=click.Choice(["methods", "metrics", "datasets", "suites", "tasks"]))
def list_(what):
    """Show installed methods, metrics, datasets, suites and tasks (broken plugins are reported)."""
    import importlib.util

    from texbench import registry
    from texbench.suite import builtin_suites
    from texbench.tasks import TASKS

    def section(title, reg, fmt):
        click.echo(f"{title}:")
        for name in reg.names():
            try:
                cls = reg.get(name)
                click.echo(f"  {name:22s} {fmt(cls)}")
            except registry.PluginError as exc:
                click.echo(f"  {name:22s} BROKEN: {exc}")
        click.echo("")

    if what in (None, "tasks"):
        click.echo("tasks:")
        for t in TASKS.values():
            click.echo(f"  {t.name:22s} {t.description} (primary metric: {t.primary_metric})")
        click.echo("")
    if what in (None, "methods"):
        def method_line(c):
            missing = [m for m in c.requires if importlib.util.find_spec(m) is None]
            extra = f" (needs: pip install {' '.join(missing)})" if missing else ""
            return f"[{', '.join(c.tasks)}] {c.description}{extra}"

        section("methods", registry.synthesizers, method_line)
    if what in (None, "metrics"):
        section("metrics", registry.metrics,
                lambda c: f"[{c.kind}, {'higher' if c.higher_is_better else 'lower'} is better] {c.description}")
    if what in (None, "datasets"):
        section("datasets", registry.datasets, lambda c: c.description)
    if what in (None, "suites"):
        import tomllib

        click.echo("suites:")
        for name, text in builtin_suites().items():
            click.echo(f"  {name:22s} {tomllib.loads(text).get('description', '')}")


# ----------------------------------------------------------------------------------------------------- synth
@main.command()
@click.argument("method")
@click.option("--task", required=True, help="texture, style, denoise, sr4 or inpaint.")
@click.option("--input", "input_", type=click.Path(exists=True, dir_okay=False),
              help="Exemplar (texture) or the already degraded image (denoise, sr4).")
@click.option("--content", type=click.Path(exists=True, dir_okay=False), help="Content image (style).")
@click.option("--style", type=click.Path(exists=True, dir_okay=False), help="Style image (style).")
@click.option("--mask", type=click.Path(exists=True, dir_okay=False),
              help="Known-pixel mask (inpaint): white = known, black = to fill; same size as --input.")
@click.option("--size", type=int, help="Texture output side in pixels [default: the exemplar's size].")
@click.option("--sigma", type=float, help="Noise level on 0-255 of the input (denoise), if known.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--preset", help="Parameter preset (paper, tiny, ...).")
@click.option("--param", "params", multiple=True, help="key=value method parameter (repeatable).")
@click.option("--device", default="cpu", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output PNG.")
def synth(method, task, input_, content, style, mask, size, sigma, seed, preset, params, device, output):
    """Run one METHOD on your own image(s), without a benchmark."""
    import time

    from texbench import registry
    from texbench.env import resolve_device
    from texbench.executors import _check_output
    from texbench.imageio import ImageError, load_image, save_png
    from texbench.tasks import TaskInput, get_task

    try:
        t = get_task(task)
        cls = registry.synthesizers.get(method)
        if t.name not in cls.tasks:
            raise click.ClickException(f"{method} does not support task {task!r} (it supports {', '.join(cls.tasks)})")
        s = cls.from_config(preset, _parse_params(params))
        if t.name == "style":
            if not (content and style):
                raise click.UsageError("the style task needs --content and --style")
            c, st = load_image(content, min_size=t.min_size), load_image(style, min_size=t.min_size)
            inp = TaskInput("style", Path(content).stem, tuple(c.shape[-2:]), content=c, style=st)
        else:
            if not input_:
                raise click.UsageError(f"the {task} task needs --input")
            img = load_image(input_, min_size=2 if t.name == "sr4" else t.min_size)
            h, w = img.shape[-2:]
            if t.name == "texture":
                out_size = (size, size) if size else (h, w)
                inp = TaskInput("texture", Path(input_).stem, out_size, image=img)
            elif t.name == "sr4":
                inp = TaskInput("sr4", Path(input_).stem, (4 * h, 4 * w), image=img, degradation={"scale": 4})
            elif t.name == "inpaint":
                if not mask:
                    raise click.UsageError("the inpaint task needs --mask (white = known pixels)")
                m = load_image(mask)
                if tuple(m.shape[-2:]) != (h, w):
                    raise click.UsageError(f"--mask is {m.shape[-1]}x{m.shape[-2]}, --input is {w}x{h}")
                known = (m.mean(dim=0, keepdim=True) > 0.5).float()
                inp = TaskInput("inpaint", Path(input_).stem, (h, w), image=img * known, mask=known)
            else:
                deg = {"sigma": sigma} if sigma is not None else {}
                inp = TaskInput(t.name, Path(input_).stem, (h, w), image=img, degradation=deg)
        dev = resolve_device(device)
        t0 = time.perf_counter()
        s.prepare(inp, seed=seed, device=dev)
        out = _check_output(s.run(inp, seed=seed, device=dev), inp.size, method)
        secs = time.perf_counter() - t0
        save_png(out, output)
    except (ImageError, ValueError, registry.PluginError) as exc:
        _reraise_weights(exc)
        raise click.ClickException(str(exc)) from None
    prov = s.provenance()
    click.echo(f"{output}: {inp.size[1]}x{inp.size[0]} in {secs:.2f} s" + (f"; weights: {prov}" if prov else ""))


# ----------------------------------------------------------------------------------------------------- score
def _pairs(a: Path, b: Path):
    from texbench.imageio import list_images

    if a.is_file() and b.is_file():
        return [(a.name, a, b)], [], []
    if a.is_dir() and b.is_dir():
        fa = {p.stem: p for p in list_images(a)}
        fb = {p.stem: p for p in list_images(b)}
        common = sorted(set(fa) & set(fb))
        return [(k, fa[k], fb[k]) for k in common], sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
    raise click.UsageError("A and B must both be files or both be folders")


@main.command()
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
def score(metric, a, b, as_json, params, net, weights, device, seed):
    """Score METRIC between two images or two folders (paired by file name; unmatched names are listed).

    Set-level metrics (FID, KID) compare the two folders as distributions.
    """
    import math

    from texbench import registry
    from texbench.env import resolve_device
    from texbench.imageio import ImageError, list_images, load_image

    p = _parse_params(params)
    if net:
        p["net"] = net
    if weights:
        p["weights"] = weights
    try:
        cls = registry.metrics.get(metric)
        m = cls.from_config(p, device=resolve_device(device))
    except (registry.PluginError, ValueError) as exc:
        _reraise_weights(exc)
        raise click.ClickException(str(exc)) from None
    a, b = Path(a), Path(b)
    result: dict = {"metric": metric, "params": m.params_dict(), "provenance": m.provenance()}
    try:
        if cls.kind == "set":
            if hasattr(m, "compute_paths"):
                res = m.compute_paths(a, b)
            else:
                xs = [load_image(f) for f in (list_images(a) if a.is_dir() else [a])]
                ys = [load_image(f) for f in (list_images(b) if b.is_dir() else [b])]
                res = m.compute_sets(xs, ys, seed=seed)
            result.update(res)
        else:
            pairs, only_a, only_b = _pairs(a, b)
            rows = []
            for name, fa, fb in pairs:
                x, y = load_image(fa)[None], load_image(fb)[None]
                if cls.kind == "paired" and x.shape != y.shape:
                    rows.append({"name": name, "value": None, "error": f"sizes differ: {tuple(x.shape[-2:])} vs {tuple(y.shape[-2:])}"})
                    continue
                v = float(m(x.to(m.device), y.to(m.device))[0])
                rows.append({"name": name, "value": v})
            vals = [r["value"] for r in rows if r["value"] is not None and math.isfinite(r["value"])]
            result.update(pairs=rows, mean=sum(vals) / len(vals) if vals else None, only_in_a=only_a, only_in_b=only_b)
    except (ImageError, ValueError, FileNotFoundError) as exc:
        _reraise_weights(exc)
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
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


# --------------------------------------------------------------------------------------------------- weights
@main.group()
def weights():
    """Pretrained weights: list their state, fetch them into the cache, verify them."""


def _specs(names):
    from texbench.weights import all_specs

    specs = all_specs()
    if not names:
        return list(specs.values())
    missing = [n for n in names if n not in specs]
    if missing:
        raise click.ClickException(f"unknown weights {missing}; known: {', '.join(specs) or '(none)'}")
    return [specs[n] for n in names]


@weights.command("list")
def weights_list():
    """Each known weights file, its licence, where it is and whether it is verified."""
    from texbench.weights import WeightsError, cache_dir, find_cached

    click.echo(f"cache: {cache_dir()}")
    for spec in _specs(()):
        try:
            path = find_cached(spec)
            state = f"ok  {path}" if path else "missing"
        except WeightsError as exc:
            state = f"BAD {exc}"
        click.echo(f"  {spec.name:24s} {state}")
        click.echo(f"  {'':24s} {spec.description} [{spec.license}] sha256 {spec.sha256[:16]}…")


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Fetch again even if a verified copy exists.")
def weights_fetch(names, force):
    """Fetch NAMES (default: all) from their sources into the cache, verifying sha256."""
    from texbench.weights import WeightsError, fetch

    failed = []
    for spec in _specs(names):
        try:
            path = fetch(spec, force=force)
            click.echo(f"{spec.name}: {path}")
        except WeightsError as exc:
            click.echo(str(exc), err=True)
            failed.append(spec.name)
    if failed:
        raise click.ClickException(f"could not fetch: {', '.join(failed)}")


@weights.command("verify")
@click.argument("names", nargs=-1)
def weights_verify(names):
    """Re-hash the cached copies of NAMES (default: all); exit 1 if any is missing or wrong."""
    from texbench.weights import _candidates, sha256_file

    bad = 0
    for spec in _specs(names):
        hit = None
        for _, cand in _candidates(spec, None):
            if cand.is_file():
                digest = sha256_file(cand)
                hit = (cand, digest == spec.sha256)
                if hit[1]:
                    break
        if hit is None:
            click.echo(f"{spec.name}: missing")
            bad += 1
        elif not hit[1]:
            click.echo(f"{spec.name}: WRONG sha256 at {hit[0]}")
            bad += 1
        else:
            click.echo(f"{spec.name}: ok {hit[0]}")
    if bad:
        sys.exit(1)


@main.group()
def trained():
    """Weights that methods trained themselves (Texture Networks, Johnson et al.), cached by input hash."""


@trained.command("list")
def trained_list():
    """Each cached training: method, when, how long it took, size."""
    import json

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


@trained.command("clear")
@click.option("--method", help="Only the trainings of this method.")
@click.option("--yes", is_flag=True, help="Do not ask.")
def trained_clear(method, yes):
    """Delete cached trainings (all, or one method's): the next run trains again. Without --method, also
    the leftovers of interrupted writes (weights without a record, temporary files)."""
    import json

    from texbench.trained import trained_dir

    root = trained_dir()
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else []
    doomed = []
    for f in files:
        stem = f.name.split(".", 1)[0]
        if method is None:
            doomed.append(f)
            continue
        meta = root / f"{stem}.json"
        try:
            m = json.loads(meta.read_text()).get("fields", {}).get("method")
        except (OSError, ValueError):
            m = None
        if m == method:
            doomed.append(f)
    keys = {f.name.split(".", 1)[0] for f in doomed if f.suffix == ".pt" or f.suffix == ".json"}
    if not doomed:
        click.echo("nothing to delete")
        return
    if not yes:
        click.confirm(f"delete {len(keys)} cached training(s) ({len(doomed)} files) in {root}?", abort=True)
    for f in doomed:
        f.unlink(missing_ok=True)
    click.echo(f"deleted {len(keys)} ({len(doomed)} files)")


if __name__ == "__main__":  # pragma: no cover
    main()
