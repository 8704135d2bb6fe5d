"""The index's schema: numbered migrations (``PRAGMA user_version``-style, kept in ``meta``),
opening a file as the writer or as a reader, and the checks both make.

Only the writer (an index run, under the run lock) ever changes the schema, inside ``BEGIN
IMMEDIATE`` with the version read again there, so two writers can never both migrate. Readers
open the file read-only: they never write, never migrate, and say what to do with an index
that is older or newer than this phototag.
"""

import os
import sqlite3
import stat
import sys
import time
import urllib.parse

SCHEMA_VERSION = 4
BUSY_SECONDS = 30  # how long a connection waits for another that holds the file

MIGRATIONS = {
    1: [
        """CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER,
            mtime_ns INTEGER,
            hash TEXT,
            width INTEGER,
            height INTEGER,
            orientation INTEGER,
            taken_at TEXT,
            camera TEXT,
            lat REAL,
            lon REAL,
            status TEXT NOT NULL CHECK (status IN ('done', 'error')),
            error TEXT,
            n_faces INTEGER NOT NULL DEFAULT 0,
            model TEXT,
            indexed_at TEXT
        )""",
        """CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            x1 REAL, y1 REAL, x2 REAL, y2 REAL,
            det_score REAL,
            landmarks TEXT,
            emotion TEXT,
            emotion_score REAL,
            emotion_probs TEXT,
            age_group TEXT,
            age_score REAL,
            age_probs TEXT,
            gate_face TEXT,
            gate_context TEXT,
            UNIQUE (photo_id, idx)
        )""",
        "CREATE INDEX faces_emotion ON faces (emotion, emotion_score)",
        "CREATE INDEX faces_age ON faces (age_group, age_score)",
        "CREATE INDEX photos_hash ON photos (hash)",
        "CREATE INDEX photos_status ON photos (status)",
        "CREATE INDEX photos_taken_at ON photos (taken_at)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT,
            finished_at TEXT,
            roots TEXT,
            status TEXT,
            model TEXT,
            seen INTEGER, unchanged INTEGER, new INTEGER, changed INTEGER,
            moved INTEGER, removed INTEGER, processed INTEGER, errors INTEGER, faces INTEGER
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    ],
    # Search filters on emotion and age together: one covering index answers both, and the
    # photo ids with them (docs/speed.md, `python -m bench search`).
    2: [
        "DROP INDEX faces_emotion",
        "DROP INDEX faces_age",
        "CREATE INDEX faces_emotion_age ON faces (emotion, age_group, photo_id)",
        "CREATE INDEX faces_age_photo ON faces (age_group, photo_id)",
    ],
    # Where the orientation came from when not from the photo itself ('sidecar').
    3: ["ALTER TABLE photos ADD COLUMN orientation_source TEXT"],
    # People: who each face is. The user's word (a name, a face confirmed or rejected, a name
    # read from XMP face regions) lives in people and face_verdicts, which no re-index replaces;
    # faces carry the machine's current answer and their embedding.
    4: [
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT,
            named_by TEXT CHECK (named_by IN ('user', 'xmp')),
            created_at TEXT
        )""",
        "CREATE INDEX people_name ON people (name COLLATE NOCASE)",
        """CREATE TABLE face_verdicts (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            verdict TEXT NOT NULL CHECK (verdict IN ('is', 'not')),
            photo_hash TEXT,
            path TEXT,
            x1 REAL, y1 REAL, x2 REAL, y2 REAL,
            embedding BLOB,
            source TEXT NOT NULL CHECK (source IN ('user', 'xmp')),
            name TEXT,
            created_at TEXT
        )""",
        "CREATE INDEX face_verdicts_hash ON face_verdicts (photo_hash)",
        "CREATE INDEX face_verdicts_path ON face_verdicts (path)",
        "CREATE INDEX face_verdicts_person ON face_verdicts (person_id)",
        "ALTER TABLE faces ADD COLUMN embedding BLOB",
        "ALTER TABLE faces ADD COLUMN person_id INTEGER REFERENCES people(id) ON DELETE SET NULL",
        "ALTER TABLE faces ADD COLUMN person_by TEXT",
        "ALTER TABLE faces ADD COLUMN too_small INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE faces ADD COLUMN sharpness REAL",
        "CREATE INDEX faces_person ON faces (person_id)",
        # Which settings and which identity network made a photo's rows: a copy of a photo is
        # reused only under the same settings, and photos indexed before people are embedded.
        "ALTER TABLE photos ADD COLUMN settings TEXT",
        "ALTER TABLE photos ADD COLUMN identity TEXT",
        # The sidecar read with the photo: a changed one is read again for names.
        "ALTER TABLE photos ADD COLUMN sidecar_mtime_ns INTEGER",
    ],
}



class StoreError(Exception):
    """The index cannot be opened, or its schema is not this phototag's."""


def create_private(path):
    """Create the database file readable by its owner only, before SQLite opens it; warn when
    an existing one can be read by others (it describes people)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    warn_if_shared(path, mode)


def warn_if_shared(path, mode):
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"phototag: warning: {path} can be read by other users (mode "
              f"{stat.S_IMODE(mode):o}); it describes the people in your photos: "
              f"chmod 600 {path}", file=sys.stderr)


def connect(path, readonly):
    """A connection to the index; read-only ones cannot write even by mistake."""
    try:
        if readonly:
            if not os.path.exists(path):
                raise StoreError(f"no index at {path}; run `phototag index PATH` first")
            uri = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
        else:
            create_private(path)
            # An index run writes from its writer thread, one thread at a time.
            conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
        if not readonly:
            use_write_ahead_log(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable phototag index: {exc}") from None


def use_write_ahead_log(conn):
    """Switch the file to write-ahead logging. While another connection holds a file that is
    still in rollback mode (writers opening an old index together), SQLite answers 'database
    is locked' at once instead of waiting on busy_timeout: wait here, as busy_timeout would."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def schema_version(conn, path):
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise StoreError(f"{path} is an SQLite file but not a phototag index") from None
        return 0
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable phototag index: {exc}") from None
    return int(row[0]) if row else 0


def check_version(conn, path, readonly):
    """The schema version; a newer one is refused, an older one is upgraded by a writer and
    refused by a reader with what to do."""
    try:
        return _check_version(conn, path, readonly)
    except sqlite3.OperationalError as exc:  # a full disk while upgrading, a locked file
        raise StoreError(f"cannot open {path}: {exc}") from None


def _check_version(conn, path, readonly):
    version = schema_version(conn, path)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}; this phototag knows up to "
                         f"{SCHEMA_VERSION}: upgrade phototag")
    if version < SCHEMA_VERSION:
        if readonly:
            raise StoreError(f"{path} was written by an older phototag (schema {version}, "
                             f"now {SCHEMA_VERSION}); run `phototag index` once to upgrade it")
        upgrade(conn, path)
    return SCHEMA_VERSION


def upgrade(conn, path):
    """Bring the schema up to date, each step in its own ``BEGIN IMMEDIATE`` transaction with
    the version read again inside it: a second writer that got there first is not repeated."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn, path)
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version + 1]:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(version + 1),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
