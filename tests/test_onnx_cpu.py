"""The detector's CPU path: RetinaFace exported to ONNX once, kept in the cache, and giving the
PyTorch network's outputs (tests/test_detector_parity.py checks the detections themselves)."""

import os
import time

import numpy as np
import pytest
import torch

from conftest import RETINAFACE, ROOT, WEIGHTS, needs_shared, photo_source
from phototag.library.decode import decode_bytes
from phototag.vision import onnx_cpu
from phototag.vision.detect import pixel_batch
from phototag.vision.retinaface import OnPixels, load_retinaface

DETECTOR = WEIGHTS / RETINAFACE.name


def test_the_export_is_made_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    model = OnPixels(load_retinaface(DETECTOR))
    first = onnx_cpu.exported(model, DETECTOR, tmp_path)
    assert [f.read_bytes() == first for f in tmp_path.iterdir()] == [True]  # no part file left
    monkeypatch.setattr(onnx_cpu, "_export", lambda *_: pytest.fail("exported a second time"))
    assert onnx_cpu.exported(model, DETECTOR, tmp_path) == first


def _aged(path, seconds):
    path.write_bytes(b"an earlier export")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_new_export_removes_those_no_run_has_read_for_a_month(tmp_path):
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"the weights of this run")
    cache = tmp_path / "onnx"
    cache.mkdir()
    day = 24 * 3600
    month = onnx_cpu.STALE_AFTER_S + day
    stale = [_aged(cache / "face96-0123456789abcdef-torch2.13.0-opset17.onnx", month),
             _aged(cache / "face96-emotion-fedcba9876543210-torch2.14.1-cu130-opset17.onnx", month),
             _aged(cache / "tmp1a2b3c.part", 2 * day)]  # left by a run killed while writing
    kept = [_aged(cache / "face96-age-fedcba9876543210-torch2.14.1-opset17.onnx", 7 * day),
            _aged(cache / "tmp4d5e6f.part", 60),  # another run writing now
            _aged(cache / "notes.txt", month)]  # not an export
    data = onnx_cpu.exported(None, weights, cache, "face96-emotion", export=lambda _model: b"exported")
    new = onnx_cpu.export_path("face96-emotion", weights, cache)
    assert data == b"exported" and new.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in kept + [new])
    assert not any(p.exists() for p in stale)


def test_reading_an_export_marks_it_in_use(tmp_path):
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"the weights of this run")
    path = _aged(onnx_cpu.export_path("face96-emotion", weights, tmp_path), onnx_cpu.STALE_AFTER_S - 60)
    data = onnx_cpu.exported(None, weights, tmp_path, "face96-emotion",
                             export=lambda _model: pytest.fail("exported again"))
    assert data == b"an earlier export"
    assert time.time() - path.stat().st_mtime < 60  # a month from now it is still in use


