"""Files that are never seen half-written, and downloads that are never kept unverified.

The one owner of two jobs the rest of texbench (weights, standard datasets, trained networks, LPIPS
checkpoints, images, leaderboards) delegates:

* **atomic writes**: :func:`atomic_write` writes to a temporary file in the destination's own folder
  (so the final rename never crosses a file system), flushes and ``fsync``s it, gives it the mode a
  plain ``open()`` would (:func:`shared_file_mode`, not ``mkstemp``'s 0600) and renames it over the
  destination. A reader sees the old file or the new one, never a mix; a failure (or a checksum that
  does not match) removes the temporary file and leaves the destination untouched.
  :func:`atomic_write_bytes` and :func:`atomic_torch_save` are the two common uses.
* **verified downloads**: :func:`download` streams a URL into such a temporary file with a progress bar
  and renames it only when its sha256 matches the expected digest.

Digests may be full (64 hex digits) or, where only that is documented, a prefix of at least 8 hex
digits (torchvision's file-name convention, all ``torch.hub`` checks): :func:`digest_matches`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ChecksumError",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_bytes",
    "digest_matches",
    "download",
    "sha256_file",
    "shared_file_mode",
]

#: Bytes read or written at a time when hashing, copying or downloading.
CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's sha256 is not the expected one; nothing was kept.

    Attributes:
        actual: the hex sha256 of what was written.
        expected: the digest (or prefix) it should have had.
    """

    def __init__(self, message: str, *, actual: str, expected: str) -> None:
        super().__init__(message)
        self.actual = actual
        self.expected = expected


def shared_file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask (``0o666 & ~umask``
    without execute bits, at most 0o644): ``mkstemp``'s 0600 would hide a shared cache or run directory
    from the other users of a machine."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o644 & ~mask


def digest_matches(digest: str, expected: str) -> bool:
    """Whether the hex sha256 ``digest`` is ``expected``: an exact match for a full digest, a prefix
    match for a documented prefix of at least 8 hex digits (anything shorter never matches).

    >>> digest_matches("dcbb9e9d" + "0" * 56, "dcbb9e9d")
    True
    >>> digest_matches("dcbb9e9d" + "0" * 56, "dcbb9e")
    False
    """
    if len(expected) == 64:
        return digest == expected
    return len(expected) >= 8 and digest.startswith(expected)


_HASHED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (memoised per process by path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
        _HASHED[key] = h.hexdigest()
    return _HASHED[key]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, sha256: str | None = None) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: yields a binary file open on a temporary file beside it.

    When the block ends without an exception the file is flushed, ``fsync``ed, checked against
    ``sha256`` (if given, see :func:`digest_matches`), given :func:`shared_file_mode` and renamed over
    ``path``. Otherwise the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the destination; its folder is created if needed.
        sha256: expected hex digest (full or a prefix of >= 8 digits) of what is written.

    Raises:
        ChecksumError: what was written does not match ``sha256``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_write(d / "a.txt") as fh:
        ...     _ = fh.write(b"hello")
        >>> (d / "a.txt").read_bytes()
        b'hello'
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if sha256 is not None:
            got = sha256_file(tmp)
            if not digest_matches(got, sha256):
                raise ChecksumError(f"{p.name}: sha256 {got}, expected {sha256}", actual=got, expected=sha256)
        os.chmod(tmp, shared_file_mode())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`), so readers never see half a
    file; the file gets :func:`shared_file_mode`."""
    with atomic_write(path) as fh:
        fh.write(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically (see :func:`atomic_write`): a checkpoint is either the old
    one or the complete new one, never a truncated zip, even if the process is killed while saving."""
    import torch

    with atomic_write(path) as fh:
        torch.save(obj, fh)


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int = 0,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, keeping it only if its sha256 matches (see :func:`atomic_write`).

    Args:
        url: anything ``urllib`` opens (``https://``, ``file://``).
        dest: the destination file.
        sha256: expected hex digest (full or a prefix of >= 8 digits); ``None`` keeps any content.
        size: expected bytes, for the progress bar when the server sends no ``Content-Length``.
        timeout: seconds to wait for the connection and for each read.
        progress: show a tqdm bar (bytes).

    Returns:
        ``dest`` as a Path.

    Raises:
        OSError: the URL could not be opened or read (``urllib.error.URLError`` is one).
        ChecksumError: the downloaded bytes do not match ``sha256``; ``dest`` is untouched.
    """
    import urllib.request

    from tqdm.auto import tqdm

    dest = Path(dest)
    with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_write(dest, sha256=sha256) as fh:
        total = int(resp.headers.get("Content-Length") or size or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not progress) as bar:
            for chunk in iter(lambda: resp.read(CHUNK), b""):
                fh.write(chunk)
                bar.update(len(chunk))
    return dest
