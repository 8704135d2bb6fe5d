"""People: faces grouped into persons, and what the user said about them.

After every index run (``update``) the faces that have no person yet are placed, in this order:

1. the user's word: a face where a verdict says "this is NAME" (``people name``, ``merge``, a
   name in the photo's XMP face regions) joins that person; "this is not" (``people remove``)
   keeps it out of that person for good. Verdicts live apart from face rows, so a re-index,
   a move, ``--reprocess`` or new weights do not lose them.
2. the machine: a new face joins the person of its nearest placed face when it is close enough
   (``ASSIGN_DISTANCE``) and that person has no other face in its photo; faces that waited are
   tried against the faces placed since.
3. the rest are grouped among themselves (single link at ``GROUP_DISTANCE``, never two faces of
   one photo together); a group of two or more faces becomes a new, unnamed person.

Precision comes first: two people merged is the worst mistake, a face left waiting a small one.
The distances were chosen on the shared identity-labelled faces (docs/people.md,
``python -m bench people``).
"""

import numpy as np

from ..store import people_rows
from ..store.records import embedding_array, now
from . import grouping

# Cosine distances, from `python -m bench people` (docs/people.md).
ASSIGN_DISTANCE = 0.5
GROUP_DISTANCE = 0.5
SUGGEST_DISTANCE = 0.7  # people whose faces come this close are listed by `people suggest`
NEIGHBOURS = 16
MARK = "people_mark"  # meta: the largest face id the last placing looked at


def _mark(conn):
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone()
    return int(row[0]) if row else 0


def _vectors(faces):
    return embedding_array([f["embedding"] for f in faces])


def apply_verdicts(conn):
    """Put the user's word onto the faces it names; returns {face id: persons it is not}."""
    verdicts = people_rows.verdict_rows(conn)
    if not verdicts:
        return {}
    photos = sorted({v["photo_id"] for v in verdicts})
    faces = {}
    for start in range(0, len(photos), 500):
        part = photos[start:start + 500]
        for face in people_rows.face_rows(conn, f"f.photo_id IN ({', '.join('?' * len(part))})", part):
            faces.setdefault(face["photo_id"], []).append(face)
    excluded = {}
    # XMP first, then the user, each in the order given: the later word wins.
    for verdict in sorted(verdicts, key=lambda v: (v["source"] != "xmp", v["id"])):
        from ..boxes import box_iou

        candidates = faces.get(verdict["photo_id"], [])
        scored = [(box_iou(verdict["box"], f["box"]), f) for f in candidates]
        scored = [pair for pair in scored if pair[0] >= 0.5]
        if not scored:
            continue
        face = max(scored, key=lambda pair: pair[0])[1]
        person = verdict["person_id"]
        if verdict["verdict"] == "not":
            excluded.setdefault(face["id"], set()).add(person)
            if face["person_id"] == person:
                people_rows.place(conn, [face["id"]], None, None)
                face["person_id"] = face["person_by"] = None
            continue
        if face["person_id"] == person:
            if face["person_by"] == "machine":
                people_rows.place(conn, [face["id"]], person, verdict["source"])
                face["person_by"] = verdict["source"]
            continue
        earlier = face["person_id"]
        people_rows.place(conn, [face["id"]], person, verdict["source"])
        face["person_id"], face["person_by"] = person, verdict["source"]
        if earlier is not None and _only_the_machines(conn, earlier):
            # The machine had grouped this face with others under no name: the name spreads
            # to them (the user's word about one face of a group the machine made).
            _move_machine_faces(conn, earlier, person)
    return excluded


def _only_the_machines(conn, person):
    """Whether nobody has said anything about ``person``: no name, no verdict, no face the
    user confirmed."""
    named = conn.execute("SELECT name FROM people WHERE id = ?", (person,)).fetchone()
    if named is None or named[0] is not None:
        return False
    said = conn.execute("SELECT 1 FROM face_verdicts WHERE person_id = ? LIMIT 1", (person,)).fetchone()
    confirmed = conn.execute("SELECT 1 FROM faces WHERE person_id = ? AND person_by != 'machine' "
                             "LIMIT 1", (person,)).fetchone()
    return not said and not confirmed


def _move_machine_faces(conn, source, target):
    """The machine's faces of ``source`` join ``target``, except where ``target`` already has a
    face in that photo; ``source`` goes when nothing is left of it."""
    taken = {row[0] for row in conn.execute("SELECT photo_id FROM faces WHERE person_id = ?", (target,))}
    for face_id, photo_id in conn.execute(
            "SELECT id, photo_id FROM faces WHERE person_id = ? AND person_by = 'machine'",
            (source,)).fetchall():
        if photo_id in taken:
            people_rows.place(conn, [face_id], None, None)
        else:
            people_rows.place(conn, [face_id], target, "machine")
            taken.add(photo_id)
    people_rows.drop_empty_people(conn)


