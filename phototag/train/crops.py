"""Training faces located, aligned and cut once, then kept as uint8 arrays on disk.

Every training image goes through RetinaFace once (its box and five landmarks, or, where
nothing is found, the whole image as the box with the template's landmarks), and is cut into
the crops the model reads: the aligned face with a margin for augmentation, and the unmasked
context with the face's box in its pixels. Both are kept in a store keyed by the image's
content (and the dataset's face box, when it gives one), so epochs cost only the network, a run
over a subset reuses what a larger one cut, and renaming a dataset's folder changes nothing.

A store is three files per crop geometry under the cache folder: ``<key>.sqlite`` (content key →
row), ``<key>.face`` and ``<key>.context`` (rows of raw pixels, appended). A row is committed to
the SQLite file only after its pixels are written, so a stopped build resumes where it stopped.
"""

import hashlib
import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Training images are decoded at most this large, both to locate their faces and to cut the
# crops from.
DECODE_SIZE = 640
STORE_VERSION = 2


@dataclass(frozen=True)
class CropGeometry:
    face_size: int
    context_size: int
    context_scale: float
    margin: int  # pixels added on every side of the aligned face, for augmentation

    @classmethod
    def for_config(cls, config):
        return cls(config.face_size, config.context_size, float(config.context_scale),
                   margin=max(4, round(config.face_size * 0.125)))

    @property
    def canvas(self):
        return self.face_size + 2 * self.margin

    def key(self, detector_name):
        text = json.dumps([STORE_VERSION, detector_name, asdict(self)], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class CropSet:
    """Crops and labels of a list of items, in item order. ``face`` and ``context`` are uint8
    (memory-mapped) arrays indexed through ``rows``."""

    items: list
    rows: np.ndarray
    face: np.ndarray  # R×canvas×canvas×3
    context: np.ndarray  # R×context×context×3, unmasked
    box: np.ndarray  # R×4: the face's box in context-crop pixels
    found: np.ndarray  # R bool: RetinaFace found the face (else the whole image was taken)
    geometry: CropGeometry
    source: str = None  # the store's file; None for crops held in memory

    def __len__(self):
        return len(self.items)

    def labels(self, task):
        return np.array([getattr(item, task) for item in self.items], dtype=np.int64)

    def subset(self, keep):
        keep = list(keep)
        return CropSet([self.items[i] for i in keep], self.rows[np.array(keep, dtype=np.int64)],
                       self.face, self.context, self.box, self.found, self.geometry, self.source)

    def joined(self, other):
        """Both sets' items; they must come from one store (rows are only ever appended to
        it, so the later-opened arrays hold every row of both)."""
        if self.source is None or other.source != self.source:
            raise ValueError("crop sets from different stores cannot be joined")
        newer = self if len(self.face) >= len(other.face) else other
        return CropSet(self.items + other.items, np.concatenate([self.rows, other.rows]),
                       newer.face, newer.context, newer.box, newer.found, self.geometry, self.source)

    def gather(self, indices, with_context=True):
        """uint8 face canvases, contexts (None without ``with_context``) and the faces' boxes in
        them, for these positions."""
        rows = self.rows[np.asarray(indices)]
        order = np.argsort(rows)  # reading a memory map in file order is faster
        faces = np.empty((len(rows),) + self.face.shape[1:], np.uint8)
        faces[order] = self.face[rows[order]]
        contexts = None
        if with_context:
            contexts = np.empty((len(rows),) + self.context.shape[1:], np.uint8)
            contexts[order] = self.context[rows[order]]
        return faces, contexts, self.box[rows]

    @property
    def found_share(self):
        return float(self.found[self.rows].mean()) if len(self.rows) else 0.0


def content_key(path, box=None):
    """What identifies a training face: the file's bytes, and the box a dataset gives."""
    digest = hashlib.sha1(Path(path).read_bytes())
    if box:
        digest.update((",".join(f"{v:g}" for v in box)).encode())
    return digest.hexdigest()


class CropStore:
    def __init__(self, folder, geometry, detector_name):
        self.geometry = geometry
        stem = Path(folder) / f"crops-{geometry.key(detector_name)}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.path = str(stem.with_suffix(".sqlite"))
        self.face_path = stem.with_suffix(".face")
        self.context_path = stem.with_suffix(".context")
        self.db = sqlite3.connect(str(stem.with_suffix(".sqlite")))
        self.db.execute("CREATE TABLE IF NOT EXISTS crops (key TEXT PRIMARY KEY, row INTEGER, "
                        "found INTEGER, box TEXT)")
        self.face_bytes = geometry.canvas ** 2 * 3
        self.context_bytes = geometry.context_size ** 2 * 3
        self.count = self.db.execute("SELECT count(*) FROM crops").fetchone()[0]
        # Pixels written after the last commit (a stopped build) are dropped.
        for path, size in ((self.face_path, self.face_bytes), (self.context_path, self.context_bytes)):
            with open(path, "ab") as f:
                f.truncate(self.count * size)

    def known(self):
        return {key: (row, found, json.loads(box)) for key, row, found, box in
                self.db.execute("SELECT key, row, found, box FROM crops")}

    def append(self, entries):
        """``entries``: (key, face uint8, context uint8, box, found); written, then committed."""
        with open(self.face_path, "ab") as faces, open(self.context_path, "ab") as contexts:
            for _, face, context, _, _ in entries:
                faces.write(np.ascontiguousarray(face, np.uint8).tobytes())
                contexts.write(np.ascontiguousarray(context, np.uint8).tobytes())
            faces.flush()
            contexts.flush()
            os.fsync(faces.fileno())
            os.fsync(contexts.fileno())
        rows = []
        for key, _, _, box, found in entries:
            rows.append((key, self.count, int(found), json.dumps([round(float(v), 3) for v in box])))
            self.count += 1
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO crops VALUES (?, ?, ?, ?)", rows)

    def arrays(self):
        if self.count == 0:
            shape_face = (0, self.geometry.canvas, self.geometry.canvas, 3)
            shape_context = (0, self.geometry.context_size, self.geometry.context_size, 3)
            return np.zeros(shape_face, np.uint8), np.zeros(shape_context, np.uint8)
        canvas, side = self.geometry.canvas, self.geometry.context_size
        face = np.memmap(self.face_path, np.uint8, "r", shape=(self.count, canvas, canvas, 3))
        context = np.memmap(self.context_path, np.uint8, "r", shape=(self.count, side, side, 3))
        return face, context

    def close(self):
        self.db.close()


class LocatedFaces:
    """Where each training image's face is (content key → box, landmarks, found), per
    detector: shared by every crop geometry, so trying another crop size detects nothing."""

    def __init__(self, folder, detector_name):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(Path(folder) / f"located-{detector_name}.sqlite"))
        self.db.execute("CREATE TABLE IF NOT EXISTS faces (key TEXT PRIMARY KEY, face TEXT)")

    def get(self, keys):
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update((k, tuple(json.loads(v))) for k, v in
                         self.db.execute(f"SELECT key, face FROM faces WHERE key IN ({marks})", chunk))
        return found

    def put(self, entries):
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO faces VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in entries])

    def close(self):
        self.db.close()


