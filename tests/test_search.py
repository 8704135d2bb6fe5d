"""`phototag search`, `stats` and `show` over an index whose emotions and ages the test writes."""

import csv
import io
import json
import os
import sqlite3
import stat

import pytest

from phototag.store import SCHEMA_VERSION, Face, Writer, PhotoRecord, StoreError

from conftest import db_rows, needs_shared, phototag_env, run_phototag


def face(x, emotion, e_score, age, a_score, det=0.99):
    return Face(box=(x, 10.0, x + 40.0, 60.0), det_score=det, landmarks=[[x + 10, 20]] * 5,
                emotion=emotion, emotion_score=e_score, age_group=age, age_score=a_score)


@pytest.fixture
def index(db_path):
    store = Writer(db_path)
    store.write_photos([
        PhotoRecord("/lib/2023/party.jpg", 100, 1, "done", taken_at="2023-06-01T12:00:00",
                    faces=[face(0, "smile", 0.9, "child", 0.8), face(50, "sad", 0.7, "senior", 0.9)]),
        PhotoRecord("/lib/2024/beach.jpg", 100, 1, "done", taken_at="2024-07-31T09:00:00",
                    faces=[face(0, "smile", 0.6, "thirty-forty", 0.9)]),
        PhotoRecord("/lib/2024/baby.jpg", 100, 1, "done", taken_at="2024-01-02T09:00:00",
                    faces=[face(0, "neutral", 0.8, "baby", 0.95), face(60, "smile", 0.95, "child", 0.5),
                           face(120, "surprise", 0.5, "child", 0.7)]),
        PhotoRecord("/lib/empty.jpg", 100, 1, "done"),
        PhotoRecord("/lib/broken.jpg", 0, 1, "error", error="truncated"),
    ])
    store.close()
    return db_path


def search(tmp_path, *args, check=True):
    return run_phototag(tmp_path, "search", *args, check=check)


def test_and_across_flags_or_within_on_the_same_face(tmp_path, index):
    out = search(tmp_path, "--emotion", "smile", "--age", "child").stdout.split()
    assert out == ["/lib/2023/party.jpg", "/lib/2024/baby.jpg"]
    # sad and child are both in party.jpg, but not on the same face
    assert search(tmp_path, "--emotion", "sad", "--age", "child").stdout == ""
    out = search(tmp_path, "--age", "baby", "--age", "senior").stdout.split()
    assert out == ["/lib/2024/baby.jpg", "/lib/2023/party.jpg"]  # best first: baby 0.95, senior 0.9


def test_json_has_one_object_per_matching_face(tmp_path, index):
    rows = json.loads(search(tmp_path, "--emotion", "smile", "--format", "json").stdout)
    assert len(rows) == 3
    first = rows[0]
    for key in ("path", "face", "box", "det_score", "emotion", "emotion_score", "age_group", "age_score"):
        assert key in first
    # best first: the smile scored 0.95
    assert first["path"] == "/lib/2024/baby.jpg" and first["box"] == [60.0, 10.0, 100.0, 60.0]
    assert [r["emotion_score"] for r in rows] == [0.95, 0.9, 0.6]
    assert {(r["path"], r["face"]) for r in rows} == {
        ("/lib/2023/party.jpg", 0), ("/lib/2024/beach.jpg", 0), ("/lib/2024/baby.jpg", 1)
    }


def test_csv_table_paths_and_nul(tmp_path, index):
    rows = list(csv.DictReader(io.StringIO(search(tmp_path, "--age", "child", "--format", "csv").stdout)))
    assert [(r["path"], r["face"], r["emotion"]) for r in rows] == [  # child 0.8, 0.7, 0.5
        ("/lib/2023/party.jpg", "0", "smile"), ("/lib/2024/baby.jpg", "2", "surprise"),
        ("/lib/2024/baby.jpg", "1", "smile"),
    ]
    table = search(tmp_path, "--age", "child", "--format", "table").stdout
    assert "party.jpg" in table and "surprise" in table and "emotion" in table
    nul = search(tmp_path, "--age", "child", "-0").stdout
    assert nul == "/lib/2023/party.jpg\0/lib/2024/baby.jpg\0"


