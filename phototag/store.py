"""The SQLite index: schema, migrations, writes and queries. No torch here.

One file holds ``photos``, ``faces``, ``runs`` and ``meta``. It is created with mode 0600 (it
describes people), runs in WAL mode so ``search`` works while an ``index`` run writes, and every
batch of photos is written in one transaction, so a killed run leaves whole photos or none.
"""

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .library.scan import IndexedFile

SCHEMA_VERSION = 3

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
    # photo ids with them (30 ms instead of 2 s over a million faces, bench/search.py).
    2: [
        "DROP INDEX faces_emotion",
        "DROP INDEX faces_age",
        "CREATE INDEX faces_emotion_age ON faces (emotion, age_group, photo_id)",
        "CREATE INDEX faces_age_photo ON faces (age_group, photo_id)",
    ],
    # Where the orientation came from when not from the photo itself ('sidecar').
    3: ["ALTER TABLE photos ADD COLUMN orientation_source TEXT"],
}

PHOTO_COLUMNS = (
    "path", "size", "mtime_ns", "hash", "width", "height", "orientation", "taken_at", "camera",
    "lat", "lon", "status", "error", "n_faces", "model", "indexed_at", "orientation_source",
)
FACE_COLUMNS = (
    "idx", "x1", "y1", "x2", "y2", "det_score", "landmarks", "emotion", "emotion_score",
    "emotion_probs", "age_group", "age_score", "age_probs", "gate_face", "gate_context",
)


class StoreError(Exception):
    """The index cannot be opened or is newer than this phototag."""


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def db_path_value(path):
    """Paths are text; a name that is not valid UTF-8 is kept as its raw bytes (a BLOB)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def path_from_db(value):
    return os.fsdecode(value) if isinstance(value, bytes) else value


def printable_path(path):
    """A path safe to print: undecodable bytes shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class Face:
    box: tuple
    det_score: float
    landmarks: list
    emotion: str = None
    emotion_score: float = None
    emotion_probs: dict = None
    age_group: str = None
    age_score: float = None
    age_probs: dict = None
    gate_face: dict = None
    gate_context: dict = None


@dataclass
class PhotoRecord:
    path: str
    size: int
    mtime_ns: int
    status: str
    hash: str = None
    width: int = None
    height: int = None
    orientation: int = None
    taken_at: str = None
    camera: str = None
    lat: float = None
    lon: float = None
    error: str = None
    model: str = None
    orientation_source: str = None
    faces: list = field(default_factory=list)


