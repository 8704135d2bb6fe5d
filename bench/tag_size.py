"""How small can a face be and still be read? The shipped model's emotion and age accuracy with
every face brought down to the size of a face of B pixels in a photo (and back up), as a small
face in a group photo is, in one run:

    python -m bench tag_size [--sizes 12,16,20,24,32,48]

B is the face box's shorter side, as `--min-face`, `--min-tag-face` and `search` measure a face.
The model reads the face aligned by its landmarks, a crop about 1.3 times the box's side (the
ratio is measured here on the reference detections of the shared photos and printed). Emotion on
FER2013 `val` (six classes, and the five original ones), age on UTKFace's held-out tenth.
Prints a markdown table; docs/accuracy.md keeps it, and `--min-tag-face`'s default comes from it.
"""

import argparse
import json

import numpy as np
import torch

from bench.answers import AGE_SETS, EMOTION_SETS, faces, load_model, probabilities, six_and_five
from bench.library import PHOTOS
from bench.machine import describe


def crop_to_box_ratio(face_size=96):
    """Median side of the aligned crop over the shorter side of the box, on the reference's faces."""
    from phototag.vision.regions import align_transform

    reference = json.loads((PHOTOS / "reference_detections.json").read_text())
    ratios = []
    for image in reference["images"]:
        for face in image["faces"]:
            x1, y1, x2, y2 = face["box"]
            landmarks = torch.tensor(face["landmarks"], dtype=torch.float32).view(1, 5, 2)
            A, _ = align_transform(landmarks, face_size)
            ratios.append(float(torch.linalg.det(A[0]).abs().sqrt()) * face_size / min(x2 - x1, y2 - y1))
    return float(np.median(ratios)), len(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12,16,20,24,32,48",
                        help="face box sides to test, in pixels (comma-separated)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(describe())
    ratio, count = crop_to_box_ratio()
    print(f"aligned crop side / box side: {ratio:.2f} (median of {count} reference faces)")
    model = load_model()
    config = model.config
    (emotion_name, (emotion_spec, emotion_held)), = list(EMOTION_SETS.items())[:1]
    (age_name, (age_spec, age_held)), = AGE_SETS.items()
    emotion_faces = faces(model, emotion_spec, emotion_held, "emotion")
    age_faces = faces(model, age_spec, age_held, "age")
    print(f"\n| face box side | emotion, {emotion_name} (6 / 5) | age, {age_name} |")
    print("|---|---|---|")
    for size in [None] + sorted(sizes, reverse=True):
        pixels = None if size is None else max(4, round(size * ratio))
        six, five = six_and_five(*probabilities(model, emotion_faces, "emotion", pixels),
                                 config.emotions)
        age, _ = six_and_five(*probabilities(model, age_faces, "age", pixels), config.age_groups)
        label = "as they are" if size is None else f"{size} px (crop {pixels} px)"
        print(f"| {label} | {six:.1%} / {five:.1%} | {age:.1%} |", flush=True)
    print(f"\n{len(emotion_faces)} emotion faces, {len(age_faces)} age faces; chance: "
          f"{1 / len(config.emotions):.1%} / 20.0% and {1 / len(config.age_groups):.1%}")


if __name__ == "__main__":
    main()
