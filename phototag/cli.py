"""The ``phototag`` command: index, search, stats, show.

Exit codes: 0 done (photos that could not be read are recorded as errors, not failures; a run
that finds another run holding the index also exits 0); 1 phototag could not do its job (no
weights, an unusable index, a device that is not there); 2 bad usage; 130 interrupted by Ctrl-C
or SIGTERM after finishing the batch in hand.
"""

import csv
import os
import signal
import sqlite3
import sys
import threading
import time

import click

from . import __version__
from .commandline import (EXIT_FAILED, EXIT_INTERRUPTED, db_option, default_db,  # noqa: F401
                          fail, json_text, open_index)
from .labels import AGE_GROUPS, EMOTIONS
from .pipeline import MIN_PERSON_FACE, MIN_TAG_FACE
from .store.query import SORTS

class _Commands(click.Group):
    """``train`` and ``eval`` live in ``phototag.train`` and are imported only when used, so
    the index and search commands never load the training code, and neither side imports
    the other at import time."""

    training = {"train": "train", "eval": "evaluate_command"}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.training))

    def get_command(self, ctx, name):
        if name in self.training:
            from .train import commands

            return getattr(commands, self.training[name])
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phototag")
def main():
    """Tag a photo library by the faces in it: who, which emotion, which age group.

    \b
      phototag index ~/Pictures               find, tag and group every face (incremental)
      phototag search --emotion smile --age child
      phototag people                         who is in the photos; name them
      phototag search --person Anna --emotion smile
      phototag report smiles.html --emotion smile
      phototag export --xmp                   sidecars for digiKam, Lightroom, Immich
      phototag stats                          what the index holds
      phototag show PHOTO                     one photo's faces
    """


# -- index ----------------------------------------------------------------------------------


