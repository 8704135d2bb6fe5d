"""Real photos through a whole index run: orientation, metadata, formats."""

import json

import numpy as np

from phototag.library.formats import wanted_extensions

from conftest import PHOTOS, db_rows, index_in_process, needs_shared

pytestmark = needs_shared


def faces_of(db_path, path):
    return np.array(
        db_rows(
            db_path,
            "SELECT x1, y1, x2, y2 FROM faces JOIN photos ON photos.id = faces.photo_id "
            "WHERE path = ? ORDER BY idx",
            (str(path),),
        )
    )


def test_every_orientation_variant_gives_the_upright_boxes(tmp_path):
    db = tmp_path / "index.db"
    original = PHOTOS / "people" / "ultralight__10.jpg"
    variants = sorted((PHOTOS / "derived").glob("ultralight_10__orient*.jpg"))
    assert variants
    summary = index_in_process(db, [original, *variants])
    assert summary.errors == 0
    upright = faces_of(db, original)
    reference = json.loads((PHOTOS / "reference_detections.json").read_text())
    expected = next(item for item in reference["images"] if item["file"] == "people/ultralight__10.jpg")
    assert len(upright) == sum(face["score"] >= 0.6 for face in expected["faces"])
    for variant in variants:
        boxes = faces_of(db, variant)
        assert len(boxes) == len(upright), variant.name
        for box in upright:
            nearest = np.abs(boxes - box).max(axis=1).min()
            assert nearest <= 2.0, f"{variant.name}: no box within 2 px of {box} ({nearest:.2f})"
        width, height, orientation = db_rows(
            db, "SELECT width, height, orientation FROM photos WHERE path = ?", (str(variant),)
        )[0]
        assert (width, height) == (1024, 715)
        assert orientation == int(variant.stem[-1])


def test_metadata_from_camera_and_phone_files(tmp_path):
    db = tmp_path / "index.db"
    index_in_process(db, [PHOTOS / "exif"])
    rows = {
        path.rsplit("/", 1)[1]: rest
        for path, *rest in db_rows(
            db, "SELECT path, taken_at, camera, lat, lon, orientation, width, height, status "
                "FROM photos"
        )
    }
    assert len(rows) == len([p for p in (PHOTOS / "exif").iterdir() if p.suffix.lower() in wanted_extensions()])
    assert all(row[-1] == "done" for row in rows.values())
    nikon = rows["gps_DSCN0010.jpg"]
    assert nikon[:2] == ["2008-10-22T16:28:39", "NIKON COOLPIX P6000"]
    assert abs(nikon[2] - 43.46745) < 1e-4 and abs(nikon[3] - 11.88513) < 1e-4
    iphone = rows["phone_gps_iphone6_hdr_YES.jpg"]
    assert iphone[:2] == ["2015-04-10T20:12:23", "Apple iPhone 6"]
    assert abs(iphone[2] - 40.44697) < 1e-4 and iphone[3] < 0  # west of Greenwich: Madrid
    canon = rows["camera_orient6_canon_hdr_YES.jpg"]
    assert canon[1] == "Canon PowerShot SX60 HS" and canon[4] == 6
    assert (canon[5], canon[6]) == (1536, 2048)  # stored 2048×1536, upright portrait
    heic = rows["heic_iphone11_gps_IMG_5195.HEIC"]
    assert heic[:2] == ["2021-04-11T15:47:53-05:00", "Apple iPhone 11 Pro Max"]
    assert abs(heic[2] - 39.05134) < 1e-4 and heic[3] < -94
    # pillow-heif delivers HEIC upright: its orientation tag must not be applied a second time.
    heic13 = rows["heic_iphone_13_pro_max.HEIC"]
    assert heic13[4] == 6 and (heic13[5], heic13[6]) == (3024, 4032)
    for name in ("orientation_landscape_%d.jpg", "orientation_portrait_%d.jpg"):
        sizes = {rows[name % k][5:7] == rows[name % 1][5:7] for k in range(1, 9)}
        assert sizes == {True}, name