def update(writer, everything=False):
    """Place the faces that have no person (see the module's text). ``everything``: look at
    every face again, not only those new since the last time. Returns a summary dict."""
    conn = writer.conn
    with writer.transaction():
        excluded = apply_verdicts(conn)
        mark = 0 if everything else _mark(conn)
        top = conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]
        placed = people_rows.face_rows(conn, "f.person_id IS NOT NULL AND f.embedding IS NOT NULL")
        waiting = people_rows.face_rows(
            conn, "f.person_id IS NULL AND f.embedding IS NOT NULL AND f.too_small = 0")
        occupied = {(f["photo_id"], f["person_id"]) for f in placed}
        stamp = now()
        assigned = _assign(conn, [f for f in waiting if f["id"] > mark], placed, excluded,
                           occupied)
        # Faces that waited, against the faces placed since they were last looked at.
        fresh = [f for f in placed if f["id"] > mark] + assigned
        assigned += _assign(conn, [f for f in waiting if f["id"] <= mark and f["person_id"] is None],
                            fresh, excluded, occupied)
        still = [f for f in waiting if f["person_id"] is None]
        made = _group(conn, [f for f in still if f["id"] > mark], still, stamp)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (MARK, str(top)))
        people_rows.drop_empty_people(conn)
    return {"assigned": len(assigned), "grouped": sum(made), "new_people": len(made)}


def _assign(conn, faces, placed, excluded, occupied):
    """Each of ``faces`` joins the person of its nearest face among ``placed`` that is close
    enough, may take it (no verdict against) and has no other face in its photo."""
    placed = [f for f in placed if f["person_id"] is not None]
    if not faces or not placed:
        return []
    distance, position = grouping.nearest(_vectors(faces), _vectors(placed), NEIGHBOURS)
    done = []
    for face, row_distance, row_position in zip(faces, distance, position):
        for d, p in zip(row_distance, row_position):
            if p < 0 or d > ASSIGN_DISTANCE:
                break
            person = placed[p]["person_id"]
            if person in excluded.get(face["id"], ()) or (face["photo_id"], person) in occupied:
                continue
            people_rows.place(conn, [face["id"]], person, "machine")
            face["person_id"], face["person_by"] = person, "machine"
            occupied.add((face["photo_id"], person))
            done.append(face)
            break
    return done


def _group(conn, new, waiting, stamp):
    """New people from the faces still waiting: groups of two or more, at least one face new.
    Returns the size of each group made."""
    if not new:
        return []
    position = {f["id"]: i for i, f in enumerate(waiting)}
    query, base, distance = grouping.pairs_within(_vectors(new), _vectors(waiting), GROUP_DISTANCE)
    first = np.array([position[new[q]["id"]] for q in query], dtype=np.int64)
    keep = first != base
    labels = grouping.single_link(len(waiting), first[keep], base[keep], distance[keep],
                                  [f["photo_id"] for f in waiting])
    sizes = []
    for label in np.unique(labels):
        members = [waiting[i] for i in np.flatnonzero(labels == label)]
        if len(members) < 2:
            continue
        person = people_rows.new_person(conn, stamp)
        people_rows.place(conn, [f["id"] for f in members], person, "machine")
        for f in members:
            f["person_id"] = person
        sizes.append(len(members))
    return sizes


def regroup(writer):
    """The machine's grouping from scratch; what the user said stays."""
    with writer.transaction():
        writer.conn.execute("UPDATE faces SET person_id = NULL, person_by = NULL "
                            "WHERE person_by = 'machine'")
        people_rows.drop_empty_people(writer.conn)
    return update(writer, everything=True)


def suggest(conn, limit=20):
    """Pairs of people that may be one: (distance, person, other), nearest first; the
    distance is between their mean faces. People seen together in a photo are never one."""
    faces = people_rows.face_rows(conn, "f.person_id IS NOT NULL AND f.embedding IS NOT NULL")
    if not faces:
        return []
    labels = np.array([f["person_id"] for f in faces])
    order, means = grouping.centroids(_vectors(faces), labels)
    distance, position = grouping.nearest(means, means, min(len(order), 6))
    together = {}
    for f in faces:
        together.setdefault(f["photo_id"], set()).add(f["person_id"])
    shared = {(a, b) for group in together.values() for a in group for b in group if a != b}
    pairs = {}
    for i, (row_distance, row_position) in enumerate(zip(distance, position)):
        for d, j in zip(row_distance, row_position):
            if j < 0 or j == i or d > SUGGEST_DISTANCE:
                continue
            a, b = sorted((int(order[i]), int(order[j])))
            if (a, b) not in shared:
                pairs[(a, b)] = min(float(d), pairs.get((a, b), 2.0))
    return sorted((d, a, b) for (a, b), d in pairs.items())[:limit]
