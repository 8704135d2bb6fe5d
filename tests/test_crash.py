"""A run killed with SIGKILL leaves a consistent index; the next run finishes the rest."""

import signal
import sqlite3
import subprocess
import sys
import time

from conftest import copy_photos, db_rows, needs_shared, phototag_env, run_phototag

pytestmark = needs_shared

PHOTOS = ["people/ultralight__%d.jpg" % n for n in (1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 15)]


def snapshot(db):
    photos = db_rows(db, "SELECT path, status, n_faces, hash, width, height FROM photos ORDER BY path")
    faces = db_rows(
        db,
        "SELECT path, idx, x1, y1, x2, y2, det_score FROM faces JOIN photos ON photos.id = photo_id "
        "ORDER BY path, idx",
    )
    return photos, faces


def count_photos(db):
    try:
        return db_rows(db, "SELECT count(*) FROM photos")[0][0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_rerun_equals_one_uninterrupted_run(tmp_path):
    lib = copy_photos(PHOTOS, tmp_path / "lib")
    killed_db = tmp_path / "killed" / "index.db"
    env = phototag_env(tmp_path, PHOTOTAG_DB=killed_db)
    process = subprocess.Popen(
        [sys.executable, "-m", "phototag", "index", "--batch-size", "1", "--workers", "0", str(lib)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while count_photos(killed_db) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = count_photos(killed_db)
    assert 2 <= written < len(PHOTOS), f"the kill came at {written} photos, not mid-run"
    assert db_rows(killed_db, "PRAGMA integrity_check") == [("ok",)]
    # Every photo row written is whole: its face rows came in the same transaction.
    assert db_rows(
        killed_db,
        "SELECT count(*) FROM photos WHERE n_faces != (SELECT count(*) FROM faces WHERE photo_id = photos.id)",
    ) == [(0,)]

    rerun = run_phototag(tmp_path, "index", lib, env=env)
    assert f"{len(PHOTOS) - written} indexed" in rerun.stderr
    clean_db = tmp_path / "clean" / "index.db"
    run_phototag(tmp_path, "index", lib, env=phototag_env(tmp_path, PHOTOTAG_DB=clean_db))

    killed_photos, killed_faces = snapshot(killed_db)
    clean_photos, clean_faces = snapshot(clean_db)
    assert killed_photos == clean_photos
    assert len(killed_faces) == len(clean_faces)
    for a, b in zip(killed_faces, clean_faces):
        assert a[:2] == b[:2]
        assert all(abs(x - y) < 0.05 for x, y in zip(a[2:], b[2:])), (a, b)
    runs = db_rows(killed_db, "SELECT status FROM runs ORDER BY id")
    assert runs == [("running",), ("finished",)]  # the killed run is visible as never finished


def test_ctrl_c_stops_after_the_current_batch(tmp_path):
    lib = copy_photos(PHOTOS, tmp_path / "lib")
    db = tmp_path / "db" / "index.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "phototag", "index", "--batch-size", "2", "--workers", "1", str(lib)],
        env=phototag_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 300
    while count_photos(db) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "stopping after the current batch" in stderr and "Traceback" not in stderr
    written = count_photos(db)
    assert written % 2 == 0 and written < len(PHOTOS)
    assert db_rows(db, "SELECT status FROM runs") == [("interrupted",)]
    rerun = run_phototag(tmp_path, "index", lib)
    assert f"{len(PHOTOS) - written} indexed" in rerun.stderr
