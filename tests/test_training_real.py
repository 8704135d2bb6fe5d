"""Training on real data (small slices of ../shared, tiny configurations) and the trained model in
`phototag index`."""

import json
import os
import subprocess
import sys

import pytest

from phototag.vision.weightsfile import read_metadata

from conftest import ROOT, SHARED, copy_photos, db_rows, needs_shared, run_phototag

DATA = SHARED / "data"
FER = DATA / "emotion" / "fer2013"
UTK = DATA / "age" / "utkface_200" / "images"
pytestmark = [needs_shared, pytest.mark.skipif(not FER.is_dir(), reason="needs ../shared/data/emotion")]

TINY = ["--preset", "tiny", "--batch-size", "32", "--seed", "0"]


def three_classes(tmp_path, split):
    """happy / surprise / sad from FER2013, as a folder of links (the data stays in ../shared)."""
    folder = tmp_path / f"fer-{split}"
    folder.mkdir()
    for name in ("happy", "surprise", "sad"):
        os.symlink(FER / split / name, folder / name)
    return folder


def test_training_on_fer2013_lowers_validation_loss_and_beats_chance(tmp_path):
    out = tmp_path / "face.safetensors"
    run_phototag(
        tmp_path, "train", *TINY, "--face-backbone", "resnet10t", "--face-size", "48",
        "--stage", "face", "--task", "emotion", "--optimizer", "adamw", "--lr", "3e-3",
        "--epochs", "4", "--limit-per-class", "200",
        "--data", f"emotion:{three_classes(tmp_path, 'train')}",
        "--val", f"emotion:{three_classes(tmp_path, 'val')}", "--out", out,
    )
    history = json.loads((tmp_path / "face.safetensors.json").read_text())["history"]
    assert len(history) == 4
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["val_accuracy"]["emotion"] >= 0.45  # three classes: chance is 1/3


@pytest.mark.parametrize("optimizer", ["adamw", "sam"])
def test_train_runs_with_either_optimizer_and_eval_reports(tmp_path, optimizer):
    out = tmp_path / "m.safetensors"
    result = run_phototag(
        tmp_path, "train", *TINY, "--optimizer", optimizer, "--epochs", "1", "--task", "emotion",
        "--limit-per-class", "8", "--data", f"emotion:{FER / 'train'}", "--out", out,
    )
    assert "stage gate epoch 1/1" in result.stderr and "no class for disgust" in result.stderr
    info = json.loads((tmp_path / "m.safetensors.json").read_text())
    assert info["optimizer"] == optimizer and [h["stage"] for h in info["history"]] == ["face", "context", "gate"]
    report = json.loads(run_phototag(
        tmp_path, "eval", out, "--branches", "--json", "--limit-per-class", "5",
        "--data", f"emotion:{FER / 'val'}",
    ).stdout)["emotion"]
    assert report["samples"] == 30
    assert set(report["branches"]) == {"model", "face", "context"}
    assert len(report["confusion"]["matrix"]) == 6 and "accuracy_five" in report


def test_class_weighted_training_records_the_class_shares_and_unweighted_does_not(tmp_path):
    smiles = tmp_path / "more-smiles"
    smiles.mkdir()
    os.symlink(FER / "train" / "happy", smiles / "happy")
    common = [*TINY, "--task", "emotion", "--stage", "face", "--epochs", "1", "--limit-per-class", "8",
              "--data", f"emotion:{three_classes(tmp_path, 'train')}", "--data", f"emotion:{smiles}"]
    run_phototag(tmp_path, "train", *common, "--out", tmp_path / "weighted.safetensors")
    run_phototag(tmp_path, "train", *common, "--balance", "none", "--out", tmp_path / "plain.safetensors")
    shares = dict(read_metadata(tmp_path / "weighted.safetensors")[0].class_shares)["emotion"]
    # 16 smiles, 8 sad and 8 surprise of 32 (less the held-out tenth); the other classes count as one
    assert shares[0] > 0.4 and 0.15 < shares[1] < 0.3 and shares[2] < 0.05
    assert abs(sum(shares) - 1) < 1e-3 and shares[0] > shares[4] > shares[3]
    assert read_metadata(tmp_path / "plain.safetensors")[0].class_shares == ()


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "m.safetensors"
    common = [*TINY, "--task", "emotion", "--stage", "face", "--limit-per-class", "5",
              "--data", f"emotion:{FER / 'train'}", "--out", out]
    run_phototag(tmp_path, "train", *common, "--epochs", "1")
    resumed = run_phototag(tmp_path, "train", *common, "--epochs", "2", "--resume")
    assert "resuming after stage face epoch 1" in resumed.stderr
    assert "epoch 2/2" in resumed.stderr and "epoch 1/2" not in resumed.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained here on both tasks (a few FER2013 and UTKFace images)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    out = tmp_path / "both.safetensors"
    run_phototag(
        tmp_path, "train", *TINY, "--epochs", "1", "--limit-per-class", "6", "--task", "both",
        "--data", f"emotion:{FER / 'train'}", "--data", f"age:{UTK}", "--out", out,
    )
    return out


