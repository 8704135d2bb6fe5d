"""Stand-ins for ../shared where a clone has none, so that the robustness tests (bad files,
crashes, incremental runs, the lock) run anyway: generated photos under the names the tests ask
for, and a RetinaFace with random weights (fixed seed) that finds the same nine large 'faces' in
every photo: as good as any for testing what a run does with files. Nothing here is used
when ../shared is present."""

import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SITECUSTOMIZE = '''
# Test stand-in (tests/stand_ins.py): accept the random-weights RetinaFace in FOLDER, whose
# sha256 the manifest cannot know.
import sys
sys.path.append(TESTS)
import stand_ins
import phototag.weights as _weights
_weights.verify = stand_ins.accepting(FOLDER, _weights.verify)
'''


def photo(path, name):
    """A generated 'photo': a textured scene with a few face-like ovals, the same for a name."""
    seed = zlib.crc32(name.encode())
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    base = rng.integers(40, 200, 3)
    gradient = np.linspace(0, 1, width)[None, :, None] * (rng.integers(0, 80, 3) - 40)
    pixels = np.clip(base + gradient + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        x, y, side = int(rng.integers(20, width - 140)), int(rng.integers(20, height - 160)), int(rng.integers(50, 120))
        draw.ellipse((x, y, x + side, y + int(side * 1.3)), fill=(225, 185, 160))
        for dx in (0.3, 0.7):
            draw.ellipse((x + side * dx - 5, y + side * 0.5 - 4, x + side * dx + 5, y + side * 0.5 + 4), fill=(40, 30, 30))
        draw.line((x + side * 0.35, y + side, x + side * 0.65, y + side), fill=(120, 40, 40), width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=88)
    return path


def detector_folder(folder):
    """A folder with a random-weights RetinaFace under the real file's name, and the
    sitecustomize that lets phototag (in a subprocess with it on PYTHONPATH) accept it."""
    import torch

    from phototag.vision.retinaface import RetinaFace

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "retinaface_mobilenet0.25_Final.pth"
    if not weights.is_file():
        torch.manual_seed(0)
        model = RetinaFace("mobilenet0.25")
        # Random weights score every anchor alike; keep one anchor size of the coarsest level
        # (a score of 0.72) so that every photo has the same nine large "faces" after NMS.
        with torch.no_grad():
            for head in model.ClassHead:
                head.conv1x1.bias[1::2] -= 8.0
            model.ClassHead[2].conv1x1.bias[3] += 9.0
        torch.save(model.state_dict(), weights)
    (folder / "sitecustomize.py").write_text(site_code(folder))
    return folder


def site_code(folder):
    """The sitecustomize source that accepts the stand-in detector in ``folder``."""
    return (SITECUSTOMIZE.replace("FOLDER", repr(str(Path(folder).resolve())))
            .replace("TESTS", repr(str(Path(__file__).resolve().parent))))


def accepting(folder, verify):
    """``weights.verify`` that also accepts the stand-in detector in ``folder``."""
    folder = Path(folder).resolve()

    def check(path, entry):
        if Path(path).resolve().parent == folder:
            return Path(path)
        return verify(path, entry)

    return check
