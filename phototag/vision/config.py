"""A model's configuration: everything needed to rebuild it, stored inside its weights file."""

import json
from dataclasses import asdict, dataclass, field

from ..labels import AGE_BINS, AGE_GROUPS, EMOTIONS

KINDS = ("gated", "fusion", "caer")


@dataclass(frozen=True)
class ModelConfig:
    """``kind``: gated (the proposed model), fusion (its backbones with CAER's Adaptive Fusion)
    or caer (CAER-Net). Backbones are timm model names; sizes are the square crop sides."""

    kind: str = "gated"
    face_backbone: str = "efficientnet_b0"
    context_backbone: str = "resnest50d"
    face_size: int = 224
    context_size: int = 224
    context_scale: float = 0.0  # 0: the whole photo is the context, as CAER does; k: k × the face box
    emotions: tuple = EMOTIONS
    age_groups: tuple = AGE_GROUPS
    age_bins: tuple = field(default=tuple((n, lo, hi) for n, lo, hi in AGE_BINS))
    dropout: float = 0.2
    test_flip: bool = False  # answer with the mean over the crops and their mirror images
    # Gated models: the face branch's emotion answer is the mean over the face crop and its centre
    # enlarged by each of these factors (brought back to face_size). Age keeps the crop alone:
    # zoomed in, a face loses the hair and outline that age is read from.
    emotion_zooms: tuple = ()
    # ((task, (share, ...)), ...): each class's share of the training data, recorded when the
    # loss weighted the classes by inverse frequency. Such a model answers as if every class were
    # equally common; adding log(share) to its logits gives back the odds of the data it learnt
    # from (logit adjustment), where a photo library's smiles and neutral faces outnumber the rest.
    class_shares: tuple = ()
    # A face backbone of its own for each task (gated models): emotion and age then stop
    # competing for one network's features, and the face branch costs one backbone per task.
    face_backbone_per_task: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.face_backbone_per_task and self.kind != "gated":
            raise ValueError(f"a face backbone per task is for gated models, not {self.kind!r}")
        if self.emotion_zooms and self.kind != "gated":
            raise ValueError(f"test-time zooms are for gated models, not {self.kind!r}")
        if any(zoom <= 1 for zoom in self.emotion_zooms):
            raise ValueError(f"test-time zooms enlarge the face: factors above 1, not {self.emotion_zooms}")

    def log_shares(self):
        """{task: tensor of log(share)} for the tasks whose shares are recorded."""
        import torch

        return {task: torch.tensor(shares).log() for task, shares in self.class_shares}

    @property
    def tasks(self):
        return {"emotion": len(self.emotions), "age": len(self.age_groups)}

    def to_json(self):
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values.setdefault("test_flip", False)  # files written before the options existed
        values.setdefault("face_backbone_per_task", False)
        values["emotion_zooms"] = tuple(values.get("emotion_zooms", ()))
        values["class_shares"] = tuple((task, tuple(shares))
                                       for task, shares in values.get("class_shares", ()))
        for name in ("emotions", "age_groups"):
            values[name] = tuple(values[name])
        values["age_bins"] = tuple(tuple(b) for b in values["age_bins"])
        return cls(**values)


def parse_zooms(text):
    """'1.2' or '1.2,1.1' → (1.2, 1.1); 'none' → (). Raises ValueError for anything else, and
    for a factor that would not enlarge the face."""
    if text.strip().lower() == "none":
        return ()
    try:
        zooms = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of numbers, or none") from None
    if any(zoom <= 1 for zoom in zooms):
        raise ValueError(f"{text!r}: every zoom enlarges the face, so is above 1")
    return zooms


# The original design, the configuration two CPU cores train and run (FaceMesh's pretrained
# trunk on both branches, see the README's results table), and the earlier one from scratch.
PRESETS = {
    "original": ModelConfig(),
    "cpu": ModelConfig(face_backbone="facemesh", context_backbone="facemesh", face_size=96,
                       context_size=128, test_flip=True),
    "scratch-cpu": ModelConfig(face_backbone="resnet18", context_backbone="resnet18", face_size=64,
                               context_size=64),
    "tiny": ModelConfig(face_backbone="test_efficientnet", context_backbone="test_resnet",
                        face_size=32, context_size=48),
}
