"""Incremental runs through the real CLI: nothing to do costs no image reads and no torch."""

import json
import os
import subprocess
import sys

from conftest import copy_photos, db_rows, phototag_env, run_phototag

SAMPLE = ["people/ultralight__1.jpg", "people/ultralight__8.jpg", "people/ultralight__13.jpg",
          "people/serengil__img3.jpg", "exif/gps_DSCN0010.jpg"]

WATCHED_RUN = """
import json, sys
opened = []
def watch(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith({root!r}):
        opened.append(args[0])
sys.addaudithook(watch)
from phototag.cli import main
try:
    # --workers 0: decoding in this process, where the audit hook sees every open.
    main(["index", "--workers", "0", {root!r}], standalone_mode=False)
finally:
    print(json.dumps({{"opened": opened, "torch": "torch" in sys.modules}}))
"""


def watched_index(tmp_path, root):
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_RUN.format(root=str(root))],
        env=phototag_env(tmp_path), capture_output=True, text=True, timeout=600, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def faces_by_path(db):
    rows = db_rows(db, "SELECT path, faces.id, x1 FROM photos JOIN faces ON photos.id = photo_id")
    table = {}
    for path, face_id, x1 in rows:
        table.setdefault(path, []).append((face_id, x1))
    return table


def test_unchanged_tree_is_neither_opened_nor_run_through_torch(tmp_path, db_path):
    root = copy_photos(SAMPLE, tmp_path / "lib")
    first, _ = watched_index(tmp_path, root)
    assert first["torch"] and len(first["opened"]) == len(SAMPLE)
    second, stderr = watched_index(tmp_path, root)
    assert second == {"opened": [], "torch": False}
    assert "5 unchanged" in stderr


def test_touch_redoes_move_keeps_faces_rm_removes(tmp_path, db_path):
    root = copy_photos(SAMPLE, tmp_path / "lib")
    other = copy_photos(["people/ultralight__5.jpg"], tmp_path / "other")
    run_phototag(tmp_path, "index", root, other)
    before = faces_by_path(db_path)
    photo = str(root / "ultralight__1.jpg")
    assert before[photo]

    # touch: a new mtime → the photo is redone (new face rows).
    stamp = os.stat(photo).st_mtime_ns + 10**9
    os.utime(photo, ns=(stamp, stamp))
    result = run_phototag(tmp_path, "index", root)
    assert "1 indexed (0 new, 1 changed)" in result.stderr
    after_touch = faces_by_path(db_path)
    assert [x for _, x in after_touch[photo]] == [x for _, x in before[photo]]
    assert {i for i, _ in after_touch[photo]}.isdisjoint({i for i, _ in before[photo]})

    # mv into a sub-folder: the same face rows under the new path, no model run (no torch).
    (root / "2024").mkdir()
    moved = str(root / "2024" / "renamed.jpg")
    os.rename(photo, moved)
    report, stderr = watched_index(tmp_path, root)
    assert report["torch"] is False, stderr
    assert "1 moved" in stderr and "0 indexed" in stderr
    after_move = faces_by_path(db_path)
    assert photo not in after_move and after_move[moved] == after_touch[photo]

    # rm: the row and its faces go; the other root's rows stay.
    os.remove(root / "ultralight__8.jpg")
    result = run_phototag(tmp_path, "index", root)
    assert "1 removed" in result.stderr
    paths = {p for (p,) in db_rows(db_path, "SELECT path FROM photos")}
    assert str(root / "ultralight__8.jpg") not in paths
    assert str(other / "ultralight__5.jpg") in paths
    assert db_rows(db_path, "SELECT count(*) FROM faces WHERE photo_id NOT IN "
                            "(SELECT id FROM photos)") == [(0,)]


def test_reprocess_redoes_everything_and_other_weights_are_reported(tmp_path, db_path):
    root = copy_photos(SAMPLE[:2], tmp_path / "lib")
    run_phototag(tmp_path, "index", root)
    db_rows(db_path, "SELECT 1")
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE photos SET model = 'old-weights-v0'")
    result = run_phototag(tmp_path, "index", root)
    assert "2 by old-weights-v0" in result.stderr and "--reprocess" in result.stderr
    result = run_phototag(tmp_path, "index", "--reprocess", root)
    assert "2 indexed" in result.stderr
    (model,), = db_rows(db_path, "SELECT DISTINCT model FROM photos")
    assert model.startswith("retinaface_mobilenet0.25_Final+phototag-cpu-")  # the shipped weights


