"""`phototag report`: the page renders in headless Chromium with the boxes on the faces."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from phototag.cli import main

from conftest import PHOTOS, db_rows, index_in_process, needs_shared, needs_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = needs_tool(CHROMIUM, "needs Chromium (Debian package chromium)")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars"]


def screenshot(page, out, profile, size=(700, 560)):
    subprocess.run([CHROMIUM, *HEADLESS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={out}", page.as_uri()], capture_output=True, timeout=120, check=True)
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def magenta_boxes(shot):
    """Bounding boxes of the drawn face outlines (#ff00ff), split where columns have none."""
    mask = (shot[..., 0] > 200) & (shot[..., 1] < 80) & (shot[..., 2] > 200)
    columns = np.nonzero(mask.any(axis=0))[0]
    groups = np.split(columns, np.nonzero(np.diff(columns) > 5)[0] + 1)
    boxes = []
    for group in groups:
        rows = np.nonzero(mask[:, group].any(axis=1))[0]
        boxes.append((group.min(), rows.min(), group.max() + 1, rows.max() + 1))
    return boxes


def signature(pixels):
    grey = Image.fromarray(pixels.astype(np.uint8)).convert("L").resize((24, 24))
    values = np.asarray(grey, dtype=float).ravel()
    return (values - values.mean()) / (values.std() + 1e-9)


@needs_shared
@needs_chromium
def test_report_draws_the_boxes_on_the_faces(tmp_path):
    from click.testing import CliRunner

    photo = PHOTOS / "people" / "serengil__couple.jpg"
    db = tmp_path / "index.db"
    index_in_process(db, [PHOTOS / "people"])
    everything = tmp_path / "all.html"
    result = CliRunner().invoke(main, ["report", str(everything), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with_faces = db_rows(db, "SELECT count(*) FROM photos WHERE n_faces > 0")[0][0]
    text = everything.read_text()
    assert text.count('<div class="photo">') == with_faces > 30
    assert "http" not in text.split("<body>")[1]  # nothing to fetch: it opens from disk
    page = tmp_path / "report.html"  # the known photo alone, for the pixel test
    result = CliRunner().invoke(main, ["report", str(page), "--db", str(db), "--path", str(photo)])
    assert result.exit_code == 0, result.output

    shot = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    drawn = magenta_boxes(shot)
    faces = db_rows(db, "SELECT x1, y1, x2, y2 FROM faces JOIN photos ON photos.id = photo_id "
                        "WHERE path = ?", (str(photo),))
    assert len(drawn) == len(faces) == 2
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)

    def likeness(inside, box, shift=0.0):
        a, b, c, d = (int(v) for v in box)
        move = int(shift * (c - a))
        return float(inside @ signature(original[b:d, a + move:c + move])) / inside.size

    for (x1, y1, x2, y2), face in zip(sorted(drawn), sorted(faces)):
        inside = signature(shot[y1 + 4:y2 - 4, x1 + 4:x2 - 4])
        here = likeness(inside, face)
        assert here > 0.85, here  # what the box encloses on the page is that face
        for shift in (-0.4, 0.4):  # and a box misplaced by 40% of its width would not be
            assert likeness(inside, face, shift) < here - 0.2
    widths = sorted(x2 - x1 for x1, _, x2, _ in drawn)
    expected = sorted((c - a) * 480 / original.shape[1] for a, _, c, _ in faces)  # 480-px cards
    assert np.allclose(widths, expected, atol=8)


def test_report_pages_and_filters_are_in_the_page(tmp_path):
    from phototag.report import PAGE_SIZE, render

    page = render([])
    assert "any emotion" in page and "any age" in page and "move(1)" in page
    assert PAGE_SIZE == 24
