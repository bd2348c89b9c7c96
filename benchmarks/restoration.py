"""Restoration benchmark: Deep Image Prior against classic baselines, quality and seconds in one table.

    python -m benchmarks restoration                       # built-in images, paper budgets
    python -m benchmarks restoration --data ../shared/data/set5 --tasks sr4
    python -m benchmarks restoration --iterations 200      # cap DIP's steps (labelled in the table)

For each image and task (``denoise`` at σ = 25, ``sr4``) it builds the task's input exactly as the runner
does, runs DIP (paper settings, :mod:`texbench.synthesizers.dip`), NL-means and BM3D (denoise), bicubic
and Lanczos (sr4), and prints PSNR, SSIM and LPIPS against the clean image plus the seconds each method
took. For ``sr4`` it also prints PSNR on the luma channel with a 4-pixel border crop, the protocol of
Deep Image Prior's evaluation script (the paper's Set5 numbers: DIP 29.90 dB, bicubic 28.43 dB). DIP
also reports its seconds per iteration and, when ``--iterations`` caps it, the time the paper budget
would take extrapolated from that rate (labelled as an extrapolation).

Methods and metrics come from the registry. Where one is not installed (a plugin not merged yet, the
optional ``bm3d`` package missing) the table says so; for bicubic, NL-means, PSNR and SSIM a stated
fallback (torch / scikit-image directly, marked ``*``) keeps the table complete.
"""

from __future__ import annotations

import argparse
import time

import torch

from texbench import registry, tasks
from texbench.ops.color import rgb_to_y
from texbench.ops.distortion import psnr

BUILTIN = ("astronaut", "chelsea", "coffee")


# ---------------------------------------------------------------------------------------------- images
def _builtin_images(size: int) -> list[tuple[str, torch.Tensor]]:
    from skimage import data

    out = []
    for name in BUILTIN:
        img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float() / 255.0
        out.append((name, tasks.center_crop_resize(img, size)))
    return out


def _folder_images(folder: str, limit: int | None, size: int | None) -> list[tuple[str, torch.Tensor]]:
    from texbench.imageio import list_images, load_image

    files = list_images(folder)[:limit] if limit else list_images(folder)
    if not files:
        raise SystemExit(f"no images in {folder}")
    out = []
    for f in files:
        img = load_image(f)
        out.append((f.stem, tasks.center_crop_resize(img, size) if size else img))
    return out


# --------------------------------------------------------------------------------------------- metrics
def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(psnr(x[None].double(), y[None].double())[0])


def psnr_y_crop(x: torch.Tensor, y: torch.Tensor, border: int = 4) -> float:
    """PSNR on luma (BT.601, MATLAB ``rgb2ycbcr``) with ``border`` pixels cropped on every side (the SR
    papers' protocol)."""
    return float(psnr(rgb_to_y(x[None].double()), rgb_to_y(y[None].double()), crop_border=border)[0])


