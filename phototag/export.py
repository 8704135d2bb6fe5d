"""XMP sidecars other photo tools read: face regions (MWG and Microsoft People Tagging) and
emotion/age tags (digiKam, Lightroom, flat dc:subject), written with exiv2 (pyexiv2).

Regions follow the MWG guidelines (2.0, §5.9): they apply to the *stored* pixels, so a face
box in the upright photo is mapped back through the EXIF orientation, and AppliedToDimensions
gives the stored width and height. Photos themselves are never written.
"""

import os
from pathlib import Path

from .boxes import box_iou
from .files import write_atomically
from .library.regions import PHOTOTAG_MARK, stored_box, stored_size
from .library.regions import PHOTOTAG_NS as NAMESPACE

# phototag's own XMP namespace (NAMESPACE): what it added to a sidecar, so that it removes only
# that; PHOTOTAG_MARK: the mwg-rs:Description of the regions phototag writes.
OUR_KEYWORDS = "Xmp.phototag.Keywords"  # "<XMP key>\t<keyword>" for each keyword phototag added
OUR_RECTANGLES = "Xmp.phototag.Regions"  # the Microsoft region rectangles phototag wrote
REGIONS = "Xmp.mwg-rs.Regions"
REGION_LIST = f"{REGIONS}/mwg-rs:RegionList"
MP_LIST = "Xmp.MP.RegionInfo/MPRI:Regions"
EMPTY_SIDECAR = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>\n<?xpacket end="w"?>'
)


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


def _keywords(photo, confirmed_only=False):
    """The photo's hierarchical keywords: (digiKam's TagsList, Lightroom's hierarchicalSubject).
    phototag's tags under phototag/…, the people named in it under People/…"""
    paths = []
    for face in photo["faces"]:
        for kind, key in (("emotion", "emotion"), ("age", "age_group")):
            if face.get(key) and ("phototag", kind, face[key]) not in paths:
                paths.append(("phototag", kind, face[key]))
    for name in _named(photo, confirmed_only):
        if ("People", name) not in paths:
            paths.append(("People", name))
    return ["/".join(p) for p in paths], ["|".join(p) for p in paths]


def _named(photo, confirmed_only=False):
    """The names of the people in the photo, face by face order."""
    return [face["person"] for face in photo["faces"] if _name_of(face, confirmed_only)]


def _name_of(face, confirmed_only=False):
    """A face's person's name, where there is one to write (``confirmed_only``: only where the
    user or a face region said so, not where the machine placed the face)."""
    if not face.get("person"):
        return None
    if confirmed_only and face.get("person_by") not in ("user", "xmp"):
        return None
    return face["person"]


def _description(face):
    """A face region's description: phototag's mark, then what it says of this face."""
    if face.get("too_small") and not face.get("emotion"):
        return f"{PHOTOTAG_MARK}: too small to read"
    said = [f"{face[key]} {face[score]:.2f}" for key, score in (("emotion", "emotion_score"),
                                                                 ("age_group", "age_score"))
            if face.get(key) and face.get(score) is not None]
    return f"{PHOTOTAG_MARK}: {', '.join(said)}" if said else PHOTOTAG_MARK


def _number(value):
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _corners(rectangle):
    """(x, y, w, h) → (x1, y1, x2, y2)."""
    x, y, w, h = rectangle
    return x, y, x + w, y + h


def _mwg_rectangle(item):
    """(x, y, w, h), top-left based, of an MWG region item, or None."""
    try:
        w, h = float(item["/mwg-rs:Area/stArea:w"]), float(item["/mwg-rs:Area/stArea:h"])
        x, y = float(item["/mwg-rs:Area/stArea:x"]) - w / 2, float(item["/mwg-rs:Area/stArea:y"]) - h / 2
    except (KeyError, ValueError):
        return None
    return x, y, w, h


def _mp_rectangle(item):
    try:
        values = [float(v) for v in item["/MPReg:Rectangle"].split(",")]
    except (KeyError, ValueError):
        return None
    return tuple(values) if len(values) == 4 else None


def _array(current, key):
    """The items of an XMP array, as exiv2 gives them (a list, or numbered keys)."""
    value = current.get(key)
    if isinstance(value, (list, tuple)):
        return list(value)
    numbered = [(int(k[len(key) + 1:-1]), v) for k, v in current.items()
                if k.startswith(key + "[") and k.endswith("]") and k[len(key) + 1:-1].isdigit()]
    if numbered:
        return [v for _, v in sorted(numbered)]
    return [] if value is None or value.startswith("type=") else [value]


