"""A teacher's answers on training faces are what it answers at test time."""

import dataclasses

import numpy as np
import pytest
import torch

from phototag.train.augment import plain_batch
from phototag.train.crops import CropGeometry, CropSet
from phototag.train.datasets import Item
from phototag.train.distil import teacher_probabilities
from phototag.vision.config import PRESETS
from phototag.vision.models import build_model, predict


def crop_set(config, count, seed=0):
    geometry = CropGeometry.for_config(config)
    rng = np.random.default_rng(seed)
    face = rng.integers(0, 256, (count, geometry.canvas, geometry.canvas, 3), dtype=np.uint8)
    context = rng.integers(0, 256, (count, config.context_size, config.context_size, 3), dtype=np.uint8)
    box = np.tile(np.array([4, 4, 20, 20], np.float32), (count, 1))
    items = [Item(f"{i}.jpg", emotion=i % 6) for i in range(count)]
    return CropSet(items, np.arange(count), face, context, box, np.ones(count, bool), geometry)


@pytest.mark.parametrize("zooms", [(), (1.2,)])
def test_teacher_answers_as_the_face_branch_does_at_test_time(zooms):
    torch.manual_seed(0)
    config = dataclasses.replace(PRESETS["tiny"], emotion_zooms=zooms, test_flip=True)
    teacher = build_model(config).eval()
    crops = crop_set(config, 5)
    taught = teacher_probabilities(teacher, crops, batch_size=2)
    face, context, gate = plain_batch(*crops.gather(np.arange(5)), config.face_size)
    with torch.no_grad():
        expected = predict(teacher, face, context, gate, flip=True, shares=False,
                           emotion_zooms=zooms).face_logits["emotion"].softmax(1)
    assert taught.shape == (5, 6) and torch.allclose(taught, expected, atol=1e-5)


def test_only_a_gated_model_with_emotion_teaches():
    config = dataclasses.replace(PRESETS["tiny"], kind="fusion")
    with pytest.raises(ValueError, match="gated"):
        teacher_probabilities(build_model(config), crop_set(config, 2))
