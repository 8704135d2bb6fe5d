"""How well faces are grouped into people, on faces whose identity is known: the web faces of
../shared/data/emotion/muxspace (`group` names the person; 2,303 faces, 943 people, 195 with
two photos or more), in one run:

    python -m bench people [--distances 0.40,0.45,0.50,0.55] [--sizes 24,32,48]

Each face is found by RetinaFace (the largest face of its image), aligned by its landmarks and
embedded by SFace as an index run does. Then, at each distance, phototag's own grouping of the
faces (the same code an index run calls, on a scratch index): pairwise precision and recall,
and B-cubed precision and recall, over all faces and by face size; once with every face at
once (`people --regroup`) and once fed in ten nightly batches. `--sizes`: the same faces
brought down to a box of that many pixels first (which faces are large enough to group), and
the embedding averaged with its mirror image's (what a second pass would buy). Prints markdown tables;
docs/people.md keeps them, and phototag.people's distances come from them.
"""

import argparse
import csv
import hashlib
import random
import tempfile
from pathlib import Path

import numpy as np

from bench.library import SHARED, WEIGHTS
from bench.machine import describe

MUXSPACE = SHARED / "emotion" / "muxspace"
BANDS = ((120, None, "120 px or more"), (60, 120, "60-120 px"), (0, 60, "under 60 px"))


def faces_of_muxspace(sizes):
    """{variant: (vectors N×128, people N, box sides N)} for the faces found: 'as is',
    'no mirror', and 'at S px' per size. Cached in the user cache by the network's sha256."""
    from phototag import weights
    from phototag.weights import cache_dir

    sface = weights.locate(weights.IDENTITY_WEIGHTS, str(WEIGHTS))
    key = hashlib.sha1(f"{weights.remembered_sha256(sface)}{sorted(sizes)}v2".encode()).hexdigest()[:12]
    cached = cache_dir().parent / "bench" / f"muxspace-faces-{key}.npz"
    if cached.exists():
        data = np.load(cached, allow_pickle=True)
        return data["result"].item()
    result = _embed_muxspace(sface, sizes)
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cached, result=np.array(result, dtype=object))
    return result


def _embed_muxspace(sface, sizes):
    import torch
    from PIL import Image

    from phototag import weights
    from phototag.vision.detect import Detector
    from phototag.vision.identity import FaceEmbedder, aligned_faces
    from phototag.weights import cache_dir

    detector = Detector(str(weights.locate(weights.DETECTOR_WEIGHTS, str(WEIGHTS))))
    embedder = FaceEmbedder(sface, cache_dir().parent / "onnx")
    rows = list(csv.DictReader(open(MUXSPACE / "labels.csv")))
    variants = {"as is": [], "with the mirror image": [], **{f"at {s} px": [] for s in sizes}}
    people, sides = [], []
    for n, row in enumerate(rows):
        with Image.open(MUXSPACE / row["file"]) as image:
            pixels = np.array(image.convert("RGB"))
        found = detector.detect([pixels], 0.6)[0]
        if not len(found):
            continue
        areas = (found.boxes[:, 2:] - found.boxes[:, :2]).prod(1)
        best = int(areas.argmax())
        box, landmarks = found.boxes[best], found.landmarks[best:best + 1]
        side = float(min(box[2] - box[0], box[3] - box[1]))
        crop = aligned_faces(pixels, landmarks)
        variants["as is"].append(embedder.embed_aligned(crop)[0])
        variants["with the mirror image"].append(embedder.embed_aligned(crop, mirror=True)[0])
        for size in sizes:
            factor = min(1.0, size / side)
            small = np.array(Image.fromarray(pixels).resize(
                (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor))),
                Image.Resampling.BILINEAR, reducing_gap=2.0))
            variants[f"at {size} px"].append(
                embedder.embed_aligned(aligned_faces(small, landmarks * factor))[0])
        people.append(row["group"])
        sides.append(side)
        if n % 500 == 0:
            print(f"  embedded {n} of {len(rows)} faces", flush=True)
    with torch.no_grad():
        return {name: (np.array(v, np.float32), np.array(people), np.array(sides))
                for name, v in variants.items()}


def scores(labels, truth, chosen=None):
    """Pairwise precision and recall over the pairs of faces ``chosen`` (all by default), and
    B-cubed precision and recall of the faces ``chosen``. A face left alone is its own group."""
    n = len(truth)
    chosen = np.ones(n, bool) if chosen is None else chosen
    same_group = labels[:, None] == labels[None, :]
    same_person = truth[:, None] == truth[None, :]
    off_diagonal = ~np.eye(n, dtype=bool)
    rows = chosen[:, None] & chosen[None, :] & off_diagonal
    together, should = (same_group & rows).sum(), (same_person & rows).sum()
    right = (same_group & same_person & rows).sum()
    pair_p = right / together if together else 1.0
    pair_r = right / should if should else 1.0
    inter = (same_group & same_person).sum(1)
    b_p = (inter / same_group.sum(1))[chosen].mean()
    b_r = (inter / same_person.sum(1))[chosen].mean()
    return pair_p, pair_r, b_p, b_r


