"""Speed of the classic patch-based synthesizers, and image quilting against a naive reference.

``python -m benchmarks patch [--size 256] [--exemplar-size 128] [--methods ...] [--threads 1]``

Times each method (paper defaults) for one ``size²`` output from a ``exemplar-size²`` exemplar, then
times image quilting once more with its overlap errors computed by a Python loop over the candidate
windows (:class:`~texbench.synthesizers.quilting.NaiveOverlapError`, everything else identical) and
prints the ratio. Single-threaded by default, so the numbers compare like with like (the naive loop
cannot use threads) and do not depend on the load of a shared machine.
"""

from __future__ import annotations

import argparse
import time

import torch

DEFAULT_METHODS = ("quilting", "efros-leung", "kwatra", "patch-ot")


def _exemplar(size: int) -> torch.Tensor:
    """A structured colour exemplar, seeded: blurred noise blobs over slanted stripes."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(3, size + 8, size + 8, generator=g)
    blur = torch.nn.functional.avg_pool2d(noise[None], 9, stride=1)[0]
    blur = (blur - blur.amin((1, 2), keepdim=True)) / (
        blur.amax((1, 2), keepdim=True) - blur.amin((1, 2), keepdim=True)
    )
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin((xx + 0.4 * yy) * 0.35)
    return (0.6 * blur + 0.4 * stripes).clamp(0, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks patch", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="output side (default 256)")
    parser.add_argument("--exemplar-size", type=int, default=128, help="exemplar side (default 128)")
    parser.add_argument("--methods", nargs="*", default=list(DEFAULT_METHODS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive quilting reference")
    args = parser.parse_args(argv)

    from texbench import registry
    from texbench.synthesizers.quilting import NaiveOverlapError, QuiltingParams, quilt
    from texbench.tasks import TaskInput

    torch.set_num_threads(args.threads)
    ex = _exemplar(args.exemplar_size)
    size = (args.size, args.size)
    inp = TaskInput("texture", "perf", size, image=ex)
    print(
        f"output {args.size}x{args.size} from a {args.exemplar_size}x{args.exemplar_size} exemplar, "
        f"torch threads {torch.get_num_threads()}, paper defaults"
    )
    times: dict[str, float] = {}
    for name in args.methods:
        method = registry.synthesizers.get(name)()
        t0 = time.perf_counter()
        out = method.run(inp, seed=0, device=torch.device("cpu"))
        times[name] = time.perf_counter() - t0
        print(f"  {name:<12} {times[name]:8.2f} s   ({method.params_dict()})", flush=True)
        if tuple(out.shape[-2:]) != size:
            raise SystemExit(f"{name} returned {tuple(out.shape)}")
    if args.no_naive:
        return
    params = QuiltingParams()
    t0 = time.perf_counter()
    fast = quilt(ex, size, params, generator=torch.Generator().manual_seed(0))
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = quilt(ex, size, params, generator=torch.Generator().manual_seed(0), error_cls=NaiveOverlapError)
    t_slow = time.perf_counter() - t0
    same = (
        "identical output"
        if torch.equal(fast, slow)
        else f"max |diff| {float((fast - slow).abs().max()):.3g}"
    )
    print(f"quilting, FFT overlap errors (texbench):    {t_fast:8.2f} s")
    print(f"quilting, Python loop over windows (naive): {t_slow:8.2f} s   ({same})")
    print(f"speed-up: {t_slow / t_fast:.1f}x (target >= 20x)")
