"""Wiring the stages of an index run: scan → decode → detect → store.

Nothing here imports torch until there is a photo to look at, so a run that finds nothing to do
(the nightly cron case) costs a walk of the library and a read of the index.
"""

import functools
import json
import os
import queue
import re
import sys
import threading
from dataclasses import dataclass, field

from . import store, weights
from .library import scan

DETECTOR_WEIGHTS = "retinaface_mobilenet0.25_Final.pth"


class SetupError(Exception):
    """The run cannot start: a device that is not there, weights that cannot be used."""


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


@dataclass
class RunSummary:
    seen: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    reprocessed: int = 0
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


def default_workers(device="cpu"):
    cores = os.cpu_count() or 1
    if str(device).startswith("cuda"):
        return max(1, min(8, cores - 1))
    # Two workers even on two cores: decoding then keeps up with the detector (bench/pipeline.py
    # on 64 12-MP JPEGs: --faces-only 5.94 against 4.92 photos/s, tagging 4.82 against 4.69).
    return min(4, max(cores - 1, min(cores, 2)))


def default_batch_size(device="cpu"):
    return 32 if str(device).startswith("cuda") else 8


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
        if not (options.reprocess or options.retry_errors) and index.walk_unchanged(walk_key, digest):
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
        if plan.moved:
            index.apply_moves([(row.id, e.path, e.size, e.mtime_ns) for row, e in plan.moved])
            summary.moved = len(plan.moved)
        if plan.gone:
            index.remove([row.id for row in plan.gone])
            summary.removed = len(plan.gone)
        if plan.todo and not options.attributes and not options.faces_only:
            reporter.note("note: emotion and age tagging is off: this phototag was installed "
                          "without its trained weights; pass --model FILE to use weights from "
                          "`phototag train`")
        if plan.todo and options.ray:
            from . import cluster

            cluster.process(index, plan.todo, options, summary, reporter, stop)
        elif plan.todo:
            _process(index, plan.todo, options, summary, reporter, stop)
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


DEVICE_NAMES = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(name):
    """The device names phototag takes: auto, cpu, cuda, cuda:N (no torch needed to check)."""
    if not DEVICE_NAMES.match(name or ""):
        raise ValueError(f"unknown device {name!r}: auto, cpu, cuda or cuda:N")
    return name


