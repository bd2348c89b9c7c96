"""``texbench synth``: one method on a user's own image(s), without a benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from texbench.cli.common import MAX_PIXELS_HELP, Command, parse_params

if TYPE_CHECKING:
    from texbench.tasks import Task, TaskInput

__all__ = ["command", "task_input"]


def task_input(task: Task, input_: str | Sequence[str] | None, content: str | None, style: str | Sequence[str] | None,
               mask: str | None, size: int | None, sigma: float | None) -> TaskInput:
    """The :class:`~texbench.tasks.TaskInput` of ``task`` built from the user's files (the ``synth``
    options of the same names; ``style`` may name several files, which then fill ``TaskInput.styles``).

    Raises:
        click.UsageError: a file the task needs was not given, or the mask does not fit the input.
        texbench.imageio.ImageError: a file is not a usable image.
    """
    from texbench.imageio import load_image
    from texbench.tasks import TaskInput

    if task.name == "style":
        if not (content and style):
            raise click.UsageError("the style task needs --content and --style")
        paths = [style] if isinstance(style, str) else list(style)
        c = load_image(content, min_size=task.min_size)
        sts = [load_image(s, min_size=task.min_size) for s in paths]
        return TaskInput("style", Path(content).stem, tuple(c.shape[-2:]), content=c, style=sts[0],
                         styles=tuple(sts) if len(sts) > 1 else ())
    inputs = [input_] if isinstance(input_, str) else list(input_ or ())
    if task.name == "solid":
        return _solid_input(task, inputs, size)
    if len(inputs) > 1:
        raise click.BadParameter(f"the {task.name} task takes one --input, got {len(inputs)}", param_hint="--input")
    input_ = inputs[0] if inputs else None
    if not input_:
        raise click.UsageError(f"the {task.name} task needs --input")
    img = load_image(input_, min_size=2 if task.name == "sr4" else task.min_size)
    h, w = img.shape[-2:]
    stem = Path(input_).stem
    if task.name == "texture":
        if size is not None and size < task.min_size:
            raise click.BadParameter(f"must be at least {task.min_size} pixels, got {size}", param_hint="--size")
        return TaskInput("texture", stem, (size, size) if size else (h, w), image=img)
    if task.name == "sr4":
        return TaskInput("sr4", stem, (4 * h, 4 * w), image=img, degradation={"scale": 4})
    if task.name == "inpaint":
        if not mask:
            raise click.UsageError("the inpaint task needs --mask (white = known pixels)")
        m = load_image(mask)
        if tuple(m.shape[-2:]) != (h, w):
            raise click.UsageError(f"--mask is {m.shape[-1]}x{m.shape[-2]}, --input is {w}x{h}")
        known = (m.mean(dim=0, keepdim=True) > 0.5).float()
        return TaskInput("inpaint", stem, (h, w), image=img * known, mask=known)
    deg = {"sigma": sigma} if sigma is not None else {}
    return TaskInput(task.name, stem, (h, w), image=img, degradation=deg)


def _solid_input(task: Task, inputs: Sequence[str], size: int | None) -> TaskInput:
    """The ``solid`` task's input: one exemplar for all three slice axes, or three (axis 0, 1, 2)."""
    from texbench.imageio import load_image
    from texbench.tasks import TaskInput

    if len(inputs) not in (1, 3):
        raise click.BadParameter(f"the solid task takes one exemplar or three (one per axis), got {len(inputs)}",
                                 param_hint="--input")
    if size is not None and size < task.min_size:
        raise click.BadParameter(f"must be at least {task.min_size} voxels, got {size}", param_hint="--size")
    exs = [load_image(p, min_size=task.min_size) for p in inputs]
    s = size or min(exs[0].shape[-2:])
    return TaskInput("solid", Path(inputs[0]).stem, (s, s, s), image=exs[0],
                     exemplars=tuple(exs) if len(exs) == 3 else ())


