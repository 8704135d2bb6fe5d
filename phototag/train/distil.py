"""A teacher's emotion answers on the training faces, for ``distilled_loss``."""

import numpy as np
import torch

from ..vision.models import zoomed
from .loop import batches


@torch.no_grad()
def teacher_probabilities(teacher, crops, device="cpu", batch_size=128, report=None):
    """N × emotions: the softmax of the teacher's emotion face logits on each crop, seen as it
    answers at test time (the mean over its emotion zooms and their mirror images, as its
    configuration says). The face branch alone, without the class shares: the face stage
    trains those logits, class-balanced. ``report``: called with a line every 5,000 faces."""
    if teacher.config.kind != "gated" or "emotion" not in teacher.config.tasks:
        raise ValueError("a teacher must be a gated model with emotion answers")
    teacher.to(device).eval()
    if device == "cpu":
        teacher.to(memory_format=torch.channels_last)  # faster on CPU, as in training
    zooms = teacher.config.emotion_zooms
    answers, done = [], 0
    for face, *_ in batches(crops, np.arange(len(crops)), batch_size, teacher.config.face_size,
                            with_context=False):
        views = [face, face.flip(-1)] if teacher.config.test_flip else [face]
        views += [zoomed(view, zoom) for zoom in zooms for view in views]
        logits = torch.stack([teacher.face_task_logits(view.to(device), "emotion") for view in views])
        answers.append(logits.mean(0).softmax(1).cpu())
        done += len(face)
        if report and done // 5000 > (done - len(face)) // 5000:
            report(f"teacher: {done} of {len(crops)} faces answered")
    return torch.cat(answers)
