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
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

# Atomic writes have one owner, texbench.files; re-exported because plugins write through them.
from texbench.files import atomic_write_bytes, shared_file_mode  # noqa: F401

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageError",
    "atomic_write_bytes",
    "image_hash",
    "list_images",
    "load_image",
    "save_png",
    "to_uint8",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")


class ImageError(ValueError):
    """An image file that cannot be used: corrupt, truncated, unsupported or too small."""


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
        arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
        rgb, alpha = np.repeat(arr[..., None], 3, axis=2), None
    elif mode == "LA":
        arr = np.asarray(img, dtype=np.float64) / 255.0
        rgb, alpha = np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:2]
    elif mode in ("RGBA", "RGBa"):
        arr = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        rgb, alpha = arr[..., :3], arr[..., 3:4]
    elif mode == "RGB":
        rgb, alpha = np.asarray(img, dtype=np.float64) / 255.0, None
    else:  # CMYK, YCbCr, LAB, HSV and other rarities: let Pillow do the colour conversion
        rgb, alpha = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0, None
    if alpha is not None:
        rgb = rgb * alpha + (1.0 - alpha)  # composite over white
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def load_image(path: str | os.PathLike, *, min_size: int = 1) -> torch.Tensor:
    """Load an image file as float32 RGB ``(3, H, W)`` in [0, 1].

    Args:
        path: PNG, JPEG, TIFF, BMP, WebP or PNM file.
        min_size: smallest allowed height and width in pixels.

    Returns:
        The image, converted as described in the module docstring.

    Raises:
        ImageError: the file is missing, corrupt, truncated, not an image, or smaller than ``min_size``.
            The message is one line and names the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: no such image file")
    try:
        with Image.open(p) as img:
            img.load()  # forces decoding, so truncated files fail here and not later
            arr = _pil_to_array(ImageOps.exif_transpose(img))
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p}: corrupt or truncated image ({exc})") from None
    h, w = arr.shape[:2]
    if h < min_size or w < min_size:
        raise ImageError(f"{p}: image is {w}x{h} pixels, smaller than the {min_size}x{min_size} this needs")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


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


def save_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Quantise (if float) and save an RGB image as PNG, atomically.

    Args:
        image: float tensor ``(3, H, W)`` in [0, 1] or uint8 array ``(H, W, 3)``.
        path: destination file.
    """
    import io

    from PIL import Image

    arr = to_uint8(image) if isinstance(image, torch.Tensor) else image
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
