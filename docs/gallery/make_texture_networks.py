"""Regenerate the Texture Networks gallery: a generator trained per built-in exemplar (preset ``fast``:
128² training crops, batch 4, 500 Adam iterations, real normalised VGG-19), then two samples at 256²
(twice the training size: the generator is fully convolutional) from seeds 0 and 1.

    python docs/gallery/make_texture_networks.py [--names brick,gravel] [--preset fast] [--out docs/gallery]

Prints, per exemplar, the training time, the Gram loss before/after training, and the time per sample.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default="brick,gravel")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--size", type=int, default=256, help="sample size")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()

    from texbench.datasets.builtin import BuiltinTextures
    from texbench.imageio import save_png
    from texbench.nets.vgg19 import VGG19_NORMALISED
    from texbench.synthesizers.texture_networks import TextureNetworks
    from texbench.tasks import TaskInput, center_crop_resize
    from texbench.weights import resolve

    resolve(VGG19_NORMALISED)  # real weights only: fail with the fetch command if they are missing
    items = {it.id: it for it in BuiltinTextures().items()}
    out = Path(args.out)
    cpu = torch.device("cpu")
    s = args.size
    for name in args.names.split(","):
        ex = center_crop_resize(items[name].load(), s)
        m = TextureNetworks.from_config(args.preset)
        inp = TaskInput("texture", name, (s, s), image=ex)
        t = time.perf_counter()
        m.prepare(inp, seed=0, device=cpu)
        info = m.pop_info()
        samples = []
        for seed in (0, 1):
            t1 = time.perf_counter()
            samples.append(m.run(inp, seed=seed, device=cpu))
            dt = time.perf_counter() - t1
        gap = torch.ones(3, s, 4)
        save_png(torch.cat([ex, gap, samples[0], gap, samples[1]], dim=2), out / f"texture-networks-{name}.png")
        print(f"{name}: trained in {info['train_seconds']:.0f} s (cache: {info['train_cached']}), Gram loss "
              f"{info['train_loss_start']:.3g} -> {info['train_loss_end']:.3g}; {dt:.2f} s per {s}² sample; "
              f"wall {time.perf_counter() - t:.0f} s")
    print(f"weights: {m.provenance()['vgg19']}")


if __name__ == "__main__":
    main()
