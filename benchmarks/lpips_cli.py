"""``python -m benchmarks lpips-cli``: whole-process time of ``texbench score lpips A B`` against the lpips
package's own way of scoring two folders, on the same pairs, in one run.

The reference is the lpips repository's ``lpips_2dirs.py`` / ``compute_dists_dirs.py`` loop, run as its
own ``python`` process: ``lpips.LPIPS(net='alex', version='0.1')``, then for every file name in both
folders ``lpips.im2tensor(lpips.load_image(path))`` (OpenCV's decoder) and ``loss_fn.forward(img0, img1)``.
Two changes, both in the reference's favour or neutral: its AlexNet comes from a small file holding
exactly texbench's backbone weights (torchvision's 233 MB checkpoint, classifier included, is not
reachable offline, and the same weights make the values comparable), and a second variant wraps the loop
in ``torch.no_grad()`` (the script builds autograd graphs it never uses). The values printed by the commands are
checked to agree within 1e-5 (from the timed runs' own output). Runs are interleaved; the median of each is reported, with
the load average, because the ratio of two whole processes means little on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "make_pairs"]

_REFERENCE = """\
import os, sys
import torch
import lpips

dir0, dir1, backbone, no_grad = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
loss_fn = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
sd = torch.load(backbone, weights_only=True)
loss_fn.net.load_state_dict({k: sd[k.split(".", 1)[1]] for k in loss_fn.net.state_dict()}, strict=True)
with torch.no_grad() if no_grad else torch.enable_grad():
    for file in sorted(os.listdir(dir0)):
        if os.path.exists(os.path.join(dir1, file)):
            img0 = lpips.im2tensor(lpips.load_image(os.path.join(dir0, file)))
            img1 = lpips.im2tensor(lpips.load_image(os.path.join(dir1, file)))
            dist01 = loss_fn.forward(img0, img1)
            print("%s: %.6f" % (file, dist01))
"""


def make_pairs(root: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """``n`` PNG pairs ``root/a/iNNN.png``, ``root/b/iNNN.png`` of ``size``²: crops of scikit-image's
    photographs and the same crops with Gaussian noise (σ = 8/255) and a small shift."""
    import numpy as np
    import skimage.data
    from PIL import Image

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(seed)
    a, b = root / "a", root / "b"
    a.mkdir(parents=True, exist_ok=True)
    b.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ph = photos[i % len(photos)]
        y = int(rng.integers(0, ph.shape[0] - size - 4))
        x = int(rng.integers(0, ph.shape[1] - size - 4))
        crop = ph[y : y + size, x : x + size]
        shifted = ph[y + 2 : y + 2 + size, x + 1 : x + 1 + size].astype(np.float64)
        noisy = np.clip(shifted + rng.normal(0, 8, shifted.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(crop).save(a / f"i{i:03d}.png")
        Image.fromarray(noisy).save(b / f"i{i:03d}.png")
    return a, b


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return dt, res.stdout


def _values(stdout: str, sep: str) -> dict[str, float]:
    """``{stem: value}`` from the lines ``name<sep>value`` of either command (texbench's ``mean`` line
    and the reference's file extensions left out)."""
    out = {}
    for ln in stdout.splitlines():
        name, _, value = ln.strip().partition(sep)
        if value and name != "mean":
            out[name.rsplit(".", 1)[0] if name.endswith(".png") else name] = float(value.split()[0])
    return out


def main(argv: list[str] | None = None) -> None:
    import torch

    from texbench.nets.lpips import LPIPSNet

    ap = argparse.ArgumentParser(prog="python -m benchmarks lpips-cli")
    ap.add_argument("--pairs", type=int, default=192)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command (interleaved)")
    ap.add_argument("--data", type=Path, help="use (or create) the pairs here instead of a temp folder")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        a, b = (root / "a", root / "b") if (root / "a").is_dir() else make_pairs(root, args.pairs, args.size)
        backbone = Path(tmp) / "alex-backbone.pth"
        net = LPIPSNet("alex")  # texbench's backbone weights (real when cached), given to the reference too
        torch.save(net.features.state_dict(), backbone)
        script = Path(tmp) / "lpips_dirs.py"
        script.write_text(_REFERENCE)
        env = dict(os.environ)
        texbench = [sys.executable, "-m", "texbench", "score", "lpips", str(a), str(b), "--net", "alex"]
        cmds = {
            "texbench score lpips": texbench,
            "lpips script": [sys.executable, str(script), str(a), str(b), str(backbone), "0"],
            "lpips script + no_grad": [sys.executable, str(script), str(a), str(b), str(backbone), "1"],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        outputs: dict[str, str] = {}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for label, cmd in cmds.items():
                dt, out = _timed(cmd, env)
                times[label].append(dt)
                outputs.setdefault(label, out)
        load_after = os.getloadavg()
        # the same values from every command (texbench prints 6 significant digits, the script 6 decimals)
        vals = _values(outputs["texbench score lpips"], " ")
        for label in ("lpips script", "lpips script + no_grad"):
            ref = _values(outputs[label], ": ")
            if ref.keys() != vals.keys():
                raise SystemExit(f"{label}: scored {len(ref)} pairs, texbench {len(vals)}")
            diff = max(abs(ref[k] - vals[k]) for k in ref)
            if diff > 1e-5:
                raise SystemExit(f"{label}: values disagree by {diff:.2e} > 1e-5")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"LPIPS alex, {len(vals)} pairs of {args.size}x{args.size} PNG, whole processes, median of "
        f"{args.repeats} (interleaved); values agree within 1e-5; {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    for label, t in med.items():
        runs = ", ".join(f"{x:.2f}" for x in times[label])
        print(f"  {label:24s}: {t:7.2f} s  ({len(vals) / t:6.1f} pairs/s; runs {runs})")
    ours_t = med["texbench score lpips"]
    print(f"  ratio vs lpips script          : {med['lpips script'] / ours_t:.2f}x")
    print(f"  ratio vs lpips script + no_grad: {med['lpips script + no_grad'] / ours_t:.2f}x")
