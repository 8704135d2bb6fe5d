"""`phototag search` over a million faces, against the same query straight through sqlite3.

    python -m bench search [--faces 1000000]

Builds (once, in a temporary folder) an index with the phototag schema: 200,000 photos and
their faces with random emotions and age groups. Prints best-of-5 times, the CLI start-up, and
the ratios last.
"""

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.timing import best
from phototag.labels import AGE_GROUPS, EMOTIONS
from phototag.store import Query, Reader, Writer

RAW_QUERIES = {
    "path": "SELECT DISTINCT p.path FROM faces f JOIN photos p ON p.id = f.photo_id "
            "WHERE f.emotion = 'smile' AND f.age_group = 'child' AND p.status = 'done' ORDER BY p.path",
    # search's default when a tag is asked: best first (the two scores together)
    "confidence": "SELECT p.path, max(f.emotion_score * f.age_score) AS best FROM faces f "
                  "JOIN photos p ON p.id = f.photo_id WHERE f.emotion = 'smile' AND "
                  "f.age_group = 'child' AND p.status = 'done' GROUP BY p.id ORDER BY best DESC, p.path",
}


def build(path, faces, photos):
    Writer(path).close()  # the real schema and its indexes
    rng = random.Random(0)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO photos (id, path, size, mtime_ns, status, n_faces) VALUES (?, ?, 1, 1, 'done', 0)",
            ((i, f"/photos/{i // 1000:04d}/IMG_{i:07d}.jpg") for i in range(1, photos + 1)),
        )
        rows = []
        for n in range(faces):
            photo = rng.randint(1, photos)
            rows.append((photo, n, 0.0, 0.0, 10.0, 10.0, 0.9, rng.choice(EMOTIONS), rng.random(),
                         rng.choice(AGE_GROUPS), rng.random()))
        conn.executemany(
            "INSERT INTO faces (photo_id, idx, x1, y1, x2, y2, det_score, emotion, emotion_score, "
            "age_group, age_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("UPDATE photos SET n_faces = (SELECT count(*) FROM faces WHERE photo_id = photos.id)")
    conn.execute("ANALYZE")
    conn.close()




def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    photos = max(1, args.faces // 5)
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "index.db")
        started = time.perf_counter()
        build(db, args.faces, photos)
        print(f"index: {args.faces:,} faces in {photos:,} photos, built in {time.perf_counter() - started:.0f} s")

        env = dict(os.environ, PHOTOTAG_DB=db, PYTHONPATH=str(ROOT))
        start_s, _ = best(lambda: subprocess.run([sys.executable, "-m", "phototag", "--version"], env=env,
                                                 capture_output=True, check=True))
        for order, sql in RAW_QUERIES.items():
            def raw():
                conn = sqlite3.connect(db)
                try:
                    return [row[0] for row in conn.execute(sql)]
                finally:
                    conn.close()

            def phototag_query():
                store = Reader(db)
                try:
                    return list(store.search(Query(emotions=("smile",), age_groups=("child",),
                                                   paths_only=True, sort=order)))
                finally:
                    store.close()

            cli_command = [sys.executable, "-m", "phototag", "search", "--emotion", "smile", "--age",
                           "child", "--format", "paths", "--sort", order]

            def cli():
                return subprocess.run(cli_command, env=env, capture_output=True, text=True,
                                      check=True).stdout

            raw_s, raw_paths = best(raw, 5)
            ours_s, our_paths = best(phototag_query, 5)
            cli_s, cli_out = best(cli, 5)
            assert our_paths == raw_paths == cli_out.split("\n")[:-1], "the three answers differ"
            print(f"--sort {order}: matching photos: {len(raw_paths):,}")
            print(f"  sqlite3 module, same query:     {raw_s * 1000:7.1f} ms")
            print(f"  phototag search (library):      {ours_s * 1000:7.1f} ms")
            print(f"  phototag search (CLI, process): {cli_s * 1000:7.1f} ms")
            print(f"  ratio library / sqlite3: {ours_s / raw_s:.2f}; "
                  f"CLI - start-up / sqlite3: {(cli_s - start_s) / raw_s:.2f}")
        print(f"phototag CLI start-up (--version): {start_s * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
