"""Seconds per L-BFGS function evaluation of Gatys texture synthesis: texbench vs a tutorial-style reference.

``python -m benchmarks gatys [--sizes 128 256] [--evals 10] [--device cpu] [--threads N]``

Both sides minimise the same loss (the Gram loss of :mod:`texbench.ops.gram` on
relu1_1…relu5_1 of the same VGG-19 weights) with the same ``torch.optim.LBFGS`` from the same white noise,
so their loss trajectories must agree (printed: the largest relative difference); only the work per
evaluation differs:

* texbench: the network is cut after relu5_1, the target Gram matrices are computed once under
  ``no_grad``, ReLUs are in place;
* reference (written here the way tutorials do it): the full VGG-19 feature stack (through pool5), the
  style image is pushed through the network and its Gram matrices recomputed at every evaluation, the
  activations collected by walking an ``nn.Sequential``.

Each measurement runs in its own process so that peak memory (``ru_maxrss`` on CPU,
``torch.cuda.max_memory_allocated`` on CUDA) belongs to it alone. Timings: wall-clock and CPU time per
evaluation, the first evaluation (warm-up) excluded.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

__all__ = ["main"]


def _reference_net(weights_path: str | None):
    """Full VGG-19 features as an ``nn.Sequential`` (average pooling, zero padding), tutorial style."""
    import torch.nn as nn

    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    names = ["preprocess"]
    cin = 3
    for b, (c, n) in enumerate(((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)), 1):
        for i in range(1, n + 1):
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
            cin = c
        layers.append(nn.AvgPool2d(2, 2))
        names.append(f"pool{b}")
    net = nn.Sequential(*layers)
    return net, names


def _measure(kind: str, size: int, evals: int, device: str, threads: int, seed: int, q) -> None:
    import resource

    import torch

    from texbench.nets.vgg19 import STYLE_LAYERS, VGG19Features
    from texbench.ops.gram import gram_matrix, style_loss

    torch.set_num_threads(threads)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    style = torch.rand(1, 3, size, size, generator=gen)
    # a smooth, textured exemplar (noise blurred at two scales) rather than white noise
    style = (style + torch.nn.functional.avg_pool2d(style, 5, 1, 2)).clamp(0, 1).to(dev)
    x0 = torch.rand(1, 3, size, size, generator=gen).to(dev)
    ours = VGG19Features(STYLE_LAYERS, random_seed=seed).to(dev)

    if kind == "texbench":
        net = ours
        with torch.no_grad():
            targets = [gram_matrix(f) for f in net(style).values()]

        def loss_fn(x):
            f = net(x)
            return style_loss([gram_matrix(f[n]) for n in STYLE_LAYERS], targets)[0]

    else:
        seq, names = _reference_net(None)
        # identical weights: copy them from the extractor (whatever its provenance)
        convs = [m for m in seq if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            convs[0].weight.copy_(ours.preprocess.weight)
            convs[0].bias.copy_(ours.preprocess.bias)  # type: ignore[union-attr]
        full = VGG19Features(("pool5",), random_seed=seed)
        with torch.no_grad():
            for dst, src in zip(convs[1:], full.convs, strict=False):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)  # type: ignore[union-attr]
        seq = seq.to(dev).eval()
        for p in seq.parameters():
            p.requires_grad_(False)

        def features(img):
            out, h = {}, img
            for name, layer in zip(names, seq, strict=False):
                h = layer(h)
                if name in STYLE_LAYERS:
                    out[name] = h
            return out

        def loss_fn(x):
            fs = features(style)  # recomputed every evaluation, as tutorials do
            targets = [gram_matrix(fs[n]).detach() for n in STYLE_LAYERS]
            f = features(x)
            return style_loss([gram_matrix(f[n]) for n in STYLE_LAYERS], targets)[0]

    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1,
        max_iter=evals,
        max_eval=evals,
        history_size=50,
        tolerance_grad=0,
        tolerance_change=0,
        line_search_fn="strong_wolfe",
    )
    stamps: list[tuple[float, float]] = []
    losses: list[float] = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        stamps.append((time.perf_counter(), time.process_time()))
        losses.append(loss.item())
        return loss

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    opt.step(closure)
    n = len(stamps) - 1
    wall = (stamps[-1][0] - stamps[0][0]) / max(n, 1)
    cpu = (stamps[-1][1] - stamps[0][1]) / max(n, 1)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    q.put({"wall": wall, "cpu": cpu, "peak_mib": peak, "losses": losses, "provenance": ours.provenance})


def _run(kind, size, evals, device, threads, seed):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(kind, size, evals, device, threads, seed, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks gatys", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--evals", type=int, default=10, help="L-BFGS function evaluations per measurement")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(
        f"Gatys texture synthesis, seconds per L-BFGS evaluation ({args.evals} evals, device {args.device}, "
        f"{args.threads} threads; first evaluation excluded)"
    )
    header = (
        f"{'size':>5} {'impl':>10} {'wall s/eval':>12} {'cpu s/eval':>11} {'peak MiB':>9} {'final loss':>11}"
    )
    print(header)
    for size in args.sizes:
        res = {
            k: _run(k, size, args.evals, args.device, args.threads, args.seed)
            for k in ("reference", "texbench")
        }
        for k, r in res.items():
            print(
                f"{size:>5} {k:>10} {r['wall']:>12.4f} {r['cpu']:>11.4f} {r['peak_mib']:>9.0f} {r['losses'][-1]:>11.5g}"
            )
        ref, tb = res["reference"]["losses"], res["texbench"]["losses"]
        m = min(len(ref), len(tb))
        rel = max(abs(a - b) / max(abs(a), 1e-30) for a, b in zip(ref[:m], tb[:m], strict=False))
        print(
            f"{size:>5} {'ratio':>10} {res['reference']['wall'] / res['texbench']['wall']:>11.2f}x "
            f"{res['reference']['cpu'] / res['texbench']['cpu']:>10.2f}x   "
            f"(loss trajectories: {m} evaluations, max relative difference {rel:.1e})"
        )
    print(f"weights: {res['texbench']['provenance']}")