def grouped(vectors, batches, distance):
    """phototag's own grouping of ``vectors`` (one photo each) at ``distance``, fed in
    ``batches`` runs into a scratch index: a label per face (-1-i for a face left alone)."""
    from phototag import people
    from phototag.store import Writer
    from phototag.store.records import embedding_bytes

    people.ASSIGN_DISTANCE = people.GROUP_DISTANCE = distance
    with tempfile.TemporaryDirectory() as tmp:
        writer = Writer(Path(tmp) / "index.db")
        order = list(range(len(vectors)))
        random.Random(0).shuffle(order)
        ids = {}
        for part in np.array_split(np.array(order), batches):
            with writer.transaction():
                for i in part:
                    photo = writer.conn.execute(
                        "INSERT INTO photos (path, status, n_faces, hash) VALUES (?, 'done', 1, ?)",
                        (f"/photo/{i}", str(i))).lastrowid
                    ids[int(i)] = writer.conn.execute(
                        "INSERT INTO faces (photo_id, idx, x1, y1, x2, y2, det_score, embedding) "
                        "VALUES (?, 0, 0, 0, 100, 100, 1, ?)",
                        (photo, embedding_bytes(vectors[i]))).lastrowid
            people.update(writer)
        person = dict(writer.conn.execute("SELECT id, person_id FROM faces"))
        writer.close()
    return np.array([person[ids[i]] if person[ids[i]] is not None else -1 - i
                     for i in range(len(vectors))])


def names_spread(vectors, truth, distance=None):
    """One photo of each person with two or more is named (a verdict, as a face region in a
    sidecar gives); then phototag places every face. Returns (faces given a name other than
    their own's seed, faces given a name, faces that should have got one)."""
    from phototag import people
    from phototag.store import Writer, people_rows
    from phototag.store.records import embedding_bytes

    if distance is not None:
        people.ASSIGN_DISTANCE = people.GROUP_DISTANCE = distance
    seeds = {}
    for i, person in enumerate(truth):
        seeds.setdefault(person, i)
    several = {p for p in seeds if (truth == p).sum() >= 2}
    with tempfile.TemporaryDirectory() as tmp:
        writer = Writer(Path(tmp) / "index.db")
        with writer.transaction():
            for i, vector in enumerate(vectors):
                photo = writer.conn.execute(
                    "INSERT INTO photos (path, status, n_faces, hash) VALUES (?, 'done', 1, ?)",
                    (f"/photo/{i}", str(i))).lastrowid
                writer.conn.execute(
                    "INSERT INTO faces (photo_id, idx, x1, y1, x2, y2, det_score, embedding) "
                    "VALUES (?, 0, 0, 0, 100, 100, 1, ?)", (photo, embedding_bytes(vector)))
            for person in several:
                i = seeds[person]
                named = people_rows.person_named(writer.conn, person, "xmp")
                people_rows.add_verdict(writer.conn, named, "is",
                                        {"hash": str(i), "path": f"/photo/{i}", "box": (0, 0, 100, 100),
                                         "embedding": None}, "xmp", name=person)
        people.update(writer)
        rows = writer.conn.execute(
            "SELECT p.path, q.name FROM faces f JOIN photos p ON p.id = f.photo_id "
            "LEFT JOIN people q ON q.id = f.person_id").fetchall()
        writer.close()
    given = {int(path.rsplit("/", 1)[1]): name for path, name in rows}
    others = [i for i in range(len(truth)) if truth[i] in several and i != seeds[truth[i]]]
    named = [i for i in range(len(truth)) if given.get(i) and i != seeds.get(truth[i])]
    wrong = sum(given[i] != truth[i] for i in named)
    return wrong, len(named), len(others)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distances", default="0.40,0.45,0.50,0.55")
    parser.add_argument("--sizes", default="24,32,48")
    args = parser.parse_args(argv)
    distances = [float(d) for d in args.distances.split(",")]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(describe())
    variants = faces_of_muxspace(sizes)
    vectors, truth, sides = variants["as is"]
    print(f"{len(truth)} faces found, {len(set(truth))} people; box side median {np.median(sides):.0f} px")
    print("\n| distance | fed | pairwise precision | pairwise recall | B-cubed precision | "
          "B-cubed recall | " + " | ".join(f"pairwise P / R, B-cubed P / R, {b[2]}" for b in BANDS) + " |")
    print("|---" * (6 + len(BANDS)) + "|")
    for distance in distances:
        for batches, fed in ((1, "at once"), (10, "in 10 runs")):
            labels = grouped(vectors, batches, distance)
            p, r, bp, br = scores(labels, truth)
            bands = []
            for low, high, _ in BANDS:
                chosen = (sides >= low) & (sides < (high or np.inf))
                pair_p, pair_r, band_p, band_r = scores(labels, truth, chosen)
                bands.append(f"{pair_p:.4f} / {pair_r:.3f}, {band_p:.4f} / {band_r:.3f} ({chosen.sum()})")
            print(f"| {distance:.2f} | {fed} | {p:.4f} | {r:.3f} | {bp:.4f} | {br:.3f} | "
                  + " | ".join(bands) + " |", flush=True)
    print("\nNames: one photo of each person with two or more named, as a sidecar's face region "
          "would:\n")
    print("| distance | faces named | of them with another's name | precision | faces that should be named | recall |")
    print("|---|---|---|---|---|---|")
    for distance in distances:
        wrong, named, should = names_spread(vectors, truth, distance)
        print(f"| {distance:.2f} | {named} | {wrong} | {1 - wrong / max(1, named):.4f} | {should} | "
              f"{named / max(1, should):.3f} |", flush=True)
    print("\nThe same faces made smaller, or embedded with the mirror image too (at once):\n")
    print("| faces | distance | pairwise precision | pairwise recall | B-cubed precision | B-cubed recall |")
    print("|---|---|---|---|---|---|")
    for name, (variant, _, _) in variants.items():
        if name == "as is":
            continue
        for distance in distances:
            p, r, bp, br = scores(grouped(variant, 1, distance), truth)
            print(f"| {name} | {distance:.2f} | {p:.4f} | {r:.3f} | {bp:.4f} | {br:.3f} |", flush=True)


if __name__ == "__main__":
    main()
