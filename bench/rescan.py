"""A no-change rerun of `phototag index` over 10,000 photos, against a bare scandir walk.

    python -m bench rescan [--photos 10000] [--keep DIR]

Generates small photos (once; reused with --keep), indexes them once, then times (best of 3)
a bare os.scandir walk that stats every file, the same rerun in-process (walk, index read and
diff, the `runs` row), and the whole CLI process. Ratios last.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import WEIGHTS, make_library
from bench.timing import best
from phototag.pipeline import IndexOptions, run_index
from phototag.store import Writer


def bare_walk(root):
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count




def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--keep", help="folder for the generated library and index (reused)")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="phototag-rescan-"))
    library = work / "library"
    started = time.perf_counter()
    make_library(library, args.photos, size=(160, 120), faces=(0, 1), quality=80)
    print(f"{args.photos:,} photos ready in {time.perf_counter() - started:.0f} s")
    db = work / "index.db"
    options = IndexOptions(roots=[str(library)], weights_dir=str(WEIGHTS))
    store = Writer(db)
    started = time.perf_counter()
    first = run_index(store, options)
    print(f"first run: {first.processed:,} indexed, {first.faces:,} faces in "
          f"{time.perf_counter() - started:.0f} s")

    walk_s, files = best(lambda: bare_walk(str(library)))
    rerun_s, summary = best(lambda: run_index(store, options))
    store.close()
    assert summary.unchanged == args.photos == files and summary.processed == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), PHOTOTAG_WEIGHTS=str(WEIGHTS))
    cli_s, _ = best(lambda: subprocess.run(
        [sys.executable, "-m", "phototag", "index", "--db", str(db), str(library)],
        env=env, capture_output=True, check=True))
    print(f"bare scandir walk + stat:           {walk_s * 1000:8.1f} ms")
    print(f"phototag no-change rerun (library): {rerun_s * 1000:8.1f} ms")
    print(f"phototag index (CLI, whole process): {cli_s * 1000:7.1f} ms")
    print(f"ratio rerun / bare walk: {rerun_s / walk_s:.2f}")


if __name__ == "__main__":
    main()