# The XMP type of every list phototag writes: keywords are unordered (Bag), digiKam's TagsList
# is a Seq, as digiKam writes it.
ARRAYS = {"Xmp.digiKam.TagsList": "Seq", "Xmp.lr.hierarchicalSubject": "Bag",
          "Xmp.dc.subject": "Bag", OUR_KEYWORDS: "Bag", OUR_RECTANGLES: "Bag"}


def _set_array(changes, key, values):
    if values:
        changes[key] = f'type="{ARRAYS[key]}"'
        for n, value in enumerate(values, 1):
            changes[f"{key}[{n}]"] = value


def sidecar_xmp(existing, photo, confirmed_only=False):
    """The sidecar's new content, from its current content (bytes) and one indexed photo; None
    when nothing would change (then the file is left as it is).

    What phototag wrote before is replaced, and only that: its regions carry its mark (MWG) or
    a rectangle it recorded (Microsoft), and the keywords it added are recorded in its own
    namespace (``Xmp.phototag.Keywords``), so a keyword a person wrote (even one phototag also
    uses) is never removed. Each of phototag's regions carries its face's emotion and age (in
    its description, and as phototag:Emotion, EmotionScore, AgeGroup, AgeScore) and the name of
    its person where the face has a named one (``confirmed_only``: only names the user or a
    face region gave that face). A face that already has someone else's region (a person tagged
    in digiKam or Lightroom) gets no second region on top of it. A photo now without faces
    keeps nothing of phototag's.
    """
    import pyexiv2

    pyexiv2.registerNs(NAMESPACE, "phototag")
    with pyexiv2.ImageData(existing) as image:
        current = image.read_xmp()
        ours_mp = set(_array(current, OUR_RECTANGLES))
        ours_keywords = set(_array(current, OUR_KEYWORDS))
        theirs = [item for item in _items(current, REGION_LIST)
                  if not item.get("/mwg-rs:Description", "").startswith(PHOTOTAG_MARK)]
        theirs_mp = [item for item in _items(current, MP_LIST)
                     if item.get("/MPReg:Rectangle") not in ours_mp
                     and item.get("/MPReg:PersonDisplayName") != PHOTOTAG_MARK]  # older phototag
        (sw, sh), regions = _regions(photo)
        occupied = [r for r in map(_mwg_rectangle, theirs) if r] + \
                   [r for r in map(_mp_rectangle, theirs_mp) if r]
        regions = [r for r in regions if all(box_iou(_corners(r[:4]), _corners(other)) < 0.5
                                             for other in occupied)]
        removals = [key for key in current if key.startswith((REGIONS, "Xmp.MP.RegionInfo"))]
        changes = {}
        if theirs or theirs_mp or regions:
            changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:w"] = str(sw)
            changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:h"] = str(sh)
            changes[f"{REGIONS}/mwg-rs:AppliedToDimensions/stDim:unit"] = "pixel"
            changes[REGION_LIST] = 'type="Bag"'
            changes[MP_LIST] = 'type="Bag"'
        for n, item in enumerate(theirs, 1):
            for field, value in item.items():
                changes[f"{REGION_LIST}[{n}]{field}"] = value
        for n, item in enumerate(theirs_mp, 1):
            for field, value in item.items():
                changes[f"{MP_LIST}[{n}]{field}"] = value
        rectangles = []
        for n, (x, y, w, h, face) in enumerate(regions, len(theirs) + 1):
            base = f"{REGION_LIST}[{n}]"
            changes[f"{base}/mwg-rs:Type"] = "Face"
            name = _name_of(face, confirmed_only)
            if name:
                changes[f"{base}/mwg-rs:Name"] = name
            changes[f"{base}/mwg-rs:Description"] = _description(face)
            for name_, value in (("x", x + w / 2), ("y", y + h / 2), ("w", w), ("h", h)):
                changes[f"{base}/mwg-rs:Area/stArea:{name_}"] = _number(value)
            changes[f"{base}/mwg-rs:Area/stArea:unit"] = "normalized"
            for field, key in (("Emotion", "emotion"), ("EmotionScore", "emotion_score"),
                               ("AgeGroup", "age_group"), ("AgeScore", "age_score")):
                if face.get(key) is not None:
                    value = face[key]
                    changes[f"{base}/phototag:{field}"] = value if isinstance(value, str) else _number(value)
        for n, (x, y, w, h, face) in enumerate(regions, len(theirs_mp) + 1):
            rectangle = ", ".join(_number(v) for v in (x, y, w, h))
            changes[f"{MP_LIST}[{n}]/MPReg:Rectangle"] = rectangle
            name = _name_of(face, confirmed_only)
            if name:
                changes[f"{MP_LIST}[{n}]/MPReg:PersonDisplayName"] = name
            rectangles.append(rectangle)
        # Keywords: what phototag added before goes, what people wrote stays, today's come in.
        # Only hierarchical ones: a bare word of phototag's in dc:subject would mix with the
        # person's own keywords.
        tags_list, hierarchical = _keywords(photo, confirmed_only)
        keywords = {"Xmp.digiKam.TagsList": tags_list, "Xmp.lr.hierarchicalSubject": hierarchical,
                    "Xmp.dc.subject": []}
        added = []
        for key, wanted in keywords.items():
            present = _array(current, key)
            kept = [t for t in present if not _ours(key, t, ours_keywords, current)]
            new = [t for t in wanted if t not in kept]
            added += [f"{key}\t{t}" for t in new]
            if kept + new == present:
                continue  # left as it is: exiv2 cannot always rewrite a list it has read
            removals += [k for k in current if k == key or k.startswith(key + "[")]
            if key == "Xmp.dc.subject":
                # Only ever to take out words an older phototag added. exiv2 will not erase
                # dc:subject once read; a list replaces it (as a Seq, its type then).
                changes[key] = kept + new
            else:
                _set_array(changes, key, kept + new)
        removals += [k for k in current if k.startswith((OUR_KEYWORDS, OUR_RECTANGLES))]
        _set_array(changes, OUR_KEYWORDS, added)
        _set_array(changes, OUR_RECTANGLES, rectangles)
        image.modify_xmp({key: None for key in removals})
        image.modify_xmp(changes)
        if not image.read_xmp():  # exiv2 leaves the old packet when nothing is left in it
            content = EMPTY_SIDECAR.encode("utf-8")
        else:
            content = image.get_bytes()
    # Compared as read back from bytes: exiv2 describes arrays and structures it has just made
    # in other words than the same ones read from a file.
    return None if _read(content) == _read(existing) else content