def test_missing_folder_under_a_root_keeps_its_rows_when_unlistable(tmp_path, db_path):
    root = copy_photos(SAMPLE[:2], tmp_path / "lib" / "inner")
    run_phototag(tmp_path, "index", tmp_path / "lib")
    os.chmod(root, 0)
    try:
        # root ignores permission bits, so run the rescan without the override capabilities.
        result = run_phototag(tmp_path, "index", tmp_path / "lib", **unprivileged())
    finally:
        os.chmod(root, 0o755)
    assert "cannot list" in result.stderr
    assert db_rows(db_path, "SELECT count(*) FROM photos") == [(2,)]


def unprivileged():
    """subprocess arguments under which file permissions apply, even to root."""
    if os.geteuid() != 0:
        return {}
    return {"preexec_fn": drop_file_capabilities}


def drop_file_capabilities():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP = 24
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_an_unchanged_library_skips_the_comparison_and_any_change_is_still_seen(tmp_path, db_path):
    from phototag.pipeline import IndexOptions, run_index
    from phototag.store import Writer

    from conftest import WEIGHTS

    root = copy_photos(SAMPLE[:3], tmp_path / "lib")
    options = IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS), workers=0)
    store = Writer(db_path)
    try:
        assert run_index(store, options).processed == 3
        reads = []
        original = store.indexed_files
        store.indexed_files = lambda: reads.append(1) or original()
        assert run_index(store, options).unchanged == 3 and reads == []  # the fast path
        # A change on disk, or to the index by another run, takes the long way again.
        stamp = os.stat(root / "ultralight__1.jpg").st_mtime_ns + 10**9
        os.utime(root / "ultralight__1.jpg", ns=(stamp, stamp))
        assert run_index(store, options).processed == 1 and reads == [1]
        assert run_index(store, options).unchanged == 3 and reads == [1]
        store.remove([db_rows(db_path, "SELECT id FROM photos LIMIT 1")[0][0]])
        assert run_index(store, options).processed == 1 and reads == [1, 1]
        assert run_index(store, IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS), workers=0,
                                             reprocess=True)).processed == 3
    finally:
        store.close()


def test_a_hidden_photo_skipped_by_a_plain_run_is_kept_until_it_is_really_gone(tmp_path, db_path):
    root = copy_photos(SAMPLE[:2], tmp_path / "lib")
    hidden = copy_photos(["people/ultralight__5.jpg"], root / ".private")
    run_phototag(tmp_path, "index", "--hidden", root)
    plain = run_phototag(tmp_path, "index", root)  # the nightly cron line, without --hidden
    assert "0 removed" in plain.stderr
    paths = {p for (p,) in db_rows(db_path, "SELECT path FROM photos")}
    assert str(hidden / "ultralight__5.jpg") in paths and len(paths) == 3
    (hidden / "ultralight__5.jpg").unlink()
    gone = run_phototag(tmp_path, "index", root)
    assert "1 removed" in gone.stderr
    assert db_rows(db_path, "SELECT count(*) FROM photos") == [(2,)]


