"""Decoding corner cases on images the tests make."""

import io

import numpy as np
import pytest
from PIL import Image

from phototag.library.decode import DecodeError, decode_bytes


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_sixteen_bit_and_palette_images_become_rgb():
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (64, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    pixels = decode_bytes(buffer.getvalue(), None)[0]
    assert pixels.shape == (64, 256, 3)
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255 and 120 < pixels[0, 128, 0] < 135
    buffer = io.BytesIO()
    Image.new("P", (32, 16)).save(buffer, format="BMP")
    assert decode_bytes(buffer.getvalue(), None)[0].shape == (16, 32, 3)


def test_orientation_is_applied_once_and_sizes_are_upright():
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = 255  # left half white as stored
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    pixels, width, height, orientation = decode_bytes(encoded(image, "JPEG", exif=exif), None)[:4]
    assert (width, height, orientation) == (20, 40, 6) and pixels.shape == (40, 20, 3)
    assert pixels[:15].mean() > 200 and pixels[25:].mean() < 50  # the white half is now on top


def test_working_size_keeps_the_aspect_ratio():
    image = Image.new("RGB", (3000, 1000), "grey")
    pixels, width, height, _ = decode_bytes(encoded(image, "JPEG"), 600)[:4]
    assert (width, height) == (3000, 1000) and pixels.shape == (200, 600, 3)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"GIF89a" + b"\0" * 20, "not an image"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 10, "not an image"),
])
def test_unreadable_bytes_raise_a_reason(data, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_bytes(data, None)


def test_gif_is_not_a_photo_format():
    with pytest.raises(DecodeError, match="unsupported image format GIF"):
        decode_bytes(encoded(Image.new("RGB", (8, 8)), "GIF"), None)


def test_a_100_megapixel_photo_is_a_photo_and_a_bomb_is_not(tmp_path):
    import subprocess
    import sys

    image = Image.new("RGB", (12000, 8400), (120, 130, 140))
    image.paste((200, 40, 40), (3000, 2000, 6000, 5000))
    data = encoded(image, "JPEG")
    del image
    # In a fresh process, to read its own peak memory: VmHWM, not getrusage's ru_maxrss, which
    # Linux carries over from the (large) test process that spawned it.
    probe = (f"import re\nfrom phototag.library.decode import decode_bytes\n"
             f"d = decode_bytes(open({str(tmp_path / 'big.jpg')!r}, 'rb').read(), 1600)\n"
             f"peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
             f"print(d.width, d.height, d.pixels.shape[1], d.pixels.shape[0], int(peak) // 1024)")
    (tmp_path / "big.jpg").write_bytes(data)
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", probe],
                            capture_output=True, text=True, check=True)
    width, height, w, h, peak_mib = map(int, result.stdout.split())
    assert (width, height, w, h) == (12000, 8400, 1600, 1120)
    assert peak_mib < 256, peak_mib  # at the working size about 85 MiB; at full size about 1 GiB
    assert "Warning" not in result.stderr
    with pytest.raises(DecodeError, match="decompression bomb"):
        decode_bytes(encoded(Image.new("L", (20000, 10000)), "PNG"), 1600)
