"""`phototag index --ray` (a local Ray, all this machine's CPUs) against the run on one machine,
on the same photos, measured in one run.

    python -m bench ray [--photos 48] [--faces-only] [--ray ADDRESS] [--keep DIR]

Library: generated 12-megapixel JPEGs (real faces from ../shared pasted on blurred real scenes,
bench/library.py) plus ../shared/data/photos/people. Each run is the real CLI in a fresh process
into a fresh index, start-up included (for --ray: starting Ray and its actors). On two cores
parity is the honest hope: Ray pays for its processes and object store, and gains only where
there are more machines. The ratio comes last.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import PHOTOS, WEIGHTS, make_library


def index(library, db, extra):
    env = dict(os.environ, PHOTOTAG_WEIGHTS=os.environ.get("PHOTOTAG_WEIGHTS", str(WEIGHTS)))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "phototag", "index", "--quiet", "--db", str(db),
                             *extra, str(library)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"phototag index {' '.join(extra)} failed:\n{result.stderr}")
    return elapsed, result.stderr.strip().splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48, help="generated 12-MP photos")
    parser.add_argument("--faces-only", action="store_true")
    parser.add_argument("--ray", default="local", help="address for the --ray run")
    parser.add_argument("--keep", help="folder for the generated photos (kept for later runs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(args.keep or tmp) / "ray-bench"
        make_library(library / "generated", args.photos)
        if not (library / "people").exists():
            shutil.copytree(PHOTOS / "people", library / "people")
        count = sum(1 for path in library.rglob("*") if path.is_file())
        common = ["--faces-only"] if args.faces_only else []
        print(f"{count} photos ({args.photos} generated 12-MP JPEGs and photos/people), "
              f"{os.cpu_count()} CPUs{', faces only' if args.faces_only else ''}")
        one_s, one_line = index(library, Path(tmp) / "one.db", common)
        print(f"one machine: {one_s:6.1f} s  {count / one_s:5.2f} photos/s   ({one_line})")
        ray_s, ray_line = index(library, Path(tmp) / "ray.db", [*common, "--ray", args.ray])
        print(f"--ray {args.ray}: {ray_s:6.1f} s  {count / ray_s:5.2f} photos/s   ({ray_line})")
        print(f"ratio --ray / one machine: {one_s / ray_s:.2f}")


if __name__ == "__main__":
    main()
