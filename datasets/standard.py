"""Standard test sets (Kodak24, CBSD68, Set5, Set14, Deep Image Prior's images, the texture exemplars and
the style-transfer paintings and photographs of the seed's papers), fetched with checksums.

The sets are described in ``standard.toml`` beside this file: per file its sha256 and, where the set has
a stable location, a URL pinned to a commit. ``texbench datasets fetch NAME`` downloads them into
``$TEXBENCH_HOME/datasets/NAME`` (or ``$TEXBENCH_DATASETS/NAME``), or, with ``--from DIR``, copies them
from a folder you already have (searched recursively by file name); every file is verified before it
is kept and again when a suite loads it. A suite then names the set: ``datasets = { clean = "kodak24" }``.

Nothing here runs on import: a set that is not fetched is an error only when a suite uses it, and the
message says which command fetches it.
"""

from __future__ import annotations

import functools
import os
import shutil
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from texbench.base import Dataset, DatasetItem
from texbench.files import ChecksumError, atomic_write, download, sha256_file

__all__ = ["DatasetFetchError", "StandardSet", "dataset_dir", "fetch_set", "standard_sets"]


class DatasetFetchError(RuntimeError):
    """A standard set could not be fetched or verified; the message names the files and the remedy."""


@dataclass(frozen=True)
class StandardSet:
    name: str
    description: str
    roles: tuple[str, ...]
    license: str
    source: str
    homepage: str
    files: tuple[tuple[str, str, str | None], ...]  # (file name, sha256, url or None)


@functools.cache
def standard_sets() -> dict[str, StandardSet]:
    """The sets described in ``standard.toml``, by name."""
    raw = tomllib.loads(resources.files("texbench.datasets").joinpath("standard.toml").read_text())
    out = {}
    for name, d in raw.items():
        files = tuple((f, v["sha256"], v.get("url")) for f, v in d["files"].items())
        out[name] = StandardSet(name, d["description"], tuple(d["roles"]), d["license"], d["source"],
                                d["homepage"], files)
    return out


def dataset_dir(name: str) -> Path:
    """Where set ``name`` lives: ``$TEXBENCH_DATASETS/name``, else ``$TEXBENCH_HOME/datasets/name``."""
    if os.environ.get("TEXBENCH_DATASETS"):
        return Path(os.environ["TEXBENCH_DATASETS"]) / name
    from texbench.env import texbench_home

    return texbench_home() / "datasets" / name


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _get(name: str) -> StandardSet:
    sets = standard_sets()
    if name not in sets:
        raise DatasetFetchError(f"unknown standard set {name!r}; known: {', '.join(sets)}")
    return sets[name]


def missing_files(name: str) -> list[str]:
    """Files of set ``name`` that are absent from its folder or fail their checksum."""
    s, folder = _get(name), dataset_dir(name)
    return [f for f, sha, _ in s.files if not (folder / f).is_file() or _sha256(folder / f) != sha]


def fetch_set(name: str, *, from_dir: str | os.PathLike | None = None, timeout: float = 60.0,
              progress: bool = True) -> Path:
    """Put every file of set ``name`` into :func:`dataset_dir`, verified; return the folder.

    Files already there and correct are kept. With ``from_dir`` the files are copied from that folder
    (found by name anywhere below it); otherwise they are downloaded from their URLs. Each file is
    written to a temporary name and renamed only after its sha256 matched, so a failure leaves the good
    files and nothing half-written.

    Raises:
        DatasetFetchError: listing every file that could not be fetched or did not match, with the
            expected and the actual checksum, and what to do.
    """
    s = _get(name)
    folder = dataset_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, list[Path]] = {}
    if from_dir is not None:
        root = Path(from_dir)
        if not root.is_dir():
            raise DatasetFetchError(f"--from {root}: not a folder")
        for p in root.rglob("*"):
            if p.is_file():
                index.setdefault(p.name, []).append(p)
    problems: list[str] = []
    todo = [(f, sha, url) for f, sha, url in s.files if not ((folder / f).is_file() and _sha256(folder / f) == sha)]
    if progress and todo:
        from tqdm import tqdm

        todo_iter = tqdm(todo, desc=f"fetch {name}", unit="file")
    else:
        todo_iter = todo
    for fname, sha, url in todo_iter:
        problem = _fetch_file(folder / fname, sha, url, index if from_dir is not None else None, timeout)
        if problem:
            problems.append(problem)
    if problems:
        how = (f"copy the files from a folder you have: texbench datasets fetch {name} --from DIR"
               if from_dir is None else "check that the folder holds the original, unmodified files")
        raise DatasetFetchError(
            f"{name}: {len(problems)} of {len(s.files)} files not fetched into {folder} "
            f"(source: {s.source}; {s.homepage}):\n  " + "\n  ".join(problems) + f"\n{how}"
        )
    return folder


