"""Age of small faces end to end: UTKFace chips shrunk so that the face is about 30 pixels,
pasted on blurred 320 x 240 scenes, then `phototag index` and `phototag search --format json`
as a user runs them; the largest face of each photo is scored against the age in its name.

    python -m bench small_faces [--photos 150] [--model FILE] [--no-class-shares] [--keep DIR]

The chips are drawn from all of UTKFace (most of them were seen in training, at full size); the
point is what the whole pipeline makes of a small face, against what `phototag eval
--face-size-test 32` says of the same network.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent

from bench.class_shares import without_class_shares
from bench.library import PHOTOS, SHARED, WEIGHTS
from phototag.labels import age_group

UTKFACE = SHARED / "age" / "utkface_200" / "images"


def make_photos(folder, count, seed=7):
    rng = random.Random(seed)
    chips = rng.sample(sorted(UTKFACE.iterdir()), count)
    scenes = sorted((PHOTOS / "exif").glob("*.jpg"))
    for n, chip_path in enumerate(chips):
        scene = Image.open(scenes[n % len(scenes)]).convert("RGB").resize((320, 240))
        scene = scene.filter(ImageFilter.GaussianBlur(2))
        chip = Image.open(chip_path).convert("RGB").resize((44, 44), Image.LANCZOS)  # face ~30 px
        scene.paste(chip, (rng.randint(20, 250), rng.randint(20, 170)))
        scene.save(folder / chip_path.name.replace(".chip.jpg", ".jpg"), quality=90)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=150)
    parser.add_argument("--model", help="weights file (default: the shipped weights)")
    parser.add_argument("--no-class-shares", action="store_true",
                        help="answer without the class shares the weights file records")
    parser.add_argument("--keep", help="folder for the generated photos and the index (reused)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        library = work / "photos"
        if not library.is_dir() or len(list(library.iterdir())) != args.photos:
            shutil.rmtree(library, ignore_errors=True)
            library.mkdir(parents=True)
            make_photos(library, args.photos)
        (work / "index.db").unlink(missing_ok=True)
        env = dict(os.environ, PHOTOTAG_DB=str(work / "index.db"), PHOTOTAG_WEIGHTS=str(WEIGHTS))
        index = [sys.executable, "-m", "phototag", "index", "--quiet", str(library)]
        if args.no_class_shares:
            args.model = without_class_shares(args.model, Path(tmp) / "no-shares.safetensors")
        if args.model:
            index[4:4] = ["--model", args.model]
        subprocess.run(index, env=env, check=True)
        found = subprocess.run([sys.executable, "-m", "phototag", "search", "--format", "json"],
                               env=env, check=True, capture_output=True, text=True).stdout
    largest = {}
    for face in json.loads(found):
        x1, y1, x2, y2 = face["box"]
        if face["path"] not in largest or (x2 - x1) * (y2 - y1) > largest[face["path"]][0]:
            largest[face["path"]] = ((x2 - x1) * (y2 - y1), face)
    truth, answered, right = {}, {}, 0
    for path, (_, face) in largest.items():
        group = age_group(int(Path(path).name.split("_")[0]))
        truth[group] = truth.get(group, 0) + 1
        answered[face["age_group"]] = answered.get(face["age_group"], 0) + 1
        right += face["age_group"] == group
    print(f"{len(largest)} of {args.photos} photos with a face found; age group right for "
          f"{right} ({right / max(1, len(largest)):.1%})")
    for group in sorted(truth, key=lambda g: -truth[g]):
        print(f"  {group:<13} {truth[group]:3d} true, {answered.get(group, 0):3d} answered")


if __name__ == "__main__":
    main()
