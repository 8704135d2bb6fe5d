"""The detector's CPU path: RetinaFace exported to ONNX once, kept in the cache, and giving the
PyTorch network's outputs (tests/test_detector_parity.py checks the detections themselves)."""

import numpy as np
import pytest
import torch

from conftest import RETINAFACE, WEIGHTS, photo_source
from phototag.library.decode import decode_bytes
from phototag.vision import onnx_cpu
from phototag.vision.detect import to_network_input
from phototag.vision.retinaface import load_retinaface

DETECTOR = WEIGHTS / RETINAFACE.name


def test_the_export_is_made_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    model = load_retinaface(DETECTOR)
    first = onnx_cpu.exported(model, DETECTOR, tmp_path)
    assert [f.read_bytes() == first for f in tmp_path.iterdir()] == [True]  # no part file left
    monkeypatch.setattr(onnx_cpu, "_export", lambda _: pytest.fail("exported a second time"))
    assert onnx_cpu.exported(model, DETECTOR, tmp_path) == first


def test_with_an_unwritable_cache_the_network_still_runs_and_matches_pytorch(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    model = load_retinaface(DETECTOR)
    network = onnx_cpu.OnnxNetwork(model, DETECTOR, blocked / "onnx", threads=2)
    photo = decode_bytes(photo_source("people/serengil__couple.jpg").read_bytes(), 640).pixels
    batch = to_network_input([photo], "cpu")
    with torch.inference_mode():
        expected = model(batch)
    for ours, theirs in zip(network(batch), expected):
        assert ours.shape == theirs.shape
        assert np.abs(ours.numpy() - theirs.numpy()).max() < 1e-3