def test_scores_counts_dates_paths_and_limit(tmp_path, index):
    assert search(tmp_path, "--emotion", "smile", "--min-confidence", "0.92").stdout.split() == [
        "/lib/2024/baby.jpg"]
    assert search(tmp_path, "--age", "child", "--min-confidence", "0.75").stdout.split() == [
        "/lib/2023/party.jpg"]
    # --min-score is the detector's confidence that a face is a face (0.99 for every face here)
    assert len(search(tmp_path, "--min-score", "0.98").stdout.split()) == 3
    assert search(tmp_path, "--min-score", "0.995").stdout == ""
    lonely = search(tmp_path, "--min-confidence", "0.5", check=False)
    assert lonely.returncode == 2 and "--emotion or --age" in lonely.stderr
    assert search(tmp_path, "--faces", "0", check=False).returncode == 2  # no face: never a match
    assert search(tmp_path, "--faces", "3").stdout.split() == ["/lib/2024/baby.jpg"]
    assert search(tmp_path, "--faces", "1").stdout.split() == ["/lib/2024/beach.jpg"]  # exactly one
    assert search(tmp_path, "--faces", "2:").stdout.split() == ["/lib/2023/party.jpg", "/lib/2024/baby.jpg"]
    assert search(tmp_path, "--faces", ":1").stdout.split() == ["/lib/2024/beach.jpg"]
    assert search(tmp_path, "--faces", "1:2").stdout.split() == ["/lib/2023/party.jpg", "/lib/2024/beach.jpg"]
    assert search(tmp_path, "--taken-after", "2024-01-01").stdout.split() == [
        "/lib/2024/baby.jpg", "/lib/2024/beach.jpg"]
    assert search(tmp_path, "--taken-before", "2024-01-01").stdout.split() == ["/lib/2023/party.jpg"]
    assert search(tmp_path, "--path", "*/2024/*", "--emotion", "smile").stdout.split() == [
        "/lib/2024/baby.jpg", "/lib/2024/beach.jpg"]
    rows = json.loads(search(tmp_path, "--format", "json", "--limit", "2").stdout)
    assert len(rows) == 2


def test_results_come_best_first_or_as_asked(tmp_path, index):
    assert search(tmp_path, "--emotion", "smile").stdout.split() == [
        "/lib/2024/baby.jpg", "/lib/2023/party.jpg", "/lib/2024/beach.jpg"]  # 0.95, 0.9, 0.6
    assert search(tmp_path, "--emotion", "smile", "--sort", "path").stdout.split() == [
        "/lib/2023/party.jpg", "/lib/2024/baby.jpg", "/lib/2024/beach.jpg"]
    assert search(tmp_path, "--emotion", "smile", "--sort", "date").stdout.split() == [
        "/lib/2024/beach.jpg", "/lib/2024/baby.jpg", "/lib/2023/party.jpg"]  # newest first
    # emotion and age asked: the two scores together (0.9 x 0.8 against 0.95 x 0.5)
    rows = json.loads(search(tmp_path, "--emotion", "smile", "--age", "child", "--format", "json").stdout)
    assert [(r["path"], r["face"]) for r in rows] == [("/lib/2023/party.jpg", 0), ("/lib/2024/baby.jpg", 1)]
    # nothing asked: in path order
    assert search(tmp_path).stdout.split() == ["/lib/2023/party.jpg", "/lib/2024/baby.jpg",
                                                "/lib/2024/beach.jpg"]


def test_nothing_found_prints_nothing_and_exits_0(tmp_path, index):
    for fmt in ("table", "json", "csv", "paths"):
        result = search(tmp_path, "--emotion", "angry", "--format", fmt)
        assert result.returncode == 0 and result.stdout == ""


def test_unknown_labels_list_the_valid_ones_and_usual_words_are_understood(tmp_path, index):
    result = search(tmp_path, "--emotion", "ecstatic", check=False)
    assert result.returncode == 2
    assert "smile, sad, angry, anxiety, surprise, neutral" in result.stderr
    result = search(tmp_path, "--age", "ancient", check=False)
    assert result.returncode == 2 and "ten-twenty" in result.stderr
    happy = search(tmp_path, "--emotion", "happy")
    assert happy.stdout == search(tmp_path, "--emotion", "smile").stdout != ""
    assert "'happy' is 'smile' here" in happy.stderr
    assert search(tmp_path, "--age", "Teen").stdout == search(tmp_path, "--age", "ten-twenty").stdout


