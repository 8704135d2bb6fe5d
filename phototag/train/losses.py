"""The training losses: cross-entropy for emotion, a partial-label loss for age, class weights."""

import numpy as np
import torch
import torch.nn.functional as F


def class_counts(crops, task, classes):
    """Images per class among those labelled for ``task`` (a numpy array); None without labels."""
    labels = crops.labels(task)
    labels = labels[labels >= 0]
    return np.bincount(labels, minlength=classes) if len(labels) else None


def class_weights(crops, task, classes):
    """Inverse-frequency weights (mean 1 over the classes present); None without labels."""
    counts = class_counts(crops, task, classes)
    if counts is None:
        return None
    counts = torch.from_numpy(counts).float()
    return torch.where(counts > 0, counts.sum() / (classes * counts.clamp_min(1)), torch.zeros(()))


def class_shares(crops, tasks):
    """((task, (share, ...)), ...) for ``ModelConfig.class_shares``: each class's share of the
    labelled images, per task of ``tasks`` ({task: classes}) that has labels. A class without an
    image counts as one, so that its log stays finite."""
    shares = []
    for task, classes in tasks.items():
        counts = class_counts(crops, task, classes)
        if counts is not None:
            counts = np.maximum(counts, 1)
            shares.append((task, tuple(round(float(c), 5) for c in counts / counts.sum())))
    return tuple(shares)


def age_allowed(age_mask, groups):
    """Bit masks → N×groups booleans."""
    bits = 1 << torch.arange(groups, device=age_mask.device)
    return (age_mask.unsqueeze(1) & bits) != 0


def weighted_mean(loss, row_weight=None):
    """Per-row losses averaged as weighted cross-entropy averages them: each row times its
    weight, over the sum of the weights (the plain mean without weights)."""
    if row_weight is None:
        return loss.mean()
    return (loss * row_weight).sum() / row_weight.sum().clamp_min(1e-12)


def partial_label_loss(logits, allowed, weight=None):
    """-log P(answer is one of the allowed groups), averaged like weighted cross-entropy: with
    one allowed group it is cross-entropy; an age range over two groups is trained as such
    instead of being guessed into one. A row's weight is the mean of its groups' weights."""
    known = allowed.any(1)
    logits, allowed = logits[known], allowed[known]
    loss = logits.logsumexp(1) - logits.masked_fill(~allowed, float("-inf")).logsumexp(1)
    row_weight = None if weight is None else (allowed.float() * weight).sum(1) / allowed.sum(1)
    return weighted_mean(loss, row_weight)


def distilled_loss(logits, emotion, teacher, share, weight=None, label_smoothing=0.0):
    """Cross-entropy against a mix of the label (smoothed) and a teacher's probabilities
    (``share`` of the target), over the known labels (-1: none). A row counts with its label's
    class weight, as in weighted cross-entropy; the teacher softens labels it finds unlikely
    (FER2013's are noisy) without a second pass of the network."""
    known = emotion >= 0
    logits, emotion, teacher = logits[known], emotion[known], teacher[known].to(logits)
    classes = logits.shape[1]
    label = F.one_hot(emotion, classes).float() * (1 - label_smoothing) + label_smoothing / classes
    target = (1 - share) * label + share * teacher
    loss = -(target * logits.log_softmax(1)).sum(1)
    return weighted_mean(loss, None if weight is None else weight[emotion])


def compute_loss(logits, emotion, age_mask, weights, label_smoothing=0.0, teacher=None,
                 teacher_share=0.0):
    """Emotion: cross-entropy over known labels (-1: none), label-smoothed (FER2013's labels
    are noisy), or, given a ``teacher``'s probabilities for the batch, ``distilled_loss``. Age:
    the partial-label loss over the groups each ``age_mask`` allows (0: none), so exact ages
    and ranges train alike. None when the batch has no label for either."""
    total, parts = 0.0, 0
    if "emotion" in logits and (emotion >= 0).any():
        if teacher is None:
            total = total + F.cross_entropy(logits["emotion"].float(), emotion,
                                            weight=weights.get("emotion"), ignore_index=-1,
                                            label_smoothing=label_smoothing)
        else:
            total = total + distilled_loss(logits["emotion"].float(), emotion, teacher, teacher_share,
                                           weights.get("emotion"), label_smoothing)
        parts += 1
    if "age" in logits:
        allowed = age_allowed(age_mask, logits["age"].shape[1])
        if allowed.any():
            total = total + partial_label_loss(logits["age"].float(), allowed, weights.get("age"))
            parts += 1
    return total if parts else None
