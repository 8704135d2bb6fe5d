"""What an XMP sidecar beside a photo says about it (read-only; stdlib XML).

Some tools (digiKam's "sidecar only" mode) write a photo's orientation only into its sidecar.
"""

import os
import xml.etree.ElementTree as ElementTree

TIFF_ORIENTATION = "{http://ns.adobe.com/tiff/1.0/}Orientation"


def sidecars_of(path):
    """Candidate sidecars, in the order tools prefer them: photo.jpg.xmp, then photo.xmp."""
    stem = os.path.splitext(path)[0]
    return [f"{path}.xmp", f"{path}.XMP", f"{stem}.xmp", f"{stem}.XMP"]


def sidecar_orientation(path):
    """The EXIF orientation (1-8) a sidecar of ``path`` gives, and that sidecar; or (None, None)."""
    for candidate in sidecars_of(path):
        if not os.path.isfile(candidate):
            continue
        try:
            root = ElementTree.parse(candidate).getroot()
        except (ElementTree.ParseError, OSError):
            continue
        for element in root.iter():
            value = element.get(TIFF_ORIENTATION)
            if value is None and element.tag == TIFF_ORIENTATION:
                value = element.text
            if value is not None and value.strip().isdigit() and 1 <= int(value) <= 8:
                return int(value), candidate
        return None, None
    return None, None
