"""The attribute models, their weights files, the regions they read, SAM and the stages."""

import dataclasses

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from phototag.vision.config import PRESETS, ModelConfig
from phototag.vision.models import CAERNet, build_model
from phototag.vision.regions import TEMPLATE, face_regions
from phototag.train.crops import CropGeometry, crops_from_faces
from phototag.train.evaluate import evaluate
from phototag.train.loop import TrainOptions, batches, train
from phototag.train.sam import SAM, freeze_running_stats, restore_running_stats
from phototag.vision.weightsfile import load_weights, save_weights

from synthetic import make_photos

TINY = PRESETS["tiny"]


def crops(n, config=TINY):
    return (torch.rand(n, 3, config.face_size, config.face_size),
            torch.rand(n, 3, config.context_size, config.context_size),
            torch.rand(n, 3, config.context_size, config.context_size))


@pytest.mark.parametrize("kind", ["gated", "fusion", "caer"])
def test_every_kind_answers_both_tasks_and_round_trips_its_weights(tmp_path, kind):
    config = dataclasses.replace(TINY, kind=kind)
    model = build_model(config).eval()
    inputs = crops(3)
    out = model(*inputs)
    assert out.logits["emotion"].shape == (3, 6) and out.logits["age"].shape == (3, 6)
    path = save_weights(model, tmp_path / f"{kind}.safetensors", info={"epochs": 1})
    loaded, info = load_weights(path)  # no flags: the file says what to build
    assert loaded.config == config and info == {"epochs": 1}
    again = loaded(*inputs)
    for task in ("emotion", "age"):
        assert torch.allclose(out.logits[task], again.logits[task], atol=1e-5)


def test_gates_are_sigmoid_weights_per_branch_and_task():
    model = build_model(TINY).eval()
    out = model(*crops(4))
    for task in ("emotion", "age"):
        gates = out.gates[task]
        assert gates.shape == (4, 2) and ((gates > 0) & (gates < 1)).all()
        expected = gates[:, :1] * out.face_logits[task] + gates[:, 1:] * out.context_logits[task]
        assert torch.allclose(out.logits[task], expected)


def test_weights_file_holds_one_copy_of_the_shared_backbone_and_its_configuration(tmp_path):
    model = build_model(TINY)
    path = save_weights(model, tmp_path / "m.safetensors", info={"epochs": 1})
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        config = ModelConfig.from_json(f.metadata()["config"])
    assert config == TINY and config.age_bins[0] == ("baby", 0, 2)
    backbone_keys = [k for k in keys if ".backbone." in k]
    assert {k.split(".")[0] for k in backbone_keys} == {"face_encoder", "context_encoder"}
    expected = len(model.face_encoder.backbone.state_dict()) + len(model.context_encoder.backbone.state_dict())
    assert len(backbone_keys) == expected
    assert not [k for k in keys if k.startswith("gate_head.") and "backbone" in k]


def test_the_mirror_pass_answers_alike_for_a_face_and_its_mirror_image():
    from phototag.vision.models import predict

    torch.manual_seed(0)
    model = build_model(TINY).eval()
    face, context, gate = crops(3)
    mirrored = [x.flip(-1) for x in (face, context, gate)]
    with torch.no_grad():
        plain, plain_mirrored = model(face, context, gate), model(*mirrored)
        both, both_mirrored = predict(model, face, context, gate, flip=True), predict(model, *mirrored, flip=True)
    for task in ("emotion", "age"):
        assert not torch.allclose(plain.logits[task], plain_mirrored.logits[task], atol=1e-4)
        assert torch.allclose(both.logits[task], (plain.logits[task] + plain_mirrored.logits[task]) / 2, atol=1e-5)
        assert torch.allclose(both.logits[task], both_mirrored.logits[task], atol=1e-5)