def _json(value):
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _create_private(path):
    """Create the database file readable by its owner only, before SQLite opens it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


class Index:
    """One phototag database."""

    def __init__(self, path, readonly=False):
        self.path = os.fspath(path)
        if readonly:
            if not os.path.exists(self.path):
                raise StoreError(f"no index at {self.path}; run `phototag index PATH` first")
        else:
            _create_private(self.path)
        try:
            # An index run writes from its writer thread, one thread at a time.
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable phototag index: {exc}") from None
        self.conn = conn
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this phototag knows up to "
                f"{SCHEMA_VERSION}: upgrade phototag"
            )
        if version < SCHEMA_VERSION:
            self.migrate(version)  # an older phototag's index: brought up to date, rows kept

    @property
    def db(self):
        """The same connection as a ``sqlite_utils.Database``, for ad-hoc inspection. Imported
        on demand: ``search`` must start fast, and sqlite-utils pulls in numpy."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self):
        self.conn.close()

    def schema_version(self):
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            if self.db.table_names():
                raise StoreError(f"{self.path} is an SQLite file but not a phototag index") from None
            return 0
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable phototag index: {exc}") from None
        return int(row[0]) if row else 0

    def migrate(self, version):
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in MIGRATIONS[number]:
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(number),),
                )

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- what index runs read and write ------------------------------------------------------

    def indexed_files(self):
        """Every photo row as an IndexedFile, by path; ``hash`` and ``model`` are left out
        (None): a rerun compares sizes and times, and asks ``hashes`` only for vanished photos."""
        rows = self.conn.execute("SELECT id, path, size, mtime_ns, status FROM photos").fetchall()
        make = tuple.__new__
        files = {}
        for id_, path, size, mtime_ns, status in rows:
            if type(path) is bytes:  # a name that is not UTF-8
                path = path_from_db(path)
            files[path] = make(IndexedFile, (id_, path, size, mtime_ns, None, status, None))
        return files

    def hashes(self, ids):
        """Content hash of each photo id."""
        result = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            result.update(self.conn.execute(
                f"SELECT id, hash FROM photos WHERE id IN ({', '.join('?' * len(part))})", part))
        return result

    def other_models(self, roots, model):
        """Finished photos under ``roots`` whose rows other weights made: model id → count."""
        counts = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            # Paths under the root: a range on the unique path index ('0' follows '/').
            rows = self.conn.execute(
                "SELECT model, count(*) FROM photos WHERE path >= ? AND path < ? "
                "AND status = 'done' AND model IS NOT ? GROUP BY model",
                (prefix, prefix[:-1] + "0", model),
            )
            for name, count in rows:
                counts[name] = counts.get(name, 0) + count
        return counts

    def _changed(self):
        """Count a change to photos or faces (inside the transaction making it)."""
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def generation(self):
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def walk_unchanged(self, key, digest):
        """Whether the last finished run over ``key`` saw the same walk, and nothing has changed
        the index since."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (f"walk:{key}",)).fetchone()
        return row is not None and row[0] == f"{digest} {self.generation()}"

    def remember_walk(self, key, digest):
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (f"walk:{key}", f"{digest} {self.generation()}"),
            )

    def apply_moves(self, moves):
        """Give moved photos their new path (and mtime); their faces stay as they are."""
        with self.transaction():
            self._changed()
            for row_id, path, size, mtime_ns in moves:
                self.conn.execute(
                    "UPDATE photos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                    (db_path_value(path), size, mtime_ns, row_id),
                )

    def remove(self, ids):
        with self.transaction():
            self._changed()
            self.conn.executemany("DELETE FROM photos WHERE id = ?", [(i,) for i in ids])

    def write_photos(self, records):
        """Write a batch of photos with their faces in one transaction, replacing older rows."""
        stamp = now()
        with self.transaction():
            self._changed()
            for record in records:
                values = {
                    name: getattr(record, name, None)
                    for name in PHOTO_COLUMNS
                    if name not in ("n_faces", "indexed_at")
                }
                values["path"] = db_path_value(record.path)
                values["n_faces"] = len(record.faces)
                values["indexed_at"] = stamp
                row = self.conn.execute(
                    "SELECT id FROM photos WHERE path = ?", (values["path"],)
                ).fetchone()
                if row:
                    photo_id = row[0]
                    self.conn.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
                    assignments = ", ".join(f"{name} = :{name}" for name in values)
                    self.conn.execute(
                        f"UPDATE photos SET {assignments} WHERE id = :id", {**values, "id": photo_id}
                    )
                else:
                    names = ", ".join(values)
                    marks = ", ".join(f":{name}" for name in values)
                    photo_id = self.conn.execute(
                        f"INSERT INTO photos ({names}) VALUES ({marks})", values
                    ).lastrowid
                self.conn.executemany(
                    f"INSERT INTO faces (photo_id, {', '.join(FACE_COLUMNS)}) "
                    f"VALUES (?{', ?' * len(FACE_COLUMNS)})",
                    [_face_row(photo_id, idx, face) for idx, face in enumerate(record.faces)],
                )

    def start_run(self, roots, model):
        with self.transaction():
            return self.conn.execute(
                "INSERT INTO runs (started_at, roots, status, model) VALUES (?, ?, 'running', ?)",
                (now(), json.dumps([printable_path(r) for r in roots]), model),
            ).lastrowid

    def finish_run(self, run_id, status, counts):
        columns = ", ".join(f"{name} = :{name}" for name in counts)
        with self.transaction():
            self.conn.execute(
                f"UPDATE runs SET finished_at = :finished_at, status = :status"
                f"{', ' + columns if columns else ''} WHERE id = :id",
                {**counts, "finished_at": now(), "status": status, "id": run_id},
            )
        self.conn.execute("PRAGMA optimize")  # keeps the query planner's statistics current

    # -- what search, stats and show read ----------------------------------------------------

    def search(self, query):
        sql, params = query.sql()
        for row in self.conn.execute(sql, params):
            yield _search_result(row) if not query.paths_only else path_from_db(row[0])

    def stats(self):
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        counts = lambda column: dict(  # noqa: E731
            self.conn.execute(
                f"SELECT coalesce({column}, '(none)'), count(*) FROM faces "
                f"GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )
        last_run = self.conn.execute(
            "SELECT started_at, finished_at, status, processed, errors, faces FROM runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return {
            "photos": one("SELECT count(*) FROM photos"),
            "done": one("SELECT count(*) FROM photos WHERE status = 'done'"),
            "errors": one("SELECT count(*) FROM photos WHERE status = 'error'"),
            "photos_with_faces": one("SELECT count(*) FROM photos WHERE n_faces > 0"),
            "faces": one("SELECT count(*) FROM faces"),
            "emotions": counts("emotion"),
            "age_groups": counts("age_group"),
            "models": dict(
                self.conn.execute(
                    "SELECT coalesce(model, '(none)'), count(*) FROM photos "
                    "WHERE status = 'done' GROUP BY 1"
                ).fetchall()
            ),
            "last_run": dict(
                zip(("started_at", "finished_at", "status", "processed", "errors", "faces"),
                    last_run)
            ) if last_run else None,
        }

    def errors(self, limit=None):
        rows = self.conn.execute(
            "SELECT path, error FROM photos WHERE status = 'error' ORDER BY path"
            + (" LIMIT ?" if limit else ""),
            (limit,) if limit else (),
        )
        return [(path_from_db(path), error) for path, error in rows]

    def photo(self, path):
        """One photo's row and faces, or None."""
        self.conn.row_factory = sqlite3.Row
        try:
            row = self.conn.execute(
                "SELECT * FROM photos WHERE path = ?", (db_path_value(path),)
            ).fetchone()
            if row is None:
                return None
            photo = dict(row)
            photo["path"] = path_from_db(photo["path"])
            faces = self.conn.execute(
                "SELECT * FROM faces WHERE photo_id = ? ORDER BY idx", (row["id"],)
            ).fetchall()
        finally:
            self.conn.row_factory = None
        photo["faces"] = [_decode_json_columns(dict(face)) for face in faces]
        return photo


