"""glibc's allocator as phototag sets it (phototag/allocator.py) against its defaults, in one run:
`phototag eval` of the shipped weights on FER2013 `val` (3,533 faces, crops stored by an earlier
run or made by the first), wall time, time in the kernel and page faults of each process.

    python bench/allocator.py [--limit-per-class N]
"""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.library import SHARED  # noqa: E402

RUN = ("import sys, phototag.allocator as a\n"
       "if sys.argv[1] == 'defaults': a.keep_freed_memory = lambda: False\n"
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-per-class", type=int)
    args = parser.parse_args()
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