def test_with_an_unwritable_cache_the_network_still_runs_and_matches_pytorch(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    model = OnPixels(load_retinaface(DETECTOR))
    network = onnx_cpu.OnnxNetwork(model, DETECTOR, blocked / "onnx", threads=2)
    photo = decode_bytes(photo_source("people/serengil__couple.jpg").read_bytes(), 640).pixels
    batch = pixel_batch([photo], "cpu")
    with torch.inference_mode():
        expected = model(batch)
    for ours, theirs in zip(network(batch), expected):
        assert ours.shape == theirs.shape
        assert np.abs(ours.numpy() - theirs.numpy()).max() < 1e-3


@needs_shared
def test_the_taggers_face_backbone_on_onnx_runtime_gives_pytorchs_tags(tmp_path, monkeypatch):
    """The shipped model with its face branch's backbone in ONNX Runtime (what an index run uses
    on the CPU) against the same model all in PyTorch, on the faces of real crowd photos."""
    from phototag.vision.attributes import AttributeTagger
    from phototag.vision.detect import Detector
    from phototag.vision.onnx_cpu import OnnxFaceEncoder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty cache: exported here
    detector = Detector(str(DETECTOR))
    photos = []
    for name in ("people/serengil__couple.jpg", "people/ultralight__10.jpg", "people/ultralight__5.jpg"):
        pixels = decode_bytes(photo_source(name).read_bytes(), 1600).pixels
        found = detector.detect([pixels])[0]
        photos.append((pixels, found.boxes, found.landmarks))
    shipped = ROOT / "weights" / "phototag-cpu.safetensors"
    onnx = AttributeTagger(shipped)
    on_onnx = onnx.model.face_encoder.encoders  # the shipped file has a face backbone per task
    assert all(isinstance(on_onnx[task], OnnxFaceEncoder) for task in ("emotion", "age"))
    exports = tmp_path / "cache" / "phototag" / "onnx"
    assert list(exports.glob("face96-emotion-*.onnx")) and list(exports.glob("face96-age-*.onnx"))
    again = AttributeTagger(shipped)  # the next run: from the cached exports, no MobileNetV2 built
    assert all(isinstance(e, OnnxFaceEncoder) for e in again.model.face_encoder.encoders.values())
    pytorch = AttributeTagger(shipped, onnx=False)
    ours = [face for photo in onnx.tag(photos) for face in photo]
    cached = [face for photo in again.tag(photos) for face in photo]
    theirs = [face for photo in pytorch.tag(photos) for face in photo]
    assert len(ours) == len(theirs) >= 10
    assert [(a.emotion, a.age_group, a.emotion_probs) for a in cached] == \
        [(a.emotion, a.age_group, a.emotion_probs) for a in ours]
    for a, b in zip(ours, theirs):
        assert (a.emotion, a.age_group) == (b.emotion, b.age_group)
        for task in ("emotion_probs", "age_probs"):
            mine, reference = getattr(a, task), getattr(b, task)
            assert max(abs(mine[k] - reference[k]) for k in mine) < 1e-3


def test_a_tagger_whose_face_backbone_export_is_cached_imports_no_timm(tmp_path):
    """timm takes seconds to import; with the export in the cache (as every run after the first
    has it) the tagger never builds the MobileNetV2 network timm would make."""
    import subprocess
    import sys

    from conftest import phototag_env

    code = ("import sys\n"
            "from phototag.vision.attributes import AttributeTagger\n"
            f"AttributeTagger({str(ROOT / 'weights' / 'phototag-cpu.safetensors')!r})\n"
            "print('timm' in sys.modules)\n")
    env = phototag_env(tmp_path)  # its cache holds the session's exports (tests/conftest.py)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_each_tasks_face_backbone_goes_to_onnx_runtime_and_age_skips_emotions_zooms(tmp_path):
    """A backbone per task, each exported on its own: the heads read what they read in PyTorch,
    and with emotion's zoom the age backbone runs on the crops alone."""
    import dataclasses

    from phototag.vision.attributes import _cached_face_encoder
    from phototag.vision.config import PRESETS
    from phototag.vision.models import build_model, predict
    from phototag.vision.weightsfile import load_weights, save_weights

    torch.manual_seed(0)
    config = dataclasses.replace(PRESETS["tiny"], face_backbone_per_task=True, emotion_zooms=(1.2,))
    path = save_weights(build_model(config), tmp_path / "per-task.safetensors", info={"epochs": 1})
    model, _ = load_weights(path)
    assert _cached_face_encoder(config, path, tmp_path) is None  # nothing exported yet
    for task in ("emotion", "age"):
        onnx_cpu.OnnxFaceEncoder.export(model.face_encoder.encoders[task], config.face_size, path,
                                        tmp_path, task=task)
    encoder = _cached_face_encoder(config, path, tmp_path)
    assert encoder.features == model.face_encoder.features
    on_onnx, _ = load_weights(path, face_encoder=encoder)
    seen = {}
    for task, session in on_onnx.face_encoder.encoders.items():
        session.register_forward_hook(lambda _m, inputs, _out, task=task: seen.setdefault(task, []).append(
            len(inputs[0])))
    side, context = config.face_size, config.context_size
    face, scene = torch.rand(5, 3, side, side), torch.rand(5, 3, context, context)
    with torch.no_grad():
        expected = predict(model, face, scene, scene, flip=True, emotion_zooms=(1.2,))
        ours = predict(on_onnx, face, scene, scene, flip=True, emotion_zooms=(1.2,))
    for task in ("emotion", "age"):
        assert torch.allclose(ours.logits[task], expected.logits[task], atol=1e-4)
    assert seen == {"emotion": [20], "age": [10]}  # 5 faces, mirrored: 2 views for emotion
