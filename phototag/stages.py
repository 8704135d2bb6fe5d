"""What every runner does to a batch of decoded photos: find the faces, tag them, make the
records, and hand them to the one writer. The local runner and the Ray runner both import this;
it imports neither."""

import queue
import threading

from . import store
from .devices import SetupError
from .weights import DETECTOR_WEIGHTS  # noqa: F401 - the runners take it from here


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


def handle_batch(batch, detector, tagger, options, writer, summary, reporter, copies=None):
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