def test_nul_separated_output_is_refused_with_another_format(tmp_path, index):
    result = search(tmp_path, "--format", "json", "-0", check=False)
    assert result.returncode == 2 and "-0" in result.stderr and result.stdout == ""
    result = search(tmp_path, "--taken-after", "last tuesday", check=False)
    assert result.returncode == 2 and "2024-07-31" in result.stderr


def test_stats_and_show(tmp_path, index):
    numbers = json.loads(run_phototag(tmp_path, "stats", "--json").stdout)
    assert (numbers["photos"], numbers["errors"], numbers["faces"]) == (5, 1, 6)
    assert numbers["emotions"]["smile"] == 3 and numbers["age_groups"]["child"] == 3
    text = run_phototag(tmp_path, "stats", "--errors").stdout
    assert "broken.jpg: truncated" in text
    shown = json.loads(run_phototag(tmp_path, "show", "/lib/2024/baby.jpg", "--json").stdout)
    assert [f["emotion"] for f in shown["faces"]] == ["neutral", "smile", "surprise"]
    missing = run_phototag(tmp_path, "show", "/lib/none.jpg", check=False)
    assert missing.returncode == 1 and "not in the index" in missing.stderr


def test_search_without_an_index_says_how_to_make_one(tmp_path):
    result = search(tmp_path, check=False)
    assert result.returncode == 1 and "phototag index" in result.stderr


def test_index_file_is_private_wal_and_versioned(index):
    assert stat.S_IMODE(os.stat(index).st_mode) == 0o600
    assert db_rows(index, "PRAGMA journal_mode") == [("wal",)]
    assert db_rows(index, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def test_rewriting_a_photo_replaces_its_faces_and_delete_cascades(index):
    store = Writer(index)
    store.write_photos([PhotoRecord("/lib/2024/baby.jpg", 100, 2, "done", faces=[face(0, "smile", 0.9, "baby", 0.9)])])
    assert db_rows(index, "SELECT count(*) FROM faces") == [(4,)]
    (photo_id,) = db_rows(index, "SELECT id FROM photos WHERE path = '/lib/2024/baby.jpg'")[0]
    store.remove([photo_id])
    store.close()
    assert db_rows(index, "SELECT count(*) FROM faces") == [(3,)]


def test_an_index_from_a_newer_phototag_is_refused(index):
    with sqlite3.connect(index) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="upgrade phototag"):
        Writer(index)


def test_a_file_that_is_not_an_index_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my notes")
    with pytest.raises(StoreError, match="not a usable phototag index"):
        Writer(path)


def schema_1_index(path):
    """An empty index as the first phototag wrote it (schema version 1)."""
    from phototag.store import MIGRATIONS

    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    return path


