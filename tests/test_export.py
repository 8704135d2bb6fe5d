"""XMP sidecars: regions mapped to the stored pixels for every orientation, read back by
exiftool; existing sidecars merged; regions agree with hand-placed ones made by someone else."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from phototag.export import sidecar_path, write_sidecar
from phototag.library.regions import stored_box
from phototag.library.decode import decode_bytes
from phototag.store import Face, Writer, PhotoRecord, Reader

from conftest import PHOTOS, db_rows, index_in_process, needs_shared, needs_tool

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = needs_tool(EXIFTOOL, "needs exiftool (Debian libimage-exiftool-perl)")


def exiftool(path, *tags):
    out = subprocess.run([EXIFTOOL, "-j", "-struct", *tags, str(path)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]


def stored_photo(tmp_path, orientation, rect=(30, 10, 50, 24), size=(80, 60)):
    """A JPEG whose *stored* pixels have a white rectangle at ``rect``, tagged ``orientation``."""
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    x1, y1, x2, y2 = rect
    pixels[y1:y2, x1:x2] = 255
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    image.save(path, quality=98, exif=exif)
    return path


def bright_box(pixels):
    ys, xs = np.nonzero(pixels[..., 0] > 128)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_boxes_map_back_to_the_stored_pixels(tmp_path, orientation):
    path = stored_photo(tmp_path, orientation)
    upright, width, height, _ = decode_bytes(path.read_bytes(), None)[:4]
    box = bright_box(upright)  # where the rectangle is once the photo is upright
    assert np.allclose(stored_box(box, orientation, width, height), (30, 10, 50, 24), atol=1)


def photo_row(path, orientation, width, height, box):
    return {
        "path": str(path), "width": width, "height": height, "orientation": orientation,
        "faces": [{"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                   "emotion": "smile", "emotion_score": 0.87, "age_group": "child", "age_score": 0.64}],
    }


@needs_exiftool
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exiftool_reads_back_regions_and_tags_for_every_orientation(tmp_path, orientation):
    path = stored_photo(tmp_path, orientation)
    upright, width, height, _ = decode_bytes(path.read_bytes(), None)[:4]
    sidecar = write_sidecar(photo_row(path, orientation, width, height, bright_box(upright)),
                            sidecar_path(path))
    assert sidecar.name == f"o{orientation}.jpg.xmp"
    info = exiftool(sidecar)
    dims = info["RegionInfo"]["AppliedToDimensions"]
    assert (dims["W"], dims["H"]) == (80, 60)  # the stored size, whatever the orientation
    (region,) = info["RegionInfo"]["RegionList"]
    area = region["Area"]
    assert region["Type"] == "Face"
    assert np.allclose([area["X"] * 80, area["Y"] * 60, area["W"] * 80, area["H"] * 60],
                       [40, 17, 20, 14], atol=1)
    rect = [float(v) for v in info["RegionInfoMP"]["Regions"][0]["Rectangle"].split(",")]
    assert np.allclose([rect[0] * 80, rect[1] * 60, rect[2] * 80, rect[3] * 60], [30, 10, 20, 14], atol=1)
    # each region carries its own face's tags, which exiftool shows face by face
    assert region["Description"] == "phototag: smile 0.87, child 0.64"
    assert (region["Emotion"], region["EmotionScore"], region["AgeGroup"], region["AgeScore"]) == (
        "smile", 0.87, "child", 0.64)
    assert info["TagsList"] == ["phototag/emotion/smile", "phototag/age/child"]
    assert info["HierarchicalSubject"] == ["phototag|emotion|smile", "phototag|age|child"]
    assert "Subject" not in info  # no bare words of phototag's among the person's keywords


@needs_exiftool
def test_an_existing_sidecar_keeps_its_fields_and_reexport_does_not_duplicate(tmp_path):
    path = stored_photo(tmp_path, 1)
    original = path.read_bytes()
    sidecar = sidecar_path(path)
    subprocess.run([EXIFTOOL, "-q", "-XMP:Rating=4", "-XMP:Subject=holiday",
                    "-XMP-lr:HierarchicalSubject=places|Paris", "-o", str(sidecar), str(path)], check=True)
    row = photo_row(path, 1, 80, 60, (30, 10, 50, 24))
    write_sidecar(row, sidecar)
    row["faces"][0]["emotion"] = "surprise"
    write_sidecar(row, sidecar)
    info = exiftool(sidecar)
    assert info["Rating"] == 4
    assert info["Subject"] in ("holiday", ["holiday"])  # exiftool gives a list of one as either
    assert info["HierarchicalSubject"] == ["places|Paris", "phototag|emotion|surprise", "phototag|age|child"]
    assert len(info["RegionInfo"]["RegionList"]) == 1
    assert path.read_bytes() == original  # the photo itself is never written


def test_sidecar_names_and_folders(tmp_path):
    assert sidecar_path("/p/a/IMG_1.JPG") == sidecar_path("/p/a/IMG_1.JPG", False, None)
    assert str(sidecar_path("/p/a/IMG_1.JPG")) == "/p/a/IMG_1.JPG.xmp"
    assert str(sidecar_path("/p/a/IMG_1.JPG", adobe_style=True)) == "/p/a/IMG_1.xmp"
    assert str(sidecar_path("/p/a/IMG_1.JPG", sidecar_dir=tmp_path)) == f"{tmp_path}/p/a/IMG_1.JPG.xmp"


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def corners(region):
    area = region["Area"]
    return (area["X"] - area["W"] / 2, area["Y"] - area["H"] / 2,
            area["X"] + area["W"] / 2, area["Y"] + area["H"] / 2)


@needs_shared
@needs_exiftool
def test_regions_overlap_the_hand_placed_ones_of_every_oriented_variant(tmp_path):
    from click.testing import CliRunner

    from phototag.cli import main

    folder = PHOTOS / "mwg_regions"
    variants = [folder / "photo.jpg"] + sorted(folder.glob("photo.*.embedded*.jpg"))
    db = tmp_path / "index.db"
    index_in_process(db, variants)
    result = CliRunner().invoke(main, ["export", "--xmp", "--db", str(db), "--sidecar-dir",
                                       str(tmp_path / "xmp"), str(folder)])
    assert result.exit_code == 0, result.output
    for variant in variants:
        theirs = exiftool(variant, "-XMP-mwg-rs:RegionInfo")["RegionInfo"]["RegionList"]
        ours = exiftool(sidecar_path(variant, sidecar_dir=tmp_path / "xmp"))["RegionInfo"]["RegionList"]
        assert len(theirs) == 2
        for region in theirs:
            best = max(iou(corners(region), corners(mine)) for mine in ours)
            assert best >= 0.5, (variant.name, region["Name"], best)
    assert not list(folder.glob("*.jpg.xmp.tmp*"))


def test_export_writes_nothing_beside_photos_when_given_a_sidecar_dir(tmp_path):
    store = Writer(tmp_path / "index.db")
    photo = tmp_path / "lib" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"x")
    store.write_photos([PhotoRecord(str(photo), 1, 1, "done", width=80, height=60, orientation=1,
                                    faces=[Face((1, 1, 20, 20), 0.9, [[5, 5]] * 5)])])
    store.close()
    from phototag.export import export_sidecars

    reader = Reader(tmp_path / "index.db")
    written = list(export_sidecars(reader, [tmp_path / "lib"], sidecar_dir=tmp_path / "xmp"))
    reader.close()
    assert [p.name for p, _ in written] == ["a.jpg.xmp"]
    assert sorted(p.name for p in photo.parent.iterdir()) == ["a.jpg"]


@needs_shared
def test_an_orientation_only_in_the_sidecar_is_honoured_and_shown(tmp_path):
    from click.testing import CliRunner

    from phototag.cli import main

    folder = PHOTOS / "mwg_regions"
    variants = sorted(folder.glob("photo.*.sidecar.jpg"))
    assert len(variants) == 3
    lonely = tmp_path / "photo.6.sidecar.jpg"  # the same file without its sidecar
    shutil.copy(folder / "photo.6.sidecar.jpg", lonely)
    db = tmp_path / "index.db"
    index_in_process(db, [folder / "photo.jpg", *variants, lonely])
    rows = {p: (o, s) for p, o, s in db_rows(db, "SELECT path, orientation, orientation_source FROM photos")}
    upright = np.array(db_rows(db, "SELECT x1, y1, x2, y2 FROM faces JOIN photos ON photos.id = photo_id "
                                   "WHERE path = ? ORDER BY x1", (str(folder / "photo.jpg"),)))
    for variant in variants:
        orientation = int(variant.name.split(".")[1])
        assert rows[str(variant)] == (orientation, "sidecar")
        boxes = np.array(db_rows(db, "SELECT x1, y1, x2, y2 FROM faces JOIN photos ON photos.id = photo_id "
                                     "WHERE path = ? ORDER BY x1", (str(variant),)))
        assert boxes.shape == upright.shape and np.abs(boxes - upright).max() <= 3, variant.name
    assert rows[str(lonely)] == (1, None)  # nothing applied
    shown = CliRunner().invoke(main, ["show", str(folder / "photo.6.sidecar.jpg"), "--db", str(db)]).output
    assert "6 (from its XMP sidecar" in shown


@needs_exiftool
def test_sidecars_respect_what_people_wrote(tmp_path):
    path = stored_photo(tmp_path, 1)
    sidecar = sidecar_path(path)
    # A person tagged in digiKam (a named region on the face) and keywords written by hand,
    # two of them words phototag uses too.
    subprocess.run([EXIFTOOL, "-q", "-XMP:Subject=holiday", "-XMP:Subject=smile", "-XMP:Subject=child",
                    "-XMP-mwg-rs:RegionAppliedToDimensionsW=80", "-XMP-mwg-rs:RegionAppliedToDimensionsH=60",
                    "-XMP-mwg-rs:RegionAppliedToDimensionsUnit=pixel",
                    "-XMP-mwg-rs:RegionList={Name=Marie,Type=Face,Area={X=0.5,Y=0.283,W=0.25,H=0.233,Unit=normalized}}",
                    "-o", str(sidecar), str(path)], check=True)
    row = photo_row(path, 1, 80, 60, (30, 10, 50, 24))  # the face Marie's region already marks
    row["faces"].append({"x1": 2, "y1": 30, "x2": 20, "y2": 55, "emotion": "sad", "age_group": "senior"})
    write_sidecar(row, sidecar)
    first = sidecar.read_bytes()
    write_sidecar(row, sidecar)
    assert sidecar.read_bytes() == first  # two exports in a row change nothing more
    info = exiftool(sidecar)
    regions = info["RegionInfo"]["RegionList"]
    assert [r.get("Name") for r in regions] == ["Marie", None]  # no second region on Marie
    assert "phototag" not in json.dumps(info.get("RegionInfoMP", {}))  # no person called phototag
    assert len(info["RegionInfoMP"]["Regions"]) == 1
    assert set(info["Subject"]) == {"holiday", "smile", "child"}  # theirs, and only theirs
    # Later the faces are tagged otherwise: what phototag added goes, what people wrote stays.
    row["faces"] = row["faces"][:1]
    row["faces"][0].update(emotion="surprise", age_group="ten-twenty")
    write_sidecar(row, sidecar)
    info = exiftool(sidecar)
    assert set(info["Subject"]) == {"holiday", "smile", "child"}
    assert info["HierarchicalSubject"] == ["phototag|emotion|surprise", "phototag|age|ten-twenty"]
    # Re-indexed down to no face: phototag's regions and tags leave the sidecar, Marie stays.
    row["faces"] = []
    write_sidecar(row, sidecar)
    info = exiftool(sidecar)
    assert set(info["Subject"]) == {"holiday", "smile", "child"}
    assert "HierarchicalSubject" not in info and "TagsList" not in info
    assert [r.get("Name") for r in info["RegionInfo"]["RegionList"]] == ["Marie"]


@needs_shared
@needs_exiftool
def test_export_of_a_photo_whose_name_is_not_utf8_and_of_one_now_without_faces(tmp_path):
    import os

    from click.testing import CliRunner

    from phototag.cli import main

    library = tmp_path / "lib"
    library.mkdir()
    strange = os.path.join(os.fsencode(library), b"caf\xe9.jpg")
    shutil.copy(PHOTOS / "people" / "ultralight__8.jpg", strange)
    shutil.copy(PHOTOS / "people" / "ultralight__5.jpg", library / "later-empty.jpg")
    db = tmp_path / "index.db"
    index_in_process(db, [library])
    result = CliRunner().invoke(main, ["export", "--xmp", "--db", str(db), str(library)])
    assert result.exit_code == 0 and "2 sidecars written" in result.output, result.output
    assert os.path.exists(strange + b".xmp")
    # The second photo is replaced by a faceless one and indexed again.
    shutil.copy(PHOTOS / "exif" / "orientation_landscape_1.jpg", library / "later-empty.jpg")
    index_in_process(db, [library])
    result = CliRunner().invoke(main, ["export", "--xmp", "--db", str(db), str(library)])
    assert result.exit_code == 0, result.output
    info = exiftool(library / "later-empty.jpg.xmp")
    assert "RegionInfo" not in info and "TagsList" not in info and "HierarchicalSubject" not in info


@needs_exiftool
def test_a_sidecar_phototag_has_nothing_to_add_to_is_left_untouched(tmp_path):
    """A digiKam sidecar holding only a rating, for a photo without faces; and a second export
    of a photo with faces: neither file is written again."""
    import os

    path = stored_photo(tmp_path, 1)
    sidecar = sidecar_path(path)
    subprocess.run([EXIFTOOL, "-q", "-XMP:Rating=4", "-o", str(sidecar), str(path)], check=True)
    before, stamp = sidecar.read_bytes(), os.stat(sidecar).st_mtime_ns
    assert write_sidecar({**photo_row(path, 1, 80, 60, (30, 10, 50, 24)), "faces": []}, sidecar) is None
    assert sidecar.read_bytes() == before and os.stat(sidecar).st_mtime_ns == stamp

    other = sidecar_path(stored_photo(tmp_path, 3))
    row = photo_row(other, 3, 80, 60, (30, 10, 50, 24))
    assert write_sidecar(row, other) == other
    stamp = os.stat(other).st_mtime_ns
    assert write_sidecar(row, other) is None and os.stat(other).st_mtime_ns == stamp
    row["faces"][0]["emotion_score"] = 0.9  # a new score is new content
    assert write_sidecar(row, other) == other


@needs_exiftool
def test_named_people_go_into_their_regions_and_people_keywords(tmp_path):
    path = stored_photo(tmp_path, 6)
    row = photo_row(path, 6, 60, 80, (10, 30, 24, 50))
    row["faces"][0].update(person="Anna Smith", person_by="machine")
    row["faces"].append({"x1": 30, "y1": 40, "x2": 50, "y2": 70, "emotion": "sad", "emotion_score": 0.7,
                         "age_group": "senior", "age_score": 0.8, "person": "Ben", "person_by": "user"})
    sidecar = write_sidecar(row, sidecar_path(path))
    info = exiftool(sidecar)
    assert [r["Name"] for r in info["RegionInfo"]["RegionList"]] == ["Anna Smith", "Ben"]
    assert [r["PersonDisplayName"] for r in info["RegionInfoMP"]["Regions"]] == ["Anna Smith", "Ben"]
    assert "People/Anna Smith" in info["TagsList"] and "People|Ben" in info["HierarchicalSubject"]
    # only the names a person gave those very faces
    info = exiftool(write_sidecar(row, tmp_path / "confirmed.xmp", confirmed_only=True))
    assert [r.get("Name") for r in info["RegionInfo"]["RegionList"]] == [None, "Ben"]
    assert "People/Anna Smith" not in info["TagsList"] and "People/Ben" in info["TagsList"]
