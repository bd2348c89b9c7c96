"""Training LPIPS' linear layers (and optionally its backbone) on 2AFC judgments, resumable exactly.

The model is an ``LPIPSNet`` (:mod:`texbench.metrics.lpips`, imported where it is used) whose distances
``d0 = d(ref, p0)`` and ``d1 = d(ref, p1)`` feed the :class:`RankingHead`; the loss is binary
cross-entropy against the human judgment. Checkpoints are written atomically through
:func:`texbench.files.atomic_torch_save`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.calibration.bapps import TwoAFCDataset
from texbench.files import atomic_torch_save, atomic_write_bytes
from texbench.params import Params, param

__all__ = [
    "CKPT_FORMAT",
    "RankingHead",
    "TrainConfig",
    "build_model",
    "calibrated_state",
    "lr_for_epoch",
    "train",
]

CKPT_FORMAT = "texbench-lpips-1"
#: Configuration fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("max_steps", "save_every", "workers")


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
    """The ``LPIPSNet`` at the start of training (backbone per variant, linear layers per init)."""
    from texbench.nets.lpips import LPIPSNet

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


def lr_for_epoch(config: TrainConfig, epoch: int) -> float:
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
    run = _Run(config, data, model, head, opt, out, device, progress, log)
    if resume and run.latest.is_file():
        run.resume()
    atomic_write_bytes(out / "config.json", (json.dumps(run.cfg, indent=2) + "\n").encode())

    threads = torch.get_num_threads()
    try:
        return run.loop()
    finally:
        torch.set_num_threads(threads)


class _Run:
    """One training run's state: where it stands (epoch, step, running 2AFC agreement) and its steps."""

    def __init__(self, config: TrainConfig, data: TwoAFCDataset, model: Any, head: RankingHead,
                 opt: torch.optim.Optimizer, out: Path, device: torch.device, progress: bool,
                 log: Callable[[str], None]) -> None:
        self.config, self.data, self.model, self.head, self.opt = config, data, model, head, opt
        self.out, self.device, self.progress, self.log = out, device, progress, log
        self.cfg = dataclasses.asdict(config)
        self.latest = out / "latest.pth"
        self.epoch, self.step_in_epoch, self.total_steps = 1, 0, 0
        self.running: list[float | int] = [0.0, 0]  # (agreeing judgments, judgments) this epoch
        self.cache: list[dict[str, list[torch.Tensor]]] | None = None
        self.judges: list[torch.Tensor] = []

    def resume(self) -> None:
        """Continue from ``latest.pth``, exactly where it stopped.

        Raises:
            ValueError: it was written with a different configuration.
        """
        ck = torch.load(self.latest, map_location="cpu", weights_only=True)
        saved = {k: v for k, v in ck["config"].items() if k not in _RESUMABLE_CHANGES}
        now = {k: v for k, v in self.cfg.items() if k not in _RESUMABLE_CHANGES}
        if saved != now:
            raise ValueError(f"{self.latest} was written with a different configuration: {saved} != {now}")
        self.model.load_lin_state({f"lins.{i}": w for i, w in enumerate(ck["lins"])})
        if ck["features"] is not None:
            self.model.features.load_state_dict(ck["features"], strict=True)
        self.head.load_state_dict(ck["head"], strict=True)
        self.opt.load_state_dict(ck["optimizer"])
        self.epoch, self.step_in_epoch, self.total_steps = ck["epoch"], ck["step_in_epoch"], ck["total_steps"]
        self.running = [float(ck["running"][0]), int(ck["running"][1])]
        self.log(f"resuming from {self.latest}: epoch {self.epoch}, step {self.step_in_epoch}")

    def save(self, path: Path, epoch: int, step_in_epoch: int) -> None:
        ck = calibrated_state(self.model, self.config)
        ck.update(
            config=self.cfg, head=self.head.state_dict(), optimizer=self.opt.state_dict(), epoch=epoch,
            step_in_epoch=step_in_epoch, total_steps=self.total_steps,
            running=[self.running[0], self.running[1]], provenance=dict(self.model.provenance),
        )  # fmt: skip
        atomic_torch_save(ck, path)

    def cache_features(self) -> None:
        """lin: the backbone is frozen and deterministic, so its normalised features are computed once
        (exactly what every step would recompute); dropout and the linear layers still run per step."""
        from tqdm.auto import tqdm

        self.cache = []
        self.model.eval()
        keys = ("ref", "p0", "p1")
        n = len(self.data)
        with torch.inference_mode():
            for lo in tqdm(range(0, n, 64), desc="backbone features", disable=not self.progress):
                items = [self.data[i] for i in range(lo, min(lo + 64, n))]
                imgs = torch.stack([it[k] for it in items for k in keys]).to(self.device)
                feats = self.model.normalized_features(imgs)
                for j in range(len(items)):
                    self.cache.append(
                        {k: [f[3 * j + m : 3 * j + m + 1].clone() for f in feats] for m, k in enumerate(keys)}
                    )
        self.judges = [self.data.judge(i) for i in range(n)]
        # what remains per step are small tensor ops, for which thread start-up dominates
        torch.set_num_threads(1)

    def step(self, idx: list[int], epoch: int, bi: int) -> float:
        """One optimiser step on the items ``idx`` (batch ``bi`` of ``epoch``); returns the loss."""
        keys = ("ref", "p0", "p1")
        if self.cache is not None:
            judge = torch.stack([self.judges[i] for i in idx]).to(self.device)
            fr, f0, f1 = ([torch.cat(f) for f in zip(*(self.cache[i][k] for i in idx), strict=True)] for k in keys)
        else:
            items = [self.data[i] for i in idx]
            ref, p0, p1 = (torch.stack([it[k] for it in items]).to(self.device) for k in keys)
            judge = torch.stack([it["judge"] for it in items]).to(self.device)
        # Dropout masks are drawn from a generator seeded by (seed, epoch, step): resumable exactly.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed * 1_000_003 + epoch * 10_007 + bi)
            if self.cache is not None:
                d0 = self.model.distance_from_features(fr, f0)
                d1 = self.model.distance_from_features(fr, f1)
            else:
                d0 = self.model(ref, p0)
                d1 = self.model(ref, p1)
            loss = F.binary_cross_entropy(self.head(d0, d1), judge)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.model.clamp_lins()
        with torch.no_grad():
            agree = ((d1 < d0).double() * judge + (d1 >= d0).double() * (1 - judge)).sum().item()
        self.running = [self.running[0] + agree, self.running[1] + len(idx)]
        self.total_steps += 1
        return loss.item()

    def run_epoch(self) -> bool:
        """The rest of the current epoch; returns whether ``max_steps`` stopped it (checkpoint written)."""
        from tqdm.auto import tqdm

        config, epoch = self.config, self.epoch
        n_epochs = config.epochs + config.epochs_decay
        for g in self.opt.param_groups:
            g["lr"] = lr_for_epoch(config, epoch)
        perm = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        batches = perm.split(config.batch_size)
        self.model.train()
        bar = tqdm(total=len(batches), initial=self.step_in_epoch, desc=f"epoch {epoch}/{n_epochs}",
                   disable=not self.progress)  # fmt: skip
        try:
            for bi in range(self.step_in_epoch, len(batches)):
                loss = self.step(batches[bi].tolist(), epoch, bi)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", train_2afc=f"{100 * self.running[0] / self.running[1]:.1f}%")
                if config.save_every and self.total_steps % config.save_every == 0 and bi + 1 < len(batches):
                    self.save(self.latest, epoch, bi + 1)
                if config.max_steps and self.total_steps >= config.max_steps:
                    if bi + 1 < len(batches):
                        self.save(self.latest, epoch, bi + 1)
                        return True
                    self.finish_epoch()
                    return True
        finally:
            bar.close()
        self.finish_epoch()
        return False

    def finish_epoch(self) -> None:
        """Log the epoch, move to the next one and checkpoint (``epoch_<k>.pth`` and ``latest.pth``)."""
        self.log(
            f"epoch {self.epoch}: train 2AFC {100 * self.running[0] / max(self.running[1], 1):.2f}% "
            f"lr {self.opt.param_groups[0]['lr']:.2e}"
        )
        self.epoch += 1
        self.step_in_epoch, self.running = 0, [0.0, 0]
        self.save(self.out / f"epoch_{self.epoch - 1}.pth", self.epoch, 0)
        self.save(self.latest, self.epoch, 0)

    def loop(self) -> Path:
        """Train to the end (or to ``max_steps``); returns the final checkpoint (or ``latest.pth``)."""
        if self.config.variant == "lin":
            self.cache_features()
        n_epochs = self.config.epochs + self.config.epochs_decay
        while self.epoch <= n_epochs:
            if self.run_epoch():
                self.log(f"stopped after {self.total_steps} steps (max_steps); resume with the same command")
                return self.latest
        self.model.eval()
        final = self.out / f"lpips_{self.config.net}_{self.config.variant}.pth"
        atomic_torch_save(calibrated_state(self.model, self.config), final)
        return final
