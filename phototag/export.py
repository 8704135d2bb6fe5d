"""XMP sidecars other photo tools read: face regions (MWG and Microsoft People Tagging) and
emotion/age tags (digiKam, Lightroom, flat dc:subject), written with exiv2 (pyexiv2).

Regions follow the MWG guidelines (2.0, §5.9): they apply to the *stored* pixels, so a face
box in the upright photo is mapped back through the EXIF orientation, and AppliedToDimensions
gives the stored width and height. Photos themselves are never written.
"""

import os
from pathlib import Path

PHOTOTAG_MARK = "phototag"  # mwg-rs:Description of the regions phototag writes
REGIONS = "Xmp.mwg-rs.Regions"
REGION_LIST = f"{REGIONS}/mwg-rs:RegionList"
MP_LIST = "Xmp.MP.RegionInfo/MPRI:Regions"
EMPTY_SIDECAR = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>\n<?xpacket end="w"?>'
)


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


def stored_size(orientation, width, height):
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def stored_box(box, orientation, width, height):
    """An upright box (x1, y1, x2, y2) as a box of the stored pixels."""
    x1, y1, x2, y2 = box
    a = upright_to_stored(x1, y1, orientation, width, height)
    b = upright_to_stored(x2, y2, orientation, width, height)
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))


def sidecar_path(photo_path, adobe_style=False, sidecar_dir=None):
    """``photo.jpg.xmp`` beside the photo (``photo.xmp`` Adobe style), or the same under
    ``sidecar_dir``, mirroring the photo's absolute path."""
    path = Path(photo_path)
    name = (path.stem if adobe_style else path.name) + ".xmp"
    folder = path.parent
    if sidecar_dir:
        folder = Path(sidecar_dir) / folder.relative_to(folder.anchor)
    return folder / name


def _items(xmp, prefix):
    """The structures of an XMP array, from exiv2's flat keys: {index: {field key: value}}."""
    items = {}
    for key, value in xmp.items():
        if key.startswith(prefix + "["):
            index, _, rest = key[len(prefix) + 1:].partition("]")
            items.setdefault(int(index), {})[rest] = value
    return [items[i] for i in sorted(items)]


def _regions(photo):
    width, height = photo["width"], photo["height"]
    orientation = photo.get("orientation") or 1
    sw, sh = stored_size(orientation, width, height)
    regions = []
    for face in photo["faces"]:
        x1, y1, x2, y2 = stored_box((face["x1"], face["y1"], face["x2"], face["y2"]),
                                    orientation, width, height)
        regions.append((x1 / sw, y1 / sh, (x2 - x1) / sw, (y2 - y1) / sh, face))
    return (sw, sh), regions


def _tags(photo):
    tags = []
    for face in photo["faces"]:
        for kind, key in (("emotion", "emotion"), ("age", "age_group")):
            if face.get(key) and (kind, face[key]) not in tags:
                tags.append((kind, face[key]))
    return tags


def _number(value):
    return f"{value:.6f}".rstrip("0").rstrip(".")


def write_sidecar(photo, path):
    """Write (or merge into) the XMP sidecar at ``path`` for one indexed photo."""
    import pyexiv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(EMPTY_SIDECAR, encoding="utf-8")
    image = pyexiv2.Image(str(path))
    try:
        existing = image.read_xmp()
        changes = {}
        # Regions: keep everyone else's, replace ours.
        kept = [item for item in _items(existing, REGION_LIST)
                if item.get("/mwg-rs:Description") != PHOTOTAG_MARK]
        kept_mp = [item for item in _items(existing, MP_LIST)
                   if item.get("/MPReg:PersonDisplayName") != PHOTOTAG_MARK]
        for key in existing:
            if key.startswith(REGION_LIST) or key.startswith(MP_LIST):
                changes[key] = None
        (sw, sh), regions = _regions(photo)
        changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:w"] = str(sw)
        changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:h"] = str(sh)
        changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:unit"] = "pixel"
        changes[REGION_LIST] = 'type="Bag"'
        changes[MP_LIST] = 'type="Bag"'
        for n, item in enumerate(kept, 1):
            for field, value in item.items():
                changes[f"{REGION_LIST}[{n}]{field}"] = value
        for n, item in enumerate(kept_mp, 1):
            for field, value in item.items():
                changes[f"{MP_LIST}[{n}]{field}"] = value
        for n, (x, y, w, h, face) in enumerate(regions, len(kept) + 1):
            base = f"{REGION_LIST}[{n}]"
            changes[f"{base}/mwg-rs:Type"] = "Face"
            changes[f"{base}/mwg-rs:Description"] = PHOTOTAG_MARK
            for name, value in (("x", x + w / 2), ("y", y + h / 2), ("w", w), ("h", h)):
                changes[f"{base}/mwg-rs:Area/stArea:{name}"] = _number(value)
            changes[f"{base}/mwg-rs:Area/stArea:unit"] = "normalized"
        for n, (x, y, w, h, face) in enumerate(regions, len(kept_mp) + 1):
            base = f"{MP_LIST}[{n}]"
            changes[f"{base}/MPReg:Rectangle"] = ", ".join(_number(v) for v in (x, y, w, h))
            changes[f"{base}/MPReg:PersonDisplayName"] = PHOTOTAG_MARK
        # Tags: drop what phototag wrote before, keep the rest, add today's.
        hierarchical = [t for t in _as_list(existing.get("Xmp.lr.hierarchicalSubject"))]
        old_ours = [t for t in hierarchical if t.startswith("phototag|")]
        old_leaves = {t.rsplit("|", 1)[1] for t in old_ours}
        tags = _tags(photo)
        digikam = [t for t in _as_list(existing.get("Xmp.digiKam.TagsList"))
                   if not t.startswith("phototag/")]
        subjects = [t for t in _as_list(existing.get("Xmp.dc.subject")) if t not in old_leaves]
        hierarchical = [t for t in hierarchical if t not in old_ours]
        changes["Xmp.digiKam.TagsList"] = digikam + [f"phototag/{k}/{v}" for k, v in tags]
        changes["Xmp.lr.hierarchicalSubject"] = hierarchical + [f"phototag|{k}|{v}" for k, v in tags]
        changes["Xmp.dc.subject"] = subjects + [v for _, v in tags if v not in subjects]
        image.modify_xmp({k: v for k, v in changes.items() if v is None})
        image.modify_xmp({k: v for k, v in changes.items() if v is not None})
    finally:
        image.close()
    return path


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def export_sidecars(store, roots=None, adobe_style=False, sidecar_dir=None, errors=None):
    """Sidecars for every finished photo with faces (under ``roots`` if given); yields paths.
    A sidecar that cannot be written is added to ``errors`` as (photo path, reason)."""
    from .library.scan import is_under

    roots = [os.path.abspath(r) for r in roots or []]
    for path in store.photo_paths():
        if roots and not is_under(path, roots):
            continue
        photo = store.photo(path)
        try:
            yield write_sidecar(photo, sidecar_path(path, adobe_style, sidecar_dir))
        except (OSError, RuntimeError, UnicodeError) as exc:  # pyexiv2 raises RuntimeError
            if errors is None:
                raise
            errors.append((path, str(exc)))
