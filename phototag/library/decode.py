"""Bytes on disk → upright RGB uint8 pixels at the working size, plus what the index records.

EXIF orientation is applied exactly once: Pillow's ``exif_transpose`` for formats that store it,
never for HEIC/HEIF, which pillow-heif already delivers upright. JPEGs are decoded at a reduced
DCT scale (draft mode) when the working size allows, so a 50-megapixel photo is never held whole.
"""

import dataclasses
import io
import math
import os
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..files import sha256_hex

from .exif import Metadata, declared_orientation, read_metadata
from .formats import RAW_EXTENSIONS
from .regions import named_regions
from .sidecar import orientation_in, read_sidecar

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - a hard dependency, but keep other formats working
    pillow_heif = None

# Pillow warns from 89 megapixels and refuses from 179 (its decompression-bomb limit). A photo
# from a 100- or 150-megapixel medium-format camera is a photo, not an attack: no warning
# line in the night's log; the refusal stays.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "TIFF", "BMP", "MPO"}
# Orientations 5-8 swap width and height.
TRANSPOSED = {5, 6, 7, 8}
# What makes each EXIF orientation upright (as Pillow's exif_transpose does).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


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
    named_regions: list = None  # (name, upright box) of the faces its XMP names (regions.py)
    sidecar_mtime_ns: int = None  # of the XMP sidecar read with it

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


class Decoded(NamedTuple):
    pixels: np.ndarray  # upright RGB uint8, at most max_size on its long side
    width: int  # upright, full resolution
    height: int
    orientation: int  # the EXIF orientation that was applied to make it upright (1: none)
    metadata: Metadata  # capture time, camera, GPS; ``orientation`` as applied
    orientation_source: str = None  # "sidecar" when the orientation came from an XMP sidecar
    xmp: bytes = None  # the XMP packet the file carries, if any


def _orientation(image, exif, raw_orientation, sidecar):
    """(orientation the file asks for, whether Pillow applies it itself, where it came from).
    pillow-heif delivers HEIC upright (the file's own transform), and Pillow 13 transposes a
    TIFF while opening it: for those two the orientation is only recorded, never applied
    again. A camera RAW's own orientation, then an XMP sidecar's, stand in for a missing one."""
    if image.format == "HEIF":
        return image.info.get("original_orientation") or 1, True, None
    declared = declared_orientation(exif)
    if image.format == "TIFF":
        return declared or 1, True, None
    if declared is None and raw_orientation:
        return raw_orientation, False, None
    if declared is None and sidecar:
        return sidecar, False, "sidecar"
    return declared or 1, False, None


def _xmp_packet(image):
    """The XMP packet of an opened image (JPEG, PNG, WEBP, HEIF keep it in ``info``, TIFF in
    tag 700), or None."""
    packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if packet is None and image.format == "TIFF":
        packet = getattr(image, "tag_v2", {}).get(700)
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet if isinstance(packet, (bytes, bytearray)) else None


def decode_bytes(data, max_size, suffix="", fallback_orientation=None):
    """Decode image bytes into upright pixels at most ``max_size`` on the long side, with what
    the index records about them. ``fallback_orientation`` (from an XMP sidecar) applies when
    the image carries no orientation of its own."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    raw_orientation = None
    if suffix.lower() in RAW_EXTENSIONS:
        data, raw_orientation = _raw_preview(data)
    image = _open(data)
    try:
        exif = image.getexif()  # before load(): a TIFF drops its orientation once applied
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not lose the photo
        exif = Image.Exif()
    metadata = read_metadata(exif)
    xmp = _xmp_packet(image)
    orientation, applied_by_decoder, source = _orientation(image, exif, raw_orientation,
                                                           fallback_orientation)
    stored_w, stored_h = image.size
    turned = orientation in TRANSPOSED and not applied_by_decoder
    width, height = (stored_h, stored_w) if turned else (stored_w, stored_h)
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
    if orientation != 1 and not applied_by_decoder:
        image = image.transpose(TRANSPOSE[orientation])
    image = _to_rgb(image)
    if factor < 1:
        target = (max(1, round(width * factor)), max(1, round(height * factor)))
        if image.size != target:
            image = image.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    metadata = dataclasses.replace(metadata, orientation=orientation)
    return Decoded(np.array(image), width, height, orientation, metadata, source, xmp)


def xmp_of(path):
    """The XMP packet a photo file carries, read without decoding its pixels (None if none, or
    if the file cannot be opened)."""
    try:
        with Image.open(path) as image:
            return _xmp_packet(image)
    except Exception:  # noqa: BLE001 - a photo we cannot open has no names to give
        return None


def named_regions_of(path, orientation, width, height):
    """The named face regions of an indexed photo, from its own XMP and its sidecar, and the
    sidecar's modification time: (regions, mtime or None)."""
    sidecar, mtime = read_sidecar(path)
    return named_regions([xmp_of(path), sidecar], orientation or 1, width, height), mtime


def load(entry, max_size):
    """Read, hash and decode one photo. Never raises: failures come back as ``error``."""
    photo = DecodedPhoto(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns)
    if entry.error:
        photo.error = entry.error
        return photo
    try:
        data, st = read_file(entry.path)
        photo.size, photo.mtime_ns = st.st_size, st.st_mtime_ns
        photo.hash = sha256_hex(data)
        suffix = os.path.splitext(entry.path)[1]
        sidecar, photo.sidecar_mtime_ns = read_sidecar(entry.path)
        decoded = decode_bytes(data, max_size, suffix, orientation_in(sidecar))
        photo.pixels, photo.width, photo.height = decoded.pixels, decoded.width, decoded.height
        photo.metadata, photo.orientation_source = decoded.metadata, decoded.orientation_source
        photo.named_regions = named_regions([decoded.xmp, sidecar], decoded.orientation,
                                            decoded.width, decoded.height)
    except DecodeError as exc:
        photo.error = str(exc)
    except MemoryError:
        photo.error = "out of memory while decoding"
    except Exception as exc:  # a decoder bug on one file must not end a night's run
        photo.error = f"cannot decode: {type(exc).__name__}: {exc}"
    return photo
