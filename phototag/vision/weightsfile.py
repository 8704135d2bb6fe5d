"""Attribute-model weights: safetensors with the configuration in the metadata.

Loading needs no flags (the file says what to build) and executes no code.
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..files import atomic_path
from ..weights import ATTRIBUTE_FORMAT as FORMAT
from .config import ModelConfig
from .models import build_model


def save_weights(model, path, info=None, half=False):
    """Write ``model``'s weights; tensors shared between modules are stored once."""
    state = {}
    seen = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.shape, tensor.dtype) if tensor.numel() else None
        if key in seen:
            continue  # the same storage under another name
        if key:
            seen[key] = name
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[name] = tensor
    metadata = {"format": FORMAT, "config": model.config.to_json(), "info": json.dumps(info or {})}
    path = Path(path)
    with atomic_path(path) as partial:
        save_file(state, str(partial), metadata=metadata)
    return path


def read_metadata(path):
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # SafetensorError and friends: not a weights file at all
        raise ValueError(f"{path} is not a safetensors weights file ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a phototag attribute weights file")
    return ModelConfig.from_json(metadata["config"]), json.loads(metadata.get("info", "{}"))


def load_weights(path, device="cpu", face_encoder=None):
    """Rebuild the model a weights file describes and load its tensors. ``face_encoder``: a
    module standing in for the face branch's backbone (see ``build_model``); the file's tensors
    for that backbone are then not read."""
    config, info = read_metadata(path)
    model = build_model(config, face_encoder)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        stored = {name: f.get_tensor(name) for name in f.keys()
                  if face_encoder is None or not name.startswith("face_encoder.")}
    expected = model.state_dict()
    missing = [name for name in expected if name not in stored]
    unexpected = [name for name in stored if name not in expected]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit its configuration "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, tensor in expected.items():
            tensor.copy_(stored[name].to(tensor.dtype))
    return model.to(device).eval(), info