def _check_output_path(path: Path, kind: str = "image") -> None:
    """Refuse, before any work, an output whose extension names no format of the task's output ``kind`` or
    whose folder cannot be one.

    Raises:
        click.BadParameter: naming ``-o``.
    """
    from texbench.imageio import SAVE_FORMATS, display_name
    from texbench.outputs import output_kind

    if kind != "image":
        suffix = output_kind(kind).suffix
        if path.suffix.lower() != suffix:
            raise click.BadParameter(f"a {kind} is written as {suffix}, got {display_name(path)}",
                                     param_hint="-o/--output")
    elif path.suffix.lower() not in SAVE_FORMATS:
        raise click.BadParameter(f"unknown image extension {path.suffix!r} in {display_name(path)}; use one of "
                                 f"{', '.join(SAVE_FORMATS)}", param_hint="-o/--output")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise click.BadParameter(f"{display_name(parent)} is a file, not a folder", param_hint="-o/--output")
            break


@click.command("synth", cls=Command)
@click.argument("method")
@click.option("--task", required=True, help="texture, style, denoise, sr4, inpaint, jpeg or solid.")
@click.option("--input", "input_", type=click.Path(exists=True, dir_okay=False), multiple=True,
              help="Exemplar (texture, solid) or the already degraded image (denoise, sr4, jpeg: the compressed "
                   "image); solid: give it three times for one exemplar per slice axis (0, 1, 2).")
@click.option("--content", type=click.Path(exists=True, dir_okay=False), help="Content image (style).")
@click.option("--style", type=click.Path(exists=True, dir_okay=False), multiple=True,
              help="Style image (style); repeat it to interpolate between styles (methods that can, e.g. "
                   "adain, with --param style_weights=...).")
@click.option("--mask", type=click.Path(exists=True, dir_okay=False),
              help="Known-pixel mask (inpaint): white = known, black = to fill; same size as --input.")
@click.option("--size", type=click.IntRange(min=1),
              help="Texture output side in pixels, solid volume side in voxels [default: the exemplar's size].")
@click.option("--sigma", type=float, help="Noise level on 0-255 of the input (denoise), if known.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--preset", help="Parameter preset (paper, tiny, ...).")
@click.option("--param", "params", multiple=True, help="key=value method parameter (repeatable).")
@click.option("--device", default="cpu", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output image; its extension names the format (.png, .jpg, .tif, .bmp, .webp, .ppm). "
                   "Solid task: a .npy volume, uint8 (D, H, W, 3).")
@click.option("--max-pixels", type=click.IntRange(min=1), help=MAX_PIXELS_HELP)
def command(method, task, input_, content, style, mask, size, sigma, seed, preset, params, device, output,
            max_pixels):
    """Run one METHOD on your own image(s), without a benchmark."""
    import time

    from texbench import registry
    from texbench.env import resolve_device
    from texbench.imageio import atomic_write_bytes, pixel_budget, save_image
    from texbench.outputs import output_kind
    from texbench.tasks import get_task

    t = get_task(task)
    kind = output_kind(t.output_kind)
    _check_output_path(Path(output), t.output_kind)
    cls = registry.synthesizers.get(method)
    if t.name not in cls.tasks:
        raise click.ClickException(f"{method} does not support task {task!r} (it supports {', '.join(cls.tasks)})")
    if len(style) > 1 and not cls.style_interpolation:
        raise click.UsageError(f"{method} takes one --style (it does not interpolate between styles)")
    s = cls.from_config(preset, parse_params(params))
    with pixel_budget(max_pixels):
        inp = task_input(t, input_, content, style, mask, size, sigma)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    s.prepare(inp, seed=seed, device=dev)
    out = kind.check(s.run(inp, seed=seed, device=dev), inp.size, method)
    secs = time.perf_counter() - t0
    if kind.name == "image":
        save_image(out, output)
    else:
        atomic_write_bytes(output, kind.encode(kind.quantise(out)))
    prov = s.provenance()
    shape = "x".join(map(str, inp.size[::-1]))
    click.echo(f"{output}: {shape} in {secs:.2f} s" + (f"; weights: {prov}" if prov else ""))
