"""ONNX Runtime's waiting threads: spinning (its default) against sleeping, for the detector
alone and for whole `index` runs where decode workers share the cores, in one run.

    python bench/onnx_spinning.py [--photos 64] [--rounds 2] [--keep DIR]

Library: generated 12-megapixel JPEGs (bench/library.py). Each round runs spinning on, then
off, for the detector alone (best of five on one 1600 x 1115 photo), a `--faces-only` run and a
tagging run (the shipped weights) into a fresh index; rates are photos/s, ratios last.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.library import (PHOTOS, WEIGHTS, alternated_runs_options, index_rate,  # noqa: E402
                           twelve_megapixel_library)
from phototag.library.decode import decode_bytes  # noqa: E402
from phototag.weights import DETECTOR_WEIGHTS  # noqa: E402
from phototag.vision import onnx_cpu  # noqa: E402
from phototag.vision.detect import Detector  # noqa: E402

def spinning(on):
    """Every ONNX Runtime session made from here on waits by spinning (on) or sleeping."""
    import onnxruntime

    original = onnxruntime.SessionOptions.add_session_config_entry

    def entry(self, key, value):
        if key == "session.intra_op.allow_spinning":
            value = "1" if on else "0"
        return original(self, key, value)

    onnxruntime.SessionOptions.add_session_config_entry = entry
    return lambda: setattr(onnxruntime.SessionOptions, "add_session_config_entry", original)


def detector_alone(photo):
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    detector.detect([photo])
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        detector.detect([photo], second_look=False)
        best = min(best, time.perf_counter() - started)
    return 1 / best


def main():
    args = alternated_runs_options(__doc__.splitlines()[0]).parse_args()
    library = twelve_megapixel_library(args.photos, args.keep, "phototag-spinning-")
    photo = decode_bytes((PHOTOS / "people" / "ultralight__10.jpg").read_bytes(), 1600).pixels
    photo = np.ascontiguousarray(np.kron(photo, np.ones((2, 2, 1), np.uint8))[:1115, :1600])
    assert onnx_cpu  # the module whose sessions are measured
    rates = {}
    for round_ in range(args.rounds):
        for on in (True, False):
            restore = spinning(on)
            try:
                for name, measure in (("detector alone", lambda: detector_alone(photo)),
                                      ("--faces-only run", lambda: index_rate(library, True)),
                                      ("tagging run", lambda: index_rate(library, False))):
                    value = measure()
                    rates.setdefault((name, on), []).append(value)
                    print(f"round {round_ + 1}, spinning {'on ' if on else 'off'}: {name:<17} "
                          f"{value:6.2f} photos/s", flush=True)
            finally:
                restore()
    for name in ("detector alone", "--faces-only run", "tagging run"):
        on, off = np.mean(rates[(name, True)]), np.mean(rates[(name, False)])
        print(f"{name}: spinning off / on, mean of {args.rounds} rounds: {off:.2f} / {on:.2f} "
              f"= {off / on:.2f}")


if __name__ == "__main__":
    main()