def cut(pixels, box, landmarks, geometry):
    """The face canvas, the unmasked context and the face's box in it, for one face."""
    import torch

    from ..vision.regions import align_transform, context_transform, photo_tensor, sample

    photo = photo_tensor(pixels)
    boxes = torch.tensor([box], dtype=torch.float32)
    points = torch.tensor([landmarks], dtype=torch.float32)
    A, b = align_transform(points, geometry.face_size, geometry.margin)
    face = sample(photo, A, b, geometry.canvas)[0]
    height, width = photo.shape[1:]
    cA, cb, box_in_crop = context_transform(boxes, height, width, geometry.context_scale,
                                            geometry.context_size)
    context = sample(photo, cA, cb, geometry.context_size)[0]

    def to_uint8(t):
        return (t * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    return to_uint8(face), to_uint8(context), box_in_crop[0].tolist()


def template_landmarks(box):
    from ..vision.regions import TEMPLATE

    x1, y1, x2, y2 = box
    return [[x1 + float(u) * (x2 - x1), y1 + float(v) * (y2 - y1)] for u, v in TEMPLATE.tolist()]


def choose_face(found, wanted, width, height):
    """(box, landmarks, found): the detected face matching the dataset's box (or the best
    one), else the dataset's box or the whole image with the template's landmarks."""
    from ..boxes import box_iou

    choice = None
    if len(found):
        if wanted:
            overlaps = [box_iou(wanted, b) for b in found.boxes]
            best = max(range(len(found)), key=lambda k: overlaps[k])
            choice = best if overlaps[best] > 0.3 else None
        else:
            choice = 0  # best score
    if choice is None:
        box = list(wanted) if wanted else [0.0, 0.0, float(width), float(height)]
        return box, template_landmarks(box), False
    return found.boxes[choice].tolist(), found.landmarks[choice].tolist(), True


def build_crops(items, detector, cache_dir, geometry, min_score=0.5, batch=64, progress=None):
    """The crops of ``items`` (located and cut the first time, then read from the store).
    Returns (CropSet, number of items that could not be read)."""
    from ..library.decode import DecodeError, decode_bytes

    store = CropStore(cache_dir, geometry, detector.name)
    located = LocatedFaces(cache_dir, detector.name)
    try:
        known = store.known()
        keys = []
        for item in items:
            try:
                keys.append(content_key(item.path, item.box))
            except OSError:
                keys.append(None)
        todo, seen = [], set()
        for i, key in enumerate(keys):
            if key is not None and key not in known and key not in seen:
                seen.add(key)  # the same image twice in one dataset is cut once
                todo.append(i)
        faces = located.get([keys[i] for i in todo])
        pending = {}

        def flush(shape):
            group = pending.pop(shape)
            unlocated = [(i, pixels) for i, pixels in group if keys[i] not in faces]
            results = detector.detect([pixels for _, pixels in unlocated], min_score=min_score)
            new = []
            for (i, pixels), result in zip(unlocated, results):
                height, width = pixels.shape[:2]
                faces[keys[i]] = choose_face(result, items[i].box, width, height)
                new.append((keys[i], faces[keys[i]]))
            located.put(new)
            entries = []
            for i, pixels in group:
                box, landmarks, found = faces[keys[i]]
                face, context, box_in_crop = cut(pixels, box, landmarks, geometry)
                entries.append((keys[i], face, context, box_in_crop, found))
            store.append(entries)
            if progress:
                progress(len(entries))

        for i in todo:
            try:
                pixels = decode_bytes(Path(items[i].path).read_bytes(), DECODE_SIZE)[0]
            except (DecodeError, OSError):
                keys[i] = None
                continue
            pending.setdefault(pixels.shape, []).append((i, pixels))
            if len(pending[pixels.shape]) >= batch:
                flush(pixels.shape)
        for shape in list(pending):
            flush(shape)
        known = store.known()
        kept = [i for i, k in enumerate(keys) if k is not None and k in known]
        face, context = store.arrays()
        rows = np.array([known[keys[i]][0] for i in kept], dtype=np.int64)
        box = np.zeros((store.count, 4), np.float32)
        found = np.zeros(store.count, bool)
        for row, was_found, row_box in known.values():
            box[row], found[row] = row_box, bool(was_found)
        crops = CropSet([items[i] for i in kept], rows, face, context, box, found, geometry,
                        store.path)
        return crops, len(items) - len(kept)
    finally:
        store.close()
        located.close()


def crops_from_faces(items, faces, geometry):
    """A CropSet held in memory, for items whose faces are already known ((box, landmarks,
    found) per item): generated data in tests, or a dataset with landmarks of its own."""
    from ..library.decode import decode_bytes

    cut_faces, contexts, boxes, found = [], [], [], []
    for item, (box, landmarks, was_found) in zip(items, faces):
        pixels = decode_bytes(Path(item.path).read_bytes(), DECODE_SIZE)[0]
        face, context, box_in_crop = cut(pixels, box, landmarks, geometry)
        cut_faces.append(face)
        contexts.append(context)
        boxes.append(box_in_crop)
        found.append(was_found)
    return CropSet(list(items), np.arange(len(items)), np.stack(cut_faces), np.stack(contexts),
                   np.array(boxes, np.float32), np.array(found, bool), geometry)
