"""The writing side, used by an index run under the run lock: photos and faces one batch per
transaction, moves and removals, the run records and the walk cache. It alone migrates."""

import json
import os
from contextlib import contextmanager

from . import people_rows
from ..boxes import matched_boxes
from .records import (FACE_COLUMNS, PHOTO_COLUMNS, IndexedFile, db_path_value, face_row, now,
                      path_from_db, printable_path)
from .schema import check_version, connect


class Writer:
    """One phototag index, opened for an index run (created 0600 if new, migrated if old)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.conn = connect(self.path, readonly=False)
        try:
            check_version(self.conn, self.path, readonly=False)
        except BaseException:
            self.conn.close()
            raise

    def close(self):
        self.conn.close()

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - SQLite may have rolled back already (disk full)
                pass
            raise
        self.conn.execute("COMMIT")

    # -- what index runs read and write ------------------------------------------------------

    def indexed_files(self):
        """Every photo row as an IndexedFile, by path; ``hash`` and ``model`` are left out
        (None): a rerun compares sizes and times, and asks ``hashes`` only for vanished photos."""
        rows = self.conn.execute(
            "SELECT id, path, size, mtime_ns, status, sidecar_mtime_ns FROM photos").fetchall()
        make = tuple.__new__
        files = {}
        for id_, path, size, mtime_ns, status, sidecar in rows:
            if type(path) is bytes:  # a name that is not UTF-8
                path = path_from_db(path)
            files[path] = make(IndexedFile, (id_, path, size, mtime_ns, None, status, None, sidecar))
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
        under, values = self._under(roots)
        return dict(self.conn.execute(
            f"SELECT model, count(*) FROM photos WHERE {under} AND status = 'done' "
            "AND model IS NOT ? GROUP BY model", (*values, model)).fetchall())

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

    def copy_sources(self, model, settings):
        """size → [(sha256, path, the row's facts)] of the photos indexed with ``model`` and
        ``settings``: what a new file of that size may be a byte-identical copy of."""
        facts = ("width", "height", "orientation", "taken_at", "camera", "lat", "lon",
                 "n_faces", "identity", "orientation_source")
        rows = self.conn.execute(
            f"SELECT size, hash, path, {', '.join(facts)} FROM photos WHERE status = 'done' "
            "AND model = ? AND settings = ? AND hash IS NOT NULL", (model, settings))
        sources = {}
        for size, digest, path, *values in rows:
            sources.setdefault(size, []).append((digest, path_from_db(path), dict(zip(facts, values))))
        return sources

    def _under(self, roots):
        """SQL condition and values: a photo's path under one of ``roots``."""
        parts, values = [], []
        for root in roots:
            prefix = root.rstrip("/") + "/"
            parts.append("(path >= ? AND path < ?)")  # a range on the unique path index
            values += [prefix, prefix[:-1] + "0"]  # ('0' follows '/')
        return "(" + " OR ".join(parts or ["1"]) + ")", values

    def photos_to_embed(self, roots, exists=False):
        """Photos under ``roots`` whose faces no identity network has seen (indexed before
        phototag knew people, or with --no-people): [(IndexedFile, [(face id, landmarks,
        box side)])]; with ``exists``, only whether there is one."""
        under, values = self._under(roots)
        sql = (f"SELECT id, path, size, mtime_ns, hash FROM photos WHERE {under} AND "
               "status = 'done' AND n_faces > 0 AND identity IS NULL")
        if exists:
            return self.conn.execute(sql + " LIMIT 1", values).fetchone() is not None
        photos = []
        for id_, path, size, mtime_ns, digest in self.conn.execute(sql + " ORDER BY path", values).fetchall():
            faces = [(face_id, json.loads(landmarks), min(x2 - x1, y2 - y1))
                     for face_id, landmarks, x1, y1, x2, y2 in self.conn.execute(
                         "SELECT id, landmarks, x1, y1, x2, y2 FROM faces WHERE photo_id = ? "
                         "ORDER BY idx", (id_,))]
            photos.append((IndexedFile(id_, path_from_db(path), size, mtime_ns, digest, "done", None),
                           faces))
        return photos

    def reread_names(self, photo_id, named_regions, sidecar_mtime_ns):
        """A photo whose sidecar changed: the names its face regions give now, as verdicts."""
        from .records import PhotoRecord

        path, digest, size, mtime_ns = self.conn.execute(
            "SELECT path, hash, size, mtime_ns FROM photos WHERE id = ?", (photo_id,)).fetchone()
        record = PhotoRecord(path_from_db(path), size, mtime_ns, "done", hash=digest,
                             named_regions=named_regions)
        with self.transaction():
            people_rows.record_named_regions(self.conn, record, now())
            self.conn.execute("UPDATE photos SET sidecar_mtime_ns = ? WHERE id = ?",
                              (sidecar_mtime_ns, photo_id))

    def photo_frame(self, photo_id):
        """(orientation, upright width, height) the index records for a photo."""
        return self.conn.execute("SELECT orientation, width, height FROM photos WHERE id = ?",
                                 (photo_id,)).fetchone()

    def write_embeddings(self, photo_id, identity, faces):
        """The identity of one photo's faces: ``faces`` [(face id, embedding, sharpness)]."""
        with self.transaction():
            self.conn.executemany("UPDATE faces SET embedding = ?, sharpness = ? WHERE id = ?",
                                  [(blob, sharp, face_id) for face_id, blob, sharp in faces])
            self.conn.execute("UPDATE photos SET identity = ? WHERE id = ?", (identity, photo_id))

    def reprocess_started(self, key):
        """When the --reprocess over ``key`` that is not finished yet began (started now if
        none is under way)."""
        with self.transaction():
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?",
                                    (f"reprocess:{key}",)).fetchone()
            if row:
                return row[0]
            stamp = now()
            self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"reprocess:{key}", stamp))
            return stamp

    def redone_since(self, stamp):
        """Ids of the photos written at or after ``stamp``."""
        return frozenset(i for (i,) in self.conn.execute(
            "SELECT id FROM photos WHERE indexed_at >= ?", (stamp,)))

    def reprocess_finished(self, key):
        with self.transaction():
            self.conn.execute("DELETE FROM meta WHERE key = ?", (f"reprocess:{key}",))

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
        """Write a batch of photos with their faces in one transaction, replacing older rows.
        A face that is where a replaced face was (the same photo indexed again, by new weights
        or settings) keeps that face's person; names the photo's XMP gives are recorded."""
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
                source = None
                if record.faces_from is not None:
                    source = self.conn.execute(
                        "SELECT id, n_faces, identity FROM photos WHERE path = ? AND status = 'done'",
                        (db_path_value(record.faces_from),)).fetchone()
                    if source is None:  # the original left the index meanwhile: run it again
                        raise ValueError(f"no indexed photo {record.faces_from} to copy faces from")
                    values["n_faces"], values["identity"] = source[1], source[2]
                row = self.conn.execute(
                    "SELECT id FROM photos WHERE path = ?", (values["path"],)
                ).fetchone()
                earlier = []
                if row:
                    photo_id = row[0]
                    earlier = self.conn.execute(
                        "SELECT x1, y1, x2, y2, person_id, person_by FROM faces "
                        "WHERE photo_id = ? AND person_id IS NOT NULL", (photo_id,)).fetchall()
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
                if source is not None:
                    columns = ", ".join(FACE_COLUMNS)
                    self.conn.execute(f"INSERT INTO faces (photo_id, {columns}) "
                                      f"SELECT ?, {columns} FROM faces WHERE photo_id = ?",
                                      (photo_id, source[0]))
                else:
                    self.conn.executemany(
                        f"INSERT INTO faces (photo_id, {', '.join(FACE_COLUMNS)}) "
                        f"VALUES (?{', ?' * len(FACE_COLUMNS)})",
                        [face_row(photo_id, idx, face) for idx, face in enumerate(record.faces)],
                    )
                if earlier:
                    self._keep_people(photo_id, earlier)
                if record.named_regions is not None and record.status == "done":
                    people_rows.record_named_regions(self.conn, record, stamp)

    def _keep_people(self, photo_id, earlier):
        """The new faces of a photo written again take the person of the face they replace."""
        faces = self.conn.execute("SELECT id, x1, y1, x2, y2 FROM faces WHERE photo_id = ?",
                                  (photo_id,)).fetchall()
        for i, j in matched_boxes([e[:4] for e in earlier], [f[1:] for f in faces]):
            self.conn.execute("UPDATE faces SET person_id = ?, person_by = ? WHERE id = ?",
                              (earlier[i][4], earlier[i][5], faces[j][0]))

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

