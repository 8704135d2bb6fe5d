"""People: grouping faces by their embeddings, and the user's word about them surviving
everything an index can go through. Embeddings here are made up (no network): the real network
and real photos are in tests/test_people_photos.py."""

import json

import numpy as np
import pytest

from phototag import people
from phototag.people import edits, grouping
from phototag.store import Face, PhotoRecord, Writer
from phototag.store.records import embedding_bytes

from conftest import db_rows, run_phototag

DIMENSIONS = 128


def identities(count, seed=0):
    """``count`` random unit directions: one person each."""
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSIONS))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def looking_like(centre, rng, spread=0.04):
    """A face of the person at ``centre``: close to it, never the same."""
    vector = centre + rng.normal(scale=spread, size=DIMENSIONS)
    return vector / np.linalg.norm(vector)


def face(x, vector, **tags):
    return Face(box=(x, 10.0, x + 80.0, 100.0), det_score=0.99, landmarks=[[x + 40, 50]] * 5,
                embedding=None if vector is None else embedding_bytes(vector), **tags)


def photo(name, *faces, digest=None):
    return PhotoRecord(f"/lib/{name}.jpg", 100, 1, "done", hash=digest or name,
                       faces=list(faces))


@pytest.fixture
def family(db_path):
    """Anna in 4 photos, Ben in 3, a stranger once; Anna and Ben together in one photo."""
    rng = np.random.default_rng(1)
    anna, ben, stranger = identities(3)
    writer = Writer(db_path)
    writer.write_photos([
        photo("anna1", face(0, looking_like(anna, rng))),
        photo("anna2", face(0, looking_like(anna, rng))),
        photo("anna3", face(0, looking_like(anna, rng))),
        photo("ben1", face(0, looking_like(ben, rng))),
        photo("ben2", face(0, looking_like(ben, rng))),
        photo("together", face(0, looking_like(anna, rng)), face(200, looking_like(ben, rng))),
        photo("stranger", face(0, stranger)),
    ])
    people.update(writer)
    yield writer
    writer.close()


def person_of(writer, name, idx=0):
    return writer.conn.execute(
        "SELECT f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id "
        "WHERE p.path = ? AND f.idx = ?", (f"/lib/{name}.jpg", idx)).fetchone()[0]


def test_faces_of_one_person_are_grouped_and_a_stranger_waits(family):
    anna = {person_of(family, n) for n in ("anna1", "anna2", "anna3")} | {person_of(family, "together")}
    ben = {person_of(family, n) for n in ("ben1", "ben2")} | {person_of(family, "together", 1)}
    assert len(anna) == 1 and len(ben) == 1 and anna != ben and None not in anna | ben
    assert person_of(family, "stranger") is None  # one face makes no person
    assert db_rows(family.path, "SELECT count(*) FROM people") == [(2,)]


def test_two_faces_of_one_photo_are_never_one_person(db_path):
    """Twins, or one face seen twice in a mirror: the machine never makes them one person."""
    rng = np.random.default_rng(2)
    twin, = identities(1)
    writer = Writer(db_path)
    writer.write_photos([photo("twins", face(0, looking_like(twin, rng, 0.01)),
                               face(200, looking_like(twin, rng, 0.01)))])
    people.update(writer)
    placed = [row[0] for row in db_rows(db_path, "SELECT person_id FROM faces")]
    assert len(set(placed) - {None}) == len([p for p in placed if p is not None])
    # and a later photo of the same face joins one of them, not both
    writer.write_photos([photo("twin-alone", face(0, looking_like(twin, rng, 0.01)))])
    people.update(writer)
    persons = db_rows(db_path, "SELECT person_id, count(*) FROM faces GROUP BY person_id")
    assert all(count <= 2 for person, count in persons if person is not None)
    writer.close()


