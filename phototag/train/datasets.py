"""Labelled training data: image folders, CSV manifests (CAER-S included) and UTKFace folders.

This module reads labels; ``crops.py`` finds each image's face and cuts its crops.
"""

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..labels import AGE_BINS, AGE_GROUPS, EMOTIONS

# Dataset class names → phototag's emotions. Disgust and contempt have no class: left out.
EMOTION_ALIASES = {
    "smile": "smile", "happy": "smile", "happiness": "smile", "joy": "smile",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry",
    "anxiety": "anxiety", "fear": "anxiety", "afraid": "anxiety",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral",
}
NO_CLASS = {"disgust", "contempt"}
# CAER-S annotation labels: 0 Anger 1 Disgust 2 Fear 3 Happy 4 Neutral 5 Sad 6 Surprise.
CAER_LABELS = ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
UTKFACE_NAME = re.compile(r"^(\d+)_\d+_\d+_")


@dataclass
class Item:
    path: str
    emotion: int = -1  # index into EMOTIONS, -1 when the image says nothing about it
    age: int = -1  # index into AGE_GROUPS, -1 when unknown or only a range of groups is known
    age_mask: int = 0  # bit g set: group g is possible (one bit when ``age`` is known)
    box: tuple = None  # a face box the dataset gives (x1, y1, x2, y2), if any


@dataclass
class DatasetReport:
    source: str
    items: int = 0
    ranges: int = 0  # labelled with a range of age groups (trained as "one of these")
    left_out: dict = field(default_factory=dict)  # reason → count

    def leave_out(self, reason):
        self.left_out[reason] = self.left_out.get(reason, 0) + 1


def dataset_class(label):
    """A dataset's class name, lower case; CAER-S's numbers become its names."""
    label = str(label).strip().lower()
    if label.isdigit() and int(label) < len(CAER_LABELS):
        return CAER_LABELS[int(label)]
    return label


def emotion_index(label):
    name = EMOTION_ALIASES.get(dataset_class(label))
    return EMOTIONS.index(name) if name else None


def age_groups(label):
    """The age groups a label allows: a group name, whole years, or a range of years ("3-7",
    "66+"); a range straddling a bin edge allows each group it touches. Empty when unreadable."""
    label = str(label).strip().lower()
    if label in AGE_GROUPS:
        return (AGE_GROUPS.index(label),)
    if label.isdigit():
        low = high = int(label)
    elif re.fullmatch(r"\d+\s*-\s*\d+", label):
        low, high = (int(v) for v in label.split("-"))
    elif re.fullmatch(r"\d+\+", label):
        low, high = int(label[:-1]), 200
    else:
        return ()
    return tuple(i for i, (_, first, last) in enumerate(AGE_BINS)
                 if high >= first and (last is None or low <= last))


def age_index(label):
    """The one age group a label names, or None (unreadable, or a range over two groups)."""
    groups = age_groups(label)
    return groups[0] if len(groups) == 1 else None


def _label(item, task, raw, report):
    if task == "emotion":
        index = emotion_index(raw)
        if index is None:
            report.leave_out(f"no class for {dataset_class(raw)}")
            return False
        item.emotion = index
    else:
        groups = age_groups(raw)
        if not groups:
            report.leave_out(f"age {raw!r} unreadable")
            return False
        item.age = groups[0] if len(groups) == 1 else -1
        item.age_mask = sum(1 << g for g in groups)
    return True


