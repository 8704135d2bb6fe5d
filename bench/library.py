"""Generated photo libraries for the benchmarks: real faces from ../shared pasted onto large
canvases, written as camera-like JPEGs. Nothing here is committed data; it is made on the fly."""

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PHOTOS = SHARED / "photos"
WEIGHTS = SHARED / "weights"


def face_patches(limit=60):
    """Face crops (with some margin) cut from the shared people photos, by the reference boxes."""
    reference = json.loads((PHOTOS / "reference_detections.json").read_text())
    patches = []
    for item in reference["images"]:
        if not item["file"].startswith("people/"):
            continue
        with Image.open(PHOTOS / item["file"]) as image:
            image = image.convert("RGB")
            for face in item["faces"]:
                x1, y1, x2, y2 = face["box"]
                if x2 - x1 < 40 or face["score"] < 0.95:
                    continue
                margin = 0.4 * (x2 - x1)
                patches.append(image.crop((int(x1 - margin), int(y1 - margin),
                                           int(x2 + margin), int(y2 + margin))))
                if len(patches) >= limit:
                    return patches
    return patches


def backgrounds():
    return sorted((PHOTOS / "exif").glob("*.jpg"))


def make_photo(path, size, patches, faces, rng, quality=90):
    """One ``size`` JPEG: a blurred real photo as the scene, ``faces`` real faces pasted on it."""
    width, height = size
    with Image.open(rng.choice(backgrounds())) as scene:
        canvas = scene.convert("RGB").resize((width // 8, height // 8)).resize(size)
    canvas = canvas.filter(ImageFilter.GaussianBlur(2))
    for _ in range(faces):
        patch = rng.choice(patches)
        side = rng.randint(max(60, width // 25), max(61, width // 8))
        patch = patch.resize((side, int(side * patch.height / patch.width)))
        canvas.paste(patch, (rng.randint(0, width - side), rng.randint(0, height - patch.height)))
    canvas.save(path, "JPEG", quality=quality)


def make_library(folder, count, size=(4000, 3000), faces=(1, 6), seed=0, quality=90):
    """``count`` generated photos under ``folder`` (100 per sub-folder), made once and reused."""
    folder = Path(folder)
    rng = random.Random(seed)
    patches = face_patches()
    paths = []
    for i in range(count):
        path = folder / f"{i // 100:03d}" / f"IMG_{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        make_photo(path, size, patches, rng.randint(*faces), rng, quality)
    return paths


SHIPPED = ROOT / "weights" / "phototag-cpu.safetensors"


def alternated_runs_options(description):
    """The options of the benchmarks that alternate whole index runs over generated 12-MP JPEGs:
    --photos, --rounds and --keep."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", help="folder for the generated photos (reused)")
    return parser


def twelve_megapixel_library(photos, keep=None, prefix="phototag-bench-"):
    """``photos`` generated 12-MP JPEGs (4000 × 3000, one to six faces) in ``keep``/12mp, made
    once and reused, or in a new temporary folder."""
    library = Path(keep or tempfile.mkdtemp(prefix=prefix)) / "12mp"
    make_library(library, photos, size=(4000, 3000), faces=(1, 6))
    return library


def index_rate(library, faces_only, **options):
    """photos/s of one `index` run in this process over ``library`` into a fresh index, tagging
    with the shipped weights unless ``faces_only``; ``options``: more IndexOptions fields."""
    from phototag.pipeline import IndexOptions, run_index
    from phototag.store import Writer

    with tempfile.TemporaryDirectory() as tmp:
        index = Writer(os.path.join(tmp, "index.db"))
        try:
            run = IndexOptions(roots=[str(library)], weights_dir=str(WEIGHTS), faces_only=faces_only,
                               attributes=None if faces_only else str(SHIPPED), **options)
            started = time.perf_counter()
            summary = run_index(index, run)
            return summary.processed / (time.perf_counter() - started)
        finally:
            index.close()
