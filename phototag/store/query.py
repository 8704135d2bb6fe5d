"""The read-only side: ``search``, ``stats``, ``show``, ``export`` and ``report`` read the index
through this and can neither write nor migrate it."""

import math
import os
import sqlite3
from dataclasses import dataclass

from .records import db_path_value, decode_json_columns, path_from_db
from .schema import check_version, connect


def distance_km(lat, lon, lat2, lon2):
    """Great-circle distance, kilometres (haversine)."""
    lat, lon, lat2, lon2 = map(math.radians, (lat, lon, lat2, lon2))
    a = math.sin((lat2 - lat) / 2) ** 2 + math.cos(lat) * math.cos(lat2) * math.sin((lon2 - lon) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


class Reader:
    """One phototag index, opened read-only."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.conn = connect(self.path, readonly=True)
        self.conn.create_function("distance_km", 4, distance_km, deterministic=True)
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
            "too_small": one("SELECT count(*) FROM faces WHERE too_small = 1"),
            "people": one("SELECT count(*) FROM people"),
            "named_people": one("SELECT count(*) FROM people WHERE name IS NOT NULL"),
            "faces_in_people": one("SELECT count(*) FROM faces WHERE person_id IS NOT NULL"),
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

    def people(self):
        """Every person: id, name, who named them, faces, photos, and a sample face (the
        largest: path, face id, box); named people first, then by faces."""
        rows = self.conn.execute(
            "SELECT q.id, q.name, q.named_by, count(f.id), count(DISTINCT f.photo_id) "
            "FROM people q LEFT JOIN faces f ON f.person_id = q.id GROUP BY q.id "
            "ORDER BY q.name IS NULL, q.name COLLATE NOCASE, count(f.id) DESC, q.id").fetchall()
        samples = {
            person: (path_from_db(path), face_id, (x1, y1, x2, y2))
            for person, path, face_id, x1, y1, x2, y2 in self.conn.execute(
                "SELECT person_id, path, id, x1, y1, x2, y2 FROM ("
                " SELECT f.person_id, p.path, f.id, f.x1, f.y1, f.x2, f.y2, row_number() OVER ("
                "  PARTITION BY f.person_id ORDER BY (f.x2 - f.x1) * (f.y2 - f.y1) DESC) AS n"
                " FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.person_id IS NOT NULL"
                ") WHERE n = 1")}
        return [{"id": person, "name": name, "named_by": named_by, "faces": faces,
                 "photos": photos, "sample": samples.get(person, (None, None, None))[0],
                 "sample_face": samples.get(person, (None, None, None))[1],
                 "sample_box": samples.get(person, (None, None, None))[2]}
                for person, name, named_by, faces, photos in rows]

    def has_tags(self):
        """Whether any face of the index has emotion and age tags (a --faces-only index has none)."""
        return self.conn.execute("SELECT 1 FROM faces WHERE emotion IS NOT NULL LIMIT 1").fetchone() is not None

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
                "SELECT f.*, q.name AS person FROM faces f LEFT JOIN people q ON q.id = f.person_id "
                "WHERE f.photo_id = ? ORDER BY f.idx", (row["id"],)
            ).fetchall()
        finally:
            self.conn.row_factory = None
        photo["faces"] = [decode_json_columns(dict(face)) for face in faces]
        for face in photo["faces"]:
            face["too_small"] = bool(face["too_small"])
            face["embedding"] = face["embedding"] is not None  # whether it has one: no bytes in JSON
        return photo



SORTS = ("confidence", "date", "path")
UNKNOWN = "unknown"  # --person unknown: faces of no named person


@dataclass
class Query:
    """A ``phototag search``: OR within each list, AND across them, all on the same face;
    several people: photos holding all of them, each of their faces a row."""

    emotions: tuple = ()
    age_groups: tuple = ()
    people: tuple = ()  # names (case-insensitive), or UNKNOWN
    min_score: float = None  # the detector's confidence in the face
    min_confidence: float = None  # the asked tag's own score
    faces_min: int = None
    faces_max: int = None
    taken_after: str = None
    taken_before: str = None
    path_glob: str = None
    limit: int = None
    paths_only: bool = False
    sort: str = None  # confidence, date or path; None: confidence when a tag is asked, else path
    every: tuple = ()  # emotions every readable face of the photo shows (one of them)
    near: tuple = None  # (lat, lon, km): taken within km of that place
    camera: str = None  # text in the camera's make and model (case-insensitive)

    @property
    def order(self):
        return self.sort or ("confidence" if self.emotions or self.age_groups or self.every
                             else "path")

    def confidence(self):
        """The SQL of a face's confidence in what was asked (1 when nothing was); with
        ``every``, the photo's least sure readable face decides, then its least sharp one."""
        if self.every:
            return ("(SELECT min(g.emotion_score) FROM faces g WHERE g.photo_id = p.id AND "
                    "g.emotion IS NOT NULL) DESC, (SELECT min(coalesce(g.sharpness, 0)) FROM "
                    "faces g WHERE g.photo_id = p.id AND g.emotion IS NOT NULL)")
        scores = (["f.emotion_score"] if self.emotions else []) + \
                 (["f.age_score"] if self.age_groups else [])
        return " * ".join(scores) or "1.0"

    def _people(self, where, params):
        """The face is one of the people asked (or of no named person, for ``unknown``); the
        photo holds every person named."""
        named = list(dict.fromkeys(p for p in self.people if p.casefold() != UNKNOWN))
        either = []
        if named:
            either.append("f.person_id IN (SELECT id FROM people WHERE name COLLATE NOCASE IN "
                          f"({', '.join('?' * len(named))}))")
            params += named
        if len(named) < len(set(p.casefold() for p in self.people)):
            either.append("f.person_id IS NULL OR f.person_id IN (SELECT id FROM people "
                          "WHERE name IS NULL)")
        where.append("(" + " OR ".join(either) + ")")
        for name in named:
            where.append("EXISTS (SELECT 1 FROM faces g JOIN people q ON q.id = g.person_id "
                         "WHERE g.photo_id = p.id AND q.name = ? COLLATE NOCASE)")
            params.append(name)

    def sql(self):
        where, params = ["p.status = 'done'"], []
        if self.emotions:
            where.append(f"f.emotion IN ({', '.join('?' * len(self.emotions))})")
            params += self.emotions
        if self.age_groups:
            where.append(f"f.age_group IN ({', '.join('?' * len(self.age_groups))})")
            params += self.age_groups
        if self.people:
            self._people(where, params)
        if self.min_score is not None:
            where.append("f.det_score >= ?")
            params.append(self.min_score)
        if self.min_confidence is not None:
            if self.emotions:
                where.append("f.emotion_score >= ?")
                params.append(self.min_confidence)
            if self.age_groups:
                where.append("f.age_score >= ?")
                params.append(self.min_confidence)
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
            # Paths that are not UTF-8 are stored as bytes: compared as text, they match too.
            where.append("CAST(p.path AS TEXT) GLOB CAST(? AS TEXT)")
            params.append(db_path_value(self.path_glob))
        if self.every:
            marks = ", ".join("?" * len(self.every))
            where.append("f.emotion IS NOT NULL")
            where.append("p.id IN (SELECT photo_id FROM faces GROUP BY photo_id HAVING "
                         f"sum(emotion IS NOT NULL) > 0 AND sum(emotion NOT IN ({marks})) = 0)")
            params += self.every
        if self.near:
            lat, lon, km = self.near
            where.append("p.lat IS NOT NULL AND distance_km(p.lat, p.lon, ?, ?) <= ?")
            params += [lat, lon, km]
        if self.camera:
            where.append("p.camera LIKE ? ESCAPE '\\'")
            escaped = self.camera.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        condition = " AND ".join(where)
        confidence = self.confidence()
        if self.paths_only:
            date = "p.taken_at IS NULL, p.taken_at DESC, p.path"
            if self.order == "confidence" and not self.every:
                # A photo ranks by its best face.
                sql = (f"SELECT p.path, max({confidence}) AS best FROM faces f "
                       f"JOIN photos p ON p.id = f.photo_id WHERE {condition} GROUP BY p.id "
                       "ORDER BY best DESC, p.path")
            else:
                # The photos of the matching faces, by the index on faces (no grouping).
                order = {"confidence": f"{confidence} DESC, p.path", "date": date,
                         "path": "p.path"}[self.order]
                sql = ("SELECT p.path FROM photos p WHERE p.id IN (SELECT f.photo_id FROM faces f "
                       f"JOIN photos p ON p.id = f.photo_id WHERE {condition}) ORDER BY {order}")
        else:
            order = {"confidence": f"{confidence} DESC, p.path, f.idx",
                     "date": "p.taken_at IS NULL, p.taken_at DESC, p.path, f.idx",
                     "path": "p.path, f.idx"}[self.order]
            sql = (
                "SELECT p.path, f.idx, f.x1, f.y1, f.x2, f.y2, f.det_score, f.emotion, "
                "f.emotion_score, f.age_group, f.age_score, p.taken_at, p.n_faces, f.id, "
                "f.person_id, (SELECT name FROM people WHERE id = f.person_id), f.too_small, "
                "f.sharpness "
                f"FROM faces f JOIN photos p ON p.id = f.photo_id WHERE {condition} "
                f"ORDER BY {order}"
            )
        if self.limit is not None:
            sql += " LIMIT ?"
            params.append(self.limit)
        return sql, params


def _search_result(row):
    (path, idx, x1, y1, x2, y2, det, emotion, e_score, age, a_score, taken_at, n_faces, face_id,
     person_id, person, too_small, sharpness) = row
    return {
        "path": path_from_db(path),
        "face": idx,
        "face_id": face_id,
        "box": [round(v, 1) for v in (x1, y1, x2, y2)],
        "det_score": round(det, 4),
        "emotion": emotion,
        "emotion_score": None if e_score is None else round(e_score, 4),
        "age_group": age,
        "age_score": None if a_score is None else round(a_score, 4),
        "too_small": bool(too_small),
        "sharpness": sharpness,
        "person": person,
        "person_id": person_id,
        "taken_at": taken_at,
        "faces_in_photo": n_faces,
    }
