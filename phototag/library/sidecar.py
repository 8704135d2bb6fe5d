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


def read_sidecar(path):
    """(content, modification time in ns) of the first sidecar of ``path`` that can be read,
    or (None, None)."""
    for candidate in sidecars_of(path):
        if not os.path.isfile(candidate):  # the usual case: a stat, not a failed open
            continue
        try:
            with open(candidate, "rb") as f:
                return f.read(), os.fstat(f.fileno()).st_mtime_ns
        except OSError:  # unreadable: the photo is still a photo
            continue
    return None, None


def orientation_in(content):
    """The EXIF orientation (1-8) an XMP packet gives, or None."""
    if not content:
        return None
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        value = element.get(TIFF_ORIENTATION)
        if value is None and element.tag == TIFF_ORIENTATION:
            value = element.text
        if value is not None and value.strip().isdigit() and 1 <= int(value) <= 8:
            return int(value)
    return None
