"""What a person says about people (`phototag people name | merge | remove`): each is kept as
the user's word (names on ``people``, single faces as verdicts) and so survives every
re-index, move, ``--reprocess`` and new weights."""

from ..boxes import box_iou
from ..store import people_rows
from ..store.records import now


class PeopleError(Exception):
    """A person or face that is not in the index, or an edit that cannot be made."""


def _person(conn, person_id):
    row = conn.execute("SELECT id, name FROM people WHERE id = ?", (person_id,)).fetchone()
    if row is None:
        raise PeopleError(f"no person {person_id} in the index (`phototag people` lists them)")
    return row


def _confirm_faces(conn, person_id, stamp):
    """Every face of ``person_id`` the machine placed becomes the user's word."""
    faces = people_rows.face_rows(conn, "f.person_id = ? AND f.person_by = 'machine'", (person_id,))
    for face in faces:
        people_rows.add_verdict(conn, person_id, "is", face, "user", stamp=stamp)
    people_rows.place(conn, [f["id"] for f in faces], person_id, "user")
    return len(faces)


def name(writer, person_id, new_name):
    """Name a person. Naming says: these faces are NAME, so the faces the machine gave the
    person are confirmed (a wrong one is taken out with `people remove`)."""
    new_name = " ".join(new_name.split())
    if not new_name:
        raise PeopleError("a name cannot be empty")
    with writer.transaction():
        _person(writer.conn, person_id)
        writer.conn.execute("UPDATE people SET name = ?, named_by = 'user' WHERE id = ?",
                            (new_name, person_id))
        return _confirm_faces(writer.conn, person_id, now())


def merge(writer, target, others):
    """``others`` are ``target``: their faces and verdicts move to it and they go. The target
    keeps its name; unnamed, it takes the first name among the others. Returns the names that
    were dropped (different names merged)."""
    others = [o for o in dict.fromkeys(others) if o != target]
    if not others:
        raise PeopleError("name at least two different people to merge")
    stamp = now()
    dropped = []
    with writer.transaction():
        conn = writer.conn
        _, target_name = _person(conn, target)
        for other in others:
            _, other_name = _person(conn, other)
            if other_name and not target_name:
                target_name = other_name
                conn.execute("UPDATE people SET name = ?, named_by = 'user' WHERE id = ?",
                             (other_name, target))
            elif other_name and other_name.casefold() != target_name.casefold():
                dropped.append(other_name)
            _confirm_faces(conn, other, stamp)
            conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (target, other))
            conn.execute("UPDATE face_verdicts SET person_id = ? WHERE person_id = ?", (target, other))
            conn.execute("DELETE FROM people WHERE id = ?", (other,))
        _confirm_faces(conn, target, stamp)
    return dropped


def remove(writer, face_ids):
    """Each face is not the person it is in: it leaves, and no grouping puts it back there.
    Returns the faces that were in a person."""
    stamp = now()
    removed = []
    with writer.transaction():
        conn = writer.conn
        for face_id in face_ids:
            rows = people_rows.face_rows(conn, "f.id = ?", (face_id,))
            if not rows:
                raise PeopleError(f"no face {face_id} in the index (`phototag show PHOTO` lists "
                                  f"a photo's faces with their ids)")
            face = rows[0]
            if face["person_id"] is None:
                continue
            _drop_is_verdicts(conn, face)
            people_rows.add_verdict(conn, face["person_id"], "not", face, "user", stamp=stamp)
            people_rows.place(conn, [face_id], None, None)
            removed.append(face_id)
        people_rows.drop_empty_people(conn)
    return removed


def _drop_is_verdicts(conn, face):
    """The verdicts that put ``face`` into its person (they would put it back)."""
    rows = conn.execute(
        "SELECT id, x1, y1, x2, y2 FROM face_verdicts WHERE person_id = ? AND verdict = 'is' "
        "AND (photo_hash = ? OR path = ?)",
        (face["person_id"], face["hash"], people_rows.db_path_value(face["path"]))).fetchall()
    gone = [row[0] for row in rows if box_iou(row[1:], face["box"]) >= 0.5]
    conn.executemany("DELETE FROM face_verdicts WHERE id = ?", [(i,) for i in gone])