def test_every_format_gives_the_faces_of_its_jpeg_original(tmp_path):
    db = tmp_path / "index.db"
    derived = PHOTOS / "derived"
    summary = index_in_process(
        db,
        [
            PHOTOS / "people" / "ultralight__11.jpg", derived / "ultralight_11__heic.heic",
            derived / "ultralight_11__rgba.png", PHOTOS / "people" / "ultralight__19.jpg",
            derived / "ultralight_19__gray.jpg", PHOTOS / "people" / "ultralight__21.jpg",
            derived / "ultralight_21__webp.webp",
        ],
    )
    assert summary.errors == 0 and summary.processed == 7
    counts = dict(db_rows(db, "SELECT path, n_faces FROM photos"))
    for original, variant in (
        ("people/ultralight__11.jpg", "derived/ultralight_11__heic.heic"),
        ("people/ultralight__11.jpg", "derived/ultralight_11__rgba.png"),
        ("people/ultralight__19.jpg", "derived/ultralight_19__gray.jpg"),
        ("people/ultralight__21.jpg", "derived/ultralight_21__webp.webp"),
    ):
        n = counts[str(PHOTOS / original)]
        assert n > 0
        assert abs(counts[str(PHOTOS / variant)] - n) <= max(1, n // 10), variant


def test_large_photos_are_detected_at_working_size_and_stored_at_full_size(tmp_path):
    db = tmp_path / "index.db"
    photo = PHOTOS / "people" / "s3fd__test2.jpg"  # 3000 × 1412
    index_in_process(db, [photo], max_size=1024)
    (width, height), = db_rows(db, "SELECT width, height FROM photos")
    assert (width, height) == (3000, 1412)
    boxes = faces_of(db, photo)
    assert len(boxes) > 0
    assert boxes[:, 2].max() > 1024  # coordinates are full-resolution, not working size
    assert (boxes[:, 2] <= 3000).all() and (boxes[:, 3] <= 1412).all()


def test_decode_uses_jpeg_draft_mode_for_big_photos():
    from phototag.library.decode import decode_bytes

    data = (PHOTOS / "exif" / "phone_gps_iphone6_hdr_YES.jpg").read_bytes()
    pixels, width, height, _ = decode_bytes(data, 800)[:4]
    assert (width, height) == (3264, 2448)
    assert max(pixels.shape[:2]) == 800 and pixels.dtype == np.uint8


def test_min_face_and_max_faces_keep_the_largest(tmp_path):
    crowd = PHOTOS / "people" / "wider_val__0_Parade_marchingband_1_765.jpg"
    index_in_process(tmp_path / "all.db", [crowd])
    index_in_process(tmp_path / "big.db", [crowd], min_face=30)
    index_in_process(tmp_path / "five.db", [crowd], max_faces=5)
    sides = lambda db: sorted(  # noqa: E731
        min(x2 - x1, y2 - y1) for x1, y1, x2, y2 in db_rows(db, "SELECT x1, y1, x2, y2 FROM faces")
    )
    every = sides(tmp_path / "all.db")
    assert len(every) > 20
    assert sides(tmp_path / "big.db") == [s for s in every if s >= 30]
    assert sides(tmp_path / "five.db") == every[-5:]


def test_every_format_and_orientation_is_stored_upright_with_the_same_boxes(tmp_path):
    """JPEG, PNG, WEBP, TIFF and HEIC holding the same photo turned for EXIF orientation 3, 6
    and 8: one upright size, the orientation recorded as applied, the boxes of the upright JPEG.
    (Pillow 13 turns a TIFF itself while opening it, pillow-heif a HEIC; exifread saw no WEBP
    orientation: each was once wrong.)"""
    from PIL import Image

    upright = Image.open(PHOTOS / "people" / "ultralight__10.jpg").convert("RGB")
    library = tmp_path / "lib"
    library.mkdir()
    upright.save(library / "upright.jpg", quality=95)
    # Stored pixels that the orientation turns upright.
    stored_for = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                  8: Image.Transpose.ROTATE_270}
    suffixes = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "HEIF": "heic"}
    for orientation, transpose in stored_for.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        for fmt, suffix in suffixes.items():
            quality = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "HEIF": {"quality": 95}}
            upright.transpose(transpose).save(library / f"o{orientation}.{suffix}", format=fmt,
                                              exif=exif.tobytes(), **quality.get(fmt, {}))
    db = tmp_path / "index.db"
    summary = index_in_process(db, [library])
    assert summary.errors == 0 and summary.processed == 16
    reference = faces_of(db, library / "upright.jpg")
    assert len(reference) >= 15
    for orientation in stored_for:
        for suffix in suffixes.values():
            path = library / f"o{orientation}.{suffix}"
            width, height, stored = db_rows(
                db, "SELECT width, height, orientation FROM photos WHERE path = ?", (str(path),))[0]
            assert (width, height, stored) == (1024, 715, orientation), path.name
            boxes = faces_of(db, path)
            matched = [max(iou(box, other) for other in boxes) for box in reference]
            assert np.median(matched) >= 0.9 and min(matched) > 0.5, (path.name, matched)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
