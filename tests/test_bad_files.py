"""Every kind of bad file gets an error row with its reason, and the run goes on."""

import json
import os
import shutil
import struct
import zlib

import pytest

from conftest import db_rows, photo_source, run_phototag
from test_incremental import unprivileged

GOOD = photo_source("people/ultralight__8.jpg")


def png_header_only(width, height):
    """A PNG that claims width × height pixels: a decompression bomb in a few dozen bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def bad_library(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(GOOD, lib / "good.jpg")
    data = GOOD.read_bytes()
    (lib / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (lib / "empty.jpg").write_bytes(b"")
    (lib / "text.jpg").write_text("this is a shopping list, not a photo\n")
    (lib / "bomb.png").write_bytes(png_header_only(30000, 30000))
    shutil.copy(GOOD, lib / "unreadable.jpg")
    os.chmod(lib / "unreadable.jpg", 0)
    os.symlink(lib / "nowhere.jpg", lib / "broken.jpg")
    os.symlink("loop.jpg", lib / "loop.jpg")
    os.mkfifo(lib / "fifo.jpg")
    (lib / "sub").mkdir()
    os.symlink("..", lib / "sub" / "parent")  # a folder loop: must not be walked forever
    shutil.copy(GOOD, os.path.join(os.fsencode(lib), b"caf\xe9-latin1.jpg"))
    with open(os.path.join(os.fsencode(lib), b"bad\xff.jpg"), "wb") as f:
        f.write(b"garbage")
    return lib


EXPECTED = {
    "truncated.jpg": "truncated",
    "empty.jpg": "empty file",
    "text.jpg": "not an image",
    "bomb.png": "decompression bomb",
    "unreadable.jpg": "permission denied",
    "broken.jpg": "broken symbolic link",
    "loop.jpg": "symbolic link loop",
    "fifo.jpg": "not a regular file",
    "bad\udcff.jpg": "not an image",
}


def photo_rows(db_path):
    rows = db_rows(db_path, "SELECT path, status, error, n_faces FROM photos")
    return {os.path.basename(os.fsdecode(path)): (status, error, n) for path, status, error, n in rows}


def test_bad_files_are_recorded_and_the_run_goes_on(tmp_path, db_path, bad_library):
    result = run_phototag(tmp_path, "index", bad_library, **unprivileged())
    assert result.returncode == 0
    rows = photo_rows(db_path)
    for name, reason in EXPECTED.items():
        status, error, _ = rows[name]
        assert status == "error" and reason in error, (name, error)
        assert reason in result.stderr
    assert rows["good.jpg"][0] == "done" and rows["good.jpg"][2] > 0
    # A valid photo whose name is not UTF-8 is indexed like any other, its path kept exactly.
    assert rows["caf\udce9-latin1.jpg"] == ("done", None, rows["good.jpg"][2])
    assert len(rows) == len(EXPECTED) + 2  # the folder loop added nothing
    latin1 = os.path.join(os.fsencode(bad_library), b"caf\xe9-latin1.jpg")
    listed = run_phototag(tmp_path, "search", "-0").stdout
    assert latin1 in os.fsencode(listed).split(b"\0")
    # JSON gives the name as os.fsdecode does (\udce9), so that os.fsencode gets the bytes back.
    answered = json.loads(run_phototag(tmp_path, "search", "--format", "json").stdout)
    assert latin1 in {os.fsencode(face["path"]) for face in answered}
    failed = json.loads(run_phototag(tmp_path, "stats", "--json", "--errors").stdout)["error_list"]
    assert os.path.join(os.fsencode(bad_library), b"bad\xff.jpg") in {os.fsencode(e["path"]) for e in failed}


def test_errors_are_retried_only_when_changed_or_asked(tmp_path, db_path, bad_library):
    run_phototag(tmp_path, "index", bad_library, **unprivileged())
    again = run_phototag(tmp_path, "index", bad_library, **unprivileged())
    assert "0 indexed" in again.stderr
    retried = run_phototag(tmp_path, "index", "--retry-errors", bad_library, **unprivileged())
    assert f"{len(EXPECTED)} indexed (0 new, 0 changed, {len(EXPECTED)} failed before, tried again)" \
        in retried.stderr
    shutil.copy(GOOD, bad_library / "truncated.jpg")  # the full file arrives later
    fixed = run_phototag(tmp_path, "index", bad_library, **unprivileged())
    # Its bytes are now good.jpg's: its faces are copied from there, no model run.
    assert "1 indexed (0 new, 1 changed, 1 copied from identical photos)" in fixed.stderr
    status, error, faces = photo_rows(db_path)["truncated.jpg"]
    assert status == "done" and error is None and faces > 0
