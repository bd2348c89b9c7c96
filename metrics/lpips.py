"""LPIPS: the Learned Perceptual Image Patch Similarity of Zhang et al. (2018).

For two images ``x`` and ``y`` and a backbone with tapped layers ``l = 1..L`` (``C_l`` channels,
``H_l × W_l`` positions):

    d(x, y) = Σ_l  1/(H_l W_l) Σ_{h,w}  Σ_c  w_{l,c} (x̂_{l,c,h,w} − ŷ_{l,c,h,w})²

where ``x̂_l`` is the layer-``l`` activation unit-normalised over channels at every position
(``f / (‖f‖₂ + 1e-10)``) and ``w_l ≥ 0`` are the learned linear weights (v0.1 calibration).

Backbones and taps (as in the reference implementation, torchvision ``features`` indices):

* ``alex``: AlexNet, after ReLU 1-5 (``features[:2]``, ``[:5]``, ``[:8]``, ``[:10]``, ``[:12]``);
* ``vgg``: VGG-16, relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (``[:4]``, ``[:9]``, ``[:16]``,
  ``[:23]``, ``[:30]``);
* ``squeeze``: SqueezeNet 1.1, seven taps (``[:2]``, ``[:5]``, ``[:8]``, ``[:10]``, ``[:11]``,
  ``[:12]``, ``[:13]``).

Input scaling (v0.1): images in [0, 1] are mapped to [-1, 1], then ``(v − shift) / scale`` with
``shift = (−.030, −.088, −.188)`` and ``scale = (.458, .448, .450)``.

The network runs in float32 on both images as one batch; the per-layer spatial means and the weighted
sum are accumulated in float64. Lower is more similar.

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018. https://arxiv.org/abs/1801.03924
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.base import Metric
from texbench.params import Params

__all__ = [
    "CHANNELS",
    "LPIPS",
    "LPIPSNet",
    "NETS",
    "TAPS",
    "build_features",
    "load_calibrated",
    "lpips",
]

Net = Literal["alex", "vgg", "squeeze"]
NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")

#: Channels of each tapped layer.
CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
#: ``features[:t]`` is tapped for each ``t``: the reference's slice ends.
TAPS: dict[str, tuple[int, ...]] = {
    "alex": (2, 5, 8, 10, 12),
    "vgg": (4, 9, 16, 23, 30),
    "squeeze": (2, 5, 8, 10, 11, 12, 13),
}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


# --------------------------------------------------------------------------------------------- backbones
def build_features(net: str) -> nn.Sequential:
    """torchvision's ``features`` Sequential for ``net``, cut after the last tap, uninitialised layout only.

    The layer indices equal torchvision's, so torchvision ``state_dict`` keys (``features.<i>.*``, prefix
    stripped) load with ``strict=True``. The classifier is never built.
    """
    if net == "alex":
        layers: list[nn.Module] = [
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
        ]  # fmt: skip
    elif net == "vgg":
        layers, c_in = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(v)
    elif net == "squeeze":
        from torchvision.models.squeezenet import Fire

        layers = [
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        ]  # fmt: skip
    else:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    if len(layers) != TAPS[net][-1]:  # pragma: no cover - guards the tables above
        raise RuntimeError(f"{net}: built {len(layers)} layers, taps end at {TAPS[net][-1]}")
    return nn.Sequential(*layers)


def _random_init(module: nn.Module, seed: int) -> None:
    """Seeded re-initialisation with each layer's default initialiser (CPU generator, device-independent)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()