def _device_name(_ctx, _param, value):
    from .devices import check_device_name  # no torch: checking a name needs none

    try:
        return check_device_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class TerminalReporter:
    """A rich progress bar on a terminal."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        self.faces = 0
        self.started = None
        self.progress = Progress(
            TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} photos/s · {task.fields[faces]} faces"),
            TimeRemainingColumn(), transient=True,
            console=Console(stderr=True),
        )
        self.task = None

    def start(self, total):
        self.started = time.monotonic()
        self.progress.start()
        self.task = self.progress.add_task("index", total=total, rate="-", faces=0)

    def advance(self, photos, faces):
        self.faces += faces
        done = self.progress.tasks[self.task].completed + photos
        rate = done / max(time.monotonic() - self.started, 1e-9)
        self.progress.update(self.task, advance=photos, rate=f"{rate:.1f}", faces=self.faces)

    def note(self, message):
        self.progress.console.print(message)

    def close(self):
        if self.task is not None:
            self.progress.stop()


class QuietReporter:
    def start(self, total):
        pass

    def advance(self, photos, faces):
        pass

    def note(self, message):
        click.echo(message, err=True)

    def close(self):
        pass


def _install_stop_handlers(stop):
    def on_signal(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo(
            "\nphototag: stopping after the current batch (Ctrl-C again to stop at once)", err=True
        )

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@db_option
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="PHOTOTAG_WEIGHTS",
              help="Folder holding weight files (else the ones shipped, else the user cache; "
                   "missing files are downloaded once).  [env: PHOTOTAG_WEIGHTS]")
@click.option("--model", "attributes", type=click.Path(exists=True, dir_okay=False),
              envvar="PHOTOTAG_MODEL",
              help="Trained emotion/age weights (.safetensors from `phototag train`).  "
                   "[default: the weights shipped with phototag]  [env: PHOTOTAG_MODEL]")
@click.option("--faces-only", is_flag=True,
              help="Find and record faces without tagging emotion and age (faster).")
@click.option("--device", default="auto", show_default=True, callback=_device_name,
              help="Where the models run: auto (a GPU if PyTorch sees one), cpu, cuda, cuda:N.")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Photos decoded, detected and written per batch (one transaction each).  "
                   "[default: 8 on the CPU, 32 on a GPU]")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Decoding processes; 0 decodes in the main process.  "
                   "[default: cores - 1, at least 2 (on two cores or more) and at most 4 on the "
                   "CPU; at most 8 with a GPU]")
@click.option("--max-size", default=1600, show_default=True, type=click.IntRange(64),
              help="Long side, in pixels, photos are decoded at for detection; boxes are stored "
                   "in full-resolution pixels all the same.")
@click.option("--min-score", default=0.6, show_default=True, type=click.FloatRange(0, 1),
              help="Lowest detector confidence kept as a face.")
@click.option("--min-face", default=0, show_default=True, type=click.IntRange(0),
              help="Smallest face kept: shorter box side, in full-resolution pixels.")
@click.option("--max-faces", type=click.IntRange(1), default=None,
              help="Keep at most this many faces per photo, the largest.  [default: all]")
@click.option("--min-tag-face", default=MIN_TAG_FACE, show_default=True, type=click.IntRange(0),
              help="Smallest face given an emotion and age group, by its shorter box side in "
                   "pixels: smaller faces are too small to read and stay untagged faces. "
                   "Applies to photos indexed from now on (--reprocess: to every photo).")
@click.option("--min-person-face", default=MIN_PERSON_FACE, show_default=True,
              type=click.IntRange(0),
              help="Smallest face grouped into people (shorter box side in pixels).")
@click.option("--no-people", "people", is_flag=True, flag_value=False, default=True,
              help="Do not embed faces nor group them into people (faster).")
@click.option("--hidden", "include_hidden", is_flag=True,
              help="Also walk hidden folders and files (names starting with '.').")
@click.option("--reprocess", is_flag=True, help="Redo every photo, changed or not.")
@click.option("--retry-errors", is_flag=True, help="Retry photos that failed before, even if unchanged.")
@click.option("--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run the models on a Ray cluster: auto (the running cluster), "
                   "ray://HOST:PORT, HOST:PORT, or local (a Ray started for this run and "
                   "stopped after it; also when no address follows). "
                   "Every node must see the photos at the same paths. Needs the [ray] extra.")
@click.option("--ray-actors", type=click.IntRange(1), default=None,
              help="With --ray: detector actors and tagger actors, each.  [default: one per "
                   "GPU of the cluster, else one per 4 CPUs]")
@click.option("--wait", is_flag=True, help="If another index run holds the database, wait for it "
                                           "instead of exiting.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar: only the summary and errors "
                                                 "(the default when not on a terminal).")
def index(paths, db, wait, quiet, **options):
    """Find the faces in every photo under PATHS and record them in the index.

    Incremental: unchanged files are not opened, changed ones are redone, moved ones keep their
    faces, deleted ones leave the index. Reads JPEG, PNG, WEBP, HEIC/HEIF, TIFF and BMP (and
    camera RAW previews with the [raw] extra). A file that cannot be read is recorded with the
    reason and the run goes on. Commits after every batch: a killed run loses at most one batch,
    and the next run finishes the rest.
    """
    from .runlock import RunLock

    paths = _ray_address_or_path(options, paths)
    lock = RunLock(db)
    os.makedirs(os.path.dirname(os.path.abspath(db)), mode=0o700, exist_ok=True)
    if not lock.acquire(wait=False):
        holder = lock.holder()
        who = f" (pid {holder})" if holder else ""
        if not wait:
            click.echo(f"phototag: another index run{who} is using {db}; nothing done "
                       f"(--wait to wait for it)", err=True)
            return
        click.echo(f"phototag: waiting for the index run{who} on {db} to finish", err=True)
        lock.acquire(wait=True)
    from .pipeline import IndexOptions

    # The options are IndexOptions' own fields, by name: nothing is passed on by position.
    options = IndexOptions(roots=[os.path.abspath(p) for p in paths], **options)
    with lock:
        _run_index(db, options, quiet)


def _ray_address_or_path(options, paths):
    """`--ray PATH` reads as `--ray` with a local Ray and PATH as the first folder: --ray's
    address is optional, so click hands it the next word whatever it is."""
    from .ray_runner import LOCAL, is_address

    address = options["ray"]
    if address is not None and not is_address(address):
        if not os.path.exists(address):
            raise click.BadParameter(f"{address!r} is neither a Ray address (auto, "
                                     f"ray://HOST:PORT, HOST:PORT) nor a path", param_hint="--ray")
        paths, options["ray"] = (address, *paths), LOCAL
    if options["ray_actors"] and not options["ray"]:
        raise click.BadParameter("only with --ray", param_hint="--ray-actors")
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...'.")
    return paths


def _run_index(db, options, quiet):
    import dataclasses

    from .allocator import INDEX_KEEP, keep_freed_memory
    from .devices import SetupError
    from .pipeline import run_index
    from .store import printable_path
    from .weights import WeightsError, check_attribute_weights, default_attribute_weights

    try:
        attributes = None if options.faces_only else (
            options.attributes or default_attribute_weights(options.weights_dir))
        if attributes:
            check_attribute_weights(attributes)
    except WeightsError as exc:
        fail(str(exc))
    options = dataclasses.replace(options, attributes=attributes)
    # Decoded photos and batches are freed and allocated again photo after photo: kept for the
    # next one instead of handed back (docs/speed.md).
    keep_freed_memory(INDEX_KEEP)
    store = open_index(db)
    stop = threading.Event()
    _install_stop_handlers(stop)
    reporter = QuietReporter() if quiet or not sys.stderr.isatty() else TerminalReporter()
    started = time.monotonic()
    try:
        summary = run_index(store, options, reporter, stop)
    except WeightsError as exc:
        fail(str(exc))
    except SetupError as exc:
        fail(str(exc))
    except (sqlite3.DatabaseError, OSError) as exc:  # a full disk, a damaged index
        fail(f"cannot write the index {db}: {exc}; every batch written before is kept")
    except KeyboardInterrupt:
        click.echo("phototag: interrupted; the index holds every batch written so far", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        reporter.close()
        store.close()
    elapsed = time.monotonic() - started
    for path, reason in summary.unreadable_dirs:
        click.echo(f"warning: cannot list {printable_path(path)}: {reason} "
                   f"(its photos stay in the index)", err=True)
    for path, reason in summary.error_list:
        click.echo(f"error: {printable_path(path)}: {reason}", err=True)
    rate = f", {summary.processed / elapsed:.1f} photos/s" if summary.processed else ""
    done = f"{summary.processed} of {summary.to_do}" if summary.interrupted else f"{summary.processed}"
    redone = f", {summary.reprocessed} reprocessed" if summary.reprocessed else ""
    redone += f", {summary.retried} failed before, tried again" if summary.retried else ""
    redone += f", {summary.copied} copied from identical photos" if summary.copied else ""
    click.echo(
        f"{summary.seen} photos seen: {done} indexed ({summary.new} new, "
        f"{summary.changed} changed{redone}), {summary.unchanged} unchanged, {summary.moved} moved, "
        f"{summary.removed} removed; {summary.faces} faces, {summary.errors} errors "
        f"in {elapsed:.1f} s{rate}",
        err=True,
    )
    if summary.embedded:
        click.echo(f"{summary.embedded} photos indexed before people had their faces embedded",
                   err=True)
    if summary.people and (summary.people["assigned"] or summary.people["grouped"]):
        made = summary.people
        click.echo(f"people: {made['assigned']} faces joined a person, {made['grouped']} "
                   f"formed {made['new_people']} new people (`phototag people` lists them)",
                   err=True)
    if summary.other_models:
        models = ", ".join(f"{count} by {model or 'unknown weights'}"
                           for model, count in summary.other_models.items())
        click.echo(f"note: photos indexed by other weights ({models}); "
                   f"`phototag index --reprocess` redoes them", err=True)
    if summary.interrupted:
        click.echo("phototag: stopped early; run the same command again to finish", err=True)
        sys.exit(EXIT_INTERRUPTED)


# -- search ---------------------------------------------------------------------------------


def _faces_range(_ctx, _param, value):
    """``N`` exactly N faces, ``N:`` at least N, ``:M`` at most M, ``N:M`` between."""
    if value is None:
        return None
    low, sep, high = value.partition(":")
    try:
        low = int(low) if low else 0
        high = (int(high) if high else None) if sep else low
    except ValueError:
        raise click.BadParameter("expected N (exactly), N: (at least), :M (at most) or N:M, "
                                 "e.g. 1 or 2: or 2:5") from None
    if low < 0 or (high is not None and high < low):
        raise click.BadParameter("expected 0 <= N <= M")
    return low, high


# The words people and datasets use for phototag's labels.
EMOTION_SYNONYMS = {"happy": "smile", "happiness": "smile", "joy": "smile", "smiling": "smile",
                    "sadness": "sad", "anger": "angry", "fear": "anxiety", "afraid": "anxiety",
                    "scared": "anxiety", "surprised": "surprise", "calm": "neutral"}
AGE_SYNONYMS = {"infant": "baby", "toddler": "baby", "kid": "child", "teen": "ten-twenty",
                "teenager": "ten-twenty", "adult": "thirty-forty", "elderly": "senior",
                "old": "senior"}


def _labels(names, synonyms, what):
    def convert(ctx, param, values):
        chosen = []
        for value in values:
            word = value.strip().lower()
            if word in names:
                chosen.append(word)
            elif word in synonyms:
                click.echo(f"phototag: {what} {value!r} is {synonyms[word]!r} here", err=True)
                chosen.append(synonyms[word])
            else:
                raise click.BadParameter(f"{value!r} is not one of {', '.join(names)} "
                                         f"(or {', '.join(sorted(synonyms))})", ctx, param)
        return tuple(chosen)

    return convert


# Options search and report share (as sqlite-utils shares its options between commands).
emotion_option = click.option(
    "--emotion", "emotions", multiple=True, metavar="EMOTION",
    callback=_labels(EMOTIONS, EMOTION_SYNONYMS, "emotion"),
    help=f"Faces showing this emotion: {', '.join(EMOTIONS)} (happy, fear and other usual words "
         f"are taken too); repeat for any of several.")
age_option = click.option(
    "--age", "ages", multiple=True, metavar="GROUP",
    callback=_labels(AGE_GROUPS, AGE_SYNONYMS, "age group"),
    help="Faces in this age group: baby (0-2), child (3-9), ten-twenty (10-29), thirty-forty "
         "(30-49), fifty (50-59), senior (60+); repeat for any of several.")
path_option = click.option("--path", "path_glob", metavar="GLOB",
                           help="Only paths matching this glob, e.g. '*/2024/*' (case-sensitive).")


def _place(_ctx, _param, value):
    """``LAT,LON[,KM]`` → (lat, lon, km); 1 km when no distance is given."""
    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 2:
        numbers.append(1.0)
    if len(numbers) != 3 or not (-90 <= numbers[0] <= 90 and -180 <= numbers[1] <= 180
                                 and numbers[2] > 0):
        raise click.BadParameter(f"{value!r} is not LAT,LON or LAT,LON,KM (degrees, and "
                                 f"kilometres above 0), e.g. 48.8584,2.2945,2")
    return tuple(numbers)


def _date(_ctx, _param, value):
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2024-07-31") from None


person_option = click.option(
    "--person", "people", multiple=True, metavar="NAME",
    help="Faces of this person (case-insensitive; `phototag people` names them); repeat for "
         "photos with all of them; 'unknown' for faces of no named person.")


@main.command()
@db_option
@emotion_option
@age_option
@person_option
@click.option("--every", "every", multiple=True, metavar="EMOTION",
              callback=_labels(EMOTIONS, EMOTION_SYNONYMS, "emotion"),
              help="Photos where every face big enough to read shows this emotion (repeat for "
                   "any of several), best first: the least sure face decides, then the least "
                   "sharp. With --faces 3: the group shot where everyone smiles.")
@click.option("--near", callback=_place, metavar="LAT,LON[,KM]",
              help="Taken within KM (default 1) of this place, by the photo's GPS position.")
@click.option("--camera", metavar="TEXT", help="Camera make or model containing TEXT (any case).")
@click.option("--min-confidence", type=click.FloatRange(0, 1), metavar="P",
              help="Lowest score of the emotion or age group asked for (what a score means: "
                   "README, 'What to expect').")
@click.option("--min-score", type=click.FloatRange(0, 1),
              help="Lowest detector confidence that the face is a face.")
@click.option("--faces", "faces", callback=_faces_range, metavar="N|N:|:M|N:M",
              help="Only photos with exactly N faces (1: portraits), at least N (2:), at most M "
                   "(:1) or between (2:5).")
@click.option("--taken-after", callback=_date, metavar="DATE",
              help="Taken on or after this day (YYYY-MM-DD, EXIF time).")
@click.option("--taken-before", callback=_date, metavar="DATE", help="Taken before this day.")
@path_option
@click.option("--sort", type=click.Choice(SORTS),
              help="Order of the results: confidence (best first), date (newest first) or path. "
                   "[default: confidence when an emotion or age is asked, else path]")
@click.option("--limit", type=click.IntRange(1), help="At most this many results.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "paths"]),
              help="Output: one row per face (table, json, csv) or one line per photo (paths). "
                   "[default: table on a terminal, paths when piped]")
@click.option("-0", "--null", is_flag=True, help="Paths separated by NUL (for xargs -0).")
def search(db, emotions, ages, people, every, near, camera, min_confidence, min_score, faces,
           taken_after, taken_before, path_glob, sort, limit, fmt, null):
    """Find faces by emotion, age group, person, date, path and face count.

    Several values of one option mean any of them; different options must all hold for the
    same face. Results come best first when an emotion or age group is asked. Faces too small
    to read have no emotion or age, so an emotion or age search never finds them. Prints
    nothing (and exits 0) when nothing matches.

    \b
      phototag search --emotion smile --age child
      phototag search --person Anna --emotion smile
      phototag search --every smile --faces 3:          the group shot where everyone smiles
      phototag search --near 48.8584,2.2945,2 --camera iphone
      phototag search --age baby --age child --taken-after 2024-01-01 --format json
      phototag search --emotion surprise -0 | xargs -0 open
    """
    from .store import Query

    if null:
        if fmt not in (None, "paths"):
            raise click.UsageError(f"-0 separates paths: it goes with --format paths, not {fmt}")
        fmt = "paths"
    if min_confidence is not None and not (emotions or ages):
        raise click.UsageError("--min-confidence is the score of an --emotion or --age asked "
                               "for; for the detector's confidence use --min-score")
    if faces == (0, 0):
        raise click.BadParameter("a search finds faces, so a photo with 0 faces never matches; "
                                 "`phototag stats` counts photos without faces",
                                 param_hint="--faces")
    fmt = fmt or ("table" if sys.stdout.isatty() else "paths")
    query = Query(
        emotions=emotions, age_groups=ages, people=people, min_score=min_score,
        min_confidence=min_confidence, faces_min=faces[0] if faces else None,
        faces_max=faces[1] if faces else None, taken_after=taken_after,
        taken_before=taken_before, path_glob=path_glob, limit=limit, sort=sort,
        paths_only=fmt == "paths", every=every, near=near, camera=camera,
    )
    store = open_index(db, readonly=True)
    try:
        if (emotions or ages or every) and not store.has_tags():
            click.echo("phototag: note: this index has no emotion or age tags (indexed with "
                       "--faces-only?); `phototag index --reprocess` tags it", err=True)
        results = store.search(query)
        if fmt == "paths":
            _write_paths(results, null)
        elif fmt == "json":
            _write_json(results)
        elif fmt == "csv":
            _write_csv(results)
        else:
            _write_table(list(results))
    except BrokenPipeError:
        # `phototag search | head`: the reader has what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()


def _write_paths(paths, null):
    out = sys.stdout.buffer
    end = b"\0" if null else b"\n"
    for path in paths:
        out.write(os.fsencode(path) + end)
    out.flush()


def _printable(result):
    from .store import printable_path

    return {**result, "path": printable_path(result["path"])}


def _write_json(results):
    first = True
    for result in results:
        sys.stdout.write("[\n  " if first else ",\n  ")
        sys.stdout.write(json_text(result))
        first = False
    if not first:
        sys.stdout.write("\n]\n")


def _write_csv(results):
    writer = None
    for result in results:
        row = _printable(result)
        row["box"] = " ".join(str(v) for v in row["box"])
        if writer is None:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)


def _score(value):
    return "" if value is None else f"{value:.2f}"


def _tag(result, key, score):
    if result["too_small"] and result[key] is None:
        return "too small"
    return f"{result[key]} {result[score]:.2f}" if result[key] is not None else "-"


def _shortened(path, width):
    """``path`` in at most ``width`` characters, its start left out (the name is what tells)."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