def test_single_link_respects_the_photo_rule_even_through_a_chain():
    # a - b - c chained, but a and c are in one photo: they must not end in one group
    first, second = np.array([0, 1]), np.array([1, 2])
    labels = grouping.single_link(3, first, second, np.array([0.1, 0.2]), photo_of=[7, 8, 7])
    assert labels[0] == labels[1] and labels[2] != labels[0]


def test_a_new_face_joins_its_person_and_new_strangers_make_a_new_person(family):
    rng = np.random.default_rng(3)
    anna, ben, stranger = identities(3)
    family.write_photos([photo("anna4", face(0, looking_like(anna, rng))),
                         photo("stranger2", face(0, looking_like(stranger, rng)))])
    done = people.update(family)
    assert done == {"assigned": 1, "grouped": 2, "new_people": 1}
    assert person_of(family, "anna4") == person_of(family, "anna1")
    assert person_of(family, "stranger2") == person_of(family, "stranger") is not None


def test_a_name_a_merge_and_a_removal_survive_reindexing_and_regrouping(family):
    anna, ben = person_of(family, "anna1"), person_of(family, "ben1")
    edits.name(family, anna, "  Anna  ")
    edits.merge(family, ben, [anna])  # the user says they are one person (a look-alike?)
    assert person_of(family, "anna2") == ben
    assert db_rows(family.path, "SELECT name FROM people WHERE id = ?", (ben,)) == [("Anna",)]
    edits.remove(family, [db_rows(family.path, "SELECT f.id FROM faces f JOIN photos p ON "
                                  "p.id = f.photo_id WHERE p.path = '/lib/ben2.jpg'")[0][0]])
    assert person_of(family, "ben2") is None

    # --reprocess or new weights: every photo written again, the faces replaced
    rng = np.random.default_rng(4)
    centres = identities(3)
    family.write_photos([photo(n, face(0.5, looking_like(centres[0 if n.startswith("anna") else 1], rng)))
                         for n in ("anna1", "anna2", "anna3", "ben1", "ben2")])
    people.update(family)
    assert person_of(family, "anna3") == person_of(family, "ben1") == ben
    assert person_of(family, "ben2") is None  # removed stays removed

    people.regroup(family)
    assert person_of(family, "anna1") == person_of(family, "ben1") == ben
    assert person_of(family, "ben2") is None
    assert db_rows(family.path, "SELECT name FROM people WHERE id = ?", (ben,)) == [("Anna",)]


def test_the_users_word_outlives_the_face_rows(family):
    """A photo that leaves the index and comes back (restored from a backup): its face is
    named again from the verdicts, which do not live on face rows."""
    anna = person_of(family, "anna1")
    edits.name(family, anna, "Anna")
    record = photo("anna1", face(0, None))  # comes back, without an embedding even
    family.remove([family.conn.execute("SELECT id FROM photos WHERE path = '/lib/anna1.jpg'").fetchone()[0]])
    assert anna in [r[0] for r in db_rows(family.path, "SELECT id FROM people")]
    family.write_photos([record])
    people.update(family)
    assert person_of(family, "anna1") == anna


def test_names_from_xmp_regions_name_the_face_and_spread_to_its_group(family):
    ben = person_of(family, "ben1")
    record = photo("ben1", face(0, identities(3)[1]))
    record.named_regions = [("Ben", (2.0, 12.0, 78.0, 98.0))]
    family.write_photos([record])
    people.update(family)
    named = db_rows(family.path, "SELECT id, named_by FROM people WHERE name = 'Ben'")
    assert len(named) == 1 and named[0][1] == "xmp"
    assert person_of(family, "ben1") == person_of(family, "ben2") == named[0][0]
    assert ben not in [r[0] for r in db_rows(family.path, "SELECT id FROM people")]  # spread, gone


