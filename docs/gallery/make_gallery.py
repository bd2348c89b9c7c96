"""Regenerate the Gatys gallery: each built-in texture exemplar beside its Gatys synthesis, and one style
transfer, with the real normalised VGG-19 (``texbench weights fetch vgg19-normalised`` first).

    python docs/gallery/make_gallery.py [--size 96] [--evals 80] [--out docs/gallery]

Images come from ``texbench.datasets.builtin`` (BuiltinTextures, BuiltinContent, BuiltinStyles) when it is
installed, otherwise from scikit-image's sample images (brick, grass, gravel; astronaut in the style of
coffee). Texture: exemplar centre-cropped and resized to ``size``, output ``size``×``size`` from seeded
white noise, L-BFGS-B with ``evals`` evaluations, two scales (coarse-to-fine). Style: content
``size``×``size``, initialised from the content, λ = 1 (the defaults otherwise). About half a minute per
image at 96² on 2 idle CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def _images():
    from texbench.tasks import center_crop_resize  # noqa: F401  (fail early if texbench is missing)

    try:
        from texbench.datasets.builtin import BuiltinContent, BuiltinStyles, BuiltinTextures

        textures = [(it.id, it.load) for it in BuiltinTextures().items()]
        content = BuiltinContent().items()[0]
        style = BuiltinStyles().items()[0]
        return textures, (content.id, content.load), (style.id, style.load), "texbench.datasets.builtin"
    except ImportError:
        import skimage.data

        def load(name):
            def f():
                a = torch.from_numpy(getattr(skimage.data, name)()).float().div(255)
                return a[None].expand(3, -1, -1) if a.ndim == 2 else a.permute(2, 0, 1)[:3]

            return f

        textures = [(n, load(n)) for n in ("brick", "grass", "gravel")]
        return textures, ("astronaut", load("astronaut")), ("coffee", load("coffee")), "skimage.data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--evals", type=int, default=80)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from texbench.imageio import save_png
    from texbench.nets.vgg19 import VGG19_NORMALISED
    from texbench.synthesizers.gatys import Gatys
    from texbench.tasks import TaskInput, center_crop_resize
    from texbench.weights import resolve

    resolve(VGG19_NORMALISED)  # real weights only: fail with the fetch command if they are missing
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    textures, content, style, origin = _images()
    print(f"images from {origin}; size {args.size}, {args.evals} evaluations")
    s = args.size
    cpu = torch.device("cpu")
    g = Gatys.from_config(None, {"max_evals": args.evals, "scales": 2})
    for name, load in textures:
        t = time.perf_counter()
        ex = center_crop_resize(load(), s)
        y = g.run(TaskInput("texture", name, (s, s), image=ex), seed=args.seed, device=cpu)
        info = g.pop_info()
        save_png(torch.cat([ex, torch.ones(3, s, 4), y], dim=2), out / f"texture-{name}.png")
        print(
            f"texture {name}: style loss {info['style_loss_start']:.3g} -> {info['style_loss_end']:.3g}, "
            f"{info['evals']} evals, {time.perf_counter() - t:.0f} s"
        )
    t = time.perf_counter()
    c = center_crop_resize(content[1](), s)
    st = center_crop_resize(style[1](), s)
    g = Gatys.from_config(None, {"max_evals": args.evals, "init": "content"})
    y = g.run(
        TaskInput("style", f"{content[0]}+{style[0]}", (s, s), content=c, style=st),
        seed=args.seed,
        device=cpu,
    )
    info = g.pop_info()
    gap = torch.ones(3, s, 4)
    save_png(torch.cat([c, gap, st, gap, y], dim=2), out / f"style-{content[0]}-{style[0]}.png")
    print(
        f"style {content[0]}+{style[0]}: style loss {info['style_loss_start']:.3g} -> {info['style_loss_end']:.3g}, "
        f"{info['evals']} evals, {time.perf_counter() - t:.0f} s"
    )
    print(f"weights: {g.provenance()['vgg19']}")


if __name__ == "__main__":
    main()
