"""What people cost an index run: photos per second of `index` over the shared people photos
(37 photos, 1,410 faces, from portraits to crowds) with people (faces embedded by SFace, then
grouped) and with --no-people, tagging on in both, alternated, in one run:

    python -m bench people_cost [--rounds 2] [--min-person-face PX]

Each run indexes into a fresh index, the ONNX exports already in the cache (as on any night but
the first). Prints each run's rate and the ratio; docs/speed.md keeps them.
"""

import argparse

from bench.library import PHOTOS, index_rate
from bench.machine import describe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-person-face", type=int, help="as `index --min-person-face`")
    args = parser.parse_args(argv)
    more = {} if args.min_person_face is None else {"min_person_face": args.min_person_face}
    print(describe())
    library = PHOTOS / "people"
    index_rate(library, faces_only=False)  # exports made once, outside the timing
    rates = {True: [], False: []}
    for _ in range(args.rounds):
        for people in (False, True):
            rate = index_rate(library, faces_only=False, people=people, **more)
            rates[people].append(rate)
            print(f"  {'with' if people else 'without'} people: {rate:.2f} photos/s", flush=True)
    best = {k: max(v) for k, v in rates.items()}
    print(f"\nbest of {args.rounds}: with people {best[True]:.2f} photos/s, without "
          f"{best[False]:.2f}: ratio {best[True] / best[False]:.2f}")


if __name__ == "__main__":
    main()
