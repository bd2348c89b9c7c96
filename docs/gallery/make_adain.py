"""Regenerate the AdaIN / WCT gallery: the gallery's content/style pair (as ``make_gallery.py``) rendered by
``adain`` (α = 1 and 0.5, and with colour preservation) and ``wct --preset relu4``, with the authors' weights
(``texbench weights fetch vgg19-normalised adain-decoder`` first).

    python docs/gallery/make_adain.py [--size 256] [--out docs/gallery]

Content: centre-cropped and resized to ``size``×``size``. Style: the full style image, given to the
methods as is (each resizes its shorter side to 512, the authors' default); the style panel shows it
centre-cropped to ``size``. Panels: content | style | adain | adain α=0.5 | adain colour-preserved |
wct --preset relu4 (α = 0.6; single-level WCT with the AdaIN decoder: the multi-level ``wct`` needs its
five decoders trained first, a GPU-scale job).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from make_gallery import _images

    from texbench.imageio import save_png
    from texbench.nets.adain import ADAIN_DECODER
    from texbench.nets.vgg19 import VGG19_NORMALISED
    from texbench.synthesizers.adain import AdaIN
    from texbench.synthesizers.wct import WCT
    from texbench.tasks import TaskInput, center_crop_resize
    from texbench.weights import resolve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()
    for spec in (VGG19_NORMALISED, ADAIN_DECODER):
        resolve(spec)  # real weights only: fail with the fetch command if they are missing
    _, content, style, origin = _images()
    s, cpu = args.size, torch.device("cpu")
    c, st = center_crop_resize(content[1](), s), style[1]()
    inp = TaskInput("style", f"{content[0]}+{style[0]}", (s, s), content=c, style=st)
    panels = [c, center_crop_resize(st, s)]
    runs = [(AdaIN, None, {}), (AdaIN, None, {"alpha": 0.5}), (AdaIN, None, {"preserve_color": True}),
            (WCT, "relu4", {})]
    for cls, preset, overrides in runs:
        m = cls.from_config(preset, overrides)
        t = time.perf_counter()
        panels.append(m.run(inp, seed=0, device=cpu))
        print(f"{cls.name} {preset or ''} {overrides}: {time.perf_counter() - t:.1f} s; weights {m.provenance()}")
    gap = torch.ones(3, s, 4)
    row = [p for panel in panels for p in (panel, gap)][:-1]
    path = Path(args.out) / f"style-adain-{content[0]}-{style[0]}.png"
    save_png(torch.cat(row, dim=2), path)
    print(f"images from {origin}; wrote {path}")


if __name__ == "__main__":
    main()
