"""Pretrained starts: published networks read into phototag's own modules before training.

Only training reads these files; an index run loads phototag's own safetensors. Each file is
named in ``weights/manifest`` (source, sha256, licence) and found like any weight file
(``--pretrained DIR``, the cache, else downloaded once and checked).
"""

import torch

from .. import weights

FACEMESH = "facemesh_landmark.pth"
MOBILENET_V2 = "mobilenet_v2_1.0_224_quant.tflite"
# Backbone name (in a model's configuration) → the file its pretrained weights come from.
SOURCES = {"facemesh": FACEMESH, "mobilenetv2": MOBILENET_V2}


def facemesh_state(folder=None):
    """MediaPipe FaceMesh's ``state_dict`` (the whole network: trunk and both heads)."""
    path = weights.locate(FACEMESH, folder)
    return torch.load(path, map_location="cpu", weights_only=True)


def mobilenet_v2_state(folder=None, classifier=False):
    """MobileNetV2's weights under the keys of ``phototag.vision.mobilenet.MobileNetV2Trunk``:
    each folded convolution's filter, and its bias as the shift of the batch norm after it (scale
    1, mean 0, variance 1 − ε: an identity). With ``classifier``, also ImageNet's 1,001 logits."""
    import torch.nn as nn

    from ..vision.mobilenet import MobileNetV2Trunk
    from .tflite_weights import convolutions

    convs = convolutions(weights.locate(MOBILENET_V2, folder))
    logits = convs.pop()  # the 1×1 convolution after the pooling: ImageNet's classifier
    layout = MobileNetV2Trunk(pool=True)
    modules = list(layout.named_modules())
    pairs = []  # (convolution name and module, the batch norm that follows it: name and module)
    for i, (name, module) in enumerate(modules):
        if isinstance(module, nn.Conv2d):
            norm = next((n, m) for n, m in modules[i + 1:] if isinstance(m, nn.BatchNorm2d))
            pairs.append((name, module, *norm))
    if len(pairs) != len(convs):
        raise ValueError(f"{MOBILENET_V2}: {len(convs)} convolutions, the network has {len(pairs)}")
    state = {}
    for (conv, conv_module, norm, norm_module), (filters, bias) in zip(pairs, convs):
        filters = torch.from_numpy(filters)
        if filters.shape != conv_module.weight.shape:
            raise ValueError(f"{MOBILENET_V2}: {conv} is {tuple(conv_module.weight.shape)}, the file "
                             f"has {tuple(filters.shape)}")
        channels = filters.shape[0]
        state[f"{conv}.weight"] = filters
        state[f"{norm}.weight"] = torch.ones(channels)
        state[f"{norm}.bias"] = torch.from_numpy(bias)
        state[f"{norm}.running_mean"] = torch.zeros(channels)
        state[f"{norm}.running_var"] = torch.full((channels,), 1.0 - norm_module.eps)
        state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
    if classifier:
        filters, bias = logits
        state["net.classifier.weight"] = torch.from_numpy(filters[:, :, 0, 0].copy())
        state["net.classifier.bias"] = torch.from_numpy(bias)
    return state


def trunk_state(name, folder=None):
    """The weights of backbone ``name``'s trunk, under the keys phototag's module uses."""
    if name == "facemesh":
        return {k: v for k, v in facemesh_state(folder).items() if k.startswith("backbone1.")}
    if name == "mobilenetv2":
        return mobilenet_v2_state(folder)
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
        for each in getattr(encoder, "encoders", {"": encoder}).values():  # one per task, or one
            each.backbone.load_state_dict(state, strict=True)
        done.append(f"{encoder_name.replace('_encoder', '')}: {name} ({SOURCES[name]})")
    for line in done:
        report(f"pretrained start: {line}")
    return done
