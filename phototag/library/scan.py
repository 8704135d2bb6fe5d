"""Walk the library, stat every photo, and diff what is on disk against the index.

The walk never opens a photo: an unchanged file (same size and mtime) costs one ``stat``.
"""

import errno
import hashlib
import os
import stat
from stat import S_ISDIR, S_ISREG
from dataclasses import dataclass, field
from typing import NamedTuple

from ..files import file_sha256
from .formats import wanted_extensions
from .sidecar import sidecars_of


# Named tuples, not dataclasses: a no-change rerun makes one of each per photo in the library,
# and their construction is a measurable part of its cost (docs/speed.md, `python -m bench rescan`).
class FileEntry(NamedTuple):
    """One photo file as seen by the walk; ``error`` is set when it cannot be read as a file."""

    path: str
    size: int
    mtime_ns: int
    error: str = None
    sidecar_mtime_ns: int = None  # its XMP sidecar's (``sidecar.sidecars_of``), if it has one


def sidecar_mtime(photo_path, stat_of):
    """The modification time of the sidecar decoding reads for ``photo_path`` (the first of
    ``sidecars_of`` there is), or None; ``stat_of(path)`` stats a candidate or raises OSError."""
    for candidate in sidecars_of(photo_path):
        try:
            return stat_of(candidate).st_mtime_ns
        except OSError:
            continue
    return None


@dataclass
class WalkResult:
    files: list = field(default_factory=list)
    # Folders that could not be listed: their photos must not be taken for deleted ones.
    unreadable_dirs: list = field(default_factory=list)


@dataclass
class Plan:
    """What an index run has to do."""

    todo: list = field(default_factory=list)  # FileEntry: new, changed, or retried
    moved: list = field(default_factory=list)  # (indexed row, FileEntry): path changes, faces kept
    gone: list = field(default_factory=list)  # indexed rows whose file has disappeared
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    reprocessed: int = 0  # unchanged, redone because --reprocess asked
    retried: int = 0  # unchanged failures, tried again because --retry-errors asked
    skipped_present: int = 0  # indexed files the walk skipped that are still on disk (hidden)
    # (indexed row, FileEntry): unchanged photos whose XMP sidecar appeared, changed or went:
    # the names in their face regions are read again (no model runs)
    sidecars: list = field(default_factory=list)


content_hash = file_sha256  # a photo's identity in the index: the sha256 of its bytes


