"""What a GPU must give: the CPU's faces, tags and identities, within what fp16 allows. Skipped
without CUDA (bench/gpu.sh runs them on a lent GPU machine)."""

import numpy as np
import pytest

from conftest import PHOTOS, WEIGHTS, needs_shared

torch = pytest.importorskip("torch")
pytestmark = [needs_shared, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PHOTO = PHOTOS / "people" / "serengil__couple.jpg"


def pixels():
    from phototag.library.decode import decode_bytes

    return decode_bytes(PHOTO.read_bytes(), 1600).pixels


def test_the_detector_finds_the_same_faces_on_the_gpu():
    from phototag.boxes import matched_boxes
    from phototag.vision.detect import Detector

    path = WEIGHTS / "retinaface_mobilenet0.25_Final.pth"
    cpu, gpu = (Detector(path, device=d).detect([pixels()], 0.6)[0] for d in ("cpu", "cuda"))
    assert len(cpu) == len(gpu) > 0
    assert len(matched_boxes(cpu.boxes.tolist(), gpu.boxes.tolist(), 0.95)) == len(cpu)


def test_the_tagger_and_the_identity_network_answer_alike_on_the_gpu(tmp_path):
    from phototag.vision.attributes import AttributeTagger
    from phototag.vision.detect import Detector
    from phototag.vision.identity import FaceEmbedder
    from phototag.weights import IDENTITY_WEIGHTS, default_attribute_weights

    image = pixels()
    faces = Detector(WEIGHTS / "retinaface_mobilenet0.25_Final.pth").detect([image], 0.6)[0]
    shipped = default_attribute_weights()
    cpu, gpu = (AttributeTagger(shipped, device=d).tag([(image, faces.boxes, faces.landmarks)])[0]
                for d in ("cpu", "cuda"))
    for a, b in zip(cpu, gpu):
        assert a.emotion == b.emotion and a.age_group == b.age_group
        assert abs(a.emotion_score - b.emotion_score) < 0.02
    embedder = FaceEmbedder(WEIGHTS / IDENTITY_WEIGHTS, tmp_path, device="cuda")
    (vectors, _, _), = embedder.embed([(image, faces.landmarks)])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
