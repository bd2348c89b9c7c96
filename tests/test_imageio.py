"""Image I/O accepts what users have and rejects broken files with a one-line message naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from texbench.imageio import ImageError, image_hash, load_image, save_png, to_uint8


@pytest.fixture
def rgb_array():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_lossless_formats_roundtrip_exactly(tmp_path, rgb_array, fmt, suffix):
    p = tmp_path / f"a{suffix}"
    Image.fromarray(rgb_array).save(p, format=fmt)
    x = load_image(p)
    assert x.shape == (3, 20, 30) and x.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8(x), rgb_array)


def test_jpeg_decodes_like_pillow(tmp_path, rgb_array):
    p = tmp_path / "a.jpg"
    Image.fromarray(rgb_array).save(p, quality=95)
    with Image.open(p) as im:
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(to_uint8(load_image(p)), expected)


def test_grayscale_is_replicated(tmp_path):
    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert x[0, 7, 7].item() == pytest.approx(63 / 255)


def test_palette_expands_to_colours(tmp_path, rgb_array):
    img = Image.fromarray(rgb_array).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(tmp_path / "p.png")
    expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(to_uint8(load_image(tmp_path / "p.png")), expected)


def test_16bit_scaled_by_type_range(tmp_path):
    arr = np.full((4, 4), 65535 // 4, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    x = load_image(tmp_path / "d.png")
    assert x.max().item() == pytest.approx(0.25, abs=1e-4)  # not stretched to 1 by the image's own max


def test_alpha_is_composited_over_white(tmp_path):
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[0, 0] = [255, 0, 0, 255]  # opaque red
    arr[0, 1] = [0, 0, 0, 0]  # fully transparent black -> white
    arr[1, 0] = [0, 0, 0, 128]  # half-transparent black -> mid grey
    Image.fromarray(arr, mode="RGBA").save(tmp_path / "a.png")
    x = to_uint8(load_image(tmp_path / "a.png"))
    assert x[0, 0].tolist() == [255, 0, 0]
    assert x[0, 1].tolist() == [255, 255, 255]
    assert abs(int(x[1, 0, 0]) - 127) <= 1


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    x = load_image(tmp_path / "r.jpg")
    assert x.shape == (3, 20, 10)  # displayed portrait
    assert x[:, :10].mean() > 0.9 and x[:, 10:].mean() < 0.1  # left half becomes the top half


def test_corrupt_truncated_and_missing_files_name_the_file(tmp_path, rgb_array):
    p = tmp_path / "t.png"
    Image.fromarray(rgb_array).save(p)
    p.write_bytes(p.read_bytes()[:80])
    with pytest.raises(ImageError, match="t.png"):
        load_image(p)
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(ImageError, match="junk.png.*not an image"):
        load_image(tmp_path / "junk.png")
    with pytest.raises(ImageError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_too_small_is_rejected(tmp_path, rgb_array):
    Image.fromarray(rgb_array).save(tmp_path / "s.png")
    with pytest.raises(ImageError, match="s.png.*30x20.*smaller than the 32x32"):
        load_image(tmp_path / "s.png", min_size=32)


def test_save_png_is_exact_and_hash_tracks_pixels(tmp_path):
    x = torch.rand(3, 9, 7)
    save_png(x, tmp_path / "o.png")
    y = load_image(tmp_path / "o.png")
    assert (y - x).abs().max() <= 0.5 / 255 + 1e-6
    assert image_hash(y) == image_hash(x)
    assert image_hash(x) != image_hash(x.flip(-1))
    assert not list(tmp_path.glob("*.tmp"))
