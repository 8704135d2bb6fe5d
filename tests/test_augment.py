"""The named augmentation strengths of `phototag train --augment`, on real faces."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from phototag.train.augment import AUGMENTATIONS, training_batch

from conftest import SHARED, needs_shared

FER_HAPPY = SHARED / "data" / "emotion" / "fer2013" / "val" / "happy"
pytestmark = [needs_shared, pytest.mark.skipif(not FER_HAPPY.is_dir(), reason="needs ../shared/data/emotion")]

SIZE = 64


def real_faces(count):
    """``count`` FER2013 faces as N×H×W×3 uint8 canvases, each a little larger than the crop."""
    paths = sorted(FER_HAPPY.iterdir())[:40]
    faces = [np.asarray(Image.open(path).convert("RGB").resize((80, 80))) for path in paths]
    return np.stack([faces[i % len(faces)] for i in range(count)])


def share_degraded(name, faces):
    """Share of faces the named augmentation brought to a lower resolution or JPEG-compressed:
    the same draws without those two steps (and without erasing, whose draws follow them) leave
    every other face exactly as it was."""
    chosen = dataclasses.replace(AUGMENTATIONS[name], erase=0.0)
    clean = dataclasses.replace(chosen, low_resolution=0.0, jpeg=0.0)
    seen = [training_batch(faces, None, None, SIZE, torch.Generator().manual_seed(7), aug,
                           with_context=False)[0] for aug in (chosen, clean)]
    changed = (seen[0] - seen[1]).abs().flatten(1).amax(1) > 1e-6
    return changed.float().mean().item()


def test_light_augmentation_lowers_the_resolution_of_fewer_faces_than_full():
    faces = real_faces(400)
    full, light = share_degraded("full", faces), share_degraded("light", faces)
    # full: 4 in 10 lowered, 2 in 10 compressed (about 52% either); light: 1 in 10 and 1 in 20 (15%)
    assert 0.42 < full < 0.62
    assert 0.08 < light < 0.22
