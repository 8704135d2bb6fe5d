"""The walk and the plan, on small trees the tests make."""

import os

from phototag.labels import AGE_GROUPS, EMOTIONS, age_group
from phototag.library import scan
from phototag.store import IndexedFile


def make(path, content=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return str(path)


def test_walk_picks_photo_extensions_and_skips_hidden(tmp_path):
    make(tmp_path / "a.JPG")
    make(tmp_path / "b.heic")
    make(tmp_path / "notes.txt")
    make(tmp_path / ".thumbnails" / "c.jpg")
    make(tmp_path / ".hidden.jpg")
    names = sorted(os.path.basename(f.path) for f in scan.walk([tmp_path]).files)
    assert names == ["a.JPG", "b.heic"]
    names = [os.path.basename(f.path) for f in scan.walk([tmp_path], include_hidden=True).files]
    assert sorted(names) == [".hidden.jpg", "a.JPG", "b.heic", "c.jpg"]


def test_folder_symlinks_are_followed_once(tmp_path):
    make(tmp_path / "lib" / "a.jpg")
    os.symlink(tmp_path / "lib", tmp_path / "lib" / "again")
    os.symlink(tmp_path / "elsewhere", tmp_path / "lib" / "linked")
    make(tmp_path / "elsewhere" / "b.jpg")
    paths = sorted(f.path for f in scan.walk([tmp_path / "lib"]).files)
    assert paths == [str(tmp_path / "lib" / "a.jpg"), str(tmp_path / "lib" / "linked" / "b.jpg")]


def row(id_, path, size=1, mtime=1, hash_="h", status="done"):
    return IndexedFile(id_, path, size, mtime, hash_, status, "m")


def test_plan_sorts_files_into_unchanged_changed_new_moved_gone(tmp_path):
    same = make(tmp_path / "same.jpg", b"1")
    changed = make(tmp_path / "changed.jpg", b"22")
    moved_to = make(tmp_path / "new-name.jpg", b"moved!")
    fresh = make(tmp_path / "fresh.jpg", b"fresh!")  # same size as the moved one, other bytes
    walked = scan.walk([tmp_path])
    st = {f.path: f for f in walked.files}
    indexed = {
        same: row(1, same, 1, st[same].mtime_ns),
        changed: row(2, changed, 2, 0),
        "/gone/old-name.jpg": row(3, str(tmp_path / "old-name.jpg"), 6, 0, scan.content_hash(moved_to)),
        "/other/root.jpg": row(4, "/other/root.jpg"),
    }
    indexed = {r.path: r for r in indexed.values()}
    plan = scan.plan(walked, indexed, [tmp_path])
    assert plan.unchanged == 1 and plan.changed == 1 and plan.new == 1
    assert sorted(e.path for e in plan.todo) == sorted([changed, fresh])
    assert [(r.id, e.path) for r, e in plan.moved] == [(3, moved_to)]
    assert plan.gone == []  # the other root's row is not touched


def test_plan_never_removes_photos_of_a_folder_it_could_not_list(tmp_path):
    walked = scan.WalkResult(files=[], unreadable_dirs=[(str(tmp_path / "usb"), "gone")])
    indexed = {p: row(i, p) for i, p in enumerate([str(tmp_path / "usb" / "a.jpg"), str(tmp_path / "b.jpg")])}
    plan = scan.plan(walked, indexed, [tmp_path])
    assert [r.path for r in plan.gone] == [str(tmp_path / "b.jpg")]


def test_error_rows_are_retried_when_asked(tmp_path):
    path = make(tmp_path / "bad.jpg")
    walked = scan.walk([tmp_path])
    entry = walked.files[0]
    indexed = {path: row(1, path, entry.size, entry.mtime_ns, status="error")}
    assert scan.plan(walked, indexed, [tmp_path]).todo == []
    assert scan.plan(walked, indexed, [tmp_path], retry_errors=True).todo == [entry]
    assert scan.plan(walked, {path: row(1, path, entry.size, entry.mtime_ns)}, [tmp_path],
                     reprocess=True).todo == [entry]


def test_labels_and_age_bins():
    assert EMOTIONS == ("smile", "sad", "angry", "anxiety", "surprise", "neutral")
    assert [age_group(y) for y in (0, 2, 3, 9, 10, 29, 30, 49, 50, 59, 60, 101)] == [
        "baby", "baby", "child", "child", "ten-twenty", "ten-twenty", "thirty-forty",
        "thirty-forty", "fifty", "fifty", "senior", "senior"]
    assert AGE_GROUPS[0] == "baby" and len(AGE_GROUPS) == 6