def test_the_zoomed_view_of_a_mirrored_face_is_the_mirrored_view_at_any_size():
    from phototag.vision.models import zoomed

    torch.manual_seed(0)
    for side in (32, 33, 96):  # 32 / 1.2 leaves 5 pixels to cut: 2 on one side and 3 on the other
        face = torch.rand(2, 3, side, side)
        assert torch.allclose(zoomed(face.flip(-1), 1.2), zoomed(face, 1.2).flip(-1), atol=1e-5)
    shipped = torch.rand(2, 3, 96, 96)  # the shipped crop: its middle 80 pixels, resized
    cut = torch.nn.functional.interpolate(shipped[..., 8:88, 8:88], size=(96, 96), mode="bilinear",
                                          align_corners=False)
    assert torch.allclose(zoomed(shipped, 1.2)[..., 1:-1, 1:-1], cut[..., 1:-1, 1:-1], atol=1e-5)


def test_an_emotion_zoom_averages_emotion_over_the_crop_and_its_enlarged_centre_not_age(tmp_path):
    from phototag.vision.models import predict, zoomed

    torch.manual_seed(0)
    config = dataclasses.replace(TINY, emotion_zooms=(1.2,))
    model = build_model(config).eval()
    face, context, gate = crops(3)
    # The middle 27 of 32 pixels, enlarged: a 2-pixel frame is gone, a middle square grows.
    framed = torch.ones(1, 3, 32, 32)
    framed[..., 2:30, 2:30] = 0
    framed[..., 12:20, 12:20] = 0.5
    enlarged = zoomed(framed, 1.2)
    assert enlarged.shape == framed.shape and enlarged.max() < 0.51
    square = [image[image < 0.51].sum() for image in (framed, enlarged)]  # its grey: its area
    assert square[1] > 1.4 * square[0]  # 1.2 × 1.2 as large
    centre = zoomed(face, 1.2)
    with torch.no_grad():
        plain = predict(model, face, context, gate)
        zoomed_only = model(centre, context, gate)
        both = predict(model, face, context, gate, emotion_zooms=config.emotion_zooms)
        both_mirrored = predict(model, *(x.flip(-1) for x in (face, context, gate)), flip=True,
                                emotion_zooms=config.emotion_zooms)
        with_flip = predict(model, face, context, gate, flip=True, emotion_zooms=config.emotion_zooms)
    expected_face = {"emotion": (plain.face_logits["emotion"] + zoomed_only.face_logits["emotion"]) / 2,
                     "age": plain.face_logits["age"]}  # age reads the crop as it is
    for task, face_logits in expected_face.items():
        assert torch.allclose(both.face_logits[task], face_logits, atol=1e-5)
        gates = both.gates[task]
        expected = gates[:, :1] * face_logits + gates[:, 1:] * plain.context_logits[task]
        assert torch.allclose(both.logits[task], expected, atol=1e-5)
        assert torch.allclose(with_flip.logits[task], both_mirrored.logits[task], atol=1e-5)
    assert not torch.allclose(both.logits["emotion"], plain.logits["emotion"], atol=1e-4)
    assert torch.allclose(both.logits["age"], plain.logits["age"], atol=1e-5)
    path = save_weights(model, tmp_path / "zoom.safetensors", info={"epochs": 1})
    assert load_weights(path)[0].config.emotion_zooms == (1.2,)
    with pytest.raises(ValueError, match="above 1"):
        dataclasses.replace(TINY, emotion_zooms=(0.8,))
    with pytest.raises(ValueError, match="gated"):
        dataclasses.replace(TINY, kind="caer", emotion_zooms=(1.2,))
    caer = build_model(dataclasses.replace(TINY, kind="caer")).eval()
    with pytest.raises(ValueError, match="gated"):
        predict(caer, face, context, gate, emotion_zooms=(1.2,))


