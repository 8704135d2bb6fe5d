"""People: faces grouped into persons, and what the user said about them.

After every index run (``update``) the faces that have no person yet are placed, in this order:

1. the user's word: a face where a verdict says "this is NAME" (``people name``, ``merge``, a
   name in the photo's XMP face regions) joins that person; "this is not" (``people remove``)
   keeps it out of that person for good. Verdicts live apart from face rows, so a re-index,
   a move, ``--reprocess`` or new weights do not lose them.
2. the machine: a new face joins the person of its nearest placed face when it is close enough
   (``ASSIGN_DISTANCE``) and that person has no other face in its photo; then every face still
   waiting is tried against the faces placed since, until none joins.
3. the rest are grouped among themselves (single link at ``GROUP_DISTANCE``, never two faces of
   one photo together); a group of two or more faces becomes a new, unnamed person.

Precision comes first: two people merged is the worst mistake, a face left waiting a small one.
The distances were chosen on the shared identity-labelled faces (docs/people.md,
``python -m bench people``).
"""

import numpy as np

from ..boxes import box_iou
from ..store import people_rows
from ..store.records import now
from . import grouping

# Cosine distances, from `python -m bench people` (docs/people.md): at 0.45 every pair of
# different people grouped on the identity-labelled faces is one person under two names; at
# 0.50 brothers (George and Jeb Bush) and look-alike actresses merge.
ASSIGN_DISTANCE = 0.45
GROUP_DISTANCE = 0.45
SUGGEST_DISTANCE = 0.7  # people whose faces come this close are listed by `people suggest`
NEIGHBOURS = 16
MARK = "people_mark"  # meta: the largest face id the last placing looked at


def _mark(conn):
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone()
    return int(row[0]) if row else 0


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


class Faces:
    """Faces with embeddings, as arrays: ids, photo ids, person ids (-1: none), unit vectors."""

    def __init__(self, ids, photos, persons, vectors):
        self.ids, self.photos, self.persons, self.vectors = ids, photos, persons, vectors

    @classmethod
    def where(cls, conn, condition):
        return cls(*people_rows.face_arrays(conn, condition))

    def __len__(self):
        return len(self.ids)


def update(writer, everything=False):
    """Place the faces that have no person (see the module's text). ``everything``: look at
    every face again, not only those new since the last time. Returns a summary dict."""
    conn = writer.conn
    with writer.transaction():
        excluded = apply_verdicts(conn)
        mark = 0 if everything else _mark(conn)
        top = conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]
        placed = Faces.where(conn, "f.person_id IS NOT NULL")
        waiting = Faces.where(conn, "f.person_id IS NULL AND f.too_small = 0")
        occupied = set(zip(placed.photos.tolist(), placed.persons.tolist()))
        new = waiting.ids > mark
        assigned = _assign(conn, waiting, np.flatnonzero(new), placed.vectors, placed.persons,
                           excluded, occupied)
        # Then, until nothing moves, every face still waiting (new or not) against the faces
        # placed since it was last looked at: a face joins its person through a face of the
        # same person that joined just before it, as single link would have it.
        since = placed.ids > mark
        base_vectors = np.concatenate([placed.vectors[since], waiting.vectors[assigned]])
        base_persons = np.concatenate([placed.persons[since], waiting.persons[assigned]])
        del placed
        while len(base_vectors):
            left = np.flatnonzero(waiting.persons < 0)
            more = _assign(conn, waiting, left, base_vectors, base_persons, excluded, occupied)
            assigned = np.concatenate([assigned, more])
            base_vectors, base_persons = waiting.vectors[more], waiting.persons[more]
        made = _group(conn, waiting, new, now())
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (MARK, str(top)))
        people_rows.drop_empty_people(conn)
    return {"assigned": len(assigned), "grouped": sum(made), "new_people": len(made)}


def _assign(conn, faces, chosen, base_vectors, base_persons, excluded, occupied):
    """Each face ``chosen`` (positions in ``faces``) joins the person of its nearest face of the
    base that is close enough, may take it (no verdict against) and has no other face in its
    photo. Returns the positions placed; ``faces.persons`` is updated."""
    if not len(chosen) or not len(base_vectors):
        return np.zeros(0, np.int64)
    distance, position = grouping.nearest(faces.vectors[chosen], base_vectors, NEIGHBOURS)
    done = []
    for i, row_distance, row_position in zip(chosen.tolist(), distance, position):
        face_id, photo = int(faces.ids[i]), int(faces.photos[i])
        for d, p in zip(row_distance, row_position):
            if p < 0 or d > ASSIGN_DISTANCE:
                break
            person = int(base_persons[p])
            if person in excluded.get(face_id, ()) or (photo, person) in occupied:
                continue
            people_rows.place(conn, [face_id], person, "machine")
            faces.persons[i] = person
            occupied.add((photo, person))
            done.append(i)
            break
    return np.array(done, np.int64)


def _group(conn, faces, new, stamp):
    """New people from the faces still waiting: groups of two or more, at least one face new
    (``new``: a mask over ``faces``). Returns the size of each group made."""
    still = np.flatnonzero(faces.persons < 0)
    queries = np.flatnonzero(new & (faces.persons < 0))
    if not len(queries):
        return []
    position = np.full(len(faces), -1, np.int64)
    position[still] = np.arange(len(still))
    # Each face's nearest waiting faces, not every pair within reach: single link needs only the
    # short edges, and a person with thousands of faces would otherwise give millions of pairs.
    distance, base = grouping.nearest(faces.vectors[queries], faces.vectors[still], NEIGHBOURS)
    first = np.repeat(position[queries], distance.shape[1])
    distance, base = distance.ravel(), base.ravel()
    keep = (base >= 0) & (distance <= GROUP_DISTANCE) & (first != base)
    labels = grouping.single_link(len(still), first[keep], base[keep], distance[keep],
                                  faces.photos[still].tolist())
    sizes = []
    for label, members in _members(labels):
        if len(members) < 2:
            continue
        person = people_rows.new_person(conn, stamp)
        chosen = still[members]
        people_rows.place(conn, faces.ids[chosen].tolist(), person, "machine")
        faces.persons[chosen] = person
        sizes.append(len(members))
    return sizes


def _members(labels):
    """(label, positions) of each label of more than one position."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, bounds):
        if len(group) > 1:
            yield labels[group[0]], group


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
    faces = Faces.where(conn, "f.person_id IS NOT NULL")
    if not len(faces):
        return []
    order, means = grouping.centroids(faces.vectors, faces.persons)
    distance, position = grouping.nearest(means, means, min(len(order), 6))
    together = {}
    for photo, person in zip(faces.photos.tolist(), faces.persons.tolist()):
        together.setdefault(photo, set()).add(person)
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
