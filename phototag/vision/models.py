"""The gated emotion/age model, CAER-Net, and the fusion variant — one builder for all three.

Every model takes crops as float RGB in [0, 1] (normalised inside) and returns a ``ModelOutput``:
final logits per task, each branch's logits, and the gates (or fusion weights) per task.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .facemesh import FaceMeshTrunk
from .mobilenet import MobileNetV2Trunk

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelOutput:
    logits: dict  # task → N×classes, what the model answers
    face_logits: dict = None
    context_logits: dict = None
    gates: dict = None  # task → N×2: weight of the face branch, weight of the context branch


class Normalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class SpatialAttention(nn.Module):
    """A small conv stack → one map → softmax over positions → attention-weighted pooling."""

    def __init__(self, channels, hidden=128):
        super().__init__()
        self.score = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 3, padding=1),
        )

    def forward(self, features, return_map=False):
        n, c, h, w = features.shape
        weights = F.softmax(self.score(features).view(n, h * w), dim=1)
        pooled = torch.bmm(features.view(n, c, h * w), weights.unsqueeze(2)).squeeze(2)
        return (pooled, weights.view(n, h, w)) if return_map else pooled


class TaskHeads(nn.Module):
    """One linear classifier per task on a shared feature vector, or, with ``split``, each on
    its own equal part of it, in task order (``PerTaskFaceEncoder``'s features side by side)."""

    def __init__(self, features, tasks, dropout, split=False):
        super().__init__()
        self.split = split
        width = features // len(tasks) if split else features
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(width, n) for task, n in tasks.items()})

    def forward(self, x):
        x = self.dropout(x)
        if self.split:
            parts = x.chunk(len(self.heads), dim=1)
            return {task: head(part) for (task, head), part in zip(self.heads.items(), parts)}
        return {task: head(x) for task, head in self.heads.items()}


# Backbones phototag defines itself (pretrained starts that timm does not have), by name; any
# other name is a timm model. Each reads RGB in [0, 1] and maps it to what its pretrained start
# expects itself (no ImageNet normalisation).
OWN_BACKBONES = {"facemesh": FaceMeshTrunk, "mobilenetv2": MobileNetV2Trunk}


def backbone(name, pool):
    """A backbone with no classifier, pooled vectors (``pool``) or feature maps, and the
    module that prepares its input."""
    if name in OWN_BACKBONES:
        return OWN_BACKBONES[name](pool=pool), nn.Identity()
    import timm  # only for timm's networks: it takes seconds to import

    model = timm.create_model(name, pretrained=False, num_classes=0, global_pool="avg" if pool else "")
    return model, Normalise()


def check_side(module, name, size):
    multiple = getattr(module, "side_multiple", 1)
    if size % multiple:
        raise ValueError(f"backbone {name} needs crop sides that are multiples of {multiple}, not {size}")


class FaceEncoder(nn.Module):
    def __init__(self, name, size=None):
        super().__init__()
        self.backbone, self.normalise = backbone(name, pool=True)
        self.features = self.backbone.num_features
        if size:
            check_side(self.backbone, name, size)

    def forward(self, face):
        return self.backbone(self.normalise(face))


class PerTaskFaceEncoder(nn.Module):
    """One face backbone per task, their pooled features side by side in task order: to the
    rest of the model (and to ONNX Runtime) it is one encoder with one output."""

    def __init__(self, name, size, tasks, encoders=None):
        """``encoders``: {task: module} standing in for the backbones (each an ONNX Runtime
        session at inference), which are then not built."""
        super().__init__()
        self.encoders = nn.ModuleDict(encoders or {task: FaceEncoder(name, size) for task in tasks})
        self.features = sum(encoder.features for encoder in self.encoders.values())

    def forward(self, face):
        return torch.cat([encoder(face) for encoder in self.encoders.values()], dim=1)


def face_encoder_for(config):
    if config.face_backbone_per_task:
        return PerTaskFaceEncoder(config.face_backbone, config.face_size, config.tasks)
    return FaceEncoder(config.face_backbone, config.face_size)


class ContextEncoder(nn.Module):
    """Backbone feature maps pooled by spatial attention. The context branch runs it on the
    masked context, GatingNet on the unmasked one: the same weights, one copy."""

    def __init__(self, name, size=None):
        super().__init__()
        self.backbone, self.normalise = backbone(name, pool=False)
        self.features = self.backbone.num_features
        if size:
            check_side(self.backbone, name, size)
        self.attention = SpatialAttention(self.features)

    def forward(self, image):
        return self.attention(self.backbone(self.normalise(image)))


