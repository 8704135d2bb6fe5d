"""How decode workers hand photos to the main process: tensors in shared memory against numpy
arrays pickled through a pipe, for decoding alone and for whole `index` runs, in one run.

    python bench/photo_transfer.py [--photos 64] [--rounds 2] [--keep DIR]

Library: generated 12-megapixel JPEGs (bench/library.py). Each round decodes the library with the
default workers, then runs `--faces-only` and tagging (the shipped weights) into a fresh index,
through a pipe and then through shared memory; rates are photos/s, ratios last. An index run uses
shared memory when /dev/shm has room for the photos in flight (`shared_memory_room`).
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.library import alternated_runs_options, index_rate, twelve_megapixel_library  # noqa: E402
from phototag import devices, local_runner, pipeline  # noqa: E402
from phototag.library import scan  # noqa: E402


WORKING_SIZE = pipeline.IndexOptions.max_size  # an index run's default


def decode_rate(library, shared):
    entries = [e for e in scan.walk([str(library)]).files if e.error is None]
    loader = DataLoader(local_runner.PhotoFiles(entries, WORKING_SIZE, shared_memory=shared),
                        batch_size=devices.default_batch_size(), num_workers=devices.default_workers(),
                        collate_fn=local_runner.keep_list)
    started = time.perf_counter()
    count = sum(len(batch) for batch in loader)
    return count / (time.perf_counter() - started)


def main():
    args = alternated_runs_options(__doc__.splitlines()[0]).parse_args()
    library = twelve_megapixel_library(args.photos, args.keep, "phototag-transfer-")
    room = local_runner.shared_memory_room
    print(f"{devices.default_workers()} decode workers; /dev/shm has room: "
          f"{room(devices.default_workers(), devices.default_batch_size(), WORKING_SIZE)}")
    index_rate(library, True)  # warm-up: exports, page cache
    rates = {}
    for round_ in range(args.rounds):
        for shared in (False, True):
            local_runner.shared_memory_room = lambda *_, **__: shared
            try:
                for name, measure in (("decode alone", lambda: decode_rate(library, shared)),
                                      ("--faces-only run", lambda: index_rate(library, True)),
                                      ("tagging run", lambda: index_rate(library, False))):
                    value = measure()
                    rates.setdefault((name, shared), []).append(value)
                    print(f"round {round_ + 1}, {'shared memory' if shared else 'pipe         '}: "
                          f"{name:<17} {value:6.2f} photos/s", flush=True)
            finally:
                local_runner.shared_memory_room = room
    for name in ("decode alone", "--faces-only run", "tagging run"):
        pipe, shared = np.mean(rates[(name, False)]), np.mean(rates[(name, True)])
        print(f"{name}: shared memory {shared:.2f}, pipe {pipe:.2f} photos/s: ratio {shared / pipe:.2f}")


if __name__ == "__main__":
    main()