def _fetch_file(dest: Path, sha: str, url: str | None, index: dict[str, list[Path]] | None,
                timeout: float) -> str | None:
    """Put one verified file at ``dest``, copied from a local ``index`` (file name → paths) or downloaded
    from ``url``, atomically (:mod:`texbench.files`); returns what went wrong, or ``None``."""
    fname = dest.name
    if index is not None:
        # by the local name, or by the source's own file name (DIP's data/denoising/F16_GT.png)
        alt = PurePosixPath(urlparse(url).path).name if url else fname
        cands = index.get(fname, []) + (index.get(alt, []) if alt != fname else [])
        match = next((c for c in cands if _sha256(c) == sha), None)
        if match is None:
            got = ", ".join(f"{c} has sha256 {_sha256(c)}" for c in cands) or "not found"
            return f"{fname}: expected sha256 {sha}; {got}"
        with open(match, "rb") as src, atomic_write(dest, sha256=sha) as out:
            shutil.copyfileobj(src, out)
        return None
    if url is None:
        return f"{fname}: no download location is recorded for this set"
    try:
        download(url, dest, sha256=sha, timeout=timeout, progress=False)
    except ChecksumError as exc:
        return f"{fname}: {url} gave sha256 {exc.actual}, expected {sha}"
    except OSError as exc:
        return f"{fname}: download from {url} failed: {exc}"
    return None


class StandardDataset(Dataset):
    """A standard set from the texbench cache, verified file by file when a suite loads it."""

    set_name = ""

    def __init__(self, *, limit: int | None = None) -> None:
        self.limit = limit

    def items(self) -> list[DatasetItem]:
        from texbench.imageio import load_image

        s = _get(self.set_name)
        folder = dataset_dir(self.set_name)
        bad = missing_files(self.set_name)
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(
                f"dataset {self.set_name}: {len(bad)} of {len(s.files)} files missing or not matching their "
                f"sha256 in {folder} ({shown}); run `texbench datasets fetch {self.set_name}` "
                f"(or `... --from DIR` with a copy you have)"
            )
        files = [f for f, _, _ in s.files][: self.limit] if self.limit else [f for f, _, _ in s.files]
        return [DatasetItem(Path(f).stem, functools.partial(load_image, folder / f), f"{s.source}: {f}", s.license)
                for f in files]


def _make(set_name: str, cls_name: str) -> type[StandardDataset]:
    s = standard_sets()[set_name]
    return type(cls_name, (StandardDataset,), {
        "name": set_name, "set_name": set_name, "description": s.description + " (texbench datasets fetch)",
        "roles": s.roles, "license": s.license, "__doc__": f"{s.description}. Source: {s.source}.",
    })


Kodak24 = _make("kodak24", "Kodak24")
CBSD68 = _make("cbsd68", "CBSD68")
Set5 = _make("set5", "Set5")
Set14 = _make("set14", "Set14")
DIPClean = _make("dip-clean", "DIPClean")
TextureExemplars = _make("texture-exemplars", "TextureExemplars")
StylePaintings = _make("style-paintings", "StylePaintings")
StyleContent = _make("style-content", "StyleContent")
