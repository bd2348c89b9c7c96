"""LPIPS calibration on human 2AFC judgments: BAPPS loaders, training, evaluation, a synthetic stand-in.

The procedure is the paper's (Zhang et al. 2018, Sec. 3 and the reference ``train.py``):

* data: BAPPS 2AFC triplets ``(ref, p0, p1, judge)`` where ``judge`` ∈ [0, 1] is the fraction of
  humans who found ``p1`` closer to ``ref``; patches are loaded at 64×64;
* model: an :class:`~texbench.metrics.lpips.LPIPSNet` whose distances ``d0 = d(ref, p0)`` and
  ``d1 = d(ref, p1)`` feed a small ranking head ``G`` (1×1 convolutions 5→32→32→1 with LeakyReLU(0.2)
  and a sigmoid on ``(d0, d1, d0 − d1, d0/(d1 + ε), d1/(d0 + ε))``, ε = 0.1); the loss is binary
  cross-entropy between ``G`` and ``judge``; dropout 0.5 on the squared feature differences;
* variants: ``lin`` (pretrained backbone frozen, linear layers learned), ``tune`` (pretrained backbone
  fine-tuned too), ``scratch`` (backbone from a seeded random initialisation, all learned);
* optimiser: Adam, lr 1e-4, β = (0.5, 0.999), batch 50; 5 epochs at the base rate then 5 epochs with
  the rate decreased linearly (by lr/5 after each of them); after every step the linear weights are
  projected onto w ≥ 0;
* evaluation: 2AFC score ``mean((d0 < d1)(1 − judge) + (d1 < d0) judge + ½ [d0 = d1])`` per category,
  JND as the average precision of ``same`` judgments ranked by increasing distance (VOC area under the
  interpolated precision-recall curve).

Known deviation: the reference clamps *every* 1×1 convolution of the metric network to be non-negative,
which for ``squeeze`` with ``tune`` also clamps SqueezeNet's own 1×1 layers; texbench clamps only the
LPIPS linear layers, as the paper describes.

The BAPPS dataset cannot be downloaded here; :func:`make_synthetic_2afc` writes a small **synthetic**
dataset in the exact BAPPS layout as a test fixture (see its docstring for the proxy observer). Its
numbers say nothing about human perception.

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018. https://github.com/richzhang/PerceptualSimilarity
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from texbench.params import Params, param

__all__ = [
    "DISTORTIONS",
    "BAPPSFormatError",
    "JNDDataset",
    "RankingHead",
    "TrainConfig",
    "TwoAFCDataset",
    "build_model",
    "calibrated_state",
    "evaluate",
    "find_category_dirs",
    "format_table",
    "jnd_map",
    "make_synthetic_2afc",
    "proxy_distance",
    "score_2afc",
    "train",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
TWOAFC_DIRS = ("ref", "p0", "p1", "judge")
JND_DIRS = ("p0", "p1", "same")
CKPT_FORMAT = "texbench-lpips-1"


class BAPPSFormatError(ValueError):
    """A directory does not follow the BAPPS layout."""


# -------------------------------------------------------------------------------------------- the data
def _stems(d: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in exts}


def _index_category(root: Path, subdirs: tuple[str, ...], npy: str) -> list[dict[str, Path]]:
    """Pair the files of one BAPPS category directory by stem; raise on any mismatch."""
    if not root.is_dir():
        raise BAPPSFormatError(f"{root} is not a directory")
    missing = [s for s in subdirs if not (root / s).is_dir()]
    if missing:
        raise BAPPSFormatError(
            f"{root} is not a BAPPS category directory: missing sub-folder(s) {', '.join(missing)} "
            f"(expected {', '.join(s + '/' for s in subdirs)})"
        )
    files = {s: _stems(root / s, (".npy",) if s == npy else IMAGE_EXTS) for s in subdirs}
    keys = set(files[subdirs[0]])
    for s in subdirs[1:]:
        if set(files[s]) != keys:
            only_a = sorted(keys - set(files[s]))[:3]
            only_b = sorted(set(files[s]) - keys)[:3]
            raise BAPPSFormatError(
                f"{root}: {subdirs[0]}/ and {s}/ hold different items "
                f"(only in {subdirs[0]}/: {only_a}; only in {s}/: {only_b})"
            )
    if not keys:
        raise BAPPSFormatError(f"{root}: no items found in {subdirs[0]}/")
    return [{s: files[s][k] for s in subdirs} for k in sorted(keys)]


def find_category_dirs(
    root: str | os.PathLike, mode: Literal["2afc", "jnd"], split: str = "val"
) -> list[Path]:
    """Category directories of a BAPPS tree.

    ``root`` may be the dataset root (holding ``2afc/`` and ``jnd/``), a split directory
    (``2afc/val``) or one category directory (``2afc/val/cnn``).

    Raises:
        BAPPSFormatError: nothing in BAPPS layout was found.
    """
    root = Path(root)
    need = TWOAFC_DIRS if mode == "2afc" else JND_DIRS
    if not root.is_dir():
        raise BAPPSFormatError(f"{root} does not exist or is not a directory")
    if (root / need[0]).is_dir():
        return [root]
    for cand in (root / mode / split, root):
        if cand.is_dir():
            cats = [d for d in sorted(cand.iterdir()) if d.is_dir() and (d / need[0]).is_dir()]
            if cats:
                return cats
    raise BAPPSFormatError(
        f"no BAPPS {mode} data under {root}: expected {root}/{mode}/{split}/<category>/"
        f"{{{','.join(need)}}}/ (or a category directory itself)"
    )


def _load_patch(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):  # the reference rescales with PIL's bilinear filter
            im = im.resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _load_fraction(path: Path) -> float:
    arr = np.load(path, allow_pickle=False)
    if arr.size != 1:
        raise BAPPSFormatError(f"{path}: expected a single judgment, got shape {arr.shape}")
    v = float(arr.reshape(-1)[0])
    if not 0.0 <= v <= 1.0:
        raise BAPPSFormatError(f"{path}: judgment {v} is outside [0, 1]")
    return v


class TwoAFCDataset(torch.utils.data.Dataset):
    """BAPPS 2AFC triplets from one or more category directories.

    Items: ``{"ref", "p0", "p1"}`` float ``(3, S, S)`` in [0, 1] and ``"judge"`` (float32 scalar, the
    fraction preferring ``p1``), plus ``"category"``.

    Raises:
        BAPPSFormatError: a directory lacks ``ref/ p0/ p1/ judge/`` or their items do not match.
    """

    def __init__(self, dirs: Sequence[str | os.PathLike], *, load_size: int = 64) -> None:
        self.load_size = load_size
        self.items: list[tuple[str, dict[str, Path]]] = []
        for d in dirs:
            d = Path(d)
            self.items += [(d.name, it) for it in _index_category(d, TWOAFC_DIRS, "judge")]

    def __len__(self) -> int:
        return len(self.items)

    def judge(self, i: int) -> torch.Tensor:
        """The judgment of item ``i`` alone (float32 scalar), without loading images."""
        return torch.tensor(_load_fraction(self.items[i][1]["judge"]), dtype=torch.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cat, it = self.items[i]
        out: dict[str, Any] = {k: _load_patch(it[k], self.load_size) for k in ("ref", "p0", "p1")}
        out["judge"] = self.judge(i)
        out["category"] = cat
        return out


class JNDDataset(torch.utils.data.Dataset):
    """BAPPS JND pairs: ``{"p0", "p1"}`` images and ``"same"`` (fraction judging them identical)."""

    def __init__(self, dirs: Sequence[str | os.PathLike], *, load_size: int = 64) -> None:
        self.load_size = load_size
        self.items: list[tuple[str, dict[str, Path]]] = []
        for d in dirs:
            d = Path(d)
            self.items += [(d.name, it) for it in _index_category(d, JND_DIRS, "same")]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cat, it = self.items[i]
        out: dict[str, Any] = {k: _load_patch(it[k], self.load_size) for k in ("p0", "p1")}
        out["same"] = torch.tensor(_load_fraction(it["same"]), dtype=torch.float32)
        out["category"] = cat
        return out


# ------------------------------------------------------------------------------------------ the scores
def score_2afc(d0: np.ndarray, d1: np.ndarray, judge: np.ndarray) -> float:
    """Fraction of human judgments a distance agrees with; ties count half.

    >>> score_2afc(np.array([0.1, 0.5, 0.3]), np.array([0.2, 0.4, 0.3]), np.array([0.0, 1.0, 0.5]))
    1.0
    >>> score_2afc(np.array([0.1]), np.array([0.2]), np.array([0.8]))
    0.2
    """
    d0, d1, judge = (np.asarray(a, dtype=np.float64) for a in (d0, d1, judge))
    s = (d0 < d1) * (1.0 - judge) + (d1 < d0) * judge + (d0 == d1) * 0.5
    return float(s.mean())


def jnd_map(ds: np.ndarray, same: np.ndarray) -> float:
    """JND average precision: pairs ranked by increasing distance should be the ones judged "same".

    Precision/recall of the cumulative ``same`` mass, area under the interpolated (monotone) precision
    envelope (PASCAL VOC, all points), as in the reference.

    >>> round(jnd_map(np.array([0.1, 0.2, 0.9]), np.array([1.0, 1.0, 0.0])), 6)
    1.0
    """
    ds, same = np.asarray(ds, dtype=np.float64), np.asarray(same, dtype=np.float64)
    order = np.argsort(ds, kind="stable")
    s = same[order]
    tp = np.cumsum(s)
    fp = np.cumsum(1.0 - s)
    total = s.sum()
    if total <= 0:
        return float("nan")
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).tiny)
    rec = tp / total
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _loader(ds: torch.utils.data.Dataset, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)


def evaluate(
    distance: DistanceFn,
    root: str | os.PathLike,
    *,
    split: str = "val",
    modes: Sequence[str] = ("2afc", "jnd"),
    batch_size: int = 50,
    load_size: int = 64,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """2AFC score per category and JND mAP per category of a BAPPS tree.

    Args:
        distance: ``(N,3,S,S), (N,3,S,S) in [0,1] -> (N,)`` (e.g. ``LPIPSNet`` under ``inference_mode``).
        root: dataset root, split or category directory (see :func:`find_category_dirs`).
        modes: which judgments to score; a mode whose data is absent is skipped when the other exists.

    Returns:
        ``{"2afc": {category: score, ..., "mean": ...}, "jnd": {...}}`` with scores in [0, 1].
    """
    from tqdm.auto import tqdm

    out: dict[str, dict[str, float]] = {}
    errors = []
    for mode in modes:
        try:
            cats = find_category_dirs(root, mode, split)  # type: ignore[arg-type]
        except BAPPSFormatError as exc:
            errors.append(str(exc))
            continue
        res: dict[str, float] = {}
        for cat in cats:
            if mode == "2afc":
                ds: Any = TwoAFCDataset([cat], load_size=load_size)
                d0s, d1s, js = [], [], []
                for b in tqdm(
                    _loader(ds, batch_size, workers), desc=f"2afc/{cat.name}", disable=not progress
                ):
                    d0s.append(distance(b["ref"], b["p0"]).double().cpu())
                    d1s.append(distance(b["ref"], b["p1"]).double().cpu())
                    js.append(b["judge"].double())
                res[cat.name] = score_2afc(
                    torch.cat(d0s).numpy(), torch.cat(d1s).numpy(), torch.cat(js).numpy()
                )
            else:
                ds = JNDDataset([cat], load_size=load_size)
                dd, ss = [], []
                for b in tqdm(_loader(ds, batch_size, workers), desc=f"jnd/{cat.name}", disable=not progress):
                    dd.append(distance(b["p0"], b["p1"]).double().cpu())
                    ss.append(b["same"].double())
                res[cat.name] = jnd_map(torch.cat(dd).numpy(), torch.cat(ss).numpy())
        res["mean"] = float(np.mean(list(res.values())))
        out[mode] = res
    if not out:
        raise BAPPSFormatError("; ".join(errors))
    return out


def format_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Markdown table like the paper's: one row per model, 2AFC per category then JND, in percent."""
    import pandas as pd

    rows = {}
    for label, res in results.items():
        row = {}
        for mode, per_cat in res.items():
            for cat, v in per_cat.items():
                row[f"{mode.upper()} {cat}"] = 100.0 * v
        rows[label] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    return df.to_markdown(floatfmt=".1f")