def _write_table(results):
    """One line per face that fits the terminal: the path gives way, from its start."""
    if not results:
        return
    import shutil

    from rich.console import Console
    from rich.table import Table

    rows = []
    for r in map(_printable, results):
        rows.append([r["path"], str(r["face_id"]), _tag(r, "emotion", "emotion_score"),
                     _tag(r, "age_group", "age_score"), r["person"] or "", (r["taken_at"] or "")[:10]])
    headers = ("path", "face", "emotion", "age", "person", "taken")
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(headers)]
    if sys.stdout.isatty():
        room = shutil.get_terminal_size((80, 24)).columns - sum(widths[1:]) - 2 * (len(headers) - 1)
        for row in rows:
            row[0] = _shortened(row[0], max(12, room))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in headers:
        table.add_column(name, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    # Piped tables are for reading in files: never cut a path to a pretend 80 columns.
    Console(width=None if sys.stdout.isatty() else 100_000).print(table)


# -- stats and show -------------------------------------------------------------------------


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--errors", "show_errors", is_flag=True, help="Also list every photo that failed and why.")
def stats(db, as_json, show_errors):
    """How many photos, faces and errors the index holds, by emotion and age group."""
    from .store import printable_path

    store = open_index(db, readonly=True)
    try:
        numbers = store.stats()
        errors = store.errors() if show_errors else []
    finally:
        store.close()
    run = numbers["last_run"]
    if run and run["status"] == "running":
        from .runlock import RunLock

        if RunLock(db).holder() is None:  # no process holds the index: that run died
            run["status"] = "killed"
    if as_json:
        if show_errors:
            numbers["error_list"] = [{"path": p, "error": e} for p, e in errors]
        click.echo(json_text(numbers, indent=2))
        return
    click.echo(f"index      {db}")
    click.echo(f"photos     {numbers['photos']} ({numbers['done']} done, {numbers['errors']} errors, "
               f"{numbers['photos_with_faces']} with faces)")
    click.echo(f"faces      {numbers['faces']} ({numbers['too_small']} too small to read, "
               f"{numbers['faces_in_people']} in people)")
    click.echo(f"people     {numbers['people']} ({numbers['named_people']} named)")
    for title, key in (("emotions", "emotions"), ("age groups", "age_groups"), ("models", "models")):
        parts = ", ".join(f"{name} {count}" for name, count in numbers[key].items())
        click.echo(f"{title:<10} {parts or '-'}")
    run = numbers["last_run"]
    if run:
        click.echo(f"last run   {run['started_at']} {run['status']}: {run['processed'] or 0} indexed, "
                   f"{run['errors'] or 0} errors, {run['faces'] or 0} faces")
    for path, reason in errors:
        click.echo(f"error      {printable_path(path)}: {reason}")


@main.command()
@click.argument("path", type=click.Path())
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(path, db, as_json):
    """What the index knows about one photo: metadata, status and every face."""
    from .store import printable_path

    store = open_index(db, readonly=True)
    try:
        photo = store.photo(os.path.abspath(path))
    finally:
        store.close()
    if photo is None:
        fail(f"{path} is not in the index")
    if as_json:
        click.echo(json_text(photo, indent=2))
        return
    photo["path"] = printable_path(photo["path"])
    if photo.get("orientation_source") == "sidecar":
        photo["orientation"] = f"{photo['orientation']} (from its XMP sidecar: the photo has none)"
    for key in ("path", "status", "error", "width", "height", "orientation", "taken_at", "camera",
                "lat", "lon", "n_faces", "model", "indexed_at", "hash"):
        if photo[key] is not None:
            click.echo(f"{key:<12} {photo[key]}")
    for face in photo["faces"]:
        box = ",".join(f"{face[k]:.0f}" for k in ("x1", "y1", "x2", "y2"))
        attrs = " ".join(
            f"{face[k]} {face[s]:.2f}" for k, s in (("emotion", "emotion_score"),
                                                    ("age_group", "age_score"))
            if face[k] is not None
        )
        if face["too_small"] and face["emotion"] is None:
            attrs = "too small to read"
        who = f" person {face['person_id']}" + (f" {face['person']}" if face["person"] else "") \
            if face["person_id"] is not None else ""
        click.echo(f"face {face['idx']:<3} id {face['id']:<7} box {box} det {face['det_score']:.2f} "
                   f"{attrs}{who}".rstrip())


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@db_option
@click.option("--xmp", is_flag=True, required=True,
              help="Write XMP sidecars (the one export there is; say it, so a later one can't surprise).")
@click.option("--sidecar-dir", type=click.Path(file_okay=False),
              help="Put sidecars here (mirroring each photo's absolute path) instead of beside the photos.")
@click.option("--sidecar-name", type=click.Choice(["photo.ext.xmp", "photo.xmp"]), default="photo.ext.xmp",
              show_default=True, help="photo.jpg.xmp (digiKam, darktable, Immich) or photo.xmp (Adobe).")
@click.option("--confirmed-names", is_flag=True,
              help="Write a person's name only on the faces the user (or a face region) named, "
                   "not on those the grouping placed.")
def export(paths, db, xmp, sidecar_dir, sidecar_name, confirmed_names):
    """Write face regions, each with its emotion, age group and person, and hierarchical
    keywords (phototag/emotion/…, phototag/age/…, People/NAME) to XMP sidecars that digiKam,
    darktable, Lightroom and Immich read. Photos themselves are never written; an existing
    sidecar is merged: its other fields stay, phototag's own regions and keywords are replaced,
    and a sidecar that already says all of it is not touched.

    Only photos with faces get a sidecar; PATHS limit the export to those folders.
    """
    from .export import export_sidecars
    from .store import printable_path

    store = open_index(db, readonly=True)
    written, unchanged, errors = 0, 0, []
    try:
        for _, changed in export_sidecars(store, paths, sidecar_name == "photo.xmp", sidecar_dir,
                                          errors, confirmed_only=confirmed_names):
            written += changed
            unchanged += not changed
    except ImportError:
        fail("XMP export needs pyexiv2: pip install pyexiv2")
    finally:
        store.close()
    for path, reason in errors:
        click.echo(f"error: {printable_path(path)}: {reason}", err=True)
    where = f" under {printable_path(sidecar_dir)}" if sidecar_dir else ""
    click.echo(f"{written} sidecars written{where}, {unchanged} already up to date, "
               f"{len(errors)} could not be", err=True)


@main.command()
@click.argument("out", type=click.Path(dir_okay=False))
@db_option
@emotion_option
@age_option
@person_option
@path_option
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="At most this many photos.")
def report(out, db, emotions, ages, people, path_glob, limit):
    """Write OUT.html: the photos a search finds, their faces boxed and labelled, with filters
    by emotion, age and person and pages of 48 photos, and the people of the index (one face
    each; the unnamed ones with the command that names them). The page opens with the filters
    given here and shows only the faces they ask for. One self-contained file: open it from
    disk."""
    from .report import render
    from .store import Query

    store = open_index(db, readonly=True)
    try:
        query = Query(emotions=emotions, age_groups=ages, people=people, path_glob=path_glob,
                      limit=limit, paths_only=True)
        photos = [store.photo(path) for path in store.search(query)]
        everyone = store.people()
        page, shown = render(photos, people=everyone, photo_of=store.photo,
                             emotion=emotions[0] if len(emotions) == 1 else "",
                             age=ages[0] if len(ages) == 1 else "",
                             person=people[0] if len(people) == 1 else "")
    finally:
        store.close()
    try:
        # 0600: the page embeds thumbnails of private photos.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    missing = len(photos) - shown
    gone = f" ({missing} found in the index could not be read: moved or deleted since?)" if missing else ""
    click.echo(f"{shown} photos in {out}{gone}", err=True)


from .cli_people import people  # noqa: E402 - registered after main exists

main.add_command(people)


if __name__ == "__main__":
    main()
