"""A run killed with SIGKILL leaves a consistent index; the next run finishes the rest."""

import os
import signal
import sqlite3
import subprocess
import time

from conftest import (HAVE_SHARED, WEIGHTS, copy_photos, db_rows, phototag_env, run_phototag,
                      start_index, wait_until_gone, wait_until_written)

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
    process = start_index(tmp_path, "--batch-size", "1", "--workers", "0", lib, env=env,
                          stderr=subprocess.DEVNULL)
    wait_until_written(process, 2)
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
    # The run that died is not "running" for ever.
    last = run_phototag(tmp_path, "stats", env=env).stdout
    assert " killed:" in last and " running" not in last

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
    process = start_index(tmp_path, "--batch-size", "2", "--workers", "1", lib,
                          stderr=subprocess.PIPE)
    wait_until_written(process, 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "stopping after the current batch" in stderr and "Traceback" not in stderr
    written = count_photos(db)
    assert written % 2 == 0 and written < len(PHOTOS)
    assert db_rows(db, "SELECT status FROM runs") == [("interrupted",)]
    rerun = run_phototag(tmp_path, "index", lib)
    assert f"{len(PHOTOS) - written} indexed" in rerun.stderr


def run_processes(marker):
    """Pids of live processes whose command line mentions ``marker`` (a run's library path):
    the run itself and every worker it forked."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            pids.append(int(entry))
    return pids


def test_sigkill_of_the_main_process_leaves_no_worker_and_no_lock(tmp_path):
    lib = copy_photos(PHOTOS, tmp_path / "lib-sigkill")
    db = tmp_path / "db" / "index.db"
    process = start_index(tmp_path, "--batch-size", "1", "--workers", "1", lib,
                          stderr=subprocess.DEVNULL)
    wait_until_written(process, 2)
    workers = [pid for pid in run_processes(str(lib)) if pid != process.pid]
    assert workers  # the run's decode worker
    process.send_signal(signal.SIGKILL)  # the main process alone, as the OOM killer does
    process.wait()
    wait_until_gone(workers)
    assert run_processes(str(lib)) == []
    rerun = run_phototag(tmp_path, "index", lib)
    assert "another index run" not in rerun.stderr
    assert db_rows(db, "SELECT count(*) FROM photos WHERE status = 'done'") == [(len(PHOTOS),)]


CRASHING_CODEC = '''
import os, signal
from PIL import Image, ImageFile

class CrashingFile(ImageFile.ImageFile):
    """A codec with a fatal bug: opening its files kills the process, as a segfault does."""
    format = "CRASH"

    def _open(self):
        os.kill(os.getpid(), signal.SIGSEGV)

Image.register_open("CRASH", CrashingFile, lambda prefix: prefix.startswith(b"CRASH-ME"))
'''


def test_a_decoder_that_crashes_its_process_costs_one_photo_not_the_run(tmp_path):
    # Every process of the run loads this codec (sitecustomize), as it would a broken plugin.
    codec = tmp_path / "codec"
    codec.mkdir()
    # (It replaces the stand-ins' sitecustomize where ../shared is absent: it carries it along.)
    stand_in = "" if HAVE_SHARED else __import__("stand_ins").site_code(WEIGHTS)
    (codec / "sitecustomize.py").write_text(CRASHING_CODEC + stand_in)
    lib = copy_photos(PHOTOS[:5], tmp_path / "lib")
    (lib / "ultralight__2.jpg").rename(lib / "crash.jpg")
    (lib / "crash.jpg").write_bytes(b"CRASH-ME" + bytes(100))
    env = phototag_env(tmp_path)
    env["PYTHONPATH"] = f"{codec}{os.pathsep}{env['PYTHONPATH']}"
    first = run_phototag(tmp_path, "index", "--workers", "1", "--batch-size", "2", lib, env=env)
    db = tmp_path / "db" / "index.db"
    rows = dict(db_rows(db, "SELECT path, coalesce(error, status) FROM photos"))
    assert len(rows) == 5 and "Traceback" not in first.stderr
    assert rows.pop(str(lib / "crash.jpg")).startswith("decoder crashed")
    assert set(rows.values()) == {"done"}
    again = run_phototag(tmp_path, "index", "--workers", "1", lib, env=env)
    assert " 0 indexed" in again.stderr  # not retried while unchanged
    os.utime(lib / "crash.jpg", ns=(time.time_ns(), time.time_ns()))
    changed = run_phototag(tmp_path, "index", "--workers", "1", lib, env=env)
    assert "1 indexed (0 new, 1 changed)" in changed.stderr, changed.stderr  # retried once changed


def test_an_interrupted_reprocess_resumes_where_it_stopped(tmp_path):
    lib = copy_photos(PHOTOS, tmp_path / "lib")
    db = tmp_path / "db" / "index.db"
    run_phototag(tmp_path, "index", "--faces-only", lib)
    stamps = dict(db_rows(db, "SELECT path, indexed_at FROM photos"))  # microseconds
    process = start_index(tmp_path, "--faces-only", "--reprocess", "--batch-size", "2",
                          "--workers", "0", lib, stderr=subprocess.PIPE)
    redone = lambda: sum(1 for p, s in db_rows(db, "SELECT path, indexed_at FROM photos") if s != stamps[p])  # noqa: E731
    wait_until_written(process, 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130
    first = redone()
    assert 2 <= first < len(PHOTOS) and f"{first} of {len(PHOTOS)} indexed" in stderr
    again = run_phototag(tmp_path, "index", "--faces-only", "--reprocess", lib)
    left = len(PHOTOS) - first
    assert f"{left} indexed (0 new, 0 changed, {left} reprocessed), {first} unchanged" in again.stderr
    assert redone() == len(PHOTOS)
    # Finished: the next --reprocess starts over.
    assert f"{len(PHOTOS)} reprocessed" in run_phototag(tmp_path, "index", "--faces-only", "--reprocess", lib).stderr