def test_recorded_class_shares_move_the_answer_toward_common_classes_and_survive_the_file(tmp_path):
    from phototag.vision.models import predict

    torch.manual_seed(0)
    shares = (0.5, 0.3, 0.1, 0.05, 0.03, 0.02)
    model = build_model(dataclasses.replace(TINY, class_shares=(("emotion", shares),))).eval()
    face, context, gate = crops(4)
    with torch.no_grad():
        plain = predict(model, face, context, gate, shares=False)
        adjusted = predict(model, face, context, gate)
    offset = torch.tensor(shares).log()
    assert torch.allclose(adjusted.logits["emotion"], plain.logits["emotion"] + offset, atol=1e-6)
    assert torch.allclose(adjusted.face_logits["emotion"], plain.face_logits["emotion"] + offset, atol=1e-6)
    assert torch.equal(adjusted.logits["age"], plain.logits["age"])  # no shares recorded for age
    path = tmp_path / "m.safetensors"
    save_weights(model, path, info={"epochs": 1})
    assert load_weights(path)[0].config.class_shares == (("emotion", shares),)


def test_caer_net_streams_have_the_papers_layer_sizes():
    model = CAERNet(dataclasses.replace(TINY, kind="caer"))
    for stream in (model.face_stream, model.context_stream):
        convs = [m for m in stream if isinstance(m, nn.Conv2d)]
        assert [c.out_channels for c in convs] == [32, 64, 128, 256, 256]
        assert all(c.kernel_size == (3, 3) for c in convs)
        assert sum(isinstance(m, nn.MaxPool2d) for m in stream) == 4


def test_aligned_face_puts_the_landmarks_on_the_template():
    size = 64
    photo = torch.zeros(3, 200, 300)
    angle, scale, shift = 0.4, 1.7, torch.tensor([120.0, 60.0])
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]],
                            dtype=torch.float32)
    points = (TEMPLATE * size) @ rotation.T * scale + shift
    for x, y in points.round().long().tolist():
        photo[:, y - 1:y + 2, x - 1:x + 2] = 1.0
    box = torch.cat([points.min(0).values - 20, points.max(0).values + 20])
    regions = face_regions(photo, box[None], points[None], size, 96)
    face = regions.face[0, 0]
    for tx, ty in (TEMPLATE * size).tolist():
        window = face[int(ty) - 3:int(ty) + 4, int(tx) - 3:int(tx) + 4]
        assert window.max() > 0.5, (tx, ty)
    assert face.sum() < 5 * 9 * 1.5  # nothing else lit up


def test_context_masks_its_own_face_and_gate_does_not():
    photo = torch.rand(3, 120, 160)
    boxes = torch.tensor([[20.0, 30.0, 60.0, 80.0], [100.0, 20.0, 140.0, 70.0]])
    points = torch.stack([TEMPLATE * 40 + b[:2] for b in boxes])
    regions = face_regions(photo, boxes, points, 32, 80)
    step = 160 / 80  # whole photo letterboxed into an 80-pixel square
    top = (160 - 120) / 2
    for k, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        inside = (slice(int((y1 + top) / step) + 1, int((y2 + top) / step) - 1),
                  slice(int(x1 / step) + 1, int(x2 / step) - 1))
        assert regions.context[k][:, inside[0], inside[1]].abs().max() == 0
        assert regions.gates_per_face()[k][:, inside[0], inside[1]].mean() > 0.2
    other = regions.context[0][:, int((20 + top) / step) + 2, int(120 / step)]
    assert other.abs().sum() > 0  # the other face stays visible in this face's context


def test_faces_of_one_photo_share_one_gate_crop_and_answer_as_if_each_had_its_own():
    photo = torch.rand(3, 90, 120)
    boxes = torch.tensor([[10.0, 10.0, 40.0, 45.0], [60.0, 20.0, 90.0, 55.0], [30.0, 50.0, 55.0, 80.0]])
    points = torch.stack([TEMPLATE * 30 + b[:2] for b in boxes])
    shared = face_regions(photo, boxes, points, TINY.face_size, TINY.context_size)
    assert len(shared.gate) == 1 and shared.gate_index.tolist() == [0, 0, 0]
    own = face_regions(photo, boxes, points, TINY.face_size, TINY.context_size, context_scale=2.0)
    assert len(own.gate) == 3
    model = build_model(TINY).eval()
    with torch.no_grad():
        once = model(shared.face, shared.context, shared.gate, shared.gate_index)
        each = model(shared.face, shared.context, shared.gates_per_face())
    for task in ("emotion", "age"):
        assert torch.allclose(once.logits[task], each.logits[task], atol=1e-5)