def _read(content):
    import pyexiv2

    with pyexiv2.ImageData(content) as image:
        return image.read_xmp()


def _ours(key, keyword, ours, current):
    """Whether phototag added this keyword. Sidecars from before phototag recorded what it
    added: its own hierarchical tags (phototag/..., phototag|...) are unmistakably its."""
    if OUR_KEYWORDS in current or any(k.startswith(OUR_KEYWORDS + "[") for k in current):
        return f"{key}\t{keyword}" in ours
    return key != "Xmp.dc.subject" and keyword.startswith(("phototag/", "phototag|"))


def write_sidecar(photo, path, confirmed_only=False):
    """Write (or merge into) the XMP sidecar at ``path`` for one indexed photo, atomically;
    returns the path, or None where the sidecar already says all of it (left untouched).
    Paths are handled by Python, not exiv2, so a name that is not UTF-8 works too."""
    path = Path(path)
    existing = path.read_bytes() if path.exists() else EMPTY_SIDECAR.encode("utf-8")
    content = sidecar_xmp(existing, photo, confirmed_only)
    if content is None:
        return None
    return write_atomically(path, content)


def export_sidecars(store, roots=None, adobe_style=False, sidecar_dir=None, errors=None,
                    confirmed_only=False):
    """Sidecars for every finished photo with faces (under ``roots`` if given), and for a photo
    now without faces whose sidecar holds what phototag wrote before (it is taken out); yields
    (sidecar path, whether it was written: False where it already said all of it). A sidecar
    that cannot be written is added to ``errors`` as (photo path, reason)."""
    from .library.scan import is_under

    roots = [os.path.abspath(r) for r in roots or []]
    for path, faces in store.finished_photos():
        if roots and not is_under(path, roots):
            continue
        target = sidecar_path(path, adobe_style, sidecar_dir)
        if not faces and not os.path.exists(target):
            continue
        photo = store.photo(path)
        try:
            yield target, write_sidecar(photo, target, confirmed_only) is not None
        except (OSError, RuntimeError, UnicodeError) as exc:  # pyexiv2 raises RuntimeError
            if errors is None:
                raise
            errors.append((path, str(exc)))