def test_index_fills_emotion_age_and_gates_and_search_finds_them(tmp_path, trained):
    lib = copy_photos(["people/serengil__couple.jpg", "people/ultralight__8.jpg"], tmp_path / "lib")
    result = run_phototag(tmp_path, "index", "--model", trained, lib)
    assert "tagging is off" not in result.stderr
    db = tmp_path / "db" / "index.db"
    every = db_rows(db, "SELECT emotion, emotion_score, emotion_probs, age_group, age_score, "
                        "gate_face, gate_context, too_small, min(x2 - x1, y2 - y1) FROM faces "
                        "ORDER BY too_small")
    faces = [row[:7] for row in every if not row[7]]
    assert len(every) > 10 and len(faces) >= 2
    # faces under --min-tag-face are faces without tags
    from phototag.pipeline import MIN_TAG_FACE

    assert all(row[7] == (row[8] < MIN_TAG_FACE) for row in every)
    assert all(row[0] is None and row[3] is None for row in every if row[7])
    for emotion, e_score, probs, age, a_score, gate_face, gate_context in faces:
        assert emotion and age and 0 < e_score <= 1 and 0 < a_score <= 1
        assert abs(sum(json.loads(probs).values()) - 1) < 1e-2
        assert set(json.loads(gate_face)) == set(json.loads(gate_context)) == {"emotion", "age"}
    model = db_rows(db, "SELECT DISTINCT model FROM photos")
    assert model == [(f"retinaface_mobilenet0.25_Final+{model[0][0].split('+')[1]}",)]
    emotion, age = faces[0][0], faces[0][3]
    found = run_phototag(tmp_path, "search", "--emotion", emotion, "--age", age, "--format", "json")
    rows = json.loads(found.stdout)
    assert rows and all(r["emotion"] == emotion and r["age_group"] == age for r in rows)


def test_a_run_from_init_may_go_on_at_a_larger_face_size(tmp_path, trained):
    from phototag.vision.weightsfile import load_weights

    out = tmp_path / "larger.safetensors"
    run_phototag(tmp_path, "train", "--init", trained, "--face-size", "48", "--stage", "face",
                 "--epochs", "1", "--task", "emotion", "--limit-per-class", "4",
                 "--batch-size", "16", "--data", f"emotion:{FER / 'train'}", "--out", out)
    before, _ = load_weights(trained)
    after, info = load_weights(out)
    assert (before.config.face_size, after.config.face_size) == (32, 48)
    assert after.config.context_size == before.config.context_size
    assert [h["stage"] for h in info["history"]][-1] == "face" and info["earlier_commands"]


def test_a_face_backbone_per_task_from_init_trains_only_the_task_given(tmp_path, trained):
    import torch

    from phototag.vision.weightsfile import load_weights

    out = tmp_path / "per-task.safetensors"
    run_phototag(tmp_path, "train", "--init", trained, "--face-backbone-per-task", "--stage", "face",
                 "--epochs", "1", "--task", "emotion", "--limit-per-class", "4", "--batch-size", "16",
                 "--optimizer", "adamw", "--data", f"emotion:{FER / 'train'}", "--out", out)
    before, _ = load_weights(trained)
    after, _ = load_weights(out)
    assert after.config.face_backbone_per_task and not before.config.face_backbone_per_task
    shared = before.face_encoder.state_dict()
    for task, should_change in (("emotion", True), ("age", False)):
        own = after.face_encoder.encoders[task].state_dict()
        assert own.keys() == shared.keys()
        changed = [k for k in own if not torch.equal(own[k], shared[k])]
        assert bool(changed) == should_change, (task, changed[:3])


def test_joined_face_branches_train_on_and_keep_the_record_of_the_join(tmp_path, trained):
    joined = tmp_path / "joined.safetensors"
    subprocess.run([sys.executable, ROOT / "weights" / "scripts" / "join_face_branches.py", "--emotion", trained,
                    "--age", trained, joined], check=True, capture_output=True)
    out = tmp_path / "gated.safetensors"
    run_phototag(tmp_path, "train", "--init", joined, "--stage", "gate", "--epochs", "1",
                 "--limit-per-class", "4", "--batch-size", "16", "--optimizer", "adamw",
                 "--data", f"emotion:{FER / 'train'}", "--data", f"age:{UTK}", "--out", out)
    config, info = read_metadata(out)
    assert config.face_backbone_per_task
    assert set(info["joined"]) == {"emotion", "age", "context"}
    assert info["earlier_commands"][-1].startswith("python weights/scripts/join_face_branches.py")


def test_faces_only_turns_tagging_off(tmp_path):
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    result = run_phototag(tmp_path, "index", "--faces-only", lib)
    assert "tagging is off" not in result.stderr  # asked for: no note
    assert db_rows(tmp_path / "db" / "index.db", "SELECT count(*) FROM faces") != [(0,)]
    assert db_rows(tmp_path / "db" / "index.db", "SELECT count(*) FROM faces WHERE emotion IS NOT NULL") == [(0,)]


def test_untrained_weights_are_refused(tmp_path):
    from phototag.vision.config import PRESETS
    from phototag.vision.models import build_model
    from phototag.vision.weightsfile import save_weights

    path = save_weights(build_model(PRESETS["tiny"]), tmp_path / "untrained.safetensors")
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    result = run_phototag(tmp_path, "index", "--model", path, lib, check=False)
    assert result.returncode == 1 and "records no training" in result.stderr


def test_a_teacher_is_recorded_with_the_weights_and_teaches_the_face_stage_only(tmp_path, trained):
    from phototag.files import file_sha256

    common = ["--init", trained, "--epochs", "1", "--task", "emotion", "--limit-per-class", "4",
              "--batch-size", "16", "--optimizer", "adamw", "--teacher", trained,
              "--data", f"emotion:{FER / 'train'}"]
    out = tmp_path / "taught.safetensors"
    result = run_phototag(tmp_path, "train", *common, "--stage", "face", "--teacher-share", "0.7",
                          "--out", out)
    assert "teacher: answering for" in result.stderr
    assert read_metadata(out)[1]["teacher"] == {"file": trained.name, "sha256": file_sha256(trained),
                                                "share": 0.7}
    refused = run_phototag(tmp_path, "train", *common, "--stage", "gate",
                           "--out", tmp_path / "gate.safetensors", check=False)
    assert refused.returncode != 0 and "--teacher is for --stage face" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "gate.safetensors").exists()