# ----------------------------------------------------------------------------------------- the training
class RankingHead(nn.Module):
    """``G(d0, d1)``: probability that humans judge ``p1`` closer, from the two distances (paper Fig. 3).

    1×1 convolutions (as linear maps) 5→32→32→1, LeakyReLU(0.2), sigmoid, on
    ``(d0, d1, d0 − d1, d0/(d1 + ε), d1/(d0 + ε))`` with ε = 0.1.
    """

    def __init__(self, hidden: int = 32, eps: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.net = nn.Sequential(
            nn.Linear(5, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        z = torch.stack([d0, d1, d0 - d1, d0 / (d1 + self.eps), d1 / (d0 + self.eps)], dim=-1)
        return torch.sigmoid(self.net(z).squeeze(-1))


@dataclasses.dataclass(frozen=True)
class TrainConfig(Params):
    """Training settings; defaults are the paper's (reference ``train.py``)."""

    net: Literal["alex", "vgg", "squeeze"] = "alex"
    variant: Literal["lin", "tune", "scratch"] = "lin"
    epochs: int = param(5, ge=1)
    epochs_decay: int = param(5, ge=0)
    batch_size: int = param(50, ge=1)
    lr: float = param(1e-4, gt=0)
    beta1: float = 0.5
    dropout: float = 0.5
    #: ``default``: PyTorch's 1×1-conv initialisation U(±1/√C), as the reference; ``uniform``: all ones.
    lin_init: Literal["default", "uniform"] = "default"
    load_size: int = param(64, ge=1)
    seed: int = 0
    #: also checkpoint every this many steps within an epoch (0: only at the end of each epoch)
    save_every: int = param(0, ge=0)
    #: stop after this many steps in total (0: no limit); for smoke tests
    max_steps: int = param(0, ge=0)
    workers: int = 0


def build_model(config: TrainConfig) -> Any:
    """The :class:`LPIPSNet` at the start of training (backbone per variant, linear layers per init)."""
    from texbench.metrics.lpips import LPIPSNet

    model = LPIPSNet(
        config.net, pretrained_backbone=config.variant != "scratch", lin="uniform", seed=config.seed,
        dropout=config.dropout,
    )  # fmt: skip
    if config.lin_init == "default":
        gen = torch.Generator().manual_seed(config.seed)
        with torch.no_grad():
            for w in model.lins:
                bound = 1.0 / math.sqrt(w.numel())
                w.copy_(torch.rand(w.shape, generator=gen) * 2 * bound - bound)
        model.provenance["lpips-lin"] = f"random-init:seed={config.seed}"
    model.requires_grad_(False)
    for w in model.lins:
        w.requires_grad_(True)
    if config.variant in ("tune", "scratch"):
        model.features.requires_grad_(True)
    return model


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lr_for_epoch(config: TrainConfig, epoch: int) -> float:
    """Rate used during 1-based ``epoch``: constant, then reduced by lr/epochs_decay after each decay epoch."""
    k = max(0, epoch - 1 - config.epochs)
    return config.lr - k * config.lr / max(config.epochs_decay, 1)


def calibrated_state(model: Any, config: TrainConfig) -> dict[str, Any]:
    """The part of a checkpoint :func:`texbench.metrics.lpips.load_calibrated` reads."""
    return {
        "format": CKPT_FORMAT,
        "net": config.net,
        "variant": config.variant,
        "lins": [w.detach().cpu().clone() for w in model.lins],
        "features": (
            {k: v.detach().cpu().clone() for k, v in model.features.state_dict().items()}
            if config.variant in ("tune", "scratch")
            else None
        ),
    }


def train(
    config: TrainConfig,
    train_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = print,
) -> Path:
    """Calibrate LPIPS on 2AFC judgments; returns the path of the final calibrated checkpoint
    (or of ``latest.pth`` when ``max_steps`` stopped the run early).

    Writes ``out_dir/latest.pth`` atomically at the end of every epoch (and every ``save_every``
    steps), ``out_dir/epoch_<k>.pth`` per epoch, ``out_dir/config.json``, and at the end
    ``out_dir/lpips_<net>_<variant>.pth`` (loadable with ``texbench score lpips --weights``). With
    ``resume`` an existing ``latest.pth`` is continued exactly where it stopped (same batches, same rate).

    Raises:
        BAPPSFormatError: a training directory is not in BAPPS layout.
        ValueError: ``latest.pth`` was written with a different configuration.
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    data = TwoAFCDataset(train_dirs, load_size=config.load_size)
    model = build_model(config).to(device)
    head = RankingHead().to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for m in head.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, betas=(config.beta1, 0.999))
    cfg = dataclasses.asdict(config)

    epoch, step_in_epoch, total_steps, running = 1, 0, 0, [0.0, 0]
    latest = out / "latest.pth"
    if resume and latest.is_file():
        ck = torch.load(latest, map_location="cpu", weights_only=True)
        saved = {k: v for k, v in ck["config"].items() if k not in ("max_steps", "save_every", "workers")}
        now = {k: v for k, v in cfg.items() if k not in ("max_steps", "save_every", "workers")}
        if saved != now:
            raise ValueError(f"{latest} was written with a different configuration: {saved} != {now}")
        model.load_lin_state({f"lins.{i}": w for i, w in enumerate(ck["lins"])})
        if ck["features"] is not None:
            model.features.load_state_dict(ck["features"], strict=True)
        head.load_state_dict(ck["head"], strict=True)
        opt.load_state_dict(ck["optimizer"])
        epoch, step_in_epoch, total_steps = ck["epoch"], ck["step_in_epoch"], ck["total_steps"]
        running = [float(ck["running"][0]), int(ck["running"][1])]
        log(f"resuming from {latest}: epoch {epoch}, step {step_in_epoch}")
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    threads = torch.get_num_threads()
    try:
        return _train_loop(config, data, model, head, opt, cfg, out, device, progress, log,
                           (epoch, step_in_epoch, total_steps, running))  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _train_loop(config, data, model, head, opt, cfg, out, device, progress, log, state) -> Path:  # noqa: ANN001
    from tqdm.auto import tqdm

    epoch, step_in_epoch, total_steps, running = state
    latest = out / "latest.pth"

    def save(path: Path, ep: int, sie: int) -> None:
        ck = calibrated_state(model, config)
        ck.update(
            config=cfg, head=head.state_dict(), optimizer=opt.state_dict(), epoch=ep, step_in_epoch=sie,
            total_steps=total_steps, running=[running[0], running[1]], provenance=dict(model.provenance),
        )  # fmt: skip
        _atomic_save(ck, path)

    n_epochs = config.epochs + config.epochs_decay
    n = len(data)
    # lin: the backbone is frozen and deterministic, so its normalised features are computed once
    # (exactly what every step would recompute); dropout and the linear layers still run per step.
    cache: list[dict[str, list[torch.Tensor]]] | None = None
    if config.variant == "lin":
        cache = []
        model.eval()
        keys = ("ref", "p0", "p1")
        with torch.inference_mode():
            for lo in tqdm(range(0, n, 64), desc="backbone features", disable=not progress):
                items = [data[i] for i in range(lo, min(lo + 64, n))]
                imgs = torch.stack([it[k] for it in items for k in keys]).to(device)
                feats = model.normalized_features(imgs)
                for j in range(len(items)):
                    cache.append(
                        {k: [f[3 * j + m : 3 * j + m + 1].clone() for f in feats] for m, k in enumerate(keys)}
                    )
        judges = [data.judge(i) for i in range(n)]
        # what remains per step are small tensor ops, for which thread start-up dominates
        torch.set_num_threads(1)
    stop = mid_epoch = False
    while epoch <= n_epochs and not stop:
        for g in opt.param_groups:
            g["lr"] = _lr_for_epoch(config, epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        batches = perm.split(config.batch_size)
        model.train()
        bar = tqdm(
            total=len(batches), initial=step_in_epoch, desc=f"epoch {epoch}/{n_epochs}", disable=not progress
        )
        for bi in range(step_in_epoch, len(batches)):
            idx = batches[bi].tolist()
            if cache is not None:
                judge = torch.stack([judges[i] for i in idx]).to(device)
                fr, f0, f1 = (
                    [torch.cat(f) for f in zip(*(cache[i][k] for i in idx), strict=True)]
                    for k in ("ref", "p0", "p1")
                )
            else:
                items = [data[i] for i in idx]
                ref, p0, p1 = (torch.stack([it[k] for it in items]).to(device) for k in ("ref", "p0", "p1"))
                judge = torch.stack([it["judge"] for it in items]).to(device)
            # Dropout masks are drawn from a generator seeded by (seed, epoch, step): resumable exactly.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed * 1_000_003 + epoch * 10_007 + bi)
                if cache is not None:
                    d0 = model.distance_from_features(fr, f0)
                    d1 = model.distance_from_features(fr, f1)
                else:
                    d0 = model(ref, p0)
                    d1 = model(ref, p1)
                loss = F.binary_cross_entropy(head(d0, d1), judge)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.clamp_lins()
            with torch.no_grad():
                agree = ((d1 < d0).double() * judge + (d1 >= d0).double() * (1 - judge)).sum().item()
            running = [running[0] + agree, running[1] + len(idx)]
            total_steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", train_2afc=f"{100 * running[0] / running[1]:.1f}%")
            if config.save_every and total_steps % config.save_every == 0 and bi + 1 < len(batches):
                save(latest, epoch, bi + 1)
            if config.max_steps and total_steps >= config.max_steps:
                stop = True
                if bi + 1 < len(batches):
                    mid_epoch = True
                    save(latest, epoch, bi + 1)
                break
        bar.close()
        if mid_epoch:
            break
        log(
            f"epoch {epoch}: train 2AFC {100 * running[0] / max(running[1], 1):.2f}% lr {opt.param_groups[0]['lr']:.2e}"
        )
        epoch += 1
        step_in_epoch, running = 0, [0.0, 0]
        save(out / f"epoch_{epoch - 1}.pth", epoch, 0)
        save(latest, epoch, 0)
    if stop:
        log(f"stopped after {total_steps} steps (max_steps); resume with the same command")
        return latest
    model.eval()
    final = out / f"lpips_{config.net}_{config.variant}.pth"
    _atomic_save(calibrated_state(model, config), final)
    return final


# ------------------------------------------------------------------------------ synthetic BAPPS stand-in
def _builtin_sources(seed: int) -> dict[str, list[np.ndarray]]:
    """Float RGB images in [0, 1]: scikit-image's bundled photos and procedural patterns."""
    from skimage import data as skd

    natural = [
        np.asarray(getattr(skd, n)(), dtype=np.float32) / 255.0
        for n in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    rng = np.random.default_rng(seed)
    size = 256
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    procedural = []
    for _ in range(4):
        f1, f2 = rng.uniform(2, 12, size=2)
        th = rng.uniform(0, np.pi)
        g = 0.5 + 0.5 * np.sin(2 * np.pi * (f1 * (xx * np.cos(th) + yy * np.sin(th))))
        h = 0.5 + 0.5 * np.sin(2 * np.pi * f2 * (xx - yy) + rng.uniform(0, 6))
        c = rng.uniform(0.2, 1.0, size=(3,)).astype(np.float32)
        procedural.append(np.clip(g[..., None] * c + 0.3 * h[..., None] * (1 - c), 0, 1))
    check = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2)[..., None] * np.array([0.9, 0.7, 0.3], np.float32)
    procedural.append(check + 0.05)
    blobs = rng.random((size // 16, size // 16, 3)).astype(np.float32)
    blobs = np.kron(blobs, np.ones((16, 16, 1), np.float32))
    from scipy.ndimage import gaussian_filter

    procedural.append(np.clip(gaussian_filter(blobs, (6, 6, 0)), 0, 1))
    return {
        "natural": [np.ascontiguousarray(a, dtype=np.float32) for a in natural],
        "procedural": [np.ascontiguousarray(a, dtype=np.float32) for a in procedural],
    }


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    h, w = img.shape[:2]
    s = int(rng.integers(size, max(size + 1, min(h, w) // 2)))
    top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    t = torch.from_numpy(np.ascontiguousarray(img[top : top + s, left : left + s])).permute(2, 0, 1)[None]
    if s != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].clamp(0, 1)


DISTORTIONS = ("noise", "blur", "jpeg", "color", "warp")


def _distort(x: torch.Tensor, kind: str, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """One distortion of ``x`` (3,S,S) in [0,1]; ``strength`` in (0, 1]."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    if kind == "noise":
        return (x + torch.randn(x.shape, generator=gen) * 0.2 * strength).clamp(0, 1)
    if kind == "blur":
        sigma = 0.3 + 2.5 * strength
        r = int(math.ceil(3 * sigma))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        k = k / k.sum()
        y = F.conv2d(F.pad(x[:, None], (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
        return y[:, 0].clamp(0, 1)
    if kind == "jpeg":
        import io

        from PIL import Image

        q = int(round(90 - 85 * strength))
        arr = (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=max(q, 2))
        buf.seek(0)
        with Image.open(buf) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)
    if kind == "color":
        gains = 1 + torch.from_numpy(rng.uniform(-0.5, 0.5, size=3).astype(np.float32)) * strength
        shift = torch.from_numpy(rng.uniform(-0.15, 0.15, size=3).astype(np.float32)) * strength
        return (x * gains.view(3, 1, 1) + shift.view(3, 1, 1)).clamp(0, 1)
    if kind == "warp":
        s = x.shape[-1]
        coarse = torch.randn((1, 2, 4, 4), generator=gen) * 0.06 * strength
        flow = F.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        lin = torch.linspace(-1, 1, s)
        grid = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), dim=-1)[None] + flow
        return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=True)[
            0
        ].clamp(0, 1)
    raise ValueError(f"unknown distortion {kind!r}; known: {DISTORTIONS}")


def proxy_distance(ref: torch.Tensor, p: torch.Tensor) -> float:
    """The synthetic observer's internal distance: ``(1 − SSIM(luma)) + ΔE*ab/100`` (mean CIE76).

    Structural dissimilarity of the luminance plus the mean CIELAB colour difference, a classic
    full-reference pair chosen because it is independent of any network LPIPS uses.
    """
    from skimage.color import rgb2lab
    from skimage.metrics import structural_similarity

    a = ref.permute(1, 2, 0).double().numpy()
    b = p.permute(1, 2, 0).double().numpy()
    w = np.array([0.299, 0.587, 0.114])
    ssim = structural_similarity(a @ w, b @ w, data_range=1.0, gaussian_weights=True, sigma=1.5)
    de = np.sqrt(((rgb2lab(a) - rgb2lab(b)) ** 2).sum(-1)).mean()
    return float((1.0 - ssim) + de / 100.0)


def make_synthetic_2afc(
    out: str | os.PathLike,
    *,
    n_train: int = 400,
    n_val: int = 200,
    n_jnd: int = 200,
    size: int = 64,
    seed: int = 0,
    observers_train: int = 2,
    observers_val: int = 5,
    temperature: float = 0.05,
    progress: bool = True,
) -> Path:
    """Write a small **synthetic** dataset in the exact BAPPS layout (a test fixture, not human data).

    Layout (as BAPPS): ``out/2afc/{train,val}/<category>/{ref,p0,p1,judge}/NNNNNN.{png,npy}`` and
    ``out/jnd/val/<category>/{p0,p1,same}/``; categories ``synthetic_natural`` (crops of scikit-image's
    astronaut, coffee, chelsea, rocket) and ``synthetic_procedural`` (gratings, checkerboard, blobs).
    ``out/SYNTHETIC.md`` says so.

    Triplets: a random crop (``size``×``size``) is the reference; ``p0`` and ``p1`` are two distortions
    drawn independently from noise, blur, JPEG, colour shift and warp at random strengths.

    Proxy observer (documented, deterministic given ``seed``): each simulated observer prefers ``p1``
    with probability ``σ((D(ref,p0) − D(ref,p1)) / T)`` where ``D`` is :func:`proxy_distance` and
    ``T = temperature``; ``judge`` is the fraction of ``observers_train`` (train) or ``observers_val``
    (val) independent observers choosing ``p1`` (BAPPS has 2 and 5). JND: ``p0`` is the reference,
    ``p1`` one distortion (a quarter of them at strength ≤ 0.05), and each of 3 observers answers "same"
    with probability ``exp(−D / (2T))``.

    Returns:
        ``out`` as a Path.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-patch ops: thread start-up would dominate
    try:
        return _make_synthetic_2afc(
            Path(out),
            n_train,
            n_val,
            n_jnd,
            size,
            seed,
            observers_train,
            observers_val,
            temperature,
            progress,
        )
    finally:
        torch.set_num_threads(threads)


def _make_synthetic_2afc(
    out: Path, n_train: int, n_val: int, n_jnd: int, size: int, seed: int,
    observers_train: int, observers_val: int, temperature: float, progress: bool,
) -> Path:  # fmt: skip
    from PIL import Image
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    sources = _builtin_sources(seed)
    cats = {f"synthetic_{k}": v for k, v in sources.items()}

    def save_png(t: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = (t.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(path)

    def save_npy(v: float, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.array([v], dtype=np.float32))

    def quantised(t: torch.Tensor) -> torch.Tensor:  # what is stored on disk is what is judged
        return torch.round(t.clamp(0, 1) * 255) / 255

    jobs = [("2afc", "train", n_train), ("2afc", "val", n_val), ("jnd", "val", n_jnd)]
    bar = tqdm(total=sum(n for *_, n in jobs), desc="make-2afc (synthetic)", disable=not progress)
    for mode, split, n in jobs:
        per_cat = [n // len(cats) + (1 if i < n % len(cats) else 0) for i in range(len(cats))]
        for (cat, imgs), count in zip(cats.items(), per_cat, strict=True):
            base = out / mode / split / cat
            for i in range(count):
                ref = quantised(_crop(imgs[int(rng.integers(len(imgs)))], size, rng))
                name = f"{i:06d}"
                if mode == "2afc":
                    ps = []
                    for _ in range(2):
                        kind = DISTORTIONS[int(rng.integers(len(DISTORTIONS)))]
                        ps.append(quantised(_distort(ref, kind, float(rng.uniform(0.1, 1.0)), rng)))
                    d0, d1 = proxy_distance(ref, ps[0]), proxy_distance(ref, ps[1])
                    prob = 1.0 / (1.0 + math.exp(-(d0 - d1) / temperature))
                    k = observers_train if split == "train" else observers_val
                    judge = float(rng.binomial(k, prob)) / k
                    save_png(ref, base / "ref" / f"{name}.png")
                    save_png(ps[0], base / "p0" / f"{name}.png")
                    save_png(ps[1], base / "p1" / f"{name}.png")
                    save_npy(judge, base / "judge" / f"{name}.npy")
                else:
                    kind = DISTORTIONS[int(rng.integers(len(DISTORTIONS)))]
                    strength = float(
                        rng.uniform(0.0, 0.05) if rng.random() < 0.25 else rng.uniform(0.05, 0.6)
                    )
                    p = quantised(_distort(ref, kind, strength, rng))
                    psame = math.exp(-proxy_distance(ref, p) / (2 * temperature))
                    same = float(rng.binomial(3, psame)) / 3
                    save_png(ref, base / "p0" / f"{name}.png")
                    save_png(p, base / "p1" / f"{name}.png")
                    save_npy(same, base / "same" / f"{name}.npy")
                bar.update(1)
    bar.close()
    (out / "SYNTHETIC.md").write_text(
        "# SYNTHETIC 2AFC/JND data (texbench lpips make-2afc)\n\n"
        "NOT human judgments. Generated by texbench as a test fixture in the exact BAPPS layout.\n"
        f"Proxy observer: P(choose p1) = sigmoid((D(ref,p0) - D(ref,p1)) / {temperature}), "
        "D = (1 - SSIM(luma)) + mean CIE76 dE / 100; judge = fraction of simulated observers "
        f"({observers_train} train, {observers_val} val). JND: P(same) = exp(-D / {2 * temperature}), 3 observers.\n"
        f"Distortions: {', '.join(DISTORTIONS)}. Seed {seed}, patch size {size}.\n"
        "Scores on this data say nothing about human perception; train on real BAPPS for that.\n"
    )
    return out