class _Scores:
    """PSNR / SSIM / LPIPS from the registry, with stated fallbacks for PSNR and SSIM."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.psnr = self._load("psnr")
        self.ssim = self._load("ssim")
        self.lpips = self._load("lpips")
        if self.psnr is None:
            self.notes.append("psnr*: metric 'psnr' not registered; float64 PSNR computed here")
        if self.ssim is None:
            self.notes.append("ssim*: metric 'ssim' not registered; skimage.metrics.structural_similarity")
        if self.lpips is None:
            self.notes.append("lpips: metric 'lpips' is not registered (missing), column left empty")

    def _load(self, name: str):
        try:
            return registry.metrics.get(name)()
        except Exception as exc:  # not merged yet, or weights missing
            self.notes.append(f"{name}: {type(exc).__name__}: {str(exc)[:120]}")
            return None

    def __call__(self, out: torch.Tensor, clean: torch.Tensor) -> dict[str, float | None]:
        x, y = out[None].clamp(0, 1), clean[None]
        psnr = float(self.psnr(x, y)[0]) if self.psnr is not None else _psnr(out.clamp(0, 1), clean)
        if self.ssim is not None:
            ssim = float(self.ssim(x, y)[0])
        else:
            from skimage.metrics import structural_similarity

            ssim = float(
                structural_similarity(
                    out.clamp(0, 1).permute(1, 2, 0).double().numpy(),
                    clean.permute(1, 2, 0).double().numpy(),
                    channel_axis=2,
                    data_range=1.0,
                )
            )
        lp = None
        if self.lpips is not None:
            try:
                lp = float(self.lpips(x, y)[0])
            except Exception as exc:
                self.notes.append(f"lpips failed: {type(exc).__name__}: {exc}")
                self.lpips = None
        return {"psnr": psnr, "ssim": ssim, "lpips": lp}


# --------------------------------------------------------------------------------------------- methods
def _fallback(name: str):
    """Direct implementations used only when the registry does not have the method yet (marked ``*``)."""
    if name == "bicubic":

        def run(inp):
            return torch.nn.functional.interpolate(
                inp.image[None], size=inp.size, mode="bicubic", align_corners=False
            )[0].clamp(0, 1)

        return run, "bicubic*: torch bicubic (a=-0.75) up-sampling, registry 'bicubic' not installed"
    if name == "nl-means":

        def run(inp):
            from skimage.restoration import denoise_nl_means

            s = inp.degradation["sigma"] / 255.0
            arr = inp.image.permute(1, 2, 0).double().numpy()
            out = denoise_nl_means(
                arr, h=0.8 * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=2
            )
            return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)

        return run, "nl-means*: skimage denoise_nl_means(h=0.8σ, 5x5 patches, 13x13 search), registry missing"
    return None, ""


def _method(name: str, preset: str | None, overrides: dict, notes: list[str]):
    try:
        cls = registry.synthesizers.get(name)
        m = cls.from_config(preset, overrides)
        return m, name
    except Exception as exc:
        run, note = _fallback(name)
        if run is None:
            notes.append(f"{name}: not available ({str(exc)[:160]})")
            return None, name
        notes.append(note)
        return run, name + "*"


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks restoration", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--data", help="folder of clean images (default: built-in astronaut, chelsea, coffee)")
    ap.add_argument("--limit", type=int, default=None, help="use the first N images of --data")
    ap.add_argument("--images", default=None, help="comma-separated image names (file stems) to keep")
    ap.add_argument(
        "--size", type=int, default=None, help="centre-crop and resize images to SIZE (built-in: 256)"
    )
    ap.add_argument("--tasks", default="denoise,sr4", help="comma-separated: denoise, sr4")
    ap.add_argument("--sigma", type=float, default=25.0, help="denoise noise level on 0-255")
    ap.add_argument(
        "--iterations", type=int, default=None, help="cap DIP's iterations (default: paper budget)"
    )
    ap.add_argument("--dip-preset", default=None, help="DIP preset (default: paper)")
    ap.add_argument("--skip-dip", action="store_true", help="only the classic baselines")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 is fastest on a loaded 2-core box)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    images = (
        _folder_images(args.data, args.limit, args.size) if args.data else _builtin_images(args.size or 256)
    )
    if args.images:
        keep = {n.strip() for n in args.images.split(",")}
        images = [(n, im) for n, im in images if n in keep]
        if not images:
            raise SystemExit(f"--images: none of {sorted(keep)} found")
    scores = _Scores()
    notes = scores.notes
    task_names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    per_task = {"denoise": ["dip", "nl-means", "bm3d"], "sr4": ["dip", "bicubic", "lanczos"]}
    rows: list[tuple] = []
    dip_notes = []
    for task_name in task_names:
        if task_name not in per_task:
            raise SystemExit(f"--tasks: unknown task {task_name!r}; choose from {', '.join(per_task)}")
        task = tasks.get_task(task_name)
        params = task.params({"sigma": args.sigma} if task_name == "denoise" else None)
        for method_name in per_task[task_name]:
            if method_name == "dip" and args.skip_dip:
                continue
            overrides = {"iterations": args.iterations} if (method_name == "dip" and args.iterations) else {}
            method, label = _method(
                method_name, args.dip_preset if method_name == "dip" else None, overrides, notes
            )
            if method is None:
                rows.append((task_name, "(all)", label, None, None, None, None, None))
                continue
            for item, clean in images:
                ex = task.build({"clean": clean}, item=item, params=params)
                inp, ref = ex.input, ex.references["clean"]
                t0 = time.perf_counter()
                if method_name == "dip":
                    out = method.run(inp, seed=args.seed, device="cpu", reference=ref)
                    info = method.pop_info()
                    sec = time.perf_counter() - t0
                    # the paper budget for the task (the DIP defaults), whatever --iterations capped it to
                    full = type(method.params)().resolved(task_name)["iterations"]
                    spi = info["seconds_per_iteration"]
                    # PSNR of the outputs during fitting (perturbed input; averaged for denoise)
                    curve = info.get("psnr_ema") or info.get("psnr") or []
                    best = max(range(len(curve)), key=curve.__getitem__) if curve else None
                    msg = (
                        f"dip {task_name} {item} {inp.size[0]}x{inp.size[1]}: {info['iterations']} iterations, "
                        f"{spi:.3f} s/iteration"
                    )
                    if best is not None:
                        msg += f"; best fitting-curve PSNR {curve[best]:.2f} dB at iteration {best + 1}"
                    if full and full != info["iterations"]:
                        msg += f"; paper budget {full} iterations ~ {spi * full / 60:.1f} min (EXTRAPOLATED)"
                    dip_notes.append(msg)
                    label_here = label if not args.iterations else f"dip@{info['iterations']}"
                else:
                    out = (
                        method.run(inp, seed=args.seed, device="cpu")
                        if hasattr(method, "run")
                        else method(inp)
                    )
                    sec = time.perf_counter() - t0
                    label_here = label
                s = scores(out, ref)
                py = psnr_y_crop(out, ref) if task_name == "sr4" else None
                rows.append((task_name, item, label_here, s["psnr"], py, s["ssim"], s["lpips"], sec))
                print(
                    f"  done {task_name} {item} {label_here}: {s['psnr']:.2f} dB in {sec:.1f} s", flush=True
                )

    _print_table(rows, images, scores)
    for m in dip_notes:
        print("  " + m)
    for n in dict.fromkeys(notes):
        print("  note: " + n)
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")


def _fmt(v: float | None, f: str) -> str:
    return "-" if v is None else format(v, f)


def _mean(values: list) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


def _print_table(rows, images, scores) -> None:
    psnr_h = "psnr" if scores.psnr is not None else "psnr*"
    ssim_h = "ssim" if scores.ssim is not None else "ssim*"
    header = ["task", "image", "method", psnr_h, "psnr-y(c4)", ssim_h, "lpips", "seconds"]
    lines = [header]
    formats = (".2f", ".2f", ".4f", ".4f", ".1f")
    for r in rows:
        lines.append([r[0], r[1], r[2], *(_fmt(v, f) for v, f in zip(r[3:], formats, strict=True))])
    # means per task and method, over images
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        if r[3] is not None:
            groups.setdefault((r[0], r[2]), []).append(r)
    if len(images) > 1:
        for (t, m), rs in groups.items():
            means = [_mean([x[i] for x in rs]) for i in range(3, 8)]
            lines.append([t, "MEAN", m, *(_fmt(v, f) for v, f in zip(means, formats, strict=True))])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    print()
    for j, line in enumerate(lines):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()


if __name__ == "__main__":
    main()
