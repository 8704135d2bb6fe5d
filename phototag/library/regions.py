"""Face regions people already named, read from XMP (stdlib XML, no exiv2): MWG regions
(digiKam, Lightroom, Picasa via MWG; ``mwg-rs:Name``) and Microsoft People Tagging
(``MPReg:PersonDisplayName``), embedded in the photo or in its sidecar.

Regions apply to the *stored* pixels (MWG 2.0, §5.9): a region is mapped through the EXIF
orientation decoding applied, into the upright photo the index describes. The regions phototag
writes itself (``phototag export --xmp``) carry its mark and are not read back as anyone's word.
"""

import xml.etree.ElementTree as ElementTree

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
MWG = "{http://www.metadataworkinggroup.com/schemas/regions/}"
AREA = "{http://ns.adobe.com/xmp/sType/Area#}"
MP = "{http://ns.microsoft.com/photo/1.2/}"
MPRI = "{http://ns.microsoft.com/photo/1.2/t/RegionInfo#}"
MPREG = "{http://ns.microsoft.com/photo/1.2/t/Region#}"
PHOTOTAG_NS = "https://github.com/phototag/phototag/ns/xmp/1.0/"
PHOTOTAG_MARK = "phototag"  # the mwg-rs:Description of regions phototag writes


def upright_to_stored(x, y, orientation, width, height):
    """A point of the upright photo (``width`` × ``height``) in the stored pixels."""
    return {
        2: (width - x, y),
        3: (width - x, height - y),
        4: (x, height - y),
        5: (y, x),
        6: (y, width - x),
        7: (height - y, width - x),
        8: (height - y, x),
    }.get(orientation, (x, y))


def stored_to_upright(x, y, orientation, width, height):
    """A point of the stored pixels in the upright photo (``width`` × ``height``, upright)."""
    return {
        2: (width - x, y),
        3: (width - x, height - y),
        4: (x, height - y),
        5: (y, x),
        6: (width - y, x),
        7: (width - y, height - x),
        8: (y, height - x),
    }.get(orientation, (x, y))


def stored_size(orientation, width, height):
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _box(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))


def stored_box(box, orientation, width, height):
    """An upright box (x1, y1, x2, y2) as a box of the stored pixels."""
    x1, y1, x2, y2 = box
    return _box(upright_to_stored(x1, y1, orientation, width, height),
                upright_to_stored(x2, y2, orientation, width, height))


def upright_box(box, orientation, width, height):
    """A box of the stored pixels as a box of the upright photo (``width`` × ``height``)."""
    x1, y1, x2, y2 = box
    return _box(stored_to_upright(x1, y1, orientation, width, height),
                stored_to_upright(x2, y2, orientation, width, height))


def _fields(element):
    """An XMP structure's fields, whichever way it is written: attributes, child elements with
    text, or a nested rdf:Description; nested structures come back as dicts."""
    fields = {k: v for k, v in element.attrib.items() if not k.startswith(RDF)}
    for child in element:
        if child.tag == f"{RDF}Description":
            fields.update(_fields(child))
        elif len(child) or any(not k.startswith(RDF) for k in child.attrib):
            fields[child.tag] = _fields(child)
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def _items(root, container):
    """The rdf:li structures of every list under elements named ``container``."""
    for element in root.iter(container):
        for item in element.iter(f"{RDF}li"):
            yield _fields(item)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _mwg(root):
    """(name, (x, y, w, h) normalised to the stored pixels, top-left based) of MWG face regions."""
    for item in _items(root, f"{MWG}RegionList"):
        name = item.get(f"{MWG}Name", "").strip()
        area = item.get(f"{MWG}Area")
        if not name or not isinstance(area, dict) or item.get(f"{MWG}Type", "Face") != "Face":
            continue
        if item.get(f"{MWG}Description", "").startswith(PHOTOTAG_MARK) or any(
                key.startswith("{" + PHOTOTAG_NS) for key in item):
            continue
        x, y, w, h = (_number(area.get(f"{AREA}{k}")) for k in "xywh")
        if None in (x, y, w, h) or area.get(f"{AREA}unit", "normalized") != "normalized":
            continue
        yield name, (x - w / 2, y - h / 2, w, h)


def _microsoft(root, ours):
    for item in _items(root, f"{MPRI}Regions"):
        name = item.get(f"{MPREG}PersonDisplayName", "").strip()
        rectangle = item.get(f"{MPREG}Rectangle", "")
        values = [_number(v) for v in rectangle.split(",")]
        if not name or name == PHOTOTAG_MARK or len(values) != 4 or None in values:
            continue
        if rectangle.strip() in ours:
            continue
        yield name, tuple(values)


def _ours(root):
    """The Microsoft rectangles phototag recorded writing them (its own namespace)."""
    found = set()
    for element in root.iter("{" + PHOTOTAG_NS + "}Regions"):
        found.update((li.text or "").strip() for li in element.iter(f"{RDF}li"))
    return found


def named_regions(packets, orientation, width, height):
    """(name, box in pixels of the upright photo) of every named face region in the XMP
    ``packets`` (bytes each: the photo's own, its sidecar's); the same face named in two
    packets counts once. Damaged XML is skipped: a photo is still a photo."""
    from ..boxes import box_iou

    stored_w, stored_h = stored_size(orientation, width, height)
    found = []
    for packet in packets:
        if not packet:
            continue
        try:
            root = ElementTree.fromstring(packet.strip(b"\0 \t\r\n") if isinstance(packet, bytes)
                                          else packet.strip())
        except ElementTree.ParseError:
            continue
        for name, (x, y, w, h) in [*_mwg(root), *_microsoft(root, _ours(root))]:
            stored = (x * stored_w, y * stored_h, (x + w) * stored_w, (y + h) * stored_h)
            box = tuple(round(v, 2) for v in upright_box(stored, orientation, width, height))
            if not any(n == name and box_iou(b, box) >= 0.5 for n, b in found):
                found.append((name, box))
    return found
