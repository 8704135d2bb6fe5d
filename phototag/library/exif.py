"""Photo metadata from EXIF (exifread): orientation, capture time, camera, GPS position."""

import io
import logging
from dataclasses import dataclass

import exifread

# exifread logs a line for every file without EXIF (PNG, WEBP...): that is not news here.
logging.getLogger("exifread").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Metadata:
    orientation: int = None
    taken_at: str = None
    camera: str = None
    lat: float = None
    lon: float = None


def _first_value(tag):
    values = getattr(tag, "values", None)
    if isinstance(values, (list, tuple)):
        return values[0] if values else None
    return values


def _text(tag):
    if tag is None:
        return None
    value = str(tag.values if isinstance(tag.values, str) else tag).strip().strip("\x00").strip()
    return value or None


def _taken_at(tags):
    for key in ("EXIF DateTimeOriginal", "EXIF DateTimeDigitized", "Image DateTime"):
        raw = _text(tags.get(key))
        if not raw or raw.startswith("0000"):
            continue
        date, _, time = raw.partition(" ")
        parts = date.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        stamp = "-".join(parts) + ("T" + time[:8] if time else "")
        offset = _text(tags.get("EXIF OffsetTimeOriginal"))
        return stamp + offset if offset and key == "EXIF DateTimeOriginal" else stamp
    return None


def _camera(tags):
    make = _text(tags.get("Image Make"))
    model = _text(tags.get("Image Model"))
    if make and model and model.lower().startswith(make.lower()):
        return model
    return " ".join(part for part in (make, model) if part) or None


def _degrees(tag, ref_tag, negative_ref):
    if tag is None:
        return None
    try:
        d, m, s = (float(v.num) / float(v.den) for v in tag.values[:3])
    except (ValueError, ZeroDivisionError, TypeError, AttributeError):
        return None
    value = d + m / 60 + s / 3600
    if _text(ref_tag) and _text(ref_tag).upper().startswith(negative_ref):
        value = -value
    return round(value, 7)


def read_metadata(data):
    """Metadata of an image file's bytes; missing or unreadable fields are None."""
    try:
        tags = exifread.process_file(io.BytesIO(data), details=False)
    except Exception:  # exifread raises many kinds on malformed EXIF; the photo is still fine
        return Metadata()
    orientation = _first_value(tags.get("Image Orientation"))
    lat = _degrees(tags.get("GPS GPSLatitude"), tags.get("GPS GPSLatitudeRef"), "S")
    lon = _degrees(tags.get("GPS GPSLongitude"), tags.get("GPS GPSLongitudeRef"), "W")
    return Metadata(
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        taken_at=_taken_at(tags),
        camera=_camera(tags),
        lat=lat if lon is not None else None,
        lon=lon if lat is not None else None,
    )
