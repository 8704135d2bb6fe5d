"""glibc's allocator as phototag sets it (phototag/allocator.py) against its defaults, in one run:
`phototag eval` of the shipped weights on FER2013 `val` (3,533 faces, crops stored by an earlier
run or made by the first), wall time, time in the kernel and page faults of each process.
With --index, `phototag index` runs instead (tagging on and --faces-only, into a fresh index
each time, on generated 12-megapixel JPEGs), alternated over --rounds, with the largest
resident size of any of its processes.

    python bench/allocator.py [--limit-per-class N]
    python bench/allocator.py --index [--photos 64] [--rounds 2] [--keep DIR]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.library import SHARED, WEIGHTS, make_library  # noqa: E402

RUN = ("import sys, phototag.allocator as a\n"
       "if sys.argv[1] == 'defaults': a.keep_freed_memory = lambda: False\n"
       "else: a.keep_freed_memory()\n"
       "from phototag.cli import main\n"
       "sys.argv = ['phototag'] + sys.argv[2:]\n"
       "main()\n")


def measure(mode, arguments):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN, mode, *arguments], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt


def measure_index(mode, library, faces_only):
    """(wall s, kernel s, the largest resident size of one process in MiB) of an index run. Each
    mode runs in a fresh interpreter so that the largest resident size is this run's."""
    probe = ("import resource, subprocess, sys, time\n"
             "started = time.perf_counter()\n"
             "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(time.perf_counter() - started, usage.ru_stime, usage.ru_maxrss / 1024)\n")
    with tempfile.TemporaryDirectory() as tmp:
        arguments = ["index", str(library), "--db", f"{tmp}/index.db", "--weights-dir", str(WEIGHTS),
                     *(["--faces-only"] if faces_only else [])]
        out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-c", RUN, mode, *arguments],
                             check=True, cwd=ROOT, capture_output=True, text=True).stdout
    return tuple(float(value) for value in out.split())


def index_runs(args):
    work = Path(args.keep or tempfile.mkdtemp(prefix="phototag-allocator-"))
    library = work / "12mp"
    make_library(library, args.photos, size=(4000, 3000), faces=(1, 6))
    results = {}
    for round_ in range(args.rounds):
        for faces_only in (True, False):
            for mode in ("defaults", "kept"):
                wall, kernel, rss = measure_index(mode, library, faces_only)
                results.setdefault((faces_only, mode), []).append((wall, kernel, rss))
                print(f"round {round_ + 1}, {'--faces-only' if faces_only else 'tagging':<12} glibc "
                      f"{'defaults' if mode == 'defaults' else 'as set':<8}: {args.photos / wall:5.2f} "
                      f"photos/s, {kernel:5.1f} s in the kernel, largest process {rss:5.0f} MiB", flush=True)
    for faces_only in (True, False):
        mean = {mode: [sum(r[i] for r in results[(faces_only, mode)]) / args.rounds for i in range(3)]
                for mode in ("defaults", "kept")}
        print(f"{'--faces-only' if faces_only else 'tagging'}, mean of {args.rounds} rounds, as set / "
              f"defaults: photos/s {mean['defaults'][0] / mean['kept'][0]:.2f}, kernel time "
              f"{mean['kept'][1] / mean['defaults'][1]:.2f}, largest process "
              f"{mean['kept'][2]:.0f} / {mean['defaults'][2]:.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-per-class", type=int)
    parser.add_argument("--index", action="store_true", help="index runs instead of eval")
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", help="folder for the generated photos (reused)")
    args = parser.parse_args()
    if args.index:
        return index_runs(args)
    arguments = ["eval", str(ROOT / "weights" / "phototag-cpu.safetensors"), "--task", "emotion",
                 "--json", "--data", f"emotion:{SHARED}/emotion/fer2013/val"]
    if args.limit_per_class:
        arguments += ["--limit-per-class", str(args.limit_per_class)]
    measure("kept", arguments)  # the crops are cut and stored once, before either is timed
    results = {}
    for mode in ("defaults", "kept"):
        results[mode] = measure(mode, arguments)
        wall, kernel, faults = results[mode]
        print(f"glibc {'defaults' if mode == 'defaults' else 'as phototag sets it'}: {wall:6.1f} s, "
              f"{kernel:6.1f} s in the kernel, {faults / 1e6:5.1f} M page faults", flush=True)
    print(f"ratio, wall time as set / defaults: {results['kept'][0] / results['defaults'][0]:.2f}")


if __name__ == "__main__":
    main()
