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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.nets.backbones import CHANNELS, NETS, TAPS, build_features, load_backbone
from texbench.nets.pretrained import load_pretrained
from texbench.weights import PyPISource, UrlSource, WeightSpec, register_spec

__all__ = ["LIN_SPECS", "LPIPSNet", "Net", "load_calibrated"]

Net = Literal["alex", "vgg", "squeeze"]
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10

# ------------------------------------------------------------------------------------- linear weights
_LIN_RAW = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/"


def _lin_spec(net: str, sha256: str, size: int) -> WeightSpec:
    return register_spec(
        WeightSpec(
            name=f"lpips-{net}-v0.1",
            filename=f"lpips-v0.1-{net}.pth",
            sha256=sha256,
            sources=(
                UrlSource(_LIN_RAW + f"{net}.pth"),
                PyPISource("lpips==0.1.4", f"lpips/weights/v0.1/{net}.pth"),
            ),
            license="BSD-2-Clause (lpips)",
            description=f"LPIPS v0.1 linear calibration layers for the {net} backbone",
            size=size,
        )
    )


#: The v0.1 linear calibration files: the same bytes in the lpips repository and in the ``lpips==0.1.4``
#: wheel (BSD-2-Clause).
LIN_SPECS: dict[str, WeightSpec] = {
    "alex": _lin_spec("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009),
    "vgg": _lin_spec("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289),
    "squeeze": _lin_spec(
        "squeeze", "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", 10811
    ),
}


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

    # registered buffers, declared for the type checker (nn.Module's __getattr__ types them loosely)
    shift: torch.Tensor
    scale: torch.Tensor

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
        self.net = net
        self.taps = TAPS[net]
        self.dropout = dropout
        self.features = build_features(net)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.provenance: dict[str, str] = {
            "lpips-backbone": load_backbone(
                self.features, net, seed=seed, random=None if pretrained_backbone else True
            )
        }
        self.lins = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in CHANNELS[net]])
        if lin == "uniform":
            self.provenance["lpips-lin"] = "uniform:1"
        else:
            self.provenance["lpips-lin"] = load_pretrained(
                LIN_SPECS[net],
                load=lambda path, spec: self.load_lin_state(torch.load(path, map_location="cpu", weights_only=True)),
                random_init=self._random_lins,
                seed=seed,
                random=True if lin == "random" else None,
            )
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
        if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
            # the same op, without ``out=`` (which autograd refuses): gradients flow to the images
            return torch.cat([torch.addcmul(b, x, a), torch.addcmul(b, y, a)])
        # channels-last: oneDNN's convolutions run AlexNet's features about 1.3-1.6x faster in NHWC on CPU
        # (values equal up to float32 summation order, ~3e-7 on the distance)
        h = torch.empty((2 * n, *x.shape[1:]), dtype=x.dtype, device=x.device).contiguous(
            memory_format=torch.channels_last
        )
        torch.addcmul(b, x, a, out=h[:n])
        torch.addcmul(b, y, a, out=h[n:])
        return h

    def _tapped(self, x: torch.Tensor, y: torch.Tensor):
        """Yield ``(x̂_l, ŷ_l)``: unit-normalised activations of each tapped layer."""
        n = x.shape[0]
        # A frozen trunk needs no graph while only the linear layers train; it does when the distance is
        # differentiated with respect to the images (LPIPS as a loss).
        trunk_grad = torch.is_grad_enabled() and (
            x.requires_grad or y.requires_grad or any(p.requires_grad for p in self.features.parameters())
        )
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
        total: Any = 0  # a tensor after the first layer
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
            total: Any = 0  # a tensor after the first layer
            for d, w in zip(self.layer_diffs(x, y), self.lins, strict=True):
                m = (d * w.view(1, -1, 1, 1)).sum(1, keepdim=True)
                total = total + F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return total
        if torch.is_grad_enabled() or (self.training and self.dropout > 0):
            return sum(  # type: ignore[return-value]  # a sum of tensors is a tensor
                d.mean((2, 3)) @ w for d, w in zip(self.layer_diffs(x, y), self.lins, strict=True)
            )
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