class GatingHead(nn.Module):
    """GatingNet's own head: one sigmoid weight per branch and task (both may matter, or neither)."""

    def __init__(self, features, tasks, hidden=128, dropout=0.2):
        super().__init__()
        self.tasks = list(tasks)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(features, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 2 * len(self.tasks)),
        )

    def forward(self, x):
        gates = torch.sigmoid(self.mlp(x)).view(x.shape[0], len(self.tasks), 2)
        return {task: gates[:, i] for i, task in enumerate(self.tasks)}


class GatedModel(nn.Module):
    """Face branch + context branch, combined per photo by GatingNet:
    logits = w_face · logits_face + w_context · logits_context."""

    def __init__(self, config, face_encoder=None):
        super().__init__()
        self.config = config
        self.face_encoder = face_encoder or face_encoder_for(config)
        self.face_heads = TaskHeads(self.face_encoder.features, config.tasks, config.dropout,
                                    split=config.face_backbone_per_task)
        self.context_encoder = ContextEncoder(config.context_backbone, config.context_size)
        self.context_heads = TaskHeads(self.context_encoder.features, config.tasks, config.dropout)
        self.gate_head = GatingHead(self.context_encoder.features, config.tasks, dropout=config.dropout)

    def face_branch(self, face):
        return self.face_heads(self.face_encoder(face))

    def face_task_logits(self, face, task):
        """One task's face-branch logits; with a backbone per task, only that task's runs."""
        if self.config.face_backbone_per_task:
            features = self.face_encoder.encoders[task](face)
            return self.face_heads.heads[task](self.face_heads.dropout(features))
        return self.face_branch(face)[task]

    def context_branch(self, context):
        return self.context_heads(self.context_encoder(context))

    def forward(self, face, context, gate, gate_index=None, views=1):
        """``gate`` holds one unmasked crop per face, or, with ``gate_index``, the distinct
        crops and which one each face uses (faces of one photo share the whole-photo crop).
        ``views``: ``face`` holds that many crops of every face, one view after another (the
        crop as it is first): emotion's face answer is the mean over them, age's the first's."""
        n = len(context)
        if views > 1 and self.config.face_backbone_per_task:
            # Each task's own backbone: age's sees the crops alone, not every view.
            face_logits = {task: self.face_task_logits(face if task == "emotion" else face[:n], task)
                           for task in self.config.tasks}
        else:
            face_logits = self.face_branch(face)
        if views > 1:
            face_logits = {task: v.view(views, n, -1).mean(0) if task == "emotion" else v[:n]
                           for task, v in face_logits.items()}
        # Context and GatingNet share the backbone and attention: one batch through both.
        encoded = self.context_encoder(torch.cat([context, gate]))
        context_features, gate_features = encoded[: len(context)], encoded[len(context):]
        if gate_index is not None:
            gate_features = gate_features[gate_index]
        context_logits = self.context_heads(context_features)
        gates = self.gate_head(gate_features)
        logits = {
            task: gates[task][:, :1] * face_logits[task] + gates[task][:, 1:] * context_logits[task]
            for task in face_logits
        }
        return ModelOutput(logits, face_logits, context_logits, gates)


