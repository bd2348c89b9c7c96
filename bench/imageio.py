"""Image input and output: one contract at every boundary.

Every image inside texbench is a float32 tensor of shape ``(3, H, W)`` with values in [0, 1], RGB.
:func:`load_image` turns what users have into that; :func:`save_png` quantises once to uint8 and writes
atomically (through :mod:`texbench.files`).

Conversions applied by :func:`load_image`, in order:

* EXIF orientation is applied (a phone photo is shown the way its viewer shows it);
* palette (``P``) images are expanded to their colours;
* 16-bit and 32-bit images (``I;16``, ``I``, ``F``) are scaled by their type's full range, not by the
  image's own maximum, so a dark image stays dark;
* alpha is **composited over white** (the way browsers and viewers show a transparent PNG), never silently
  dropped, so transparent regions do not turn into arbitrary colours;
* grayscale is replicated to three channels.

**Pixel budget.** Before anything is decoded, the size the file's header declares is checked against a
budget (:data:`DEFAULT_MAX_PIXELS`, 64 megapixels, raised with :func:`pixel_budget`, the suite key
``max_pixels`` or ``--max-pixels``): a larger image, or a decompression bomb (a tiny PNG declaring
100000x100000), is an :class:`ImageError` naming the file and the limit, never Pillow's
``DecompressionBombError`` and never gigabytes of memory. 8-bit images without alpha are decoded straight
band by band into a float32 ``(3, H, W)`` array (bit-identical to dividing in float64 and rounding, as
IEEE division is correctly rounded): decoding a 60-megapixel RGB PNG adds 1.3 GB to the process's peak
(measured), about 21 bytes per pixel, where decoding to (H, W, 3) and transposing added 1.5 GB.

**File names.** :func:`display_name` turns a file name that is not valid UTF-8 (``caf\\xe9.png`` on a
Latin-1 disk) into a printable, storable string with the undecodable bytes escaped (``caf\\xe9``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

# Atomic writes have one owner, texbench.files; re-exported because plugins write through them.
from texbench.files import atomic_write_bytes, shared_file_mode  # noqa: F401

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageError",
    "display_name",
    "max_pixels",
    "pixel_budget",
    "atomic_write_bytes",
    "decode_image",
    "encode_png",
    "image_hash",
    "list_images",
    "load_image",
    "save_image",
    "save_png",
    "to_uint8",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")


#: Largest image (width x height) decoded unless a suite, a CLI option or :func:`pixel_budget` raises it.
DEFAULT_MAX_PIXELS = 64_000_000

_budget: int = DEFAULT_MAX_PIXELS
#: Pillow's own bomb limit is a module global: it is lifted only while a header is read, under this lock
_PIL_LIMIT_LOCK = threading.Lock()


class ImageError(ValueError):
    """An image file that cannot be used: corrupt, truncated, unsupported, too small or too large."""


def max_pixels() -> int:
    """The current pixel budget (see :func:`pixel_budget`)."""
    return _budget


@contextlib.contextmanager
def pixel_budget(limit: int | None) -> Iterator[int]:
    """Within the block, :func:`load_image` refuses images of more than ``limit`` pixels (``None``: keep
    the current budget).

    Raises:
        ValueError: ``limit`` is not a positive integer.
    """
    global _budget
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_pixels must be a positive integer, got {limit!r}")
    before = _budget
    _budget = before if limit is None else limit
    try:
        yield _budget
    finally:
        _budget = before


def display_name(name: str | os.PathLike) -> str:
    """A file name as a valid, printable string: bytes that were not UTF-8 (kept by Python as surrogate
    escapes) are shown as ``\\xNN``.

    >>> display_name("caf\\udce9")
    'caf\\\\xe9'
    """
    text = os.fspath(name)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def _open_checked(p: Path, limit: int):
    """Open ``p`` with Pillow (header only) and refuse it if it declares more than ``limit`` pixels."""
    import warnings

    from PIL import Image

    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our budget replaces Pillow's
        try:
            img = Image.open(p)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = img.size
    if w * h > limit:
        img.close()
        raise ImageError(f"{display_name(p)}: image declares {w}x{h} pixels ({w * h / 1e6:.1f} MP), over the "
                         f"pixel budget of {limit} ({limit / 1e6:g} MP); raise it with max_pixels / --max-pixels")
    return img


def _pil_to_array(img) -> np.ndarray:
    """Convert a PIL image in any common mode into float32 RGB (H, W, 3) in [0, 1]."""

    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float64) / 65535.0
        rgb, alpha = np.repeat(arr[..., None], 3, axis=2), None
    elif mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        # Mode "I" holds 16-bit PNGs as int32; a true 32-bit range is rare, so scale by what the data needs.
        scale = 65535.0 if arr.max(initial=0) <= 65535 else float(2**31 - 1)
        rgb, alpha = np.repeat((arr / scale)[..., None], 3, axis=2), None
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if arr.max(initial=0) > 1.0:  # float TIFFs come either in [0, 1] or in [0, 255]
            arr = arr / 255.0
        rgb, alpha = np.repeat(arr[..., None], 3, axis=2), None
    elif mode in ("1", "L"):
        arr = np.asarray(img.convert("L"), dtype=np.float32)
        arr /= np.float32(255.0)
        return np.repeat(arr[..., None], 3, axis=2)
    elif mode == "LA":
        arr = np.asarray(img, dtype=np.float64) / 255.0
        rgb, alpha = np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:2]
    elif mode in ("RGBA", "RGBa"):
        arr = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        rgb, alpha = arr[..., :3], arr[..., 3:4]
    elif mode == "RGB":
        arr = np.asarray(img, dtype=np.float32)
        arr /= np.float32(255.0)
        return arr
    else:  # CMYK, YCbCr, LAB, HSV and other rarities: let Pillow do the colour conversion
        rgb, alpha = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0, None
    if alpha is not None:
        rgb = rgb * alpha + (1.0 - alpha)  # composite over white
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _pil_to_chw(img) -> np.ndarray:
    """:func:`_pil_to_array` as a contiguous ``(3, H, W)`` array; 8-bit RGB and grayscale are written
    band by band into the result, so decoding needs the file's bytes plus the float32 image, no more."""
    if img.mode not in ("RGB", "L"):
        return np.ascontiguousarray(_pil_to_array(img).transpose(2, 0, 1))
    out = np.empty((3, img.height, img.width), dtype=np.float32)
    bands = img.split()
    for i in range(3):
        out[i] = np.asarray(bands[min(i, len(bands) - 1)])
    out /= np.float32(255.0)
    return out


