"""The read-only side: ``search``, ``stats``, ``show``, ``export`` and ``report`` read the index
through this and can neither write nor migrate it."""

import os
import sqlite3
from dataclasses import dataclass

from .records import db_path_value, decode_json_columns, path_from_db
from .schema import check_version, connect


class Reader:
    """One phototag index, opened read-only."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.conn = connect(self.path, readonly=True)
        try:
            check_version(self.conn, self.path, readonly=True)
        except BaseException:
            self.conn.close()
            raise

    def close(self):
        self.conn.close()

    def finished_photos(self):
        """(path, number of faces) of every photo that was read, by path."""
        rows = self.conn.execute("SELECT path, n_faces FROM photos WHERE status = 'done' ORDER BY path")
        return [(path_from_db(path), faces) for path, faces in rows]

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
        photo["faces"] = [decode_json_columns(dict(face)) for face in faces]
        return photo



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