def test_sam_second_pass_runs_at_the_perturbed_weights():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    w0 = [p.detach().clone() for p in model.parameters()]
    rho, lr = 0.1, 0.5
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=lr)

    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    optimizer.first_step(zero_grad=True)
    seen = [p.detach().clone() for p in model.parameters()]
    for p0, g, p in zip(w0, grads, seen):
        assert torch.allclose(p, p0 + rho * g / norm, atol=1e-6)
    nn.functional.mse_loss(model(x), y).backward()
    perturbed_grads = [p.grad.clone() for p in model.parameters()]
    optimizer.second_step()
    for p0, g, p in zip(w0, perturbed_grads, model.parameters()):
        assert torch.allclose(p, p0 - lr * g, atol=1e-6)  # back at w, stepped with g(w + e)
    assert any(not torch.allclose(a, b) for a, b in zip(grads, perturbed_grads))


def test_sam_updates_batch_norm_statistics_on_the_first_pass_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    x = torch.randn(32, 3) * 3 + 1
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    model(x).pow(2).mean().backward()
    after_first = model[1].running_mean.clone()
    optimizer.first_step(zero_grad=True)
    freeze_running_stats(model)
    model(x).pow(2).mean().backward()
    restore_running_stats(model)
    optimizer.second_step()
    assert torch.equal(model[1].running_mean, after_first)
    assert model[1].momentum == 0.1


def synthetic_sets(tmp_path, label_in):
    items, faces = make_photos(tmp_path / "train", 300, label_in, seed=1)
    val_items, val_faces = make_photos(tmp_path / "val", 90, label_in, seed=2)
    geometry = CropGeometry.for_config(TINY)
    return crops_from_faces(items, faces, geometry), crops_from_faces(val_items, val_faces, geometry)


def test_stage_gate_changes_only_the_gating_head(tmp_path):
    train_set, val_set = synthetic_sets(tmp_path, "context")
    torch.manual_seed(0)
    model = build_model(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, train_set, val_set, TrainOptions(stage="gate", epochs=1, batch_size=32),
          report=lambda line: None)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("gate_head.") for k in changed), changed
    assert {k for k in before if k.startswith("gate_head.")} == changed


@pytest.mark.parametrize("label_in, stronger, weaker", [("context", 1, 0), ("face", 0, 1)])
def test_the_gated_model_learns_where_the_label_is(tmp_path, label_in, stronger, weaker):
    train_set, val_set = synthetic_sets(tmp_path, label_in)
    torch.manual_seed(0)
    model = build_model(TINY)
    train(model, train_set, val_set,
          TrainOptions(epochs=4, batch_size=32, lr=3e-3, optimizer="sam"), report=lambda line: None)
    scores = evaluate(model, val_set, branches=True)["emotion"]["branches"]
    blind = "face" if label_in == "context" else "context"
    assert scores["model"] >= 0.9, scores
    assert scores[blind] < 0.5, scores  # three classes: chance is 1/3
    with torch.no_grad():
        gates = torch.cat([model(f, c, g).gates["emotion"]
                           for f, c, g, *_ in batches(val_set, np.arange(len(val_set)), 64,
                                                      TINY.face_size)]).mean(0)
    assert gates[stronger] > gates[weaker], gates


