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


def known_copies(index, todo, options):
    """Photos already indexed with these weights and settings, by content (sha256 → (path,
    faces)), less those this run redoes: a new photo with the same bytes takes their faces."""
    redoing = {entry.path for entry in todo}
    return {digest: (path, facts["n_faces"])
            for same_size in index.copy_sources(options.model_id, options.settings_id).values()
            for digest, path, facts in same_size if path not in redoing}


def load_embedder(options, device="cpu"):
    """The identity network (SFace) for ``options``, or None when people are off."""
    if not options.people:
        return None
    from . import weights
    from .vision.identity import FaceEmbedder
    from .weights import cache_dir

    path = weights.locate(weights.IDENTITY_WEIGHTS, options.weights_dir)
    try:
        return FaceEmbedder(path, cache_dir().parent / "onnx", device=device)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's and onnx's own errors
        raise SetupError(f"cannot use the identity network {path}: {exc}") from None


class Models:
    """What a runner runs on a batch: the detector, and the tagger and the identity network
    where the run uses them (None otherwise)."""

    def __init__(self, detector, tagger=None, embedder=None):
        self.detector, self.tagger, self.embedder = detector, tagger, embedder


def handle_batch(batch, models, options, writer, summary, reporter, copies=None):
    records, found = detect_records(models.detector, batch, options, copies)
    describe_faces(models, batch, found, records, options)
    record_batch(records, writer, summary, reporter)


def describe_faces(models, photos, found, records, options):
    """Tags and identity for the faces ``detect_records`` found, where the run uses them."""
    if models.tagger is not None:
        tag_records(models.tagger, photos, found, records)
    if models.embedder is not None:
        embed_records(models.embedder, photos, found, records, options.min_person_face)


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
            record.settings = options.settings_id
            record.named_regions = photo.named_regions
            record.sidecar_mtime_ns = photo.sidecar_mtime_ns
            if photo.hash in copies:
                record.faces_from, record.copied_faces = copies[photo.hash]
            else:
                found[i] = _kept(found[i], photo, options)
                record.faces = _faces_at_full_size(found[i], photo)
                for face in record.faces:
                    face.too_small = face.side < options.min_tag_face
        records.append(record)
    for record in records if remember else ():  # later copies of these bytes take these faces
        if record.status == "done" and record.hash not in copies:
            copies[record.hash] = (record.path, len(record.faces))
    return records, found


def _faces_at_least(photos, found, records, keep):
    """(photo position, positions of its faces ``keep`` takes) for every photo with such faces."""
    chosen = []
    for i, photo in enumerate(photos):
        if photo.error is None and i in found:
            faces = [k for k, face in enumerate(records[i].faces) if keep(face)]
            if faces:
                chosen.append((i, faces))
    return chosen


def tag_records(tagger, photos, found, records):
    """Emotion and age for the faces ``detect_records`` found that are large enough to read
    (not ``too_small``), written into their records."""
    chosen = _faces_at_least(photos, found, records, lambda face: not face.too_small)
    answers = tagger.tag([(photos[i].pixels, found[i].boxes[faces], found[i].landmarks[faces])
                          for i, faces in chosen])
    for (i, faces), per_face in zip(chosen, answers):
        for face, tags in zip((records[i].faces[k] for k in faces), per_face):
            face.emotion, face.emotion_score, face.emotion_probs = (
                tags.emotion, tags.emotion_score, tags.emotion_probs)
            face.age_group, face.age_score, face.age_probs = (
                tags.age_group, tags.age_score, tags.age_probs)
            face.gate_face, face.gate_context = tags.gate_face, tags.gate_context


def embed_records(embedder, photos, found, records, min_side):
    """The identity embedding (and sharpness) of every face of at least ``min_side`` pixels;
    each photo read records which network embedded it. What the identity network says is no
    face at all (a lamp, flowers) leaves the record."""
    from .store.records import embedding_bytes

    chosen = _faces_at_least(photos, found, records, lambda face: face.side >= min_side)
    answers = embedder.embed([(photos[i].pixels, found[i].landmarks[faces]) for i, faces in chosen])
    for (i, faces), (vectors, sharpness, is_face) in zip(chosen, answers):
        for k, vector, sharp in zip(faces, vectors, sharpness):
            records[i].faces[k].embedding = embedding_bytes(vector)
            records[i].faces[k].sharpness = round(float(sharp), 2)
        not_faces = {k for k, face in zip(faces, is_face) if not face}
        if not_faces:
            records[i].faces = [f for k, f in enumerate(records[i].faces) if k not in not_faces]
    for record in records:
        if record.status == "done" and record.faces_from is None:
            record.identity = embedder.id


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
