"""``phototag people``: who is in the photos. Lists people and takes what the user says about
them (names, merges, faces that are not someone); the machine's grouping happens after each
index run and with ``--regroup``."""

import csv
import sys

import click

from .commandline import db_option, default_db, fail, json_text, open_index


# A subcommand's own --db, else the one given to `phototag people` (which reads $PHOTOTAG_DB
# and the default): `phototag people --db X name 3 Anna` and `phototag people name 3 Anna --db X`
# both name person 3 of X.
sub_db_option = click.option("--db", type=click.Path(dir_okay=False), default=None,
                             help="The index file.  [default: as for `phototag people`]")


def _db(ctx, db):
    return db or (ctx.obj or {}).get("db") or default_db()


def _edit(db, change, *args):
    from .people.edits import PeopleError

    store = open_index(db)
    try:
        return change(store, *args)
    except PeopleError as exc:
        fail(str(exc))
    finally:
        store.close()


@click.group(invoke_without_command=True)
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="How to list the people.")
@click.option("--regroup", is_flag=True,
              help="Redo the machine's grouping from scratch first; names, merges and removed "
                   "faces stay as the user left them.")
@click.pass_context
def people(ctx, db, fmt, regroup):
    """List the people the index knows: id, name, faces, photos and a sample photo.

    Faces are grouped into people after every index run (two faces of one photo are never
    one person). Name them, merge the groups that are one person, take out a face that is
    not someone: what you say is kept for good, through every re-index.

    \b
      phototag people                      who is there (unnamed people have no name yet)
      phototag people name 12 "Anna"       person 12 is Anna
      phototag people merge 12 31 40       31 and 40 are Anna too
      phototag people remove 5123          face 5123 is not who it was grouped with
      phototag people suggest              people that may be one, to merge
      phototag search --person Anna --emotion smile
    """
    ctx.ensure_object(dict)["db"] = db
    if ctx.invoked_subcommand is not None:
        return
    if regroup:
        from . import people as grouping

        done = _edit(db, grouping.regroup)
        click.echo(f"regrouped: {done['assigned']} faces joined a person, {done['grouped']} "
                   f"formed {done['new_people']} people", err=True)
    store = open_index(db, readonly=True)
    try:
        listed = store.people()
    finally:
        store.close()
    _write(listed, fmt)


def _write(listed, fmt):
    from .store import printable_path

    if fmt == "json":
        click.echo(json_text(listed, indent=2))
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=["id", "name", "named_by", "faces", "photos",
                                                        "sample", "sample_face"],
                                extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in listed:
            writer.writerow({**row, "sample": printable_path(row["sample"] or "")})
        return
    if not listed:
        click.echo("no people yet: `phototag index` groups the faces it finds", err=True)
        return
    click.echo(f"{'id':>6}  {'name':<24} {'faces':>6} {'photos':>6}  sample")
    for row in listed:
        name = row["name"] or "(unnamed)"
        sample = printable_path(row["sample"] or "-")
        click.echo(f"{row['id']:>6}  {name[:24]:<24} {row['faces']:>6} {row['photos']:>6}  {sample}")
    unnamed = [row for row in listed if not row["name"]]
    if unnamed:
        click.echo(f"\n{len(unnamed)} unnamed; name one with: phototag people name {unnamed[0]['id']} "
                   f"NAME", err=True)


@people.command()
@click.argument("person_id", type=int)
@click.argument("name")
@sub_db_option
@click.pass_context
def name(ctx, person_id, name, db):
    """Give person PERSON_ID a NAME. Their faces are then confirmed as NAME (take a wrong one out
    with `people remove`), and the name stays through every re-index."""
    from .people.edits import name as give_name

    confirmed = _edit(_db(ctx, db), give_name, person_id, name)
    click.echo(f"person {person_id} is {' '.join(name.split())} ({confirmed} faces confirmed)", err=True)


@people.command()
@click.argument("person_ids", nargs=-1, type=int, required=True)
@sub_db_option
@click.pass_context
def merge(ctx, person_ids, db):
    """PERSON_IDS are one person: every face of the others joins the first, which keeps its
    name (or takes the first name among the others)."""
    from .people.edits import merge as merge_people

    target, *others = person_ids
    dropped = _edit(_db(ctx, db), merge_people, target, others)
    click.echo(f"merged {len(set(others) - {target})} into person {target}", err=True)
    for other_name in dropped:
        click.echo(f"note: the name {other_name!r} was dropped (person {target} keeps its own)", err=True)


@people.command()
@click.argument("face_ids", nargs=-1, type=int, required=True)
@sub_db_option
@click.pass_context
def remove(ctx, face_ids, db):
    """FACE_IDS are not the person they are grouped with: they leave that person, and no
    grouping puts them back there (`phototag show PHOTO` lists a photo's face ids)."""
    from .people.edits import remove as remove_faces

    removed = _edit(_db(ctx, db), remove_faces, list(face_ids))
    click.echo(f"{len(removed)} faces taken out of their person", err=True)


@people.command()
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@sub_db_option
@click.pass_context
def suggest(ctx, limit, db):
    """Pairs of people that may be one person, most alike first, with the command to merge them."""
    from . import people as grouping

    store = open_index(_db(ctx, db), readonly=True)
    try:
        pairs = grouping.suggest(store.conn, limit)
        names = {row["id"]: row["name"] for row in store.people()}
    finally:
        store.close()
    if not pairs:
        click.echo("no people look alike enough to suggest a merge", err=True)
        return
    for distance, a, b in pairs:
        who = " and ".join(f"{p} ({names.get(p) or 'unnamed'})" for p in (a, b))
        click.echo(f"{who}: distance {distance:.2f}   phototag people merge {a} {b}")
