"""How should two cores be shared between decoding and the models? Whole `index` runs with the
models on one thread or on every core, and one or two decode workers, alternated in one run.

    python bench/detector_threads.py [--photos 64] [--rounds 2] [--keep DIR]

Library: generated 12-megapixel JPEGs (bench/library.py). Each round runs every combination
for a `--faces-only` run and a tagging run (the shipped weights) into a fresh index; rates are
photos/s, the mean over the rounds, each against the defaults last.
"""

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.library import alternated_runs_options, index_rate, twelve_megapixel_library  # noqa: E402
from phototag.devices import default_workers  # noqa: E402


def index_run(library, faces_only, workers, threads):
    """photos/s of one run whose models (the detector's ONNX Runtime session, the tagger) use
    ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return index_rate(library, faces_only, workers=workers)
    finally:
        torch.set_num_threads(before)


def main():
    args = alternated_runs_options(__doc__.splitlines()[0]).parse_args()
    library = twelve_megapixel_library(args.photos, args.keep, "phototag-threads-")
    cores = torch.get_num_threads()
    defaults = (default_workers("cpu"), cores)
    combinations = sorted(set(itertools.product((1, 2), (1, cores))), reverse=True)
    rates = {}
    for round_ in range(args.rounds):
        for faces_only in (True, False):
            for workers, threads in combinations:
                value = index_run(library, faces_only, workers, threads)
                rates.setdefault((faces_only, workers, threads), []).append(value)
                print(f"round {round_ + 1}: {'--faces-only' if faces_only else 'tagging':<12} "
                      f"{workers} decode worker(s), models on {threads} thread(s): {value:6.2f} photos/s",
                      flush=True)
    print(f"mean of {args.rounds} rounds (defaults: {defaults[0]} workers, {defaults[1]} threads):")
    for faces_only in (True, False):
        base = np.mean(rates[(faces_only, *defaults)])
        for workers, threads in combinations:
            value = np.mean(rates[(faces_only, workers, threads)])
            run = "--faces-only" if faces_only else "tagging"
            print(f"  {run:<12} workers {workers}, threads {threads}: {value:6.2f} photos/s "
                  f"({value / base:.2f} of the defaults)")


if __name__ == "__main__":
    main()
