"""RetinaFace here against the reference implementation's output on every shared photo."""

import numpy as np
import pytest

from conftest import PHOTOS, RETINAFACE, needs_shared

pytestmark = needs_shared


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def detector():
    from phototag.vision.detect import Detector

    return Detector(str(RETINAFACE))


def test_reference_checkpoint_loads_strictly_without_pickle_code():
    from phototag.vision.retinaface import load_retinaface

    model = load_retinaface(str(RETINAFACE))
    assert model.backbone_name == "mobilenet0.25"
    assert len(model.state_dict()) == 300


def test_matches_reference_detections_on_every_photo(detector, reference):
    from phototag.library.decode import decode_bytes

    assert len(reference["images"]) >= 60
    problems, matched = [], 0
    for item in reference["images"]:
        data = (PHOTOS / item["file"]).read_bytes()
        pixels, width, height, _ = decode_bytes(data, None, item["file"][-5:])[:4]
        assert (width, height) == (item["width"], item["height"]), item["file"]
        faces = detector.detect([pixels], min_score=reference["min_score_kept"])[0]
        used = set()
        for ref in item["faces"]:
            overlaps = [iou(ref["box"], box) for box in faces.boxes]
            j = int(np.argmax(overlaps)) if overlaps else None
            if j is None or overlaps[j] < 0.95 or j in used:
                problems.append(f"{item['file']}: reference face {ref['box']} unmatched")
                continue
            used.add(j)
            matched += 1
            if abs(faces.scores[j] - ref["score"]) > 0.01:
                problems.append(f"{item['file']}: score {faces.scores[j]} vs {ref['score']}")
            shift = np.abs(faces.landmarks[j] - np.array(ref["landmarks"])).max()
            if shift > 1.5:
                problems.append(f"{item['file']}: landmarks off by {shift:.2f} px")
        extra = len(faces) - len(used)
        if extra:
            problems.append(f"{item['file']}: {extra} faces >= 0.5 the reference does not have")
    assert not problems, "\n".join(problems)
    assert matched == sum(len(item["faces"]) for item in reference["images"])


def test_batched_photos_of_one_size_give_the_same_faces(detector):
    from phototag.library.decode import decode_bytes

    names = ["derived/ultralight_10__orient2.jpg", "people/ultralight__10.jpg"]
    images = [decode_bytes((PHOTOS / n).read_bytes(), None)[0] for n in names]
    alone = [detector.detect([image])[0] for image in images]
    together = detector.detect(images)
    for a, b in zip(alone, together):
        assert len(a) == len(b) > 0
        assert np.allclose(a.boxes, b.boxes, atol=0.01)
        assert np.allclose(a.scores, b.scores, atol=1e-4)


def test_a_smaller_photo_padded_into_a_batch_gives_the_faces_it_gives_alone(detector):
    """Photos of different sizes share a forward pass padded with the channel means (zeros in
    the network's input, as its own zero padding is): the smaller one's faces stay the same."""
    from phototag.library.decode import decode_bytes

    from phototag.boxes import box_iou

    large = decode_bytes((PHOTOS / "people/ultralight__10.jpg").read_bytes(), None)[0]
    small = np.ascontiguousarray(large[: large.shape[0] * 3 // 4, : large.shape[1] * 2 // 3])
    alone = detector.detect([small])[0]
    together = detector.detect([large, small])[1]
    assert len(alone) == len(together) >= 5
    for box, score, other_box, other_score in zip(alone.boxes, alone.scores, together.boxes,
                                                  together.scores):
        assert box_iou(box, other_box) > 0.95
        assert abs(score - other_score) < 0.01


def test_resnet50_checkpoints_load_through_the_same_code(tmp_path):
    import torch

    from phototag.vision.detect import Detector
    from phototag.vision.retinaface import RetinaFace

    path = tmp_path / "retinaface_resnet50.pth"
    torch.save({"module." + k: v for k, v in RetinaFace("resnet50").state_dict().items()}, path)
    detector = Detector(str(path))
    assert detector.name == "retinaface-resnet50"
    faces = detector.detect([np.zeros((96, 128, 3), dtype=np.uint8)], min_score=0.0)[0]
    assert faces.boxes.shape[1] == 4 and faces.landmarks.shape[1:] == (5, 2)
