"""A gated model with a face backbone per task, made from models that share one: each task's
face backbone and head come from the model given for that task, the context branch and the
gates from a third model or the age model (the gates are trained again on top)."""

import dataclasses

import torch

from ..vision.models import build_model


def join_face_branches(emotion_model, age_model, context_model=None):
    """A new model (``ModelConfig.face_backbone_per_task``) from gated models with one face
    backbone each and the same configuration otherwise; the same model twice splits its face
    backbone into two equal copies."""
    context_model = context_model or age_model
    sources = {"emotion": emotion_model, "age": age_model}
    for task, model in sources.items():
        if model.config.kind != "gated" or model.config.face_backbone_per_task:
            raise ValueError(f"the {task} model must be a gated model with one face backbone")
    if context_model.config.kind != "gated":
        raise ValueError("the context model must be a gated model")
    differing = [name for name in ("face_backbone", "face_size", "context_backbone", "context_size",
                                   "context_scale", "emotions", "age_groups")
                 if len({getattr(m.config, name) for m in (emotion_model, age_model, context_model)}) > 1]
    if differing:
        raise ValueError(f"the models differ in {', '.join(differing)}")
    shares = {task: dict(model.config.class_shares).get(task) for task, model in sources.items()}
    config = dataclasses.replace(
        context_model.config, face_backbone_per_task=True,
        class_shares=tuple((task, share) for task, share in shares.items() if share is not None))
    joined = build_model(config)
    state = {name: tensor for name, tensor in context_model.state_dict().items()
             if not name.startswith(("face_encoder.", "face_heads."))}
    for task, model in sources.items():
        for name, tensor in model.face_encoder.state_dict().items():
            state[f"face_encoder.encoders.{task}.{name}"] = tensor
        for name, tensor in model.face_heads.heads[task].state_dict().items():
            state[f"face_heads.heads.{task}.{name}"] = tensor
    with torch.no_grad():
        joined.load_state_dict(state, strict=True)
    return joined.eval()
