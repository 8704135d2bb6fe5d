"""An index run: walk and plan (``library.scan``), then hand the work to a runner (this
machine's, or Ray's with ``--ray``), then group the new faces into people.

Nothing here imports torch until there is a photo to look at, so a run that finds nothing to do
(the nightly cron case) costs a walk of the library and a read of the index.
"""

import functools
import json
import os
import sys
import threading
from dataclasses import dataclass, field

from . import weights
from .library import scan
from .stages import DETECTOR_WEIGHTS

# Chosen by measurement (docs/accuracy.md, `python -m bench tag_size`; docs/people.md,
# `python -m bench people`): box sides, in pixels of the photo.
MIN_TAG_FACE = 24
MIN_PERSON_FACE = 48

@dataclass
class IndexOptions:
    roots: list
    weights_dir: str = None
    device: str = "auto"
    batch_size: int = None  # None: 8 photos on the CPU, 32 on a GPU
    workers: int = None  # None: cores - 1, at least 2 and at most 4 on the CPU, up to 8 with a GPU
    max_size: int = 1600
    min_score: float = 0.6
    min_face: int = 0
    max_faces: int = None
    min_tag_face: int = MIN_TAG_FACE  # faces smaller than this get no emotion or age
    min_person_face: int = MIN_PERSON_FACE  # faces smaller than this are not grouped into people
    people: bool = True  # embed faces and group them into people
    include_hidden: bool = False
    reprocess: bool = False
    retry_errors: bool = False
    attributes: str = None  # path of trained emotion/age weights; None: tagging is off
    faces_only: bool = False  # the user turned tagging off: no note about it
    allow_untrained: bool = False  # speed benchmarks only: they throw their index away
    ray: str = None  # a Ray cluster's address (or "local") to run the models on; None: here
    ray_actors: int = None  # detector and tagger actors each; None: a GPU each, else CPUs / 4

    @functools.cached_property
    def model_id(self):
        """The id stored with every photo: which weights produced its rows."""
        detector = os.path.splitext(DETECTOR_WEIGHTS)[0]
        if not self.attributes:
            return detector
        return f"{detector}+{weights.weights_id(self.attributes)}"

    @property
    def settings_id(self):
        """The settings that shape a photo's faces and tags, as stored with it: a byte-identical
        copy takes an indexed photo's faces only when they were made the same way."""
        settings = {"max_size": self.max_size, "min_score": self.min_score,
                    "min_face": self.min_face, "max_faces": self.max_faces,
                    "min_tag_face": self.min_tag_face, "min_person_face": self.min_person_face,
                    "people": self.people}
        return json.dumps(settings, sort_keys=True, separators=(",", ":"))


@dataclass
class RunSummary:
    seen: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    reprocessed: int = 0
    retried: int = 0  # failures tried again (--retry-errors)
    copied: int = 0  # byte-identical copies of indexed photos: faces copied, models not run
    to_do: int = 0  # photos the plan gave this run to decode and detect
    moved: int = 0
    removed: int = 0
    processed: int = 0
    errors: int = 0
    faces: int = 0
    interrupted: bool = False
    error_list: list = field(default_factory=list)
    unreadable_dirs: list = field(default_factory=list)
    other_models: dict = field(default_factory=dict)
    embedded: int = 0  # photos indexed before people whose faces were embedded this run
    people: dict = None  # what placing the new faces did (people.update)

    def counts(self):
        names = ("seen", "unchanged", "new", "changed", "moved", "removed", "processed",
                 "errors", "faces")
        return {name: getattr(self, name) for name in names}


class Reporter:
    """What an index run tells the person watching; the CLI subclasses it."""

    def start(self, total):
        pass

    def advance(self, photos, faces):
        pass

    def note(self, message):
        pass


def _reread_names(index, changed):
    """Unchanged photos whose sidecar changed: the names in their face regions are read again
    (their own XMP and the sidecar, no pixels decoded, no model)."""
    from .library.decode import named_regions_of

    for row, entry in changed:
        orientation, width, height = index.photo_frame(row.id)
        regions, mtime = named_regions_of(entry.path, orientation, width, height)
        index.reread_names(row.id, regions, mtime)


def _copies_first(index, todo, options, summary, reporter):
    """New files with the bytes of a photo indexed with these weights and settings (a backup
    folder, an export) take that photo's rows, before any model is loaded: a night whose new
    photos are all copies starts none. Returns what is left to do. Only files of a size some
    indexed photo has are read, and a file with a sidecar of its own goes the long way (its
    sidecar may say something the original's does not)."""
    from .files import file_sha256
    from .stages import record_batch
    from .store import PhotoRecord

    if not todo:
        return todo
    sources = index.copy_sources(options.model_id, options.settings_id)
    redoing = {entry.path for entry in todo}
    left, copies = [], []
    for entry in todo:
        candidates = [c for c in sources.get(entry.size, ()) if c[1] not in redoing]
        digest = None
        if candidates and entry.error is None and entry.sidecar_mtime_ns is None:
            try:
                digest = file_sha256(entry.path)
            except OSError:
                pass
        source = next((c for c in candidates if c[0] == digest), None)
        if source is None or source[2]["orientation_source"] == "sidecar":
            left.append(entry)
            continue
        _, path, facts = source
        facts = {k: v for k, v in facts.items() if k != "orientation_source"}
        copies.append(PhotoRecord(
            path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns, status="done", hash=digest,
            model=options.model_id, settings=options.settings_id, faces_from=path,
            copied_faces=facts.pop("n_faces"), **facts))
    if copies:
        from .stages import BatchWriter

        writer = BatchWriter(index)
        writer.start()
        try:
            record_batch(copies, writer, summary, reporter)
        finally:
            writer.close()
    return left