def load_image(path: str | os.PathLike, *, min_size: int = 1, max_pixels: int | None = None) -> torch.Tensor:
    """Load an image file as float32 RGB ``(3, H, W)`` in [0, 1].

    Args:
        path: PNG, JPEG, TIFF, BMP, WebP or PNM file.
        min_size: smallest allowed height and width in pixels.
        max_pixels: largest allowed width x height, checked on the header before decoding (default: the
            current budget, :func:`pixel_budget`).

    Returns:
        The image, converted as described in the module docstring.

    Raises:
        ImageError: the file is missing, corrupt, truncated, not an image, or smaller than ``min_size``.
            The message is one line and names the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    name = display_name(p)
    if not p.is_file():
        raise ImageError(f"{name}: no such image file")
    try:
        with _open_checked(p, _budget if max_pixels is None else max_pixels) as img:
            img.load()  # forces decoding, so truncated files fail here and not later
            chw = _pil_to_chw(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode this image") from None
    h, w = chw.shape[1:]
    if h < min_size or w < min_size:
        raise ImageError(f"{name}: image is {w}x{h} pixels, smaller than the {min_size}x{min_size} this needs")
    return torch.from_numpy(chw)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Quantise a float ``(3, H, W)`` image in [0, 1] to uint8 ``(H, W, 3)`` with round-half-to-even.

    >>> to_uint8(torch.full((3, 1, 1), 0.5))[0, 0].tolist()
    [128, 128, 128]
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    arr = image.detach().to("cpu", torch.float64).clamp(0.0, 1.0).mul(255.0).round()
    return arr.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def image_hash(image: torch.Tensor | np.ndarray) -> str:
    """SHA-256 of an image's uint8 pixels and shape: the identity used for caching and job keys."""
    arr = to_uint8(image) if isinstance(image, torch.Tensor) else np.ascontiguousarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"image array must be uint8, got {arr.dtype}")
    h = hashlib.sha256()
    h.update(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def encode_png(image: torch.Tensor | np.ndarray) -> bytes:
    """Quantise (if float) and encode an RGB image as PNG bytes (what :func:`save_png` writes).

    Args:
        image: float tensor ``(3, H, W)`` in [0, 1] or uint8 array ``(H, W, 3)``.
    """
    import io

    from PIL import Image

    arr = to_uint8(image) if isinstance(image, torch.Tensor) else image
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def decode_image(data: bytes, *, name: str = "image") -> torch.Tensor:
    """:func:`load_image` for an encoded image held in memory (outputs travel from workers as PNG bytes):
    the same float32 ``(3, H, W)`` in [0, 1], pixel for pixel.

    Raises:
        ImageError: the bytes are not an image Pillow can decode (the message names ``name``).
    """
    import io

    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            chw = _pil_to_chw(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
    return torch.from_numpy(chw)


def save_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Quantise (if float) and save an RGB image as PNG, atomically.

    Args:
        image: float tensor ``(3, H, W)`` in [0, 1] or uint8 array ``(H, W, 3)``.
        path: destination file.
    """
    atomic_write_bytes(path, encode_png(image))
    return Path(path)


#: file extension -> (Pillow format, save options) of :func:`save_image`; lossy formats at high quality
SAVE_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
    ".bmp": ("BMP", {}),
    ".webp": ("WEBP", {"lossless": True}),
    ".ppm": ("PPM", {}),
}


def save_image(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Quantise (if float) and save an RGB image in the format its extension names, atomically.

    Args:
        image: float tensor ``(3, H, W)`` in [0, 1] or uint8 array ``(H, W, 3)``.
        path: destination; its extension is one of :data:`SAVE_FORMATS` (``.png``, ``.jpg``, ...).

    Raises:
        ValueError: the extension names no format texbench writes.
    """
    import io

    from PIL import Image

    suffix = Path(path).suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(f"{display_name(path)}: unknown image extension {suffix!r}; use one of "
                         f"{', '.join(SAVE_FORMATS)}")
    fmt, options = SAVE_FORMATS[suffix]
    arr = to_uint8(image) if isinstance(image, torch.Tensor) else image
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format=fmt, **options)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
