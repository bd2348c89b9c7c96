"""FID feature extraction speed: texbench's FID Inception vs pytorch-fid 0.3.0, same inputs, same weights.

    python -m benchmarks fid [--n 32] [--size 256] [--batch-size 32] [--repeats 3] [--threads N]

Prints images/s for both (best of ``--repeats`` timed passes after a warm-up), their ratio and the largest
pool3 difference (equal values are part of the claim), then SiFID on 128×128 pairs against running the
full network on the same pairs. Uses the real weights when cached, else the same seeded random weights
in both networks (speed does not depend on the values).

Targets (issue 3): texbench >= 1.5x pytorch-fid's throughput on this CPU at equal values; SiFID on
128×128 pairs >= 5x faster than the full network.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch

__all__ = ["main"]


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return ((x.clamp(0, 1) * 255).round() / 255).contiguous()


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN primitive creation, allocations
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks fid", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="images per timed pass")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--pairs", type=int, default=8, help="SiFID 128x128 pairs")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import pytorch_fid.inception as pfi

    from texbench.metrics.feature_cache import FeatureCache
    from texbench.metrics.sifid import sifid
    from texbench.nets.inception import (
        FID_INCEPTION,
        FIDInceptionV3,
        pytorch_fid_state_dict,
        random_state_dict,
        state_dict_from_torchscript,
    )
    from texbench.weights import find_cached

    device = torch.device(args.device)
    path = find_cached(FID_INCEPTION)
    sd = state_dict_from_torchscript(path) if path else random_state_dict(0)
    weights = FID_INCEPTION.provenance if path else "random-init:seed=0 (same in both networks)"
    ours = FIDInceptionV3()
    ours.load_state_dict(sd)
    ours.to(device)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: pytorch_fid_state_dict(sd)):
        ref = pfi.InceptionV3([3]).eval().to(device)

    x = _images(args.n, args.size, 0).to(device)
    batches = x.split(args.batch_size)

    def run_ours():
        return torch.cat([ours(b)[2048] for b in batches])

    def run_ref():
        with torch.no_grad():
            return torch.cat([ref(b)[0].flatten(1) for b in batches])

    diff = (run_ours() - run_ref()).abs().max().item()
    t_ref = _best(run_ref, args.repeats)
    t_ours = _best(run_ours, args.repeats)
    print(f"device {device}, torch threads {torch.get_num_threads()}, weights {weights}")
    print(f"FID features, {args.n} images {args.size}x{args.size}, batch {args.batch_size}:")
    print(f"  pytorch-fid 0.3.0: {args.n / t_ref:8.2f} images/s")
    print(f"  texbench:          {args.n / t_ours:8.2f} images/s")
    print(
        f"  ratio texbench / pytorch-fid: {t_ref / t_ours:.2f}x (target >= 1.5x); max |pool3 diff| {diff:.2e}"
    )

    xs, ys = _images(args.pairs, 128, 1).to(device), _images(args.pairs, 128, 2).to(device)

    def run_sifid():  # a fresh memory-only cache each time: measures extraction, not cache hits
        return sifid(xs, ys, dims=192, device=device, cache=FeatureCache(disk=False))

    def run_full():
        return ours(torch.cat([xs, ys]))[2048]

    t_full = _best(run_full, args.repeats)
    t_sifid = _best(run_sifid, args.repeats)
    print(f"SiFID (192 block) on {args.pairs} pairs 128x128, features + Frechet distances:")
    print(f"  full network on the same pairs: {t_full:.3f} s;  SiFID: {t_sifid:.3f} s")
    print(f"  ratio: {t_full / t_sifid:.1f}x faster (target >= 5x)")
