"""Faces that are not faces: what the detector keeps on photos without a face (the shared
landscapes, lamps and flowers of ../shared/data/photos/exif) and on the people photos, before and
after the identity network's second look (`FACE_NORM_FLOOR`), and how many real faces that look
costs on identity-labelled web faces (a sixth of muxspace), in one run:

    python -m bench false_faces [--floor 4.45]

Only faces the identity network reads are looked at again (box side ≥ --min-person-face, 48 px
by default). Prints the counts, and the people photos' faces that go; docs/accuracy.md keeps them.
"""

import argparse
import csv

import numpy as np
from PIL import Image

from bench.library import PHOTOS, SHARED, WEIGHTS
from bench.machine import describe


def detected(detector, paths, min_side):
    """(path, box side, aligned crop) of every face the detector keeps (index settings), of at
    least ``min_side`` pixels; and how many faces it found in all."""
    from phototag.library.decode import decode_bytes
    from phototag.vision.identity import aligned_faces

    faces, total = [], 0
    for path in paths:
        decoded = decode_bytes(path.read_bytes(), 1600, path.suffix)
        pixels = decoded.pixels
        found = detector.detect([pixels], 0.6)[0]
        total += len(found)
        # sides in pixels of the photo itself, as --min-person-face measures them
        sides = (found.boxes[:, 2:] - found.boxes[:, :2]).min(1) * decoded.width / pixels.shape[1]
        keep = np.flatnonzero(sides >= min_side)
        if len(keep):
            crops = aligned_faces(pixels, found.landmarks[keep])
            faces += [(path.name, float(sides[k]), crops[j:j + 1]) for j, k in enumerate(keep)]
    return faces, total


def main(argv=None):
    import torch

    from phototag import weights
    from phototag.pipeline import MIN_PERSON_FACE
    from phototag.vision.detect import Detector
    from phototag.vision.identity import FACE_NORM_FLOOR, FaceEmbedder
    from phototag.weights import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", type=float, default=FACE_NORM_FLOOR)
    parser.add_argument("--min-person-face", type=int, default=MIN_PERSON_FACE)
    args = parser.parse_args(argv)
    print(describe())
    detector = Detector(str(weights.locate(weights.DETECTOR_WEIGHTS, str(WEIGHTS))))
    embedder = FaceEmbedder(weights.locate(weights.IDENTITY_WEIGHTS, str(WEIGHTS)),
                            cache_dir().parent / "onnx")

    def lengths(faces):
        if not faces:
            return np.zeros(0)
        return embedder.embed_aligned(torch.cat([c for _, _, c in faces]), lengths=True)[1]

    for folder in ("exif", "people"):
        paths = sorted(p for p in (PHOTOS / folder).iterdir() if p.is_file())
        faces, total = detected(detector, paths, args.min_person_face)
        norms = lengths(faces)
        cut = [(name, side, n) for (name, side, _), n in zip(faces, norms) if n < args.floor]
        print(f"{folder}: {len(paths)} photos, {total} faces found, {len(faces)} of "
              f"{args.min_person_face} px or more; {len(cut)} of those are no face to SFace "
              f"(length under {args.floor})")
        for name, side, n in cut:
            print(f"  {name}: a face of {side:.0f} px, length {n:.2f}")
    muxspace = SHARED / "emotion" / "muxspace"
    rows = list(csv.DictReader(open(muxspace / "labels.csv")))[::6]
    kept = []
    for row in rows:
        with Image.open(muxspace / row["file"]) as image:
            pixels = np.array(image.convert("RGB"))
        found = detector.detect([pixels], 0.6)[0]
        if len(found):
            from phototag.vision.identity import aligned_faces

            k = int((found.boxes[:, 2:] - found.boxes[:, :2]).prod(1).argmax())
            kept.append(embedder.embed_aligned(aligned_faces(pixels, found.landmarks[k:k + 1]),
                                               lengths=True)[1][0])
    kept = np.array(kept)
    print(f"muxspace (every sixth face, the largest of each image): {len(kept)} real faces, "
          f"{(kept < args.floor).sum()} of them under {args.floor}")


if __name__ == "__main__":
    main()