def _load_backbone_state(net: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Pretrained ``features`` state dict of ``net`` from the first cached source, or ``(None, "")``."""
    from texbench.metrics import lpips_weights as lw
    from texbench.weights import find_cached

    for spec in lw.BACKBONE_SPECS[net]:
        path = find_cached(spec)
        if path is None:
            continue
        if path.suffix == ".ckpt":
            state = lw.flax_to_torchvision_features(lw.load_flax_checkpoint(path), net)
        else:
            full = torch.load(path, map_location="cpu", weights_only=True)
            state = {k[len("features.") :]: v for k, v in full.items() if k.startswith("features.")}
            keep = {f"{i}." for i in range(TAPS[net][-1])}
            state = {k: v for k, v in state.items() if k.split(".", 1)[0] + "." in keep}
        return state, spec.provenance
    return None, ""


def _missing_weights(specs: tuple[Any, ...], seed: int) -> str:
    """Fall back to seeded random weights where allowed (loudly, recorded), else raise."""
    from texbench.weights import WeightsNotFoundError, random_init_allowed, warn_random_init

    if not random_init_allowed():
        names = " or ".join(f"`texbench weights fetch {s.name}`" for s in specs)
        where = "; ".join(f"{s.name}: " + ", ".join(src.describe() for src in s.sources) for s in specs)
        raise WeightsNotFoundError(
            f"LPIPS weights ({', '.join(s.filename for s in specs)}) are not available offline. "
            f"Run {names}. Sources: {where}"
        )
    return warn_random_init(specs[0], seed)


# ---------------------------------------------------------------------------------------------- the net
class LPIPSNet(nn.Module):
    """Backbone, per-layer unit normalisation, non-negative linear weights and spatial averaging.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        pretrained_backbone: load ImageNet weights (else seeded random init, recorded as provenance).
        lin: ``"v0.1"`` for the official calibration, ``"uniform"`` for all weights equal to 1 (the
            uncalibrated start of training), or ``"random"`` (seeded, non-negative).
        seed: seed for any random initialisation.
        dropout: dropout probability on the squared differences before the linear layers (training
            only; the paper trains with 0.5).

    Attributes:
        features: torchvision-layout ``features`` Sequential.
        lins: ``ParameterList`` of ``(C_l,)`` non-negative weights.
        provenance: ``{"lpips-backbone": ..., "lpips-lin": ...}``.
    """

    def __init__(
        self,
        net: str = "alex",
        *,
        pretrained_backbone: bool = True,
        lin: Literal["v0.1", "uniform", "random"] = "v0.1",
        seed: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"net must be one of {NETS}, got {net!r}")
        if lin not in ("v0.1", "uniform", "random"):
            raise ValueError(f"lin must be 'v0.1', 'uniform' or 'random', got {lin!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        from texbench.metrics import lpips_weights as lw

        self.net = net
        self.taps = TAPS[net]
        self.dropout = dropout
        self.features = build_features(net)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.provenance: dict[str, str] = {}
        if pretrained_backbone:
            state, prov = _load_backbone_state(net)
            if state is None:
                _random_init(self.features, seed)
                prov = _missing_weights(lw.BACKBONE_SPECS[net], seed)
            else:
                self.features.load_state_dict(state, strict=True)
        else:
            _random_init(self.features, seed)
            prov = f"random-init:seed={seed}"
        self.provenance["lpips-backbone"] = prov

        self.lins = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in CHANNELS[net]])
        if lin == "v0.1":
            from texbench.weights import find_cached

            spec = lw.LIN_SPECS[net]
            path = find_cached(spec)
            if path is None:
                prov = _missing_weights((spec,), seed)
                self._random_lins(seed)
            else:
                self.load_lin_state(torch.load(path, map_location="cpu", weights_only=True))
                prov = spec.provenance
        elif lin == "random":
            self._random_lins(seed)
            prov = f"random-init:seed={seed}"
        else:
            prov = "uniform:1"
        self.provenance["lpips-lin"] = prov
        self.requires_grad_(False).eval()

    def _random_lins(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for w in self.lins:
                w.copy_(torch.rand(w.shape, generator=gen) * (2.0 / w.numel()))

    def load_lin_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load linear weights from the reference's layout (``lin<l>.model.<k>.weight``, ``(1, C, 1, 1)``)
        or texbench's (``lins.<l>``, ``(C,)``), strictly: every layer once, nothing else."""
        got: dict[int, torch.Tensor] = {}
        for key, val in state.items():
            parts = key.split(".")
            if parts[0].startswith("lin") and parts[0][3:].isdigit() and parts[-1] == "weight":
                got[int(parts[0][3:])] = val
            elif parts[0] == "lins" and len(parts) == 2 and parts[1].isdigit():
                got[int(parts[1])] = val
            else:
                raise ValueError(f"unexpected key {key!r} in LPIPS linear weights")
        if sorted(got) != list(range(len(self.lins))):
            raise ValueError(
                f"LPIPS {self.net} needs linear layers 0..{len(self.lins) - 1}, got {sorted(got)}"
            )
        with torch.no_grad():
            for i, w in enumerate(self.lins):
                v = got[i].reshape(-1)
                if v.numel() != w.numel():
                    raise ValueError(f"linear layer {i}: expected {w.numel()} weights, got {v.numel()}")
                w.copy_(v)

    def clamp_lins(self) -> None:
        """Project the linear weights onto ``w ≥ 0`` (after every optimiser step, as in the paper)."""
        with torch.no_grad():
            for w in self.lins:
                w.clamp_(min=0)

    def _trunk_input(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Both images as one batch, mapped [0, 1] -> [-1, 1] -> ``(v - shift) / scale`` in one fused op."""
        n = x.shape[0]
        a = 2.0 / self.scale
        b = -(1.0 + self.shift) / self.scale
        h = torch.empty((2 * n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        torch.addcmul(b, x, a, out=h[:n])
        torch.addcmul(b, y, a, out=h[n:])
        return h

    def _tapped(self, x: torch.Tensor, y: torch.Tensor):
        """Yield ``(x̂_l, ŷ_l)``: unit-normalised activations of each tapped layer."""
        n = x.shape[0]
        # A frozen trunk needs no graph even while the linear layers train.
        trunk_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.features.parameters())
        h, start = self._trunk_input(x, y), 0
        for end in self.taps:
            with torch.set_grad_enabled(trunk_grad):
                for i in range(start, end):
                    h = self.features[i](h)
                f = h / (torch.linalg.vector_norm(h, dim=1, keepdim=True) + _EPS)
            start = end
            yield f[:n], f[n:]

    def normalized_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised activations ``x̂_l`` of each tapped layer for ``x`` ``(N, 3, H, W)`` in [0, 1]."""
        h = torch.addcmul(-(1.0 + self.shift) / self.scale, x, 2.0 / self.scale)
        out, start = [], 0
        for end in self.taps:
            for i in range(start, end):
                h = self.features[i](h)
            start = end
            out.append(h / (torch.linalg.vector_norm(h, dim=1, keepdim=True) + _EPS))
        return out

    def distance_from_features(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """``(N,)`` distance from precomputed :meth:`normalized_features` (dropout applies while training)."""
        total = 0
        for a, b, w in zip(fx, fy, self.lins, strict=True):
            d = (a - b).square()
            if self.training and self.dropout > 0:
                d = F.dropout(d, self.dropout, training=True)
            total = total + d.mean((2, 3)) @ w
        return total

    def layer_diffs(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Squared differences of unit-normalised activations per tapped layer.

        Args:
            x, y: ``(N, 3, H, W)`` in [0, 1].

        Returns:
            One ``(N, C_l, H_l, W_l)`` float32 tensor per layer (dropout applied while training).
        """
        out = []
        for fx, fy in self._tapped(x, y):
            d = (fx - fy).square_()
            if self.training and self.dropout > 0:
                d = F.dropout(d, self.dropout, training=True)
            out.append(d)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor, *, spatial: bool = False) -> torch.Tensor:
        """LPIPS distance.

        Args:
            x, y: ``(N, 3, H, W)`` in [0, 1], same shape.
            spatial: return the map ``(N, 1, H, W)``: each layer's weighted difference upsampled
                bilinearly to the input size and summed (the reference's ``spatial=True``).

        Returns:
            ``(N,)`` float64 (float32 with ``spatial`` or while gradients are enabled).
        """
        if spatial:
            total = 0
            for d, w in zip(self.layer_diffs(x, y), self.lins, strict=True):
                m = (d * w.view(1, -1, 1, 1)).sum(1, keepdim=True)
                total = total + F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return total
        if torch.is_grad_enabled() or (self.training and self.dropout > 0):
            return sum(d.mean((2, 3)) @ w for d, w in zip(self.layer_diffs(x, y), self.lins, strict=True))
        # Inference: per-channel mean of squared differences as a fused norm over space (one pass),
        # then the weighted sum over channels and layers in float64.
        total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for (fx, fy), w in zip(self._tapped(x, y), self.lins, strict=True):
            hw = fx.shape[-1] * fx.shape[-2]
            ms = torch.linalg.vector_norm(fx - fy, dim=(2, 3)).double().square_() / hw
            total += ms @ w.double()
        return total


# ----------------------------------------------------------------------------------- calibrated weights
def load_calibrated(path: str | os.PathLike, net: str) -> tuple[LPIPSNet, dict[str, str]]:
    """An :class:`LPIPSNet` from a calibrated checkpoint.

    Accepted formats (all read with ``weights_only=True``):

    * texbench's (``texbench lpips train``): ``{"format": "texbench-lpips-1", "net", "variant", "lins",
      "features" (tune/scratch only)}``;
    * the reference's linear-only files (``lin<l>.model.1.weight``), like ``weights/v0.1/alex.pth``;
    * the reference's tuned checkpoints, which add ``net.slice<s>.<i>.weight|bias`` backbone tensors.

    The backbone comes from the checkpoint when it holds one, else the pretrained ImageNet weights.

    Raises:
        ValueError: the checkpoint is for another backbone or has unexpected keys.
    """
    from texbench.weights import sha256_file

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"weights: {p} does not exist")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f"weights: {p} does not hold a state dict")
    lins: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor] | None = None
    if ckpt.get("format") == "texbench-lpips-1":
        if ckpt["net"] != net:
            raise ValueError(f"weights: {p} was trained for net={ckpt['net']!r}, not {net!r}")
        lins = {f"lins.{i}": w for i, w in enumerate(ckpt["lins"])}
        features = ckpt.get("features")
    else:
        lins = {k: v for k, v in ckpt.items() if k.startswith("lin")}
        tuned = {k: v for k, v in ckpt.items() if k.startswith("net.slice")}
        other = set(ckpt) - set(lins) - set(tuned)
        if other:
            raise ValueError(f"weights: unexpected keys in {p}: {sorted(other)[:5]}")
        if tuned:  # "net.slice3.6.weight" -> "6.weight": slice module names are torchvision indices
            features = {k.split(".", 3)[2] + "." + k.split(".", 3)[3]: v for k, v in tuned.items()}
    model = LPIPSNet(net, pretrained_backbone=features is None, lin="uniform")
    if features is not None:
        model.features.load_state_dict(features, strict=True)
    model.load_lin_state(lins)
    prov = f"lpips-calibrated:{p.name}@sha256:{sha256_file(p)[:16]}"
    model.provenance = {"lpips-backbone": prov if features is not None else model.provenance["lpips-backbone"],
                        "lpips-lin": prov}  # fmt: skip
    return model, model.provenance


# ---------------------------------------------------------------------------------------- functional API
_MODELS: dict[tuple[str, str, str], LPIPSNet] = {}


def _check_pair(x: Any, y: Any) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor in [0, 1], got {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < 16:
        raise ValueError(f"LPIPS needs images of at least 16x16, got {tuple(x.shape[-2:])}")


def _get_model(net: str, weights: str | os.PathLike | None, device: torch.device) -> LPIPSNet:
    key = (net, str(Path(weights).resolve()) if weights else "", str(device))
    model = _MODELS.get(key)
    if model is None:
        if net not in NETS:
            raise ValueError(f"net must be one of {NETS}, got {net!r}")
        model = load_calibrated(weights, net)[0] if weights else LPIPSNet(net)
        model = model.to(device).requires_grad_(False).eval()
        _MODELS[key] = model
    return model


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    net: Net = "alex",
    weights: str | os.PathLike | None = None,
    spatial: bool = False,
    batch_size: int = 16,
) -> torch.Tensor:
    """LPIPS distance between image pairs (lower is more similar).

    Args:
        x, y: ``(N, 3, H, W)`` float RGB in [0, 1], same shape, ``H, W ≥ 16``.
        net: backbone, ``"alex"`` (default, the paper's recommendation), ``"vgg"`` or ``"squeeze"``.
        weights: a calibrated checkpoint (see :func:`load_calibrated`); default the official v0.1 layers.
        spatial: return the distance map ``(N, 1, H, W)`` instead of ``(N,)``.
        batch_size: pairs per network pass (results do not depend on it).

    Returns:
        ``(N,)`` float64 on ``x.device``, or the float32 map with ``spatial``.

    Raises:
        WeightsNotFoundError: pretrained weights are not cached and random init is not allowed.

    References:
        Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.
    """
    _check_pair(x, y)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = _get_model(net, weights, x.device)
    outs = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size].float(), y[i : i + batch_size].float()
            outs.append(model(xb, yb, spatial=spatial))
    return torch.cat(outs) if outs else torch.zeros(0, dtype=torch.float64, device=x.device)


# ------------------------------------------------------------------------------------------ metric class
@dataclasses.dataclass(frozen=True)
class LPIPSParams(Params):
    """``net``: backbone; ``weights``: optional calibrated checkpoint (default: official v0.1 layers)."""

    net: Literal["alex", "vgg", "squeeze"] = "alex"
    weights: str | None = None


class LPIPS(Metric):
    """LPIPS distance to a pixel-aligned reference (lower is better).

    References:
        Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
        Perceptual Metric." CVPR 2018.
    """

    name: ClassVar[str] = "lpips"
    description: ClassVar[str] = "Learned Perceptual Image Patch Similarity (v0.1 linear layers)"
    higher_is_better: ClassVar[bool] = False
    kind: ClassVar[str] = "paired"  # type: ignore[assignment]
    is_differentiable: ClassVar[bool] = True
    references: ClassVar[str] = "Zhang et al., CVPR 2018, arXiv:1801.03924"
    Params: ClassVar[type] = LPIPSParams

    def __init__(self, params: Any = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(params, device=device)
        self._model = _get_model(self.params.net, self.params.weights, self.device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N,)`` float64 distances between ``(N, 3, H, W)`` images in [0, 1]."""
        return lpips(x.to(self.device), y.to(self.device), net=self.params.net, weights=self.params.weights)

    def spatial_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` distance map (see :func:`lpips` with ``spatial=True``)."""
        return lpips(
            x.to(self.device),
            y.to(self.device),
            net=self.params.net,
            weights=self.params.weights,
            spatial=True,
        )

    def provenance(self) -> dict[str, str]:
        return dict(self._model.provenance)
