"""Deep Image Prior on the DIP paper's own JPEG example (``snail.jpg``): compressed input | DIP output.

The photograph is a real JPEG (libjpeg tables of quality 20) with no clean original, so the result is
shown, not scored. Usage (from the checkout root)::

    python docs/gallery/make_jpeg.py ../shared/data/dip/denoising_snail.jpg --iterations 600

``--iterations 2400`` is the notebook's budget (``denoising.ipynb``); the README states which was used.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from texbench.imageio import load_image
from texbench.synthesizers.dip import DIP
from texbench.tasks import TaskInput


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snail", type=Path)
    ap.add_argument("--iterations", type=int, default=2400)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("jpeg-snail.png"))
    args = ap.parse_args()
    img = load_image(args.snail)
    inp = TaskInput("jpeg", "snail", tuple(img.shape[-2:]), image=img)
    dip = DIP.from_config("jpeg", {"iterations": args.iterations})
    t0 = time.perf_counter()
    out = dip.run(inp, seed=0, device="cpu")
    print(f"{args.iterations} iterations, {img.shape[-1]}x{img.shape[-2]}: {time.perf_counter() - t0:.0f} s")
    row = torch.cat([img, torch.ones(3, img.shape[1], 8), out], dim=2)
    Image.fromarray((row.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy().astype(np.uint8)).save(args.output)


if __name__ == "__main__":
    main()
