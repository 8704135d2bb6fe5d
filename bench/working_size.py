"""The working size is a trade between small faces found and speed: at each long side, the
share of the reference's faces of at least 32 pixels that are found, and photos per second of
detection, on ../shared/data/photos.

    python -m bench working_size [--sizes 1024,1280,1600]

Reference: reference_detections.json (RetinaFace at each photo's own size, scores >= 0.5);
a reference face counts as found when a detection (min score 0.6, the index's default) in
full-resolution pixels overlaps it with IoU >= 0.5.
"""

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import PHOTOS, WEIGHTS
from phototag.library.decode import decode_bytes
from phototag.weights import DETECTOR_WEIGHTS
from phototag.boxes import box_iou
from phototag.vision.detect import Detector


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1024,1280,1600")
    args = parser.parse_args(argv)
    reference = json.loads((PHOTOS / "reference_detections.json").read_text())["images"]
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    for size in (int(s) for s in args.sizes.split(",")):
        found = total = 0
        seconds = 0.0
        photos = [(item, decode_bytes((PHOTOS / item["file"]).read_bytes(), size, item["file"][-5:]))
                  for item in reference]
        for item, decoded in photos:
            started = time.perf_counter()
            faces = detector.detect([decoded.pixels], 0.6)[0]
            seconds += time.perf_counter() - started
            sx, sy = decoded.width / decoded.pixels.shape[1], decoded.height / decoded.pixels.shape[0]
            boxes = [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in faces.boxes]
            for face in item["faces"]:
                x1, y1, x2, y2 = face["box"]
                if min(x2 - x1, y2 - y1) < 32:
                    continue
                total += 1
                found += any(box_iou(face["box"], box) >= 0.5 for box in boxes)
        print(f"long side {size}: {found}/{total} reference faces of 32 px or more found "
              f"({found / total:.1%}); detection {len(photos) / seconds:.1f} photos/s")


if __name__ == "__main__":
    main()