JSON_COLUMNS = ("landmarks", "emotion_probs", "age_probs", "gate_face", "gate_context")


def _decode_json_columns(row):
    for name in JSON_COLUMNS:
        if row.get(name) is not None:
            row[name] = json.loads(row[name])
    return row


@dataclass
class Query:
    """A ``phototag search``: OR within each list, AND across them, all on the same face."""

    emotions: tuple = ()
    age_groups: tuple = ()
    min_score: float = None
    faces_min: int = None
    faces_max: int = None
    taken_after: str = None
    taken_before: str = None
    path_glob: str = None
    limit: int = None
    paths_only: bool = False

    def sql(self):
        where, params = ["p.status = 'done'"], []
        if self.emotions:
            where.append(f"f.emotion IN ({', '.join('?' * len(self.emotions))})")
            params += self.emotions
        if self.age_groups:
            where.append(f"f.age_group IN ({', '.join('?' * len(self.age_groups))})")
            params += self.age_groups
        if self.min_score is not None:
            # The score of what was asked for; with no emotion or age asked, the face's own.
            if self.emotions:
                where.append("f.emotion_score >= ?")
                params.append(self.min_score)
            if self.age_groups:
                where.append("f.age_score >= ?")
                params.append(self.min_score)
            if not self.emotions and not self.age_groups:
                where.append("f.det_score >= ?")
                params.append(self.min_score)
        if self.faces_min is not None:
            where.append("p.n_faces >= ?")
            params.append(self.faces_min)
        if self.faces_max is not None:
            where.append("p.n_faces <= ?")
            params.append(self.faces_max)
        if self.taken_after:
            where.append("p.taken_at >= ?")
            params.append(self.taken_after)
        if self.taken_before:
            where.append("p.taken_at < ?")
            params.append(self.taken_before)
        if self.path_glob:
            where.append("p.path GLOB ?")
            params.append(self.path_glob)
        condition = " AND ".join(where)
        if self.paths_only:
            sql = (
                "SELECT p.path FROM photos p WHERE p.id IN (SELECT f.photo_id FROM faces f "
                f"JOIN photos p ON p.id = f.photo_id WHERE {condition}) ORDER BY p.path"
            )
        else:
            sql = (
                "SELECT p.path, f.idx, f.x1, f.y1, f.x2, f.y2, f.det_score, f.emotion, "
                "f.emotion_score, f.age_group, f.age_score, p.taken_at, p.n_faces "
                f"FROM faces f JOIN photos p ON p.id = f.photo_id WHERE {condition} "
                "ORDER BY p.path, f.idx"
            )
        if self.limit is not None:
            sql += " LIMIT ?"
            params.append(self.limit)
        return sql, params


def _search_result(row):
    path, idx, x1, y1, x2, y2, det, emotion, e_score, age, a_score, taken_at, n_faces = row
    return {
        "path": path_from_db(path),
        "face": idx,
        "box": [round(v, 1) for v in (x1, y1, x2, y2)],
        "det_score": round(det, 4),
        "emotion": emotion,
        "emotion_score": None if e_score is None else round(e_score, 4),
        "age_group": age,
        "age_score": None if a_score is None else round(a_score, 4),
        "taken_at": taken_at,
        "faces_in_photo": n_faces,
    }


def _face_row(photo_id, idx, face):
    x1, y1, x2, y2 = face.box
    return (
        photo_id, idx, x1, y1, x2, y2, face.det_score, _json(face.landmarks),
        face.emotion, face.emotion_score, _json(face.emotion_probs),
        face.age_group, face.age_score, _json(face.age_probs),
        _json(face.gate_face), _json(face.gate_context),
    )
