"""Photo metadata from the EXIF Pillow reads while it opens the photo: capture time, camera,
GPS position, and the orientation the file declares.

One reader for every format Pillow opens (JPEG, PNG, WEBP, TIFF, and HEIC/HEIF through
pillow-heif), the same one that decodes the pixels, so the metadata and the pixels never
disagree about a file.
"""

from dataclasses import dataclass

from PIL import ExifTags

ORIENTATION = ExifTags.Base.Orientation
EXIF_IFD = ExifTags.IFD.Exif
GPS_IFD = ExifTags.IFD.GPSInfo


@dataclass(frozen=True)
class Metadata:
    orientation: int = None  # as applied by decoding (decode.py fills it in)
    taken_at: str = None
    camera: str = None
    lat: float = None
    lon: float = None


def _text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip().strip("\x00").strip()
    return value or None


def _taken_at(exif, details):
    for value, is_original in ((details.get(ExifTags.Base.DateTimeOriginal), True),
                               (details.get(ExifTags.Base.DateTimeDigitized), False),
                               (exif.get(ExifTags.Base.DateTime), False)):
        raw = _text(value)
        if not raw or raw.startswith("0000"):
            continue
        date, _, time = raw.partition(" ")
        parts = date.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        stamp = "-".join(parts) + ("T" + time[:8] if time else "")
        offset = _text(details.get(ExifTags.Base.OffsetTimeOriginal))
        return stamp + offset if offset and is_original else stamp
    return None


def _camera(exif):
    make, model = _text(exif.get(ExifTags.Base.Make)), _text(exif.get(ExifTags.Base.Model))
    if make and model and model.lower().startswith(make.lower()):
        return model
    return " ".join(part for part in (make, model) if part) or None


def _degrees(value, ref, negative_ref):
    try:
        d, m, s = (float(v) for v in value[:3])
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if any(v != v for v in (d, m, s)):  # a 0/0 rational reads as NaN
        return None
    result = d + m / 60 + s / 3600
    if (_text(ref) or "").upper().startswith(negative_ref):
        result = -result
    return round(result, 7)


def declared_orientation(exif):
    """The EXIF orientation a file declares (1-8), or None."""
    value = exif.get(ORIENTATION)
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def read_metadata(exif):
    """Metadata from a Pillow ``Image.Exif``; missing or unreadable fields are None.
    The orientation is left to decoding, which knows what it applied."""
    try:
        details = exif.get_ifd(EXIF_IFD)
        gps = exif.get_ifd(GPS_IFD)
    except Exception:  # a damaged EXIF block: the photo is still a photo
        return Metadata()
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "S")
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "W")
    return Metadata(
        taken_at=_taken_at(exif, details),
        camera=_camera(exif),
        lat=lat if lon is not None else None,
        lon=lon if lat is not None else None,
    )
