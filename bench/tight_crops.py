"""Faces that fill the frame: the share of FER2013 `val` (48-pixel tight crops) in which
RetinaFace finds a face, without and with the detector's second look, and the false faces the
second look adds on the faceless photos.

    python -m bench tight_crops
"""

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import PHOTOS, WEIGHTS
from phototag.library.decode import decode_bytes
from phototag.weights import DETECTOR_WEIGHTS
from phototag.vision.detect import Detector

FER_VAL = ROOT.parent / "shared" / "data" / "emotion" / "fer2013" / "val"
MIN_SCORE = 0.6  # the index's default


def found_share(detector, images, second_look):
    found = 0
    for start in range(0, len(images), 64):
        results = detector.detect(images[start:start + 64], MIN_SCORE, second_look=second_look)
        found += sum(len(r) > 0 for r in results)
    return found / len(images)


def main(argv=None):
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    paths = sorted(FER_VAL.glob("*/*.png"))
    images = [decode_bytes(p.read_bytes(), None).pixels for p in paths]
    print(f"FER2013 val: {len(images)} images, min score {MIN_SCORE}")
    for second_look in (False, True):
        started = time.perf_counter()
        share = found_share(detector, images, second_look)
        took = time.perf_counter() - started
        print(f"  second look {'on ' if second_look else 'off'}: a face found in {share:.1%} "
              f"({took / len(images) * 1000:.1f} ms per image)")
    faceless = [decode_bytes(p.read_bytes(), 1600, p.suffix).pixels
                for p in sorted((PHOTOS / "exif").iterdir())]
    for second_look in (False, True):
        faces = sum(len(detector.detect([pixels], MIN_SCORE, second_look=second_look)[0])
                    for pixels in faceless)
        print(f"photos/exif ({len(faceless)} photos without a person), second look "
              f"{'on ' if second_look else 'off'}: {faces} false faces")


if __name__ == "__main__":
    main()
