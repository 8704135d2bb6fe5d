"""What the index holds, as Python values: photo and face records, paths, JSON columns."""

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

PHOTO_COLUMNS = (
    "path", "size", "mtime_ns", "hash", "width", "height", "orientation", "taken_at", "camera",
    "lat", "lon", "status", "error", "n_faces", "model", "indexed_at", "orientation_source",
    "settings", "identity", "sidecar_mtime_ns",
)
# What the models say of a face; its person (person_id, person_by) is the people stage's.
FACE_COLUMNS = (
    "idx", "x1", "y1", "x2", "y2", "det_score", "landmarks", "emotion", "emotion_score",
    "emotion_probs", "age_group", "age_score", "age_probs", "gate_face", "gate_context",
    "embedding", "too_small", "sharpness",
)


class IndexedFile(NamedTuple):
    """What the index already knows about one path (a plain view of a ``photos`` row)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str
    status: str
    model: str
    sidecar_mtime_ns: int = None


def now():
    # Microseconds: a resumed --reprocess tells the photos it wrote from those written just
    # before it began by this stamp.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def db_path_value(path):
    """Paths are text; a name that is not valid UTF-8 is kept as its raw bytes (a BLOB)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def path_from_db(value):
    return os.fsdecode(value) if isinstance(value, bytes) else value


def printable_path(path):
    """A path safe to print: undecodable bytes shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class Face:
    box: tuple
    det_score: float
    landmarks: list
    emotion: str = None
    emotion_score: float = None
    emotion_probs: dict = None
    age_group: str = None
    age_score: float = None
    age_probs: dict = None
    gate_face: dict = None
    gate_context: dict = None
    embedding: bytes = None  # identity: 128 float16, L2-normalised (``embedding_bytes``)
    too_small: bool = False  # smaller than the run's --min-tag-face: no emotion or age
    sharpness: float = None  # variance of the Laplacian of the aligned face: blur ranks bursts

    @property
    def side(self):
        """The box's shorter side, in pixels of the upright photo."""
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass
class PhotoRecord:
    path: str
    size: int
    mtime_ns: int
    status: str
    hash: str = None
    width: int = None
    height: int = None
    orientation: int = None
    taken_at: str = None
    camera: str = None
    lat: float = None
    lon: float = None
    error: str = None
    model: str = None
    orientation_source: str = None
    settings: str = None  # the detection and tagging settings that made the faces (IndexOptions)
    identity: str = None  # the identity network that embedded the faces, None: not embedded
    sidecar_mtime_ns: int = None  # the XMP sidecar read with it, when it had one
    faces: list = field(default_factory=list)
    # (name, box in pixels of the upright photo) of each face region the photo's XMP names;
    # None: not read (a copy, an error)
    named_regions: list = None
    # A byte-identical copy of a photo indexed with the same weights: its faces are copied
    # from that photo's rows (by path) instead of being detected and tagged again.
    faces_from: str = None
    copied_faces: int = 0  # how many, for the run's summary


def as_json(value):
    return None if value is None else json.dumps(value, separators=(",", ":"))


JSON_COLUMNS = ("landmarks", "emotion_probs", "age_probs", "gate_face", "gate_context")


def decode_json_columns(row):
    for name in JSON_COLUMNS:
        if row.get(name) is not None:
            row[name] = json.loads(row[name])
    return row


def face_row(photo_id, idx, face):
    x1, y1, x2, y2 = face.box
    return (
        photo_id, idx, x1, y1, x2, y2, face.det_score, as_json(face.landmarks),
        face.emotion, face.emotion_score, as_json(face.emotion_probs),
        face.age_group, face.age_score, as_json(face.age_probs),
        as_json(face.gate_face), as_json(face.gate_context),
        face.embedding, int(bool(face.too_small)), face.sharpness,
    )


def embedding_bytes(vector):
    """An embedding as stored: 128 little-endian float16 (256 bytes)."""
    import numpy as np

    return np.asarray(vector, dtype="<f2").tobytes()


def embedding_array(blobs):
    """Stored embeddings (bytes each) → N×128 float32, rows L2-normalised again."""
    import numpy as np

    if not blobs:
        return np.zeros((0, 128), np.float32)
    vectors = np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(blobs), -1).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors
