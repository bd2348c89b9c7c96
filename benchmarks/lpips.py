"""``python -m benchmarks lpips``: LPIPS pairs/s, texbench vs the ``lpips`` package, same inputs, one run.

Both models get identical backbone weights (texbench's, real when cached, else seeded random) and the
official v0.1 linear layers; the values are checked to agree within 1e-5 before timing. Runs are
interleaved and the median per-batch time is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    import torch

    from texbench.nets.backbones import BACKBONE_SPECS
    from texbench.nets.lpips import LPIPSNet
    from texbench.weights import find_cached

    ap = argparse.ArgumentParser(prog="python -m benchmarks lpips")
    ap.add_argument("--net", choices=("alex", "vgg", "squeeze"), default="alex")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import lpips as lpips_ref

    pretrained = any(find_cached(s) for s in BACKBONE_SPECS[args.net])
    ours = LPIPSNet(args.net, pretrained_backbone=pretrained, seed=0)
    ref = lpips_ref.LPIPS(net=args.net, pnet_rand=True, pretrained=True, verbose=False).eval()
    sd = ours.features.state_dict()
    ref.net.load_state_dict({k: sd[k.split(".", 1)[1]] for k in ref.net.state_dict()}, strict=True)

    g = torch.Generator().manual_seed(0)
    x = torch.rand((args.batch, 3, args.size, args.size), generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)

    def run_ref() -> torch.Tensor:
        with torch.no_grad():
            return ref(x, y, normalize=True).flatten().double()

    def run_ours() -> torch.Tensor:
        with torch.inference_mode():
            return ours(x, y)

    diff = float((run_ours() - run_ref()).abs().max())
    if diff > 1e-5:
        raise SystemExit(f"values disagree by {diff:.2e} > 1e-5; not timing")
    t_ref: list[float] = []
    t_ours: list[float] = []
    for _ in range(args.repeats):
        for fn, acc in ((run_ref, t_ref), (run_ours, t_ours)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    r, o = statistics.median(t_ref), statistics.median(t_ours)
    print(
        f"LPIPS {args.net} ({'ImageNet' if pretrained else 'random-init'} backbone), batch {args.batch} of "
        f"{args.size}x{args.size}, torch threads {torch.get_num_threads()}, max |diff| {diff:.1e}"
    )
    print(f"  lpips 0.1.4 : {args.batch / r:8.1f} pairs/s  (median {r * 1e3:.1f} ms/batch)")
    print(f"  texbench    : {args.batch / o:8.1f} pairs/s  (median {o * 1e3:.1f} ms/batch)")
    print(f"  ratio       : {r / o:.2f}x")
