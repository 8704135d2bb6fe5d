"""Peak memory of `phototag index`: it must not grow with the library.

    python -m bench memory [--small 1000] [--large 10000] [--keep DIR]
    python -m bench memory --folder ../shared/data/photos/people     (one real library)

Runs the real CLI (default batch size and workers) and samples the proportional resident memory
(PSS) of its whole process tree (main process and decoding workers) every 20 ms. Libraries: --small and --large
generated 320×240 photos (the large one then rerun with no change), and five 50-megapixel JPEGs,
which must be decoded at reduced scale, never held at full size (150 MB each). Ratios last.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import WEIGHTS, make_library



def tree_rss(pid):
    """Proportional resident bytes (PSS) of ``pid`` and all its descendants: pages that forked
    decoding workers share with the main process count once, not once per process."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def peak_of(command, env):
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0

    def sample():
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(stderr)
    return peak, time.perf_counter() - started, stderr.strip().splitlines()[-1]


DECODE_ONE = """
import resource, sys
from pathlib import Path
from phototag.library.decode import decode_bytes
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pixels = decode_bytes(data, None if sys.argv[2] == "full" else int(sys.argv[2]))[0]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before, pixels.shape)
"""


def decode_growth(path, max_size, env):
    """How much one decode raises a fresh process's peak memory (MiB), and the pixels' shape."""
    out = subprocess.run([sys.executable, "-c", DECODE_ONE, str(path), str(max_size)], env=env,
                         capture_output=True, text=True, check=True).stdout.split(" ", 1)
    return int(out[0]) / 1024, out[1].strip()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--keep", help="folder for the generated libraries (reused)")
    parser.add_argument("--faces-only", action="store_true",
                        help="run `index --faces-only` (no emotion/age model)")
    parser.add_argument("--folder", help="only index this folder, into a fresh index")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="phototag-memory-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PHOTOTAG_WEIGHTS=str(WEIGHTS))
    if args.folder:
        command = [sys.executable, "-m", "phototag", "index", "--quiet", "--db",
                   str(work / "folder.db"), args.folder]
        if args.faces_only:
            command.insert(-1, "--faces-only")
        peak, seconds, summary = peak_of(command, env)
        print(f"{args.folder}: peak {peak / 2**20:.0f} MiB in {seconds:.0f} s ({summary})")
        return
    results = {}
    runs = [("small", args.small, (320, 240)), ("large", args.large, (320, 240)), ("50MP", 5, (8660, 5773))]
    for name, count, size in runs:
        library = work / name
        make_library(library, count, size=size, faces=(1, 4), quality=85)
        db = work / f"{name}.db"
        for leftover in work.glob(f"{name}.db*"):
            leftover.unlink()
        command = [sys.executable, "-m", "phototag", "index", "--quiet", "--db", str(db), str(library)]
        if args.faces_only:
            command.insert(-1, "--faces-only")
        results[name] = peak_of(command, env)
        print(f"{name:>5}: {count:>6,} photos {size[0]}×{size[1]}: peak {results[name][0] / 2**20:7.0f} MiB "
              f"in {results[name][1]:6.0f} s  ({results[name][2]})")
        if name == "large":
            results["rerun"] = peak_of(command, env)
            print(f"rerun: {count:>6,} photos, no change:  peak {results['rerun'][0] / 2**20:7.0f} MiB "
                  f"in {results['rerun'][1]:6.1f} s")
    full_size = 8660 * 5773 * 3
    print(f"one 50-megapixel photo decoded at full size would be {full_size / 2**20:.0f} MiB")
    photo = next((work / "50MP").rglob("*.jpg"))
    for size in (1600, "full"):
        growth, shape = decode_growth(photo, size, env)
        print(f"decoding one 50-megapixel JPEG at max size {size}: peak +{growth:.0f} MiB, pixels {shape}")
    print(f"ratio peak {args.large:,} / {args.small:,} photos: {results['large'][0] / results['small'][0]:.2f}")
    print(f"ratio peak no-change rerun / {args.small:,} photos: {results['rerun'][0] / results['small'][0]:.2f}")
    print(f"ratio peak 50MP / {args.small:,} small photos: {results['50MP'][0] / results['small'][0]:.2f}")


if __name__ == "__main__":
    main()