def _people(index, options, summary, reporter, stop):
    """After the photos: faces indexed before phototag knew people get their embeddings (the
    photo decoded again, its faces as they are), then new faces are placed."""
    from . import people

    backfill = index.photos_to_embed(options.roots)
    if backfill:
        from . import local_runner

        reporter.note(f"embedding the faces of {len(backfill)} photos indexed before people "
                      f"were (once)")
        local_runner.embed_indexed(index, backfill, options, summary, reporter, stop)
        if stop.is_set():
            summary.interrupted = True
            return
    summary.people = people.update(index)


def run_index(index, options, reporter=None, stop=None):
    """One incremental index run over ``options.roots``; returns what it did."""
    reporter = reporter or Reporter()
    stop = stop or threading.Event()
    summary = RunSummary()
    run_id = index.start_run(options.roots, options.model_id)
    status = "crashed"
    try:
        walked = scan.walk(options.roots, include_hidden=options.include_hidden)
        summary.seen = len(walked.files)
        summary.unreadable_dirs = walked.unreadable_dirs
        walk_key = json.dumps([sorted(options.roots), options.include_hidden, options.model_id])
        digest = scan.fingerprint(walked)
        backfill = options.people and index.photos_to_embed(options.roots, exists=True)
        if (not (options.reprocess or options.retry_errors or backfill)
                and index.walk_unchanged(walk_key, digest)):
            # The nightly case: the same files as the last finished run, and the index untouched
            # since. No need to read the index or compare.
            summary.unchanged = summary.seen
            summary.other_models = index.other_models(options.roots, options.model_id)
            status = "finished"
            return summary
        indexed = index.indexed_files()
        redone = frozenset()
        if options.reprocess:
            # A --reprocess that was stopped resumes: what it redid before is not redone.
            redone = index.redone_since(index.reprocess_started(walk_key))
        plan = scan.plan(
            walked, indexed, options.roots,
            reprocess=options.reprocess, retry_errors=options.retry_errors,
            stored_hashes=index.hashes, redone=redone,
        )
        summary.unchanged, summary.new, summary.changed = plan.unchanged, plan.new, plan.changed
        summary.reprocessed, summary.to_do = plan.reprocessed, len(plan.todo)
        summary.retried = plan.retried
        if plan.moved:
            index.apply_moves([(row.id, e.path, e.size, e.mtime_ns) for row, e in plan.moved])
            summary.moved = len(plan.moved)
        if plan.gone:
            index.remove([row.id for row in plan.gone])
            summary.removed = len(plan.gone)
        if plan.sidecars:
            _reread_names(index, plan.sidecars)
        plan.todo = _copies_first(index, plan.todo, options, summary, reporter)
        if plan.todo and not options.attributes and not options.faces_only:
            reporter.note("note: emotion and age tagging is off: this phototag was installed "
                          "without its trained weights; pass --model FILE to use weights from "
                          "`phototag train`")
        if plan.todo and options.ray:
            from . import ray_runner

            ray_runner.process(index, plan.todo, options, summary, reporter, stop)
        elif plan.todo:
            from . import local_runner

            local_runner.process(index, plan.todo, options, summary, reporter, stop)
        if options.people and not summary.interrupted and not stop.is_set():
            _people(index, options, summary, reporter, stop)
        summary.other_models = index.other_models(options.roots, options.model_id)
        status = "interrupted" if summary.interrupted else "finished"
        if options.reprocess and not summary.interrupted:
            index.reprocess_finished(walk_key)
        if not summary.interrupted and not plan.skipped_present:
            # The index now holds what was walked (a file changed meanwhile changes the next
            # walk). Remembered with the index's generation: any later change to either sends
            # the next run the long way. Not when indexed files the walk skipped are still on
            # disk (hidden ones, after a --hidden run): each run checks whether they are gone.
            index.remember_walk(walk_key, digest)
        return summary
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, by the person, not a crash
        status = "interrupted"
        raise
    finally:
        stopping_on_an_error = sys.exc_info()[0] is not None
        try:
            index.finish_run(run_id, status, summary.counts())
        except Exception:  # noqa: BLE001
            # A full disk fails this write too: the error that stopped the run is the one to
            # report, so this one is dropped when another is on its way.
            if not stopping_on_an_error:
                raise
