"""Photos per second of an index run against a plain loop, measured in one run.

    python -m bench index_speed [PHOTO_DIR]     (default: ../shared/data/photos)

The plain loop is what a script without phototag would do: decode each photo at full size with
Pillow (EXIF transpose, RGB) and run RetinaFace on it, one photo at a time. The index run is
``phototag index`` with its defaults (working size, decode workers, batches, SQLite writes).
Both load the detector inside their timing. The ratio comes last.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent

from phototag.library import scan
from phototag.pipeline import IndexOptions, run_index
from phototag.weights import DETECTOR_WEIGHTS
from phototag.store import Writer


def plain_loop(paths, weights_path):
    from phototag.vision.detect import Detector

    started = time.perf_counter()
    detector = Detector(weights_path)
    faces = 0
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.array(ImageOps.exif_transpose(image).convert("RGB"))
        except Exception:
            continue
        faces += len(detector.detect([pixels], min_score=0.6)[0])
    return time.perf_counter() - started, faces


def index_run(root, weights_dir):
    with tempfile.TemporaryDirectory() as tmp:
        store = Writer(os.path.join(tmp, "index.db"))
        started = time.perf_counter()
        summary = run_index(store, IndexOptions(roots=[str(root)], weights_dir=weights_dir))
        elapsed = time.perf_counter() - started
        store.close()
    return elapsed, summary.faces, summary.processed


def main(argv=None):
    import pillow_heif  # noqa: F401  (HEIC for the plain loop too; registered by phototag)

    root = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "photos")
    weights_dir = os.environ.get("PHOTOTAG_WEIGHTS") or str(ROOT.parent / "shared" / "data" / "weights")
    weights_path = os.path.join(weights_dir, DETECTOR_WEIGHTS)
    paths = [f.path for f in scan.walk([root]).files if f.error is None]
    print(f"{len(paths)} photos under {root}; {os.cpu_count()} CPU cores")
    index_run(root, weights_dir)  # warm-up: file cache, first-use costs, lazy imports
    loop_s, loop_faces = plain_loop(paths, weights_path)
    index_s, index_faces, processed = index_run(root, weights_dir)
    print(f"plain loop (full size, one at a time): {len(paths) / loop_s:6.2f} photos/s "
          f"({loop_s:.1f} s, {loop_faces} faces)")
    print(f"phototag index (defaults):            {processed / index_s:6.2f} photos/s "
          f"({index_s:.1f} s, {index_faces} faces)")
    print(f"ratio index / plain loop: {(processed / index_s) / (len(paths) / loop_s):.2f}")


if __name__ == "__main__":
    main()