def test_a_byte_identical_copy_takes_the_faces_without_running_the_models(tmp_path, db_path):
    root = copy_photos(SAMPLE[:2], tmp_path / "lib")
    run_phototag(tmp_path, "index", root)
    backup = root / "backup"
    backup.mkdir()
    (backup / "copy.jpg").write_bytes((root / "ultralight__8.jpg").read_bytes())
    os.utime(backup / "copy.jpg", (1_000_000_000, 1_000_000_000))  # its own time
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_RUN.format(root=str(root))],
        env=phototag_env(tmp_path), capture_output=True, text=True, timeout=600, check=True)
    assert "1 indexed (1 new, 0 changed, 1 copied from identical photos)" in result.stderr
    # recognised before any model loads: no torch, and only the copy itself read
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "opened": [str(backup / "copy.jpg")], "torch": False}
    columns = "x1, y1, x2, y2, det_score, landmarks, emotion, emotion_probs, age_group, age_probs"
    faces = lambda name: db_rows(  # noqa: E731
        db_path, f"SELECT {columns} FROM faces JOIN photos ON photos.id = photo_id WHERE path = ? "
                 "ORDER BY idx", (name,))
    original = faces(str(root / "ultralight__8.jpg"))
    assert len(original) > 5 and faces(str(backup / "copy.jpg")) == original
    copy = db_rows(db_path, "SELECT mtime_ns, n_faces, model FROM photos WHERE path = ?", (str(backup / "copy.jpg"),))[0]
    assert copy[0] == 1_000_000_000 * 10**9 and copy[1] == len(original) and copy[2]
    # Faces found with other settings are not the faces these settings would find: no copy.
    (backup / "copy2.jpg").write_bytes((root / "ultralight__8.jpg").read_bytes())
    result = run_phototag(tmp_path, "index", "--min-score", "0.9", root)
    assert "1 indexed (1 new, 0 changed)" in result.stderr and "copied" not in result.stderr


def test_a_run_without_tagging_weights_says_so_once_and_only_when_it_has_photos_to_do(tmp_path,
                                                                                       db_path):
    """Said by the run itself, so that a --ray run says it as a run on one machine does."""
    from phototag.pipeline import IndexOptions, Reporter, run_index
    from phototag.store import Writer

    from conftest import WEIGHTS

    class Notes(Reporter):
        def __init__(self):
            self.lines = []

        def note(self, message):
            self.lines.append(message)

    root = copy_photos(SAMPLE[:2], tmp_path / "lib")
    store = Writer(db_path)
    try:
        untagged, faces_only = Notes(), Notes()
        options = IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS), workers=0)
        assert run_index(store, options, untagged).processed == 2
        assert [n for n in untagged.lines if "tagging is off" in n] == [untagged.lines[0]]
        again = Notes()
        run_index(store, options, again)
        assert again.lines == []  # nothing to do, nothing to say
        run_index(store, IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS), workers=0,
                                      faces_only=True, reprocess=True), faces_only)
        assert not any("tagging is off" in n for n in faces_only.lines)
    finally:
        store.close()


def test_photos_handed_over_through_a_pipe_or_shared_memory_give_the_same_index(tmp_path,
                                                                                 monkeypatch):
    """Workers hand pixels over in shared memory when /dev/shm has room, else through a pipe
    (Docker's 64 MB /dev/shm): both give the same faces and tags."""
    from conftest import ROOT, WEIGHTS, seed_cache
    from phototag import local_runner
    from phototag.pipeline import IndexOptions, run_index
    from phototag.store import Writer

    root = copy_photos(SAMPLE, tmp_path / "lib")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seed_cache(tmp_path / "cache")
    shipped = str(ROOT / "weights" / "phototag-cpu.safetensors")
    columns = "path, x1, y1, x2, y2, det_score, emotion, emotion_probs, age_group"
    indexes = {}
    for shared in (False, True):
        monkeypatch.setattr(local_runner, "shared_memory_room", lambda *_, shared=shared: shared)
        db = tmp_path / f"shared-{shared}.db"
        store = Writer(str(db))
        try:
            summary = run_index(store, IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS),
                                                    attributes=shipped, workers=1, batch_size=2))
        finally:
            store.close()
        assert summary.processed == len(SAMPLE)
        indexes[shared] = db_rows(db, f"SELECT {columns} FROM faces JOIN photos ON photos.id = "
                                      "photo_id ORDER BY path, idx")
    assert len(indexes[True]) > 20 and indexes[True] == indexes[False]


def test_shared_memory_is_used_only_where_the_photos_in_flight_fit(tmp_path):
    from phototag.local_runner import shared_memory_room

    assert shared_memory_room(2, 8, 1600, folder=str(tmp_path))  # 0.37 GB
    assert not shared_memory_room(2, 8, 10_000_000, folder=str(tmp_path))  # beyond any disk
    assert not shared_memory_room(2, 8, 1600, folder=str(tmp_path / "missing"))
    assert not shared_memory_room(0, 8, 1600, folder=str(tmp_path))  # decoded in the main process