def _link_error(path):
    """Why a symbolic link cannot be followed, in words."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return f"broken symbolic link (points to {os.readlink(path)!r})"
        return f"cannot follow symbolic link: {exc.strerror}"
    return None


def _file_entry(path, st):
    if not stat.S_ISREG(st.st_mode):
        return FileEntry(path, 0, st.st_mtime_ns, "not a regular file")
    return FileEntry(path, st.st_size, st.st_mtime_ns)


def walk(roots, include_hidden=False, extensions=None):
    """Every photo file under ``roots`` (files or folders), in the order the file system lists
    them (``plan`` sorts what there is to do).

    Folder symlinks are followed once each; a folder reached twice (a loop) is skipped.
    """
    extensions = extensions or wanted_extensions()
    result = WalkResult()
    files = result.files
    new_entry = tuple.__new__  # a FileEntry without the Python-level __new__: 10,000s per walk
    seen_dirs = set()

    def visit_file(path):
        try:
            st = os.stat(path)
        except OSError:
            try:
                st = os.lstat(path)
            except OSError as exc:
                result.files.append(FileEntry(path, 0, 0, f"cannot stat: {exc.strerror}"))
                return
            result.files.append(FileEntry(path, 0, st.st_mtime_ns, _link_error(path)))
            return
        result.files.append(_file_entry(path, st)._replace(sidecar_mtime_ns=sidecar_mtime(path, os.stat)))

    def visit_dir(path):
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                return
            seen_dirs.add(key)
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            result.unreadable_dirs.append((path, exc.strerror or str(exc)))
            return
        subdirs = []
        sidecars = {}
        first = len(files)
        for entry in entries:
            name = entry.name
            if not include_hidden and name[0] == ".":
                continue
            dot = name.rfind(".")
            if dot > 0 and name[dot:].lower() == ".xmp":
                sidecars[entry.path] = entry
                continue
            if dot > 0 and name[dot:].lower() in extensions:
                # A photo by its name: one stat (following links) says file or folder.
                try:
                    st = entry.stat()
                except OSError:
                    visit_file(entry.path)  # a link that cannot be followed: say why
                    continue
                if S_ISREG(st.st_mode):
                    files.append(new_entry(FileEntry, (entry.path, st.st_size, st.st_mtime_ns, None, None)))
                elif S_ISDIR(st.st_mode):
                    subdirs.append(entry.path)
                else:
                    files.append(_file_entry(entry.path, st))
                continue
            try:
                if entry.is_dir():  # follows symlinks
                    subdirs.append(entry.path)
            except OSError:
                pass
        if sidecars:  # a photo's sidecar changing is news: names in its face regions
            def stat_of(candidate):
                if candidate not in sidecars:
                    raise FileNotFoundError(candidate)
                return sidecars[candidate].stat()

            for k in range(first, len(files)):
                mtime = sidecar_mtime(files[k].path, stat_of)
                if mtime is not None:
                    files[k] = files[k]._replace(sidecar_mtime_ns=mtime)
        for sub in subdirs:
            visit_dir(sub)

    for root in roots:
        root = os.path.abspath(root)
        if os.path.isdir(root):
            visit_dir(root)
        elif os.path.lexists(root):
            visit_file(root)
        else:
            result.unreadable_dirs.append((root, "no such file or folder"))
    return result


def fingerprint(walked):
    """A digest of everything ``plan`` reads from a walk: the same digest over an unchanged
    index means there is nothing to do. Taken in walk order: a folder listed in another order
    only costs one full comparison, never a wrong answer."""
    rows = "\n".join([f"{p}\t{s}\t{m}\t{e}\t{x}" for p, s, m, e, x in walked.files])
    shadowed = "\n".join(f"{d}\t{reason}" for d, reason in sorted(walked.unreadable_dirs))
    digest = hashlib.sha1(rows.encode("utf-8", "surrogateescape"))
    digest.update(b"\0" + shadowed.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def is_under(path, roots):
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def plan(walked, indexed, roots, reprocess=False, retry_errors=False, hash_file=content_hash,
         stored_hashes=None, redone=frozenset()):
    """Compare the walk with the index rows and decide what to (re)do.

    ``indexed`` maps path → the index's row (``store.IndexedFile``) for every row in the index; only rows under ``roots``
    can be found gone, and none inside a folder that could not be listed. Rows may come without
    their hash: ``stored_hashes(ids)`` then gives those of vanished photos (move detection).
    ``redone``: ids a stopped ``reprocess`` already redid; they are not redone again.
    """
    roots = [os.path.abspath(r) for r in roots]
    shadowed = [d for d, _ in walked.unreadable_dirs]
    result = Plan()
    seen = set()
    fresh = []
    for entry in walked.files:
        seen.add(entry.path)
        row = indexed.get(entry.path)
        if row is None:
            fresh.append(entry)
            continue
        same = row.size == entry.size and row.mtime_ns == entry.mtime_ns
        again = reprocess and row.id not in redone
        if same and not again and (row.status == "done" or not retry_errors):
            result.unchanged += 1
            if row.status == "done" and row.sidecar_mtime_ns != entry.sidecar_mtime_ns:
                result.sidecars.append((row, entry))
        elif same and again:
            result.reprocessed += 1
            result.todo.append(entry)
        elif same:
            result.retried += 1
            result.todo.append(entry)
        else:
            result.changed += 1
            result.todo.append(entry)

    # Gone means gone from the disk: a file this walk skipped by choice (a hidden one, after a
    # --hidden run) is still there and keeps its rows.
    unwalked = [
        row
        for path, row in indexed.items()
        if path not in seen and is_under(path, roots) and not is_under(path, shadowed)
    ]
    gone = [row for row in unwalked if not os.path.lexists(row.path)]
    result.skipped_present = len(unwalked) - len(gone)
    # A new path holding the bytes of a vanished photo is that photo, moved: keep its faces.
    # Only files whose size matches some vanished photo are hashed.
    by_size = {}
    candidates = [row for row in gone if row.status == "done"]
    if stored_hashes and candidates and fresh:
        known = stored_hashes([row.id for row in candidates])
        candidates = [row._replace(hash=known.get(row.id)) for row in candidates]
    for row in candidates:
        if row.hash:
            by_size.setdefault(row.size, []).append(row)
    for entry in fresh:
        candidates = by_size.get(entry.size) if entry.error is None and not reprocess else None
        match = None
        if candidates:
            try:
                digest = hash_file(entry.path)
            except OSError:
                digest = None
            match = next((row for row in candidates if row.hash == digest), None)
        if match is not None:
            candidates.remove(match)
            result.moved.append((match, entry))
        else:
            result.new += 1
            result.todo.append(entry)
    moved_ids = {row.id for row, _ in result.moved}
    result.gone = [row for row in gone if row.id not in moved_ids]
    result.todo.sort(key=lambda entry: entry.path)
    return result
