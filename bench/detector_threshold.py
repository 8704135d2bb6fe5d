"""The detector's threshold, chosen from a measurement: faces kept on the shared people photos
(by face size) and false faces on the faceless ones, at each threshold.

    python -m bench detector_threshold

Read from ../shared/data/photos/reference_detections.json: the reference RetinaFace's
detections (score >= 0.5) on every shared photo, which phototag's detector reproduces
(tests/test_detector_parity.py). In photos/exif every detection is a false face (flowers,
leaves: the photos hold no person); in photos/people nearly every one is a face, and the
share kept is the recall relative to the reference at 0.5.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "data" / "photos" / "reference_detections.json"
SIZES = ((0, 16), (16, 32), (32, 10**6))


def main(argv=None):
    if not REFERENCE.is_file():
        sys.exit(f"needs {REFERENCE}")
    images = json.loads(REFERENCE.read_text())["images"]
    people = [f for i in images if i["file"].startswith("people/") for f in i["faces"]]
    faceless = [f for i in images if i["file"].startswith("exif/") for f in i["faces"]]

    def side(face):
        x1, y1, x2, y2 = face["box"]
        return min(x2 - x1, y2 - y1)

    header = ["threshold"] + [f"faces {lo}-{hi if hi < 10**6 else ''} px kept" for lo, hi in SIZES]
    print(" | ".join(header + ["false faces in photos/exif (23 photos, no person)"]))
    for threshold in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        cells = [f"{threshold:.2f}"]
        for lo, hi in SIZES:
            sized = [f for f in people if lo <= side(f) < hi]
            kept = sum(f["score"] >= threshold for f in sized)
            cells.append(f"{kept}/{len(sized)} ({kept / len(sized):.0%})")
        cells.append(str(sum(f["score"] >= threshold for f in faceless)))
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
