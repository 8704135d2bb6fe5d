"""What an index run with one new photo costs before and around that photo: the whole
process, against `import torch` alone and against the same run's photo once everything is
loaded.

    python -m bench startup [--runs 3]

Each run is a fresh process (`python -m phototag index` on a fresh index over one shared
photo), with tagging (the shipped weights) and with --faces-only; best of --runs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import PHOTOS, WEIGHTS


def best(command, runs, env=None, fresh=None):
    times = []
    for _ in range(runs):
        if fresh:
            fresh()
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "lib"
        library.mkdir()
        (library / "photo.jpg").write_bytes((PHOTOS / "people" / "serengil__couple.jpg").read_bytes())
        db = Path(tmp) / "index.db"
        env = dict(os.environ, PHOTOTAG_DB=str(db), PHOTOTAG_WEIGHTS=str(WEIGHTS))

        def fresh():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

        torch_s = best([sys.executable, "-c", "import torch"], args.runs)
        print(f"python -c 'import torch': {torch_s:.2f} s")
        for extra in ([], ["--faces-only"]):
            run_s = best([sys.executable, "-m", "phototag", "index", *extra, str(library)], args.runs,
                         env, fresh)
            print(f"phototag index {' '.join(extra + ['(1 new photo)'])}: {run_s:.2f} s, "
                  f"{run_s / torch_s:.2f} x importing torch")
        nothing = best([sys.executable, "-m", "phototag", "index", str(library)], args.runs, env)
        print(f"phototag index with nothing to do: {nothing:.2f} s")


if __name__ == "__main__":
    main()
