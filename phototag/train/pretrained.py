"""Pretrained starts: published networks read into phototag's own modules before training.

Only training reads these files; an index run loads phototag's own safetensors. Each file is
named in ``weights/manifest`` (source, sha256, licence) and found like any weight file
(``--pretrained DIR``, the cache, else downloaded once and checked).
"""

import torch

from .. import weights

FACEMESH = "facemesh_landmark.pth"
# Backbone name (in a model's configuration) → the file its pretrained weights come from.
SOURCES = {"facemesh": FACEMESH}


def facemesh_state(folder=None):
    """MediaPipe FaceMesh's ``state_dict`` (the whole network: trunk and both heads)."""
    path = weights.locate(FACEMESH, folder)
    return torch.load(path, map_location="cpu", weights_only=True)


def trunk_state(name, folder=None):
    """The weights of backbone ``name``'s trunk, under the keys phototag's module uses."""
    if name == "facemesh":
        return {k: v for k, v in facemesh_state(folder).items() if k.startswith("backbone1.")}
    raise ValueError(f"no pretrained start is known for backbone {name!r}; "
                     f"known: {', '.join(sorted(SOURCES))}")


def initialise(model, folder=None, report=print):
    """Load pretrained weights into every backbone of ``model`` that has them; the heads,
    attention and gates stay as built. Returns the backbones initialised."""
    done = []
    for encoder_name in ("face_encoder", "context_encoder"):
        encoder = getattr(model, encoder_name, None)
        name = getattr(model.config, encoder_name.replace("_encoder", "_backbone"), None)
        if encoder is None or name not in SOURCES:
            continue
        state = trunk_state(name, folder)
        encoder.backbone.load_state_dict(state, strict=True)
        done.append(f"{encoder_name.replace('_encoder', '')}: {name} ({SOURCES[name]})")
    for line in done:
        report(f"pretrained start: {line}")
    return done