def _images_under(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_folder(folder, task, report):
    folder = Path(folder)
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    items = []
    if classes:
        for class_dir in classes:
            for path in _images_under(class_dir):
                item = Item(str(path))
                if _label(item, task, class_dir.name, report):
                    items.append(item)
        return items
    for path in _images_under(folder):  # UTKFace: age_gender_race_date.jpg
        match = UTKFACE_NAME.match(path.name)
        if not match:
            report.leave_out("no label in the file name")
            continue
        item = Item(str(path))
        if _label(item, "age", match.group(1), report):
            items.append(item)
    return items


def read_manifest(path, task, report, root=None):
    """``path,label[,x1,y1,x2,y2]`` rows, with or without a header naming the columns
    (``file``/``path``, ``label``, ``age_years``, ``age_range``). Paths are relative to ``root``
    (default: the manifest's folder)."""
    path = Path(path)
    root = Path(root) if root else path.parent
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    named = "file" in header or "path" in header
    items = []
    for row in rows[1:] if named else rows:
        if not row or not row[0].strip():
            continue
        if named:
            values = dict(zip(header, row))
            file = values.get("file") or values.get("path")
            raw = next((values[k] for k in ("label", "age_years", "age_range", "age") if values.get(k)), "")
            box = [values.get(k) for k in ("x1", "y1", "x2", "y2")]
        else:
            file, raw, box = row[0], row[1] if len(row) > 1 else "", row[2:6]
        item = Item(str(root / file))
        if all(v not in (None, "") for v in box) and len(box) == 4:
            item.box = tuple(float(v) for v in box)
        if _label(item, task, raw, report):
            items.append(item)
    return items


def count_ranges(items):
    """How many items carry an age range over several groups rather than one group."""
    return sum(1 for item in items if item.age < 0 and item.age_mask)


def read_dataset(spec, task, limit=None):
    """Items of one dataset (at most ``limit`` per label), and a report of what was left out
    and why."""
    report = DatasetReport(str(spec))
    if Path(spec).is_dir():
        items, root = read_folder(spec, task, report), spec
    elif Path(spec).is_file():
        items, root = read_manifest(spec, task, report), Path(spec).parent
    else:
        raise FileNotFoundError(f"no dataset at {spec}")
    items = limit_per_class(items, limit, root)
    report.items, report.ranges = len(items), count_ranges(items)
    return items, report


# -- putting it together --------------------------------------------------------------------------


def parse_spec(spec, default_task):
    """``emotion:PATH``, ``age:PATH`` or a bare PATH for ``default_task``."""
    task, sep, path = spec.partition(":")
    if sep and task in ("emotion", "age"):
        return task, path
    if default_task not in ("emotion", "age"):
        raise ValueError(f"say which task {spec!r} is for: emotion:{spec} or age:{spec}")
    return default_task, spec


def limit_per_class(items, limit, root):
    """At most ``limit`` items of each label, picked by a hash of the path below ``root`` (not
    by name order, which would take one subject's frames). Relative, so that the same dataset
    gives the same subset wherever it is kept."""
    if not limit:
        return items

    def stable_order(item):
        return hashlib.sha1(os.path.relpath(item.path, root).encode()).hexdigest()

    taken, counts = [], {}
    for item in sorted(items, key=stable_order):
        key = (item.emotion, item.age_mask)
        if counts.get(key, 0) < limit:
            counts[key] = counts.get(key, 0) + 1
            taken.append(item)
    return taken


def _content_digest(path):
    try:
        return hashlib.sha1(Path(path).read_bytes()).digest()
    except OSError:
        return hashlib.sha1(path.encode()).digest()


def split_holdout(items, fraction):
    """Hold out a fraction by a hash of each file's content: the same file, and identical
    images under different names, always land on the same side. The hash is salted:
    ``limit_per_class`` picks by another one, and would otherwise pick only held-out files."""
    def position(item):
        digest = hashlib.sha1(b"holdout:" + _content_digest(item.path)).hexdigest()
        return int(digest[:8], 16) / 0xFFFFFFFF

    positions = [position(i) for i in items]
    cut = fraction
    if fraction > 0 and len(items) > 1 and not any(p < fraction for p in positions):
        cut = min(positions) + 1e-12  # a small set still gets one image to validate on
    held = [i for i, p in zip(items, positions) if p < cut]
    kept = [i for i, p in zip(items, positions) if p >= cut]
    return kept, held


def gather(specs, task, limit=None):
    """Items of several ``task:PATH`` datasets for ``task`` (emotion, age or both)."""
    items, reports = [], []
    for spec in specs:
        spec_task, path = parse_spec(spec, task)
        if task != "both" and spec_task != task:
            continue
        found, report = read_dataset(path, spec_task, limit)
        items += found
        reports.append(report)
    return items, reports