def test_suggest_lists_people_that_may_be_one(db_path):
    """Two groups too far apart to be grouped (0.6 > GROUP_DISTANCE) but close enough to ask."""
    rng = np.random.default_rng(5)
    centre, across = identities(2, seed=6)
    across = across - (across @ centre) * centre
    across /= np.linalg.norm(across)
    other = 0.4 * centre + np.sqrt(1 - 0.4 ** 2) * across  # cosine distance 0.6 from centre
    assert people.GROUP_DISTANCE < 0.6 < people.SUGGEST_DISTANCE
    writer = Writer(db_path)
    writer.write_photos([photo(f"a{i}", face(0, looking_like(centre, rng, 0.005))) for i in range(3)]
                        + [photo(f"b{i}", face(0, looking_like(other, rng, 0.005))) for i in range(3)])
    people.update(writer)
    a, b = person_of(writer, "a0"), person_of(writer, "b0")
    assert None not in (a, b) and a != b
    (distance, *pair), = people.suggest(writer.conn)
    assert pair == sorted((a, b)) and abs(distance - 0.6) < 0.02
    writer.close()


def test_people_commands_list_name_merge_remove_and_search(tmp_path, family):
    anna, ben = person_of(family, "anna1"), person_of(family, "ben1")
    listed = json.loads(run_phototag(tmp_path, "people", "--format", "json").stdout)
    assert {row["id"] for row in listed} == {anna, ben}
    assert all(row["name"] is None and row["faces"] >= 3 and row["sample"] for row in listed)

    run_phototag(tmp_path, "people", "name", anna, "Anna")
    run_phototag(tmp_path, "people", "name", ben, "Ben")
    rows = json.loads(run_phototag(tmp_path, "search", "--person", "anna", "--format", "json").stdout)
    assert {r["path"] for r in rows} == {f"/lib/{n}.jpg" for n in ("anna1", "anna2", "anna3", "together")}
    assert {(r["person"], r["person_id"]) for r in rows} == {("Anna", anna)}
    both = run_phototag(tmp_path, "search", "--person", "Anna", "--person", "BEN").stdout.split()
    assert both == ["/lib/together.jpg"]
    unknown = run_phototag(tmp_path, "search", "--person", "unknown").stdout.split()
    assert unknown == ["/lib/stranger.jpg"]
    table = run_phototag(tmp_path, "people").stdout
    assert "Anna" in table and "Ben" in table

    missing = run_phototag(tmp_path, "people", "name", 999, "X", check=False)
    assert missing.returncode == 1 and "no person 999" in missing.stderr
    alone = run_phototag(tmp_path, "people", "merge", anna, check=False)
    assert alone.returncode == 1 and "two different people" in alone.stderr
    face_id = db_rows(family.path, "SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id "
                                   "WHERE p.path = '/lib/anna3.jpg'")[0][0]
    run_phototag(tmp_path, "people", "remove", face_id)
    assert "/lib/anna3.jpg" not in run_phototag(tmp_path, "search", "--person", "Anna").stdout
    run_phototag(tmp_path, "people", "merge", anna, ben)
    assert run_phototag(tmp_path, "search", "--person", "Anna").stdout.split() == [
        f"/lib/{n}.jpg" for n in ("anna1", "anna2", "ben1", "ben2", "together")]
    stats = json.loads(run_phototag(tmp_path, "stats", "--json").stdout)
    assert stats["people"] == 1 and stats["named_people"] == 1


def test_a_people_subcommand_uses_the_index_given_before_or_after_it(tmp_path, family):
    from conftest import phototag_env

    anna = person_of(family, "anna1")
    env = phototag_env(tmp_path, models=False, PHOTOTAG_DB=tmp_path / "elsewhere.db")
    run_phototag(tmp_path, "people", "--db", family.path, "name", anna, "Anna", env=env)
    run_phototag(tmp_path, "people", "name", anna, "Anna B.", "--db", family.path, env=env)
    assert db_rows(family.path, "SELECT name FROM people WHERE id = ?", (anna,)) == [("Anna B.",)]
    assert not (tmp_path / "elsewhere.db").exists()
