"""Pretrained starts: FaceMesh and MobileNetV2 read into phototag's modules answer as the originals."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from conftest import PHOTOS, SHARED

PRETRAINED = SHARED / "data" / "pretrained"
pytestmark = pytest.mark.skipif(not (PRETRAINED / "facemesh_landmark.pth").is_file(),
                                reason="needs ../shared/data/pretrained (FaceMesh's weights)")


def square_crop(photo, centre, side, size=192):
    """A size × size crop of ``side`` pixels around ``centre``, as FaceMesh was fed."""
    height, width = photo.shape[1:]
    theta = torch.tensor([[side / width, 0, 2 * centre[0] / width - 1],
                          [0, side / height, 2 * centre[1] / height - 1]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], (1, 3, size, size), align_corners=False)
    return F.grid_sample(photo[None], grid, align_corners=False)


def upright(name):
    image = ImageOps.exif_transpose(Image.open(PHOTOS / name)).convert("RGB")
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


def test_facemesh_landmarks_land_on_the_reference_detectors_and_it_knows_a_face():
    from phototag.train.pretrained import facemesh_state
    from phototag.vision.facemesh import FaceMesh

    mesh = FaceMesh()
    mesh.load_state_dict(facemesh_state(PRETRAINED))  # strict: every tensor has its place
    mesh.eval()
    reference = json.loads((PHOTOS / "reference_detections.json").read_text())["images"]
    errors, flags = [], []
    for entry in reference:
        if not entry["file"].startswith("people/"):
            continue
        photo = upright(entry["file"])
        for face in entry["faces"]:
            x1, y1, x2, y2 = face["box"]
            if x2 - x1 < 60:
                continue
            centre, side = ((x1 + x2) / 2, (y1 + y2) / 2), 1.5 * max(x2 - x1, y2 - y1)
            with torch.no_grad():
                flag, mesh_points = mesh(square_crop(photo, centre, side))
            points = mesh_points[0, :, :2].numpy() * side + [centre[0] - side / 2, centre[1] - side / 2]
            # The mesh's eye centres, nose tip and mouth corners against RetinaFace's five points.
            five = np.array([(points[33] + points[133]) / 2, (points[362] + points[263]) / 2,
                             points[1], points[61], points[291]])
            errors.append(np.linalg.norm(five - np.array(face["landmarks"]), axis=1).mean() / (x2 - x1))
            flags.append(float(flag))
    assert len(errors) > 50
    # Measured: median 3.5% of the face's width over 95 faces; random weights are nowhere near.
    assert np.median(errors) < 0.06, np.median(errors)
    assert np.median(flags) > 0.9
    landscape = upright("exif/" + next(p.name for p in sorted((PHOTOS / "exif").glob("*.jpg"))))
    with torch.no_grad():
        flag, _ = mesh(F.interpolate(landscape[None], size=(192, 192), mode="area"))
    assert float(flag) < 0.1


def test_the_cpu_preset_starts_both_branches_from_facemeshs_trunk():
    from phototag.train.pretrained import facemesh_state, initialise
    from phototag.vision.config import PRESETS
    from phototag.vision.facemesh import FaceMesh
    from phototag.vision.models import build_model

    model = build_model(PRESETS["cpu"])
    heads_before = {k: v.clone() for k, v in model.state_dict().items() if "backbone" not in k}
    done = initialise(model, PRETRAINED, report=lambda line: None)
    assert len(done) == 2
    mesh = FaceMesh()
    mesh.load_state_dict(facemesh_state(PRETRAINED))
    mesh.eval()
    model.eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        expected = mesh.backbone1(F.pad(x, (0, 1, 0, 1)))
        assert torch.allclose(model.context_encoder.backbone(x), expected, atol=1e-5)
        pooled = model.face_encoder.backbone(x)
    assert torch.allclose(pooled[:, :128], expected.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(pooled[:, 128:], expected.amax(dim=(2, 3)), atol=1e-5)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in heads_before.items())  # heads stay as built


MOBILENET = PRETRAINED / "mobilenet_v2_1.0_224_quant.tflite"


@pytest.mark.skipif(not MOBILENET.is_file(), reason="needs ../shared/data/pretrained (MobileNetV2)")
def test_mobilenet_v2_read_from_tflite_answers_as_the_original_on_real_photos():
    """The dequantised network in float against the quantised original run by TFLite's own
    interpreter: the same ImageNet class on real photos, and about the same confidence."""
    from ai_edge_litert.interpreter import Interpreter

    from phototag.train.pretrained import mobilenet_v2_state
    from phototag.vision.mobilenet import MobileNetV2Trunk

    original = Interpreter(model_path=str(MOBILENET))
    original.allocate_tensors()
    source, answer = original.get_input_details()[0], original.get_output_details()[0]
    converted = MobileNetV2Trunk(num_classes=1001)
    converted.load_state_dict(mobilenet_v2_state(PRETRAINED, classifier=True))
    converted.eval()
    names = sorted(p.relative_to(PHOTOS) for p in PHOTOS.glob("*/*.jpg"))[::3][:16]
    agree, confident = 0, []
    for name in names:
        pixels = np.array(Image.open(PHOTOS / name).convert("RGB").resize((224, 224)))
        original.set_tensor(source["index"], pixels[None])
        original.invoke()
        expected = original.get_tensor(answer["index"])[0] * answer["quantization"][0]
        with torch.no_grad():
            got = converted(torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255)
        got = got.softmax(1)[0].numpy()
        agree += int(got.argmax() == expected.argmax())
        if expected.max() > 0.3:
            confident.append(abs(got[expected.argmax()] - expected.max()))
    assert agree >= len(names) - 1, f"{agree} of {len(names)} photos get the original's class"
    assert confident and max(confident) < 0.1


@pytest.mark.skipif(not MOBILENET.is_file(), reason="needs ../shared/data/pretrained (MobileNetV2)")
def test_mobilenet_v2_keeps_its_pretrained_statistics_while_it_trains():
    from phototag.train.pretrained import initialise
    from phototag.vision.config import PRESETS
    from phototag.vision.models import build_model

    config = dataclasses.replace(PRESETS["tiny"], face_backbone="mobilenetv2", face_size=64)
    model = build_model(config)
    assert initialise(model, PRETRAINED, report=lambda line: None) == [
        "face: mobilenetv2 (mobilenet_v2_1.0_224_quant.tflite)"]
    trunk = model.face_encoder.backbone
    norms = [m for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.bias.detach().clone()) for m in norms]
    model.train()
    assert trunk.training and not any(m.training for m in norms)
    optimiser = torch.optim.SGD(trunk.parameters(), lr=0.1)
    faces = torch.rand(4, 3, 64, 64)
    trunk(faces).square().mean().backward()
    optimiser.step()
    for m, (mean, var, bias) in zip(norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert any(not torch.equal(m.bias, bias) for m, (_, _, bias) in zip(norms, before))