def test_an_index_of_schema_1_is_migrated(tmp_path):
    path = schema_1_index(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO photos (path, status, n_faces) VALUES ('/a.jpg', 'done', 1)")
        conn.execute("INSERT INTO faces (photo_id, idx, emotion, age_group) VALUES (1, 0, 'smile', 'child')")
    Writer(path).close()
    assert db_rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    indexes = {name for (name,) in db_rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"faces_emotion_age", "faces_age_photo"} <= indexes and "faces_emotion" not in indexes
    assert db_rows(path, "SELECT count(*) FROM faces JOIN photos ON photos.id = photo_id") == [(1,)]


def test_search_answers_while_an_index_run_holds_a_write_transaction(tmp_path, index):
    writer = sqlite3.connect(index, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM faces")  # not committed: readers still see the old rows
    try:
        out = search(tmp_path, "--emotion", "smile", "--sort", "path").stdout.split()
        assert out == ["/lib/2023/party.jpg", "/lib/2024/baby.jpg", "/lib/2024/beach.jpg"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


FULL_DISK_RUN = """
import sqlite3, sys
from phototag.store import writer
plain = writer.connect
def capped(path, readonly):
    conn = plain(path, readonly)
    conn.execute("PRAGMA max_page_count = 28")  # the disk fills up after a few photos
    return conn
writer.connect = capped
from phototag.cli import main
main(["index", "--workers", "0", "--batch-size", "1", "--faces-only", sys.argv[1]])
"""


@needs_shared
def test_a_full_disk_ends_the_run_with_one_line_and_the_index_intact(tmp_path):
    import subprocess
    import sys

    from conftest import copy_photos, phototag_env

    lib = copy_photos([f"people/ultralight__{n}.jpg" for n in (1, 2, 3, 5, 6, 8, 9, 10)], tmp_path / "lib")
    result = subprocess.run([sys.executable, "-c", FULL_DISK_RUN, str(lib)], env=phototag_env(tmp_path),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("phototag:")]
    assert len(lines) == 1 and "full" in lines[0] and "every batch written before is kept" in lines[0]
    db = tmp_path / "db" / "index.db"
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    written = db_rows(db, "SELECT count(*) FROM photos")[0][0]
    assert 0 < written < 8
    rerun = run_phototag(tmp_path, "index", "--faces-only", lib)  # room again: the rest is done
    assert f"{8 - written} indexed" in rerun.stderr


def test_readers_never_migrate_an_older_index_and_say_what_to_do(tmp_path):
    path = schema_1_index(tmp_path / "old.db")
    before = path.read_bytes()
    for command in (["search"], ["stats"], ["report", str(tmp_path / "r.html")]):
        result = run_phototag(tmp_path, *command, "--db", path, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "older phototag" in result.stderr and "phototag index" in result.stderr
    assert path.read_bytes() == before  # not written, not migrated
    assert db_rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]


@pytest.mark.slow  # the runs it starts load the detector
def test_clear_errors_for_a_bad_device_a_bad_model_file_and_a_missing_folder(tmp_path, index):
    lib = tmp_path / "lib"
    lib.mkdir()
    device = run_phototag(tmp_path, "index", "--device", "tpu", lib, check=False)
    assert device.returncode == 2 and "unknown device 'tpu'" in device.stderr
    assert "Traceback" not in device.stderr
    (lib / "a.jpg").write_bytes(b"x")
    bogus = tmp_path / "model.safetensors"
    bogus.write_text("not weights")
    model = run_phototag(tmp_path, "index", "--model", bogus, lib, check=False)
    assert model.returncode == 1 and "not a phototag emotion/age weights file" in model.stderr
    assert "Traceback" not in model.stderr
    report = run_phototag(tmp_path, "report", tmp_path / "nowhere" / "r.html", "--db", index, check=False)
    assert report.returncode == 1 and "cannot write" in report.stderr and "Traceback" not in report.stderr
    run_phototag(tmp_path, "report", tmp_path / "r.html", "--db", index)
    assert stat.S_IMODE(os.stat(tmp_path / "r.html").st_mode) == 0o600  # it shows private photos


def test_an_index_others_can_read_gets_a_warning(tmp_path, index):
    os.chmod(index, 0o644)
    lib = tmp_path / "lib"
    lib.mkdir()
    result = run_phototag(tmp_path, "index", "--db", index, lib,  # nothing to do: no model
                          env=phototag_env(tmp_path, models=False))
    assert "can be read by other users" in result.stderr and "chmod 600" in result.stderr


def test_writers_opening_an_old_index_at_once_migrate_it_once(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    path = schema_1_index(tmp_path / "old.db")
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_open_and_close, [str(path)] * 8))
    assert results == ["ok"] * 8
    assert db_rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def _open_and_close(path):
    Writer(path).close()
    return "ok"


def test_every_reading_command_opens_an_index_whose_path_holds_a_percent_sign(tmp_path):
    """The read-only URI escapes every character SQLite would read as one of its own."""
    db = tmp_path / "100%25 done #1?" / "index.db"
    writer = Writer(db)
    writer.write_photos([PhotoRecord("/lib/a.jpg", 1, 1, "done", faces=[face(0, "smile", 0.9, "child", 0.8)])])
    writer.close()
    env = phototag_env(tmp_path, models=False, PHOTOTAG_DB=db)
    assert run_phototag(tmp_path, "search", "--emotion", "smile", env=env).stdout.split() == ["/lib/a.jpg"]
    assert json.loads(run_phototag(tmp_path, "stats", "--json", env=env).stdout)["faces"] == 1
    assert run_phototag(tmp_path, "people", env=env).returncode == 0


@pytest.fixture
def group_shots(db_path):
    """Three group photos of a burst and a fourth: everyone smiles in two of the burst, one
    face frowns in the third; a tiny face (untagged) never spoils a group shot."""
    def smile(x, score, sharpness, emotion="smile"):
        f = face(x, emotion, score, "thirty-forty", 0.8)
        f.sharpness = sharpness
        return f

    tiny = Face(box=(300.0, 10.0, 310.0, 20.0), det_score=0.9, landmarks=[[305, 15]] * 5, too_small=True)
    store = Writer(db_path)
    store.write_photos([
        PhotoRecord("/lib/burst/1.jpg", 1, 1, "done", lat=48.8584, lon=2.2945, camera="Apple iPhone 11",
                    faces=[smile(0, 0.9, 80.0), smile(50, 0.8, 80.0), smile(100, 0.85, 80.0), tiny]),
        PhotoRecord("/lib/burst/2.jpg", 1, 1, "done", lat=48.87, lon=2.33, camera="Apple iPhone 11",
                    faces=[smile(0, 0.9, 120.0), smile(50, 0.8, 120.0), smile(100, 0.95, 120.0)]),
        PhotoRecord("/lib/burst/3.jpg", 1, 1, "done", lat=51.5, lon=-0.12, camera="Canon EOS R5",
                    faces=[smile(0, 0.99, 100.0), smile(50, 0.7, 100.0, "sad"), smile(100, 0.9, 100.0)]),
        PhotoRecord(os.fsdecode(b"/lib/caf\xe9.jpg"), 1, 1, "done", faces=[smile(0, 0.6, 50.0)]),
    ])
    store.close()
    return db_path


def test_every_finds_the_group_shot_where_everyone_smiles_best_first(tmp_path, group_shots):
    found = search(tmp_path, "--every", "smile", "--faces", "3:").stdout.split()
    # the least sure face decides (0.8 both), then the sharper burst frame; 3.jpg has a sad face
    assert found == ["/lib/burst/2.jpg", "/lib/burst/1.jpg"]
    rows = json.loads(search(tmp_path, "--every", "happy", "--format", "json").stdout)
    assert {r["path"] for r in rows} == {"/lib/burst/2.jpg", "/lib/burst/1.jpg", os.fsdecode(b"/lib/caf\xe9.jpg")}
    assert all(r["emotion"] == "smile" and not r["too_small"] for r in rows)
    assert search(tmp_path, "--every", "smile", "--every", "sad", "--faces", "3:").stdout.split()[0] == \
        "/lib/burst/2.jpg"


def test_near_a_place_and_by_camera(tmp_path, group_shots):
    assert search(tmp_path, "--near", "48.8584,2.2945").stdout.split() == ["/lib/burst/1.jpg"]  # 1 km
    assert search(tmp_path, "--near", "48.8584,2.2945,5").stdout.split() == ["/lib/burst/1.jpg",
                                                                          "/lib/burst/2.jpg"]
    assert search(tmp_path, "--camera", "canon").stdout.split() == ["/lib/burst/3.jpg"]
    assert search(tmp_path, "--camera", "iphone_1").stdout == ""  # _ is a letter here, not a wildcard
    bad = search(tmp_path, "--near", "somewhere", check=False)
    assert bad.returncode == 2 and "LAT,LON" in bad.stderr


def test_a_path_glob_matches_names_that_are_not_utf8(tmp_path, group_shots):
    everything = search(tmp_path, "--path", "*", "-0").stdout.encode("utf-8", "surrogateescape")
    assert b"/lib/caf\xe9.jpg" in everything.split(b"\0")
    assert search(tmp_path, "--path", "*/caf*").stdout.encode("utf-8", "surrogateescape").split() == [
        b"/lib/caf\xe9.jpg"]


def test_weights_that_are_not_weights_are_refused_even_with_nothing_to_do(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a model")
    result = run_phototag(tmp_path, "index", "--model", photo, empty, check=False,
                          env=phototag_env(tmp_path, models=False))
    assert result.returncode == 1 and "not a phototag emotion/age weights file" in result.stderr
    assert "Traceback" not in result.stderr