def test_sam_step_with_a_closure_is_the_same_two_pass_step_not_a_plain_step():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    start = nn.Linear(4, 1).state_dict()
    explicit, usual, plain = nn.Linear(4, 1), nn.Linear(4, 1), nn.Linear(4, 1)
    for model in (explicit, usual, plain):
        model.load_state_dict(start)
    first = SAM(explicit.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)
    nn.functional.mse_loss(explicit(x), y).backward()
    first.first_step(zero_grad=True)
    nn.functional.mse_loss(explicit(x), y).backward()
    first.second_step(zero_grad=True)

    second = SAM(usual.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)

    def closure():  # the usual PyTorch way: zero, forward, backward, return the loss
        second.zero_grad()
        loss = nn.functional.mse_loss(usual(x), y)
        loss.backward()
        return loss

    second.step(closure)
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1)
    nn.functional.mse_loss(plain(x), y).backward()
    sgd.step()
    for a, b, c in zip(explicit.parameters(), usual.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
    assert any(not torch.allclose(b, c, atol=1e-4) for b, c in zip(usual.parameters(), plain.parameters()))


PER_TASK = dataclasses.replace(TINY, face_backbone_per_task=True)


def test_a_face_backbone_per_task_answers_each_task_from_its_own_backbone(tmp_path):
    from phototag.train.join import join_face_branches

    torch.manual_seed(0)
    for_emotion, for_age = build_model(TINY).eval(), build_model(TINY).eval()
    joined = join_face_branches(for_emotion, for_age)
    assert joined.config == PER_TASK
    inputs = crops(3)
    out = joined(*inputs)
    assert torch.allclose(out.face_logits["emotion"], for_emotion(*inputs).face_logits["emotion"], atol=1e-6)
    assert torch.allclose(out.face_logits["age"], for_age(*inputs).face_logits["age"], atol=1e-6)
    assert not torch.allclose(out.face_logits["emotion"], for_age(*inputs).face_logits["emotion"], atol=1e-3)
    assert torch.allclose(out.logits["age"], for_age(*inputs).logits["age"], atol=1e-6)
    for_context = build_model(TINY).eval()
    with_context = join_face_branches(for_emotion, for_age, for_context)(*inputs)
    assert torch.allclose(with_context.context_logits["age"], for_context(*inputs).context_logits["age"])
    assert torch.allclose(with_context.face_logits["age"], out.face_logits["age"])
    loaded, _ = load_weights(save_weights(joined, tmp_path / "joined.safetensors"))
    assert loaded.config == PER_TASK
    assert torch.allclose(loaded(*inputs).logits["emotion"], out.logits["emotion"], atol=1e-6)
    with pytest.raises(ValueError, match="one face backbone"):
        join_face_branches(joined, for_age)
    with pytest.raises(ValueError, match="gated models"):
        dataclasses.replace(PER_TASK, kind="caer")


@pytest.mark.parametrize("config", [TINY, PER_TASK], ids=["shared", "per-task"])
def test_one_tasks_face_logits_are_the_face_branchs_for_that_task(config):
    torch.manual_seed(2)
    model = build_model(config).eval()
    face = crops(3)[0]
    with torch.no_grad():
        both = model.face_branch(face)
        for task in config.tasks:
            assert torch.allclose(model.face_task_logits(face, task), both[task], atol=1e-6)


def test_the_face_stage_trains_only_the_backbones_of_the_tasks_it_has_labels_for(tmp_path):
    train_set, val_set = synthetic_sets(tmp_path, "face")  # emotion labels only
    torch.manual_seed(0)
    model = build_model(PER_TASK)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, train_set, val_set, TrainOptions(stage="face", epochs=1, batch_size=32, optimizer="adamw"),
          report=lambda line: None)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("face_encoder.encoders.emotion.") and "running_mean" in k for k in changed)
    assert any(k.startswith("face_heads.heads.emotion.") for k in changed)
    emotion_only = ("face_encoder.encoders.emotion.", "face_heads.heads.emotion.")
    assert all(k.startswith(emotion_only) for k in changed), sorted(k for k in changed if "emotion" not in k)[:5]
