"""Generated photos whose label is visible only in the face, or only around it."""

import numpy as np
from PIL import Image

from phototag.train.crops import template_landmarks
from phototag.train.datasets import Item

COLOURS = np.array([(210, 50, 50), (50, 210, 50), (50, 50, 210)], dtype=np.float64)
SIZE, BOX = 64, (20.0, 18.0, 44.0, 46.0)


def make_photos(folder, count, label_in, seed):
    """``count`` photos; the class colour fills the face box (label_in="face") or everything
    around it (label_in="context"); the other part is noise. Returns items and their faces."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items, faces = [], []
    x1, y1, x2, y2 = (int(v) for v in BOX)
    # The label must not leak across the box edge through resampling or alignment jitter:
    # face colour stays 3 px inside the box, context noise reaches 8 px beyond it.
    inner, outer = 3, 8
    for i in range(count):
        label = i % len(COLOURS)
        noise = rng.uniform(0, 255, (SIZE, SIZE, 3))
        coloured = np.clip(COLOURS[label] + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255)
        image = noise.copy() if label_in == "face" else coloured.copy()
        if label_in == "face":
            a, b, c, d = x1 + inner, y1 + inner, x2 - inner, y2 - inner
            image[b:d, a:c] = coloured[b:d, a:c]
        else:
            a, b, c, d = x1 - outer, y1 - outer, x2 + outer, y2 + outer
            image[b:d, a:c] = noise[b:d, a:c]
        path = folder / f"{i:04d}.png"
        Image.fromarray(image.astype(np.uint8)).save(path)
        items.append(Item(str(path), emotion=label))
        faces.append((list(BOX), template_landmarks(BOX), True))
    return items, faces
