"""weights/scripts/set_emotion_zooms.py: test-time zooms recorded in a weights file, its tensors and
training record untouched; a zoom that would not enlarge the face is refused in one line."""

import dataclasses
import subprocess
import sys

import torch
from safetensors import safe_open

from phototag.vision.config import PRESETS
from phototag.vision.models import build_model
from phototag.vision.weightsfile import load_weights, read_metadata, save_weights

from conftest import ROOT

SCRIPT = ROOT / "weights" / "scripts" / "set_emotion_zooms.py"


def tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}


def set_zooms(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_zooms_are_recorded_with_the_tensors_and_the_record_unchanged(tmp_path):
    torch.manual_seed(0)
    trained = save_weights(build_model(PRESETS["tiny"]), tmp_path / "trained.safetensors",
                           info={"epochs": 3, "command": "phototag train --out trained.safetensors"},
                           half=True)
    zoomed = tmp_path / "zoomed.safetensors"
    result = set_zooms(trained, zoomed, "--zooms", "1.2")
    assert result.returncode == 0, result.stderr
    config, info = read_metadata(zoomed)
    original = read_metadata(trained)[0]
    assert original.emotion_zooms == () and config == dataclasses.replace(original, emotion_zooms=(1.2,))
    assert info["epochs"] == 3 and info["command"] == "phototag train --out trained.safetensors"
    assert info["configured"] == [{"command": f"python weights/scripts/set_emotion_zooms.py {trained} {zoomed} "
                                              "--zooms 1.2", "emotion_zooms": [1.2]}]
    before, after = tensors(trained), tensors(zoomed)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) and before[name].dtype == after[name].dtype
               for name in before)
    load_weights(zoomed)  # builds and loads as any weights file
    # Taken off again, in place: the record keeps both changes.
    assert set_zooms(zoomed, zoomed, "--zooms", "none").returncode == 0
    config, info = read_metadata(zoomed)
    assert config.emotion_zooms == () and [c["emotion_zooms"] for c in info["configured"]] == [[1.2], []]


def test_a_zoom_that_does_not_enlarge_is_refused_in_one_line(tmp_path):
    trained = save_weights(build_model(PRESETS["tiny"]), tmp_path / "trained.safetensors",
                           info={"epochs": 1})
    for bad in ("0.8", "1", "big"):
        result = set_zooms(trained, tmp_path / "out.safetensors", "--zooms", bad)
        assert result.returncode != 0
        assert result.stderr.startswith("set_emotion_zooms: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.safetensors").exists()
