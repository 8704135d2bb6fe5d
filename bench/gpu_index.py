"""An index run on the GPU against the same run on the CPU, on the same generated 12-MP photos,
in one run: photos per second of each, and whether they found the same faces with the same
tags and people (within what fp16 on the GPU allows):

    python -m bench gpu_index [--photos 64] [--cpu-only]

`--cpu-only` runs the CPU side twice (no GPU needed): bench/gpu.sh --dry-run uses it to know the
script starts before a GPU's few minutes are spent on it.
"""

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.library import SHIPPED, WEIGHTS, twelve_megapixel_library
from bench.machine import describe


def run(library, db, device):
    from phototag.pipeline import IndexOptions, run_index
    from phototag.store import Writer

    writer = Writer(db)
    try:
        options = IndexOptions(roots=[str(library)], weights_dir=str(WEIGHTS), device=device,
                               attributes=str(SHIPPED))
        started = time.perf_counter()
        summary = run_index(writer, options)
        return summary.processed / (time.perf_counter() - started)
    finally:
        writer.close()


def faces(db):
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT p.path, f.x1, f.y1, f.x2, f.y2, f.emotion, f.age_group, "
                        "f.embedding IS NOT NULL FROM faces f JOIN photos p ON p.id = f.photo_id "
                        "ORDER BY p.path, f.idx").fetchall()
    conn.close()
    by_photo = {}
    for path, *face in rows:
        by_photo.setdefault(path, []).append(face)
    return by_photo


def agreement(first, second):
    """(faces matched, faces in either, tags equal among the matched)."""
    from phototag.boxes import matched_boxes

    matched = total = same = 0
    for path in set(first) | set(second):
        a, b = first.get(path, []), second.get(path, [])
        pairs = matched_boxes([f[:4] for f in a], [f[:4] for f in b], 0.9)
        matched += len(pairs)
        total += max(len(a), len(b))
        same += sum(a[i][4:] == b[j][4:] for i, j in pairs)
    return matched, total, same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args(argv)
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        library = twelve_megapixel_library(args.photos, tmp)
        second = "cpu" if args.cpu_only else "cuda"
        rates, found = {}, {}
        for device in ("cpu", second):
            db = Path(tmp) / f"{device}-{len(rates)}.db"
            rates[f"{device}-{len(rates)}"] = run(library, db, device)
            found[f"{device}-{len(found)}"] = faces(db)
        (a, rate_a), (b, rate_b) = rates.items()
        matched, total, same = agreement(found[a], found[b])
    print(f"{args.photos} photos: {a} {rate_a:.2f} photos/s, {b} {rate_b:.2f} photos/s "
          f"(ratio {rate_b / rate_a:.2f}); faces matched {matched} of {total}, "
          f"emotion, age and identity alike for {same} of {matched}")


if __name__ == "__main__":
    main()
