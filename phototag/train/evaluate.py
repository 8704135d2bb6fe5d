"""Accuracy, macro-F1, per-class recall and the confusion matrix, per task."""

import numpy as np
import torch
import torch.nn.functional as F


def metrics(confusion, classes):
    """Scores from a confusion matrix (rows: true class, columns: predicted)."""
    confusion = confusion.double()
    total = confusion.sum().item()
    true_counts = confusion.sum(1)
    predicted_counts = confusion.sum(0)
    hits = confusion.diag()
    recall = torch.where(true_counts > 0, hits / true_counts.clamp_min(1), torch.zeros(()))
    precision = torch.where(predicted_counts > 0, hits / predicted_counts.clamp_min(1), torch.zeros(()))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12),
                     torch.zeros(()))
    present = true_counts > 0
    return {
        "samples": int(total),
        "accuracy": hits.sum().item() / total if total else None,
        "macro_f1": f1[present].mean().item() if present.any() else None,
        "recall": {name: (recall[i].item() if present[i] else None) for i, name in enumerate(classes)},
        "confusion": {"classes": list(classes), "matrix": confusion.long().tolist()},
    }


def neighbour_errors(confusion):
    """For ordered classes (age groups): accuracy counting a neighbouring group as right, and
    the share of the errors that are to a neighbouring group."""
    confusion = confusion.double()
    n = confusion.shape[0]
    distance = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs()
    total, hits = confusion.sum().item(), confusion.diag().sum().item()
    near = confusion[distance == 1].sum().item()
    return {"accuracy_within_one": (hits + near) / total if total else None,
            "adjacent_share_of_errors": near / (total - hits) if total > hits else None}


def lower_resolution(face, pixels):
    """Faces brought down to ``pixels`` on a side (antialiased) and back up."""
    size = face.shape[-1]
    small = F.interpolate(face, size=(pixels, pixels), mode="bilinear", antialias=True,
                          align_corners=False)
    return F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def evaluate(model, crops, device="cpu", branches=False, batch_size=128, face_pixels=None, flip=None,
             shares=True, emotion_zooms=None):
    """Per task: metrics of the model's answer on a CropSet; with ``branches``, also face-only
    and context-only (gated models) so the three can be compared. ``face_pixels``: every face
    lowered to that many pixels and brought back up, as a small face in a photo is.
    ``flip``: mirror test-time augmentation, ``emotion_zooms``: emotion's answer also from the
    face enlarged by these factors (default, for both: what the model's configuration says).
    ``shares``: the training data's class shares added to the logits, where they are recorded."""
    from ..vision.models import predict
    from .loop import batches

    flip = model.config.test_flip if flip is None else flip
    zooms = model.config.emotion_zooms if emotion_zooms is None else tuple(emotion_zooms)
    model.eval()
    config = model.config
    classes = {"emotion": config.emotions, "age": config.age_groups}
    modes = ["model"]
    if branches and config.kind == "gated":
        modes = ["model", "face", "context"]
    confusions = {(mode, task): torch.zeros(len(classes[task]), len(classes[task]), dtype=torch.long)
                  for mode in modes for task in classes}
    # The original design's five emotions: samples of those classes, answered among those five.
    five_hits, five_seen = {}, {}
    neutral = config.emotions.index("neutral") if "neutral" in config.emotions else None
    gate_sums, gate_counts = {}, {}
    # Per task and score bin (tenths): faces, sum of the scores, faces right. A score is the
    # probability of the answer an index run stores; the gap between score and accuracy, bin by
    # bin, weighted by faces, is the expected calibration error.
    calibration = {task: torch.zeros(3, 10, dtype=torch.float64) for task in classes}
    for face, context, gate, emotion, age, _ in batches(crops, np.arange(len(crops)), batch_size,
                                                        config.face_size):
        face, context, gate = face.to(device), context.to(device), gate.to(device)
        if face_pixels:
            face = lower_resolution(face, face_pixels)
        targets = {"emotion": emotion, "age": age}
        output = predict(model, face, context, gate, flip=flip, shares=shares, emotion_zooms=zooms)
        for task, target in targets.items():
            known = target >= 0
            if output.gates and task in output.gates and known.any():
                gate_sums[task] = gate_sums.get(task, 0) + output.gates[task].cpu()[known].sum(0)
                gate_counts[task] = gate_counts.get(task, 0) + int(known.sum())
        for mode in modes:
            logits = {"model": output.logits, "face": output.face_logits,
                      "context": output.context_logits}[mode]
            for task, target in targets.items():
                known = target >= 0
                if not known.any():
                    continue
                predicted = logits[task].cpu()[known].argmax(1)
                confusions[(mode, task)].index_put_((target[known], predicted),
                                                    torch.ones_like(predicted), accumulate=True)
                if mode == "model":
                    score = logits[task].cpu()[known].float().softmax(1).max(1).values.double()
                    bins = (score * 10).long().clamp(max=9)
                    right = (predicted == target[known]).double()
                    for row, values in enumerate((torch.ones_like(score), score, right)):
                        calibration[task][row].index_add_(0, bins, values)
                if task == "emotion" and neutral is not None:
                    five = known & (target != neutral)
                    restricted = logits[task].cpu()[five].clone()
                    restricted[:, neutral] = float("-inf")
                    five_hits[mode] = five_hits.get(mode, 0) + (restricted.argmax(1) == target[five]).sum().item()
                    five_seen[mode] = five_seen.get(mode, 0) + int(five.sum())
    results = {}
    for task in classes:
        if confusions[("model", task)].sum() == 0:
            continue
        entry = metrics(confusions[("model", task)], classes[task])
        faces, scores, rights = calibration[task]
        entry["calibration_error"] = float((scores - rights).abs().sum() / faces.sum().clamp(min=1))
        if task == "emotion" and five_seen.get("model"):
            entry["accuracy_five"] = five_hits["model"] / five_seen["model"]
            if len(modes) > 1:
                entry["branches_five"] = {mode: five_hits[mode] / five_seen[mode] for mode in modes}
        if task == "age":
            entry.update(neighbour_errors(confusions[("model", task)]))
        if task in gate_counts:
            face_gate, context_gate = (gate_sums[task] / gate_counts[task]).tolist()
            entry["mean_gates"] = {"face": face_gate, "context": context_gate}
        if len(modes) > 1:
            entry["branches"] = {
                mode: metrics(confusions[(mode, task)], classes[task])["accuracy"] for mode in modes
            }
        results[task] = entry
    return results
