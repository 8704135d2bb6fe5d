"""`phototag report` in a real browser (headless Chromium driven by Playwright): the grid fills
the window, labels never pile up, a photo opens large with its faces listed, the filters count,
file names stay text, and the boxes sit on the faces. Screenshots go to build/test-artifacts/
for a person to look at."""

import os
import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from phototag.cli import main

from conftest import PHOTOS, ROOT, db_rows, index_in_process, needs_shared, needs_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the [test] extra brings it
    sync_playwright = None
needs_browser = needs_tool(CHROMIUM and sync_playwright,
                           "needs Chromium (Debian package chromium) and playwright (the [test] extra)")
ARTIFACTS = ROOT / "build" / "test-artifacts"
LAUNCH = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def people_report(tmp_path_factory):
    """The report of every shared people photo, tagged with the shipped weights."""
    from click.testing import CliRunner

    from phototag.weights import default_attribute_weights

    folder = tmp_path_factory.mktemp("report")
    db = folder / "index.db"
    index_in_process(db, [PHOTOS / "people"], attributes=str(default_attribute_weights()))
    page = folder / "people.html"
    result = CliRunner().invoke(main, ["report", str(page), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return page, db


def open_page(browser, page_file, width, height):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(page_file.as_uri())
    page.wait_for_selector(".card img")
    page.wait_for_timeout(300)  # labels are placed once the thumbnails are laid out
    return page


def rects(page, selector):
    return page.eval_on_selector_all(selector, """nodes => nodes.map(n => {
        const r = n.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")


def per_row(page):
    tops = [round(top) for _, top, _, _ in rects(page, ".card")]
    return sum(1 for top in tops if top == tops[0])


def touching(a, b):
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


@needs_shared
@needs_browser
def test_the_grid_fills_the_window_and_labels_do_not_pile_up(browser, people_report):
    page_file, db = people_report
    assert stat.S_IMODE(os.stat(page_file).st_mode) == 0o600  # it shows private photos
    wide = open_page(browser, page_file, 1400, 1000)
    assert per_row(wide) >= 4
    cards = rects(wide, ".card")
    assert max(right for _, _, right, _ in cards) > 1400 - 40  # no third of the window left empty
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wide.screenshot(path=str(ARTIFACTS / "report-1400.png"))
    labels = rects(wide, ".tag.shown")
    faces = db_rows(db, "SELECT count(*) FROM faces")[0][0]
    assert labels and len(labels) < faces  # crowds keep their labels for hover and focus
    crowded = sum(any(touching(a, b) for b in labels if b is not a) for a in labels)
    assert crowded <= 0.05 * len(labels), (crowded, len(labels))
    for label, frame in zip(*_labels_and_frames(wide)):
        assert frame[0] - 1 <= label[0] and label[2] <= frame[2] + 1  # inside the photo
    # A crowd's label that waits appears when the mouse is on its face.
    point = wide.evaluate("""() => {
        for (const tag of document.querySelectorAll('.tag:not(.shown)')) {
            const r = tag.previousElementSibling.getBoundingClientRect();
            const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
            if (y > 60 && y < innerHeight && document.elementFromPoint(x, y) === tag.previousElementSibling) {
                tag.id = 'waiting';
                return [x, y];
            }
        }
        return null; }""")
    assert point is not None
    assert wide.evaluate("getComputedStyle(document.getElementById('waiting')).visibility") == "hidden"
    wide.mouse.move(*point)
    assert wide.evaluate("getComputedStyle(document.getElementById('waiting')).visibility") == "visible"
    narrow = open_page(browser, page_file, 400, 900)
    assert per_row(narrow) == 1
    narrow.screenshot(path=str(ARTIFACTS / "report-400.png"))
    wide.close()
    narrow.close()


def _labels_and_frames(page):
    pairs = page.eval_on_selector_all(".tag.shown", """tags => tags.map(t => {
        const a = t.getBoundingClientRect(), b = t.parentElement.getBoundingClientRect();
        return [[a.left, a.top, a.right, a.bottom], [b.left, b.top, b.right, b.bottom]]; })""")
    return [p[0] for p in pairs], [p[1] for p in pairs]


@needs_shared
@needs_browser
def test_a_photo_opens_large_with_its_faces_and_closes(browser, people_report):
    page_file, db = people_report
    page = open_page(browser, page_file, 1400, 1000)
    first_path = page.locator(".card .meta div").first.text_content()
    faces = db_rows(db, "SELECT n_faces FROM photos WHERE path = ?", (first_path,))[0][0]
    page.click(".card >> nth=0")
    assert page.is_visible("#viewer.open")
    area = page.locator("#large").bounding_box()
    large = page.locator("#large img").bounding_box()
    assert area["width"] >= 0.6 * 1400
    # The photo fills the viewer's width or its height, far beyond its 300-px grid cell.
    assert large["width"] >= area["width"] - 2 or large["height"] >= area["height"] - 2
    assert large["width"] > 600
    assert page.locator("#details h2").text_content() == first_path
    assert page.locator("#details li").count() == faces
    assert "taken" in page.locator("#details").text_content() or "no capture date" in page.locator("#details").text_content()
    page.screenshot(path=str(ARTIFACTS / "report-large-view.png"))
    page.keyboard.press("ArrowRight")
    second = page.locator("#details h2").text_content()
    assert second != first_path
    page.keyboard.press("ArrowLeft")
    assert page.locator("#details h2").text_content() == first_path
    page.keyboard.press("Escape")
    assert not page.is_visible("#viewer.open")
    # Enter on a focused photo opens it; the browser's back button closes it.
    page.focus(".card >> nth=1")
    page.keyboard.press("Enter")
    assert page.is_visible("#viewer.open")
    assert page.locator("#details h2").text_content() == second
    page.go_back()
    page.wait_for_timeout(200)
    assert not page.is_visible("#viewer.open")
    page.click(".card >> nth=0")
    page.click("#close")
    assert not page.is_visible("#viewer.open")
    page.close()


@needs_shared
@needs_browser
def test_filters_change_what_is_counted(browser, people_report):
    page_file, db = people_report
    page = open_page(browser, page_file, 1400, 1000)
    photos = db_rows(db, "SELECT count(*) FROM photos WHERE n_faces > 0")[0][0]
    assert page.locator("#count").text_content().startswith(f"{photos} photos")
    page.fill("#fmin", "10")
    crowds = db_rows(db, "SELECT count(*) FROM photos WHERE n_faces >= 10")[0][0]
    assert page.locator("#count").text_content().startswith(f"{crowds} photos")
    assert page.locator(".card").count() == min(crowds, 48)
    page.fill("#fmin", "")
    emotion, = db_rows(db, "SELECT emotion FROM faces GROUP BY emotion ORDER BY count(*) LIMIT 1")[0]
    page.select_option("#emotion", emotion)
    with_it = db_rows(db, "SELECT count(DISTINCT photo_id) FROM faces WHERE emotion = ?", (emotion,))[0][0]
    assert page.locator("#count").text_content().startswith(f"{with_it} photos")
    page.fill("#score", "0.999")
    strict = db_rows(db, "SELECT count(DISTINCT photo_id) FROM faces WHERE emotion = ? AND emotion_score >= 0.999",
                     (emotion,))[0][0]
    assert page.locator("#count").text_content().startswith(f"{strict} photos")
    page.close()


@needs_shared
@needs_browser
def test_a_file_name_is_text_never_markup(browser, tmp_path):
    from click.testing import CliRunner

    library = tmp_path / "lib"
    library.mkdir()
    name = "<img src=x onerror=document.title='pwned'><b>bold.jpg"
    shutil.copy(PHOTOS / "people" / "serengil__couple.jpg", library / name)
    db = tmp_path / "index.db"
    index_in_process(db, [library])
    page_file = tmp_path / "r.html"
    assert CliRunner().invoke(main, ["report", str(page_file), "--db", str(db)]).exit_code == 0
    page = open_page(browser, page_file, 900, 700)
    assert page.title() == "phototag" and page.locator("#grid b").count() == 0
    assert page.locator(".card .meta div").first.text_content() == str(library / name)
    page.close()


def signature(pixels):
    grey = Image.fromarray(pixels.astype(np.uint8)).convert("L").resize((24, 24))
    values = np.asarray(grey, dtype=float).ravel()
    return (values - values.mean()) / (values.std() + 1e-9)


@needs_shared
@needs_browser
def test_the_boxes_sit_on_the_faces(browser, tmp_path):
    from click.testing import CliRunner

    photo = PHOTOS / "people" / "serengil__couple.jpg"
    db = tmp_path / "index.db"
    index_in_process(db, [photo])
    page_file = tmp_path / "one.html"
    assert CliRunner().invoke(main, ["report", str(page_file), "--db", str(db)]).exit_code == 0
    page = open_page(browser, page_file, 900, 900)
    shot_file = tmp_path / "shot.png"
    page.screenshot(path=str(shot_file))
    shot = np.asarray(Image.open(shot_file).convert("RGB")).astype(int)
    image = page.locator(".card img").bounding_box()
    drawn = sorted(rects(page, ".card .face"))
    faces = sorted(db_rows(db, "SELECT x1, y1, x2, y2 FROM faces"))
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    height, width = original.shape[:2]
    assert len(drawn) == len(faces) == 2
    scale = image["width"] / width
    for (x1, y1, x2, y2), face in zip(drawn, faces):
        expected = (image["x"] + face[0] * scale, image["y"] + face[1] * scale,
                    image["x"] + face[2] * scale, image["y"] + face[3] * scale)
        assert np.allclose((x1, y1, x2, y2), expected, atol=1.5), ((x1, y1, x2, y2), expected)
        inside = signature(shot[int(y1) + 3:int(y2) - 3, int(x1) + 3:int(x2) - 3])

        def likeness(shift):
            a, b, c, d = (int(v) for v in face)
            move = int(shift * (c - a))
            return float(inside @ signature(original[b:d, a + move:c + move])) / inside.size

        assert likeness(0) > 0.8, likeness(0)  # what the box encloses on the page is that face
        for shift in (-0.4, 0.4):  # and a box misplaced by 40% of its width would not be
            assert likeness(shift) < likeness(0) - 0.2
    page.close()


@needs_shared
def test_a_thumbnail_is_turned_as_the_index_says_even_by_a_sidecar(tmp_path):
    """photo.6.sidecar.jpg has its orientation only in its XMP sidecar: the index says 840 × 700
    upright, and so must the report's thumbnail, or every box lands in the wrong place."""
    import base64
    import io

    from phototag.report import thumbnail
    from phototag.store import Reader

    folder = PHOTOS / "mwg_regions"
    db = tmp_path / "index.db"
    index_in_process(db, [folder / "photo.6.sidecar.jpg"])
    reader = Reader(db)
    photo = reader.photo(str(folder / "photo.6.sidecar.jpg"))
    reader.close()
    assert (photo["width"], photo["height"], photo["orientation_source"]) == (840, 700, "sidecar")
    data = thumbnail(photo, 640).split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(data))) as shown:
        assert shown.size == (640, 533)


@needs_shared
def test_the_report_counts_the_photos_it_shows(tmp_path):
    from click.testing import CliRunner

    library = tmp_path / "lib"
    library.mkdir()
    for name in ("serengil__couple.jpg", "ultralight__8.jpg"):
        shutil.copy(PHOTOS / "people" / name, library / name)
    db = tmp_path / "index.db"
    index_in_process(db, [library])
    (library / "ultralight__8.jpg").unlink()  # gone since it was indexed
    result = CliRunner().invoke(main, ["report", str(tmp_path / "r.html"), "--db", str(db)])
    assert result.exit_code == 0
    assert "1 photos in" in result.output and "1 found in the index could not be read" in result.output


@needs_shared
@needs_browser
def test_a_report_of_a_person_or_an_emotion_shows_those_faces_only_and_the_people(browser, tmp_path):
    from click.testing import CliRunner

    from phototag.weights import default_attribute_weights

    library = tmp_path / "lib"
    library.mkdir()
    shutil.copy(PHOTOS / "mwg_regions" / "photo.jpg", library / "curies.jpg")  # named regions
    for n in (1, 2):
        with Image.open(PHOTOS / "mwg_regions" / "photo.jpg") as image:  # the same two, unnamed
            image.convert("RGB").resize((760 - 60 * n, 633 - 50 * n)).save(library / f"copy{n}.jpg")
    shutil.copy(PHOTOS / "people" / "serengil__couple.jpg", library / "couple.jpg")
    db = tmp_path / "index.db"
    index_in_process(db, [library], attributes=str(default_attribute_weights()))
    page_file = tmp_path / "marie.html"
    result = CliRunner().invoke(main, ["report", str(page_file), "--db", str(db), "--person", "marie curie"])
    assert result.exit_code == 0 and "3 photos in" in result.output, result.output
    page = open_page(browser, page_file, 1200, 900)
    assert page.locator("#person").input_value().casefold() == "marie curie"
    assert page.locator("#count").text_content() == "3 photos, 3 faces"
    assert page.locator(".card .face").count() == 3  # Pierre's face is not drawn
    people = page.locator("#people .person")
    assert people.count() >= 2 and "Marie Curie" in people.first.text_content() + people.nth(1).text_content()
    unnamed = page.locator("#people .person code")
    assert all(text.startswith("phototag people name ") for text in unnamed.all_text_contents())
    page.screenshot(path=str(ARTIFACTS / "report-person.png"))
    page.close()

    emotion, = db_rows(db, "SELECT emotion FROM faces WHERE emotion IS NOT NULL GROUP BY emotion "
                           "ORDER BY count(*) DESC LIMIT 1")[0]
    page_file = tmp_path / "emotion.html"
    assert CliRunner().invoke(main, ["report", str(page_file), "--db", str(db), "--emotion", emotion]).exit_code == 0
    page = open_page(browser, page_file, 1200, 900)
    assert page.locator("#emotion").input_value() == emotion
    faces = db_rows(db, "SELECT count(*) FROM faces WHERE emotion = ?", (emotion,))[0][0]
    assert page.locator("#count").text_content().endswith(f", {faces} faces")
    assert page.locator(".card .face").count() == faces
    page.close()
