"""Bytes on disk → upright RGB uint8 pixels at the working size, plus what the index records.

EXIF orientation is applied exactly once: Pillow's ``exif_transpose`` for formats that store it,
never for HEIC/HEIF, which pillow-heif already delivers upright. JPEGs are decoded at a reduced
DCT scale (draft mode) when the working size allows, so a 50-megapixel photo is never held whole.
"""

import dataclasses
import hashlib
import io
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .exif import Metadata, read_metadata
from .formats import RAW_EXTENSIONS
from .sidecar import sidecar_orientation

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - a hard dependency, but keep other formats working
    pillow_heif = None

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "TIFF", "BMP", "MPO"}
# Orientations 5-8 swap width and height.
TRANSPOSED = {5, 6, 7, 8}


class DecodeError(Exception):
    """A photo that cannot be read; the message is the reason stored in the index."""


@dataclass
class DecodedPhoto:
    path: str
    size: int
    mtime_ns: int
    hash: str = None
    width: int = None  # upright, full resolution
    height: int = None
    metadata: Metadata = Metadata()
    pixels: np.ndarray = None  # upright RGB uint8, at most max_size on its long side
    error: str = None
    orientation_source: str = None  # "sidecar" when the orientation came from an XMP sidecar

    @property
    def scale(self):
        """Multiply working-size pixel coordinates by this to get full-resolution ones."""
        return (self.width / self.pixels.shape[1], self.height / self.pixels.shape[0])


def read_file(path):
    """The bytes of ``path`` with the size and mtime of exactly those bytes."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return f.read(), st
    except PermissionError:
        raise DecodeError("permission denied") from None
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror or exc}") from None


def _raw_preview(data):
    """The embedded JPEG preview of a camera RAW file, and the RAW's own orientation."""
    import rawpy

    flip_to_exif = {0: 1, 3: 3, 5: 8, 6: 6}
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            thumb = raw.extract_thumb()
            orientation = flip_to_exif.get(raw.sizes.flip, 1)
    except (rawpy.LibRawError, OSError) as exc:
        raise DecodeError(f"cannot read RAW preview: {exc}") from None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        raise DecodeError("RAW file has no JPEG preview")
    return thumb.data, orientation


def _to_rgb(image):
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    elif image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = 1.0 if array.max() <= 1.0 else array.max()
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return image if image.mode == "RGB" else image.convert("RGB")


def _open(data):
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise DecodeError("not an image phototag can read (unknown or damaged format)") from None
    if image.format not in ALLOWED_FORMATS:
        raise DecodeError(f"unsupported image format {image.format}")
    return image


def decode_bytes(data, max_size, suffix="", fallback_orientation=None):
    """Decode image bytes; returns (pixels, upright width, upright height, applied orientation).
    ``fallback_orientation`` applies when the image carries no orientation of its own."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    raw_orientation = None
    if suffix.lower() in RAW_EXTENSIONS:
        data, raw_orientation = _raw_preview(data)
    image = _open(data)
    if image.format == "HEIF":
        orientation = 1  # pillow-heif has already rotated the pixels
    else:
        orientation = image.getexif().get(0x0112)
        if orientation is None:
            orientation = raw_orientation or fallback_orientation or 1
        if orientation not in range(1, 9):
            orientation = 1
    stored_w, stored_h = image.size
    width, height = (stored_h, stored_w) if orientation in TRANSPOSED else (stored_w, stored_h)
    factor = max_size / max(width, height) if max_size else 1.0
    try:
        if factor < 1 and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (math.ceil(stored_w * factor), math.ceil(stored_h * factor)))
        image.load()
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb refused: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        message = str(exc)
        if "truncated" in message:
            raise DecodeError(f"truncated or damaged image ({message})") from None
        raise DecodeError(f"cannot decode: {message}") from None
    if orientation != 1:
        image.getexif()[0x0112] = orientation
        image = ImageOps.exif_transpose(image)
    image = _to_rgb(image)
    if factor < 1:
        target = (max(1, round(width * factor)), max(1, round(height * factor)))
        if image.size != target:
            image = image.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.array(image), width, height, orientation


def load(entry, max_size):
    """Read, hash and decode one photo. Never raises: failures come back as ``error``."""
    photo = DecodedPhoto(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns)
    if entry.error:
        photo.error = entry.error
        return photo
    try:
        data, st = read_file(entry.path)
        photo.size, photo.mtime_ns = st.st_size, st.st_mtime_ns
        photo.hash = hashlib.sha256(data).hexdigest()
        photo.metadata = read_metadata(data)
        suffix = os.path.splitext(entry.path)[1]
        fallback = None
        if photo.metadata.orientation is None:
            fallback, _ = sidecar_orientation(entry.path)
        photo.pixels, photo.width, photo.height, applied = decode_bytes(data, max_size, suffix, fallback)
        if fallback and applied == fallback and photo.metadata.orientation is None:
            photo.metadata = dataclasses.replace(photo.metadata, orientation=fallback)
            photo.orientation_source = "sidecar"
    except DecodeError as exc:
        photo.error = str(exc)
    except MemoryError:
        photo.error = "out of memory while decoding"
    except Exception as exc:  # a decoder bug on one file must not end a night's run
        photo.error = f"cannot decode: {type(exc).__name__}: {exc}"
    return photo