def resolve_device(name):
    """``name`` (auto, cpu, cuda, cuda:N) → the device to use; SetupError if it is not there."""
    import torch

    try:
        check_device_name(name)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SetupError(f"--device {name} was asked for, but PyTorch sees no CUDA device")
        number = int(name.partition(":")[2] or 0)
        if number >= torch.cuda.device_count():
            raise SetupError(f"--device {name} was asked for, but PyTorch sees "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return name


class PhotoFiles:
    """A map-style dataset: DataLoader workers read and decode photos in parallel. Each worker
    notes in shared memory which photo it is decoding, so that when a decoder takes its
    process down (a codec's segfault, the OOM killer) the run knows which photo did it.

    ``shared_memory``: the pixels come back as tensors, which a worker hands over in shared
    memory; else as numpy arrays, pickled through a pipe and copied again by the main process
    (which runs the detector: every copy there is time the detector waits)."""

    def __init__(self, entries, max_size, in_hand=None, shared_memory=False):
        self.entries = entries
        self.max_size = max_size
        self.shared_memory = shared_memory
        self.in_hand = in_hand  # per worker: (pid, position being decoded or -1)

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        from .library.decode import load  # Pillow and numpy only when there is a photo to read

        slot = None
        if self.in_hand is not None:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
            if info is not None:
                slot = info.id
                self.in_hand[2 * slot], self.in_hand[2 * slot + 1] = os.getpid(), i
        photo = load(self.entries[i], self.max_size)
        if slot is not None:
            self.in_hand[2 * slot + 1] = -1
        if self.shared_memory and photo.pixels is not None:
            import torch

            photo.pixels = torch.from_numpy(photo.pixels)
        return photo


def shared_memory_room(workers, batch_size, max_size, folder="/dev/shm"):
    """Whether decode workers should hand photos over in shared memory: there are workers, and
    ``folder`` has room for the decoded photos in flight (each worker's two batches ahead and two
    batches in the main process, at the largest working size). Docker gives a container 64 MB
    there by default; a worker writing past it dies of SIGBUS, which would read as the photo in
    hand crashing its decoder."""
    if not workers:
        return False  # decoded in the main process: nothing to hand over
    try:
        free = os.statvfs(folder)
    except OSError:
        return False
    in_flight = (2 * workers + 2) * batch_size * max_size * max_size * 3
    return free.f_bavail * free.f_frsize >= in_flight


class _Batch(list):
    """A batch of decoded photos; the DataLoader pins their pixels for fast copies to a GPU."""

    def pin_memory(self):
        import torch

        for photo in self:
            if photo.pixels is not None:
                photo.pixels = torch.as_tensor(photo.pixels).pin_memory()
        return self


class BatchWriter(threading.Thread):
    """Writes batches to the index in the background (one transaction each), so the models
    never wait for SQLite. A write error stops the run at the next batch."""

    def __init__(self, index):
        super().__init__(name="phototag-writer", daemon=True)
        self.index = index
        self.queue = queue.Queue(maxsize=2)
        self.error = None

    def run(self):
        while True:
            records = self.queue.get()
            if records is None:
                return
            if self.error is None:
                try:
                    self.index.write_photos(records)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.error = exc

    def write(self, records):
        self.check()
        self.queue.put(records)

    def check(self):
        if self.error is not None:
            raise self.error

    def close(self):
        self.queue.put(None)
        self.join()
        self.check()


def _start_worker(parent, _worker_id):
    """A decode worker ignores Ctrl-C (the main process finishes the batch in hand, then stops)
    and dies with the run: killed with SIGKILL, the run leaves no worker behind."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent):
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: Linux only
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)


def _dead_workers(error):
    """The pids a DataLoader names in the error it raises when a worker process dies, or None
    for any other error."""
    found = re.search(r"DataLoader worker \(pid(?:\(s\))? ([\d, ]+)\)", str(error))
    return {int(n) for n in re.findall(r"\d+", found.group(1))} if found else None


def _crashed_record(entry, error):
    from .library.decode import DecodedPhoto

    signal = re.search(r"killed by signal: ([^.]+)", str(error))
    how = f"killed by signal: {signal.group(1)}" if signal else "exited unexpectedly"
    return DecodedPhoto(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns,
                        error=f"decoder crashed (its process was {how})")


def keep_list(batch):
    """A DataLoader's collate_fn: the decoded photos differ in size, so a batch stays a list."""
    return _Batch(batch)


def _process(index, todo, options, summary, reporter, stop):
    import torch
    from torch.utils.data import DataLoader

    from .vision.detect import Detector

    device = resolve_device(options.device)
    detector = Detector(weights.locate(DETECTOR_WEIGHTS, options.weights_dir), device=device)
    tagger = None
    if options.attributes:
        tagger = load_tagger(options, device)
    workers = default_workers(device) if options.workers is None else options.workers
    on_gpu = device.startswith("cuda")
    batch_size = options.batch_size or default_batch_size(device)
    # Shared memory where it has room (bench/photo_transfer.py, 64 12-MP JPEGs, two cores):
    # decoding alone 1.34 times as fast as through the pipe, --faces-only runs 1.11, tagging 1.09.
    shared_memory = shared_memory_room(workers, batch_size, options.max_size)
    in_hand = None
    if workers:
        import multiprocessing

        in_hand = multiprocessing.Array("q", [0, -1] * workers, lock=False)
    reporter.start(len(todo))
    writer = BatchWriter(index)
    writer.start()
    remaining = list(todo)
    copies = known_copies(index, todo, options.model_id)
    try:
        with torch.inference_mode():
            while remaining:
                loader = DataLoader(
                    PhotoFiles(remaining, options.max_size, in_hand=in_hand,
                               shared_memory=shared_memory),
                    batch_size=batch_size,
                    num_workers=workers,
                    collate_fn=keep_list,
                    pin_memory=on_gpu,
                    worker_init_fn=functools.partial(_start_worker, os.getpid()) if workers else None,
                )
                done = 0
                try:
                    for batch in loader:
                        _handle_batch(batch, detector, tagger, options, writer, summary, reporter,
                                      copies)
                        done += len(batch)
                        if stop.is_set():
                            summary.interrupted = True
                            return
                    return
                except RuntimeError as error:
                    dead = _dead_workers(error)
                    if not dead or in_hand is None:
                        raise
                    culprits = sorted({in_hand[2 * w + 1] for w in range(workers)
                                       if in_hand[2 * w] in dead and in_hand[2 * w + 1] >= 0})
                    if not culprits:
                        raise
                    # The photo a dead worker had in hand is recorded as an error (retried
                    # when it changes); the others go round again.
                    crashed = [_crashed_record(remaining[i], error) for i in culprits]
                    _handle_batch(_Batch(crashed), detector, tagger, options, writer, summary,
                                  reporter)
                    for i in range(workers):
                        in_hand[2 * i], in_hand[2 * i + 1] = 0, -1
                    remaining = [e for i, e in enumerate(remaining) if i >= done and i not in culprits]
                    del loader
    finally:
        writer.close()


def load_tagger(options, device="cpu"):
    """The emotion/age tagger of ``options.attributes``; SetupError for weights it refuses."""
    from .vision.attributes import AttributeTagger

    try:
        return AttributeTagger(options.attributes, device=device,
                               allow_untrained=options.allow_untrained)
    except (ValueError, OSError) as exc:
        raise SetupError(f"cannot use {options.attributes}: {exc}") from None


def known_copies(index, todo, model_id):
    """Photos already indexed with these weights, by content (sha256 → (path, faces)), less
    those this run redoes: a new photo with the same bytes takes their faces."""
    redoing = {entry.path for entry in todo}
    return {digest: known for digest, known in index.photos_by_content(model_id).items()
            if known[0] not in redoing}


def _handle_batch(batch, detector, tagger, options, writer, summary, reporter, copies=None):
    records, found = detect_records(detector, batch, options, copies)
    if tagger is not None:
        tag_records(tagger, batch, found, records)
    record_batch(records, writer, summary, reporter)


def record_batch(records, writer, summary, reporter):
    """Hand a batch's records to the writer and count them."""
    writer.write(records)
    faces = sum(len(r.faces) + r.copied_faces for r in records)
    failed = [r for r in records if r.status == "error"]
    summary.processed += len(records)
    summary.errors += len(failed)
    summary.faces += faces
    summary.error_list += [(r.path, r.error) for r in failed]
    summary.copied += sum(r.faces_from is not None for r in records)
    reporter.advance(len(records), faces)


# Pixels per detector forward pass. On the CPU a batch of large photos runs slower per photo
# than one photo at a time (a 1600 × 1200 forward: 0.105 s alone, 0.25 s each in fours: the
# activations no longer fit the caches), so the CPU batches only small photos together.
FORWARD_PIXELS = {"cpu": 1_000_000, "cuda": 64_000_000}


def detect_records(detector, photos, options, copies=None, remember=True):
    """Detect faces in a batch of decoded photos → (records, {position: faces found}). Only
    photos of one size share a forward pass, so every photo's result is the same whatever else
    is in its batch. ``copies`` (sha256 → (path, faces) of a photo indexed with these weights):
    a byte-identical photo takes that photo's faces, unrun; with ``remember`` this batch's
    photos join ``copies`` for the batches after it."""
    copies = copies if copies is not None else {}
    by_shape = {}
    for i, photo in enumerate(photos):
        if photo.error is None and photo.hash not in copies:
            by_shape.setdefault(tuple(photo.pixels.shape), []).append(i)
    budget = FORWARD_PIXELS.get(detector.device.type, FORWARD_PIXELS["cpu"])
    found = {}
    for (height, width, _), indices in by_shape.items():
        per_pass = max(1, budget // (height * width))
        for start in range(0, len(indices), per_pass):
            chunk = indices[start:start + per_pass]
            results = detector.detect([photos[i].pixels for i in chunk], options.min_score)
            found.update(zip(chunk, results))
    records = []
    for i, photo in enumerate(photos):
        record = store.PhotoRecord(
            path=photo.path, size=photo.size, mtime_ns=photo.mtime_ns, hash=photo.hash,
            status="error" if photo.error else "done", error=photo.error,
            width=photo.width, height=photo.height,
            orientation=photo.metadata.orientation, orientation_source=photo.orientation_source,
            taken_at=photo.metadata.taken_at,
            camera=photo.metadata.camera, lat=photo.metadata.lat, lon=photo.metadata.lon,
        )
        if photo.error is None:
            record.model = options.model_id
            if photo.hash in copies:
                record.faces_from, record.copied_faces = copies[photo.hash]
            else:
                found[i] = _kept(found[i], photo, options)
                record.faces = _faces_at_full_size(found[i], photo)
        records.append(record)
    for record in records if remember else ():  # later copies of these bytes take these faces
        if record.status == "done" and record.hash not in copies:
            copies[record.hash] = (record.path, len(record.faces))
    return records, found


def tag_records(tagger, photos, found, records):
    """Emotion and age for the faces ``detect_records`` found, written into their records."""
    done = [i for i, photo in enumerate(photos) if photo.error is None and i in found]
    answers = tagger.tag([(photos[i].pixels, found[i].boxes, found[i].landmarks) for i in done])
    for i, per_face in zip(done, answers):
        for face, tags in zip(records[i].faces, per_face):
            face.emotion, face.emotion_score, face.emotion_probs = (
                tags.emotion, tags.emotion_score, tags.emotion_probs)
            face.age_group, face.age_score, face.age_probs = (
                tags.age_group, tags.age_score, tags.age_probs)
            face.gate_face, face.gate_context = tags.gate_face, tags.gate_context


def _kept(faces, photo, options):
    """The faces --min-face and --max-faces keep (sizes in full-resolution pixels)."""
    sx, sy = photo.scale
    sides = ((faces.boxes[:, 2:] - faces.boxes[:, :2]) * [sx, sy]).min(axis=1)
    keep = [i for i in range(len(faces)) if sides[i] >= options.min_face]
    if options.max_faces is not None and len(keep) > options.max_faces:
        keep = sorted(sorted(keep, key=lambda i: -sides[i])[: options.max_faces])
    return faces.select(keep)


def _faces_at_full_size(faces, photo):
    """Boxes and landmarks in pixels of the upright full-resolution photo."""
    sx, sy = photo.scale
    boxes = faces.boxes * [sx, sy, sx, sy]
    landmarks = faces.landmarks * [sx, sy]
    result = []
    for i in range(len(faces)):
        x1, y1, x2, y2 = boxes[i]
        box = (
            max(0.0, float(x1)), max(0.0, float(y1)),
            min(float(photo.width), float(x2)), min(float(photo.height), float(y2)),
        )
        result.append(
            store.Face(
                box=tuple(round(v, 2) for v in box),
                det_score=round(float(faces.scores[i]), 5),
                landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in landmarks[i]],
            )
        )
    return result
