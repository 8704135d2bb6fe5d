"""The people tables as rows: persons and their names, the user's word about single faces
(``face_verdicts``), and the faces the people stage places. SQL only; what to do with them is
``phototag.people``'s."""

from ..boxes import box_iou
from .records import db_path_value, now, path_from_db


def person_named(conn, name, named_by, stamp=None):
    """The person called ``name`` (case-insensitive; the one named first), made if none is."""
    row = conn.execute("SELECT id FROM people WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1",
                       (name,)).fetchone()
    if row:
        return row[0]
    return new_person(conn, stamp, name=name, named_by=named_by)


def new_person(conn, stamp=None, name=None, named_by=None):
    return conn.execute("INSERT INTO people (name, named_by, created_at) VALUES (?, ?, ?)",
                        (name, named_by, stamp or now())).lastrowid


def add_verdict(conn, person_id, verdict, face, source, name=None, stamp=None):
    """The user's word that ``face`` (a row of ``face_rows``) is (or is not) ``person_id``."""
    conn.execute(
        "INSERT INTO face_verdicts (person_id, verdict, photo_hash, path, x1, y1, x2, y2, "
        "embedding, source, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (person_id, verdict, face["hash"], db_path_value(face["path"]), *face["box"],
         face["embedding"], source, name, stamp or now()))


def record_named_regions(conn, record, stamp):
    """The names a photo's XMP face regions give, as verdicts of source 'xmp': read again each
    time the photo is, so a region renamed or removed in a sidecar changes them. A name seen
    before for the same region keeps its person (the user may have renamed that person)."""
    path = db_path_value(record.path)
    earlier = conn.execute(
        "SELECT id, person_id, name, x1, y1, x2, y2 FROM face_verdicts "
        "WHERE source = 'xmp' AND path = ?", (path,)).fetchall()
    kept = set()
    for name, box in record.named_regions:
        same = next((e for e in earlier if e[0] not in kept and e[2] == name
                     and box_iou(e[3:], box) >= 0.5), None)
        if same is not None:
            kept.add(same[0])
            conn.execute("UPDATE face_verdicts SET photo_hash = ?, x1 = ?, y1 = ?, x2 = ?, y2 = ? "
                         "WHERE id = ?", (record.hash, *box, same[0]))
            continue
        person = person_named(conn, name, "xmp", stamp)
        add_verdict(conn, person, "is", {"hash": record.hash, "path": record.path, "box": box,
                                         "embedding": None}, "xmp", name=name, stamp=stamp)
    gone = [e[0] for e in earlier if e[0] not in kept]
    conn.executemany("DELETE FROM face_verdicts WHERE id = ?", [(i,) for i in gone])
    # A face a region named, whose region is gone: its name goes with it (the machine may
    # place the face again, as any other).
    named = [row[0:4] for row in conn.execute(
        "SELECT x1, y1, x2, y2 FROM face_verdicts WHERE source = 'xmp' AND path = ?", (path,))]
    for face_id, *box in conn.execute(
            "SELECT f.id, f.x1, f.y1, f.x2, f.y2 FROM faces f JOIN photos p ON p.id = f.photo_id "
            "WHERE p.path = ? AND f.person_by = 'xmp'", (path,)).fetchall():
        if not any(box_iou(box, region) >= 0.5 for region in named):
            place(conn, [face_id], None, None)


FACE_FIELDS = ("f.id", "f.photo_id", "f.x1", "f.y1", "f.x2", "f.y2", "f.person_id", "f.person_by",
               "f.embedding", "p.hash", "p.path")


def _face(row):
    face_id, photo_id, x1, y1, x2, y2, person, by, embedding, digest, path = row
    return {"id": face_id, "photo_id": photo_id, "box": (x1, y1, x2, y2), "person_id": person,
            "person_by": by, "embedding": embedding, "hash": digest, "path": path_from_db(path)}


def face_rows(conn, where, params=()):
    sql = (f"SELECT {', '.join(FACE_FIELDS)} FROM faces f JOIN photos p ON p.id = f.photo_id "
           f"WHERE {where}")
    return [_face(row) for row in conn.execute(sql, params)]


def face_arrays(conn, where, params=()):
    """Faces as arrays (ids, photo ids, person ids with -1 for none, N×128 float32 unit
    embeddings), for the faces that have an embedding: a million faces in about 0.6 GB."""
    import numpy as np

    from .records import embedding_array

    ids, photos, persons, blobs = [], [], [], []
    for face_id, photo_id, person_id, blob in conn.execute(
            f"SELECT f.id, f.photo_id, f.person_id, f.embedding FROM faces f "
            f"WHERE f.embedding IS NOT NULL AND {where}", params):
        ids.append(face_id)
        photos.append(photo_id)
        persons.append(-1 if person_id is None else person_id)
        blobs.append(blob)
    vectors = embedding_array(blobs)
    del blobs
    return (np.array(ids, np.int64), np.array(photos, np.int64), np.array(persons, np.int64),
            vectors)


def verdict_rows(conn):
    """Every verdict with the faces of its photo (by content, else by path)."""
    rows = conn.execute(
        "SELECT v.id, v.person_id, v.verdict, v.source, v.x1, v.y1, v.x2, v.y2, p.id "
        "FROM face_verdicts v JOIN photos p ON p.hash = v.photo_hash AND p.status = 'done' "
        "UNION "
        "SELECT v.id, v.person_id, v.verdict, v.source, v.x1, v.y1, v.x2, v.y2, p.id "
        "FROM face_verdicts v JOIN photos p ON p.path = v.path AND p.status = 'done'").fetchall()
    return [{"id": r[0], "person_id": r[1], "verdict": r[2], "source": r[3], "box": r[4:8],
             "photo_id": r[8]} for r in rows]


def place(conn, face_ids, person_id, by):
    conn.executemany("UPDATE faces SET person_id = ?, person_by = ? WHERE id = ?",
                     [(person_id, by, face_id) for face_id in face_ids])


def drop_empty_people(conn):
    """People with no face and no verdict whom no user named: what the machine (or a face
    region since changed) made and unmade."""
    conn.execute(
        "DELETE FROM people WHERE (name IS NULL OR named_by = 'xmp') "
        "AND NOT EXISTS (SELECT 1 FROM faces WHERE person_id = people.id) "
        "AND NOT EXISTS (SELECT 1 FROM face_verdicts WHERE person_id = people.id)")