class AdaptiveFusion(nn.Module):
    """CAER-Net's Adaptive Fusion: a small network per stream gives a weight; the weights are
    softmax-normalised, multiply their stream's features, and the results are concatenated."""

    def __init__(self, face_features, context_features, tasks, hidden=128, dropout=0.2):
        super().__init__()
        self.face_weight = nn.Sequential(nn.Linear(face_features, hidden), nn.ReLU(inplace=True),
                                         nn.Linear(hidden, 1))
        self.context_weight = nn.Sequential(nn.Linear(context_features, hidden),
                                            nn.ReLU(inplace=True), nn.Linear(hidden, 1))
        self.classifier = nn.Sequential(
            nn.Linear(face_features + context_features, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.heads = nn.ModuleDict({task: nn.Linear(hidden, n) for task, n in tasks.items()})

    def forward(self, face, context):
        weights = F.softmax(torch.cat([self.face_weight(face), self.context_weight(context)], 1), 1)
        fused = torch.cat([face * weights[:, :1], context * weights[:, 1:]], dim=1)
        hidden = self.classifier(fused)
        logits = {task: head(hidden) for task, head in self.heads.items()}
        return logits, weights


class FusionModel(nn.Module):
    """The proposed backbones joined by CAER's Adaptive Fusion instead of GatingNet."""

    def __init__(self, config, face_encoder=None):
        super().__init__()
        self.config = config
        self.face_encoder = face_encoder or FaceEncoder(config.face_backbone, config.face_size)
        self.context_encoder = ContextEncoder(config.context_backbone, config.context_size)
        self.fusion = AdaptiveFusion(self.face_encoder.features, self.context_encoder.features,
                                     config.tasks, dropout=config.dropout)

    def forward(self, face, context, gate=None, gate_index=None):
        logits, weights = self.fusion(self.face_encoder(face), self.context_encoder(context))
        return ModelOutput(logits, gates={task: weights for task in logits})


def caer_encoder(channels=(32, 64, 128, 256, 256)):
    """CAER-Net's stream encoder (Lee et al., ICCV 2019, Sec. 4.1): five 3×3 conv layers with
    32, 64, 128, 256 and 256 channels, each with batch norm and ReLU, max-pooling after the
    first four."""
    layers, previous = [], 3
    for i, out in enumerate(channels):
        layers += [nn.Conv2d(previous, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True)]
        if i < len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        previous = out
    return nn.Sequential(*layers)


class CAERNet(nn.Module):
    """CAER-Net-S: a face stream (encoder, global average pooling), a context stream (encoder and
    the attention inference module: two conv layers → a softmax map → weighted pooling), joined by
    Adaptive Fusion (Sec. 4.3: 128-unit layers, softmax-normalised stream weights)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.normalise = Normalise()
        self.face_stream = caer_encoder()
        self.context_stream = caer_encoder()
        self.attention = SpatialAttention(256, hidden=128)
        self.fusion = AdaptiveFusion(256, 256, config.tasks, dropout=config.dropout)

    def forward(self, face, context, gate=None, gate_index=None):
        face_features = self.face_stream(self.normalise(face)).mean(dim=(2, 3))
        context_features = self.attention(self.context_stream(self.normalise(context)))
        logits, weights = self.fusion(face_features, context_features)
        return ModelOutput(logits, gates={task: weights for task in logits})


BUILDERS = {"gated": GatedModel, "fusion": FusionModel, "caer": CAERNet}
# The kinds whose face branch is a FaceEncoder, which build_model lets a stand-in replace.
WITH_FACE_ENCODER = ("gated", "fusion")


def zoomed(face, zoom):
    """The centre ``1 / zoom`` of each face crop, brought back to the crop's size: sampled
    bilinearly about the exact centre, so that the view of a mirrored face is the mirrored view
    at any crop size (cutting whole pixels leaves one more on one side when they do not split
    evenly). At 96 px and 1.2 it is the middle 80 pixels resized, but for the outermost
    samples, which blend in the next pixel out where resizing a cut repeats the edge."""
    scale = torch.tensor([[1 / zoom, 0.0, 0.0], [0.0, 1 / zoom, 0.0]], dtype=face.dtype, device=face.device)
    grid = F.affine_grid(scale.expand(len(face), 2, 3), list(face.shape), align_corners=False)
    return F.grid_sample(face, grid, mode="bilinear", align_corners=False)


def predict(model, face, context, gate, gate_index=None, flip=False, shares=True,
            emotion_zooms=()):
    """The model's answer; with ``flip``, the mean of its logits (and gates) on the crops and
    on their mirror images, in one batch. ``emotion_zooms`` (gated models): the face branch also
    sees each face enlarged by these factors (``zoomed``), and its emotion answer is the mean
    over the views (see ``ModelConfig.emotion_zooms``).
    With ``shares``, the log of each class's share of the training data is added to the logits
    where the configuration records them (see ``ModelConfig.class_shares``)."""
    if emotion_zooms and model.config.kind != "gated":
        raise ValueError(f"test-time zooms are for gated models, not {model.config.kind!r}")
    n = len(face)
    if flip:
        face, context, gate = (torch.cat([x, x.flip(-1)]) for x in (face, context, gate))
        if gate_index is not None:
            gate_index = torch.cat([gate_index, gate_index + len(gate) // 2])
    if emotion_zooms:
        faces = torch.cat([face] + [zoomed(face, zoom) for zoom in emotion_zooms])
        output = model(faces, context, gate, gate_index, views=1 + len(emotion_zooms))
    else:
        output = model(face, context, gate, gate_index)
    if flip:
        def mean(values):
            return None if values is None else {t: (v[:n] + v[n:]) / 2 for t, v in values.items()}

        output = ModelOutput(mean(output.logits), mean(output.face_logits), mean(output.context_logits),
                             mean(output.gates))
    offsets = model.config.log_shares() if shares else {}
    if not offsets:
        return output

    def adjusted(values):
        if values is None:
            return None
        return {t: v + offsets[t].to(v) if t in offsets else v for t, v in values.items()}

    return ModelOutput(adjusted(output.logits), adjusted(output.face_logits),
                       adjusted(output.context_logits), output.gates)


def build_model(config: ModelConfig, face_encoder=None):
    """The one way to build any phototag attribute model. ``face_encoder`` (the kinds in
    WITH_FACE_ENCODER): a module that stands in for the face branch's backbone, which is then
    not built."""
    if face_encoder is None:
        return BUILDERS[config.kind](config)
    if config.kind not in WITH_FACE_ENCODER:
        raise ValueError(f"a {config.kind!r} model has no face encoder to stand in for")
    return BUILDERS[config.kind](config, face_encoder)
