"""Accuracy, macro-F1, per-class recall and the confusion matrix, per task."""

import torch

from .training import stage_logits


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


@torch.no_grad()
def evaluate(model, loader, device="cpu", branches=False):
    """Per task: metrics of the model's answer; with ``branches``, also face-only and
    context-only (gated models) so the three can be compared."""
    model.eval()
    config = model.config
    classes = {"emotion": config.emotions, "age": config.age_groups}
    modes = ["model"]
    if branches and config.kind == "gated":
        modes = ["model", "face", "context"]
    confusions = {(mode, task): torch.zeros(len(classes[task]), len(classes[task]), dtype=torch.long)
                  for mode in modes for task in classes}
    # The original design's five emotions: samples of those classes, answered among those five.
    five_hits = five_seen = 0
    neutral = config.emotions.index("neutral") if "neutral" in config.emotions else None
    for face, context, gate, emotion, age in loader:
        face, context, gate = face.to(device), context.to(device), gate.to(device)
        targets = {"emotion": emotion, "age": age}
        for mode in modes:
            logits = stage_logits(model, mode if mode != "model" else "gate", face, context, gate) \
                if config.kind == "gated" else model(face, context, gate).logits
            for task, target in targets.items():
                known = target >= 0
                if not known.any():
                    continue
                predicted = logits[task].cpu()[known].argmax(1)
                confusions[(mode, task)].index_put_((target[known], predicted),
                                                    torch.ones_like(predicted), accumulate=True)
                if task == "emotion" and mode == "model" and neutral is not None:
                    five = known & (target != neutral)
                    restricted = logits[task].cpu()[five].clone()
                    restricted[:, neutral] = float("-inf")
                    five_hits += (restricted.argmax(1) == target[five]).sum().item()
                    five_seen += int(five.sum())
    results = {}
    for task in classes:
        if confusions[("model", task)].sum() == 0:
            continue
        entry = metrics(confusions[("model", task)], classes[task])
        if task == "emotion" and five_seen:
            entry["accuracy_five"] = five_hits / five_seen
        if len(modes) > 1:
            entry["branches"] = {
                mode: metrics(confusions[(mode, task)], classes[task])["accuracy"] for mode in modes
            }
        results[task] = entry
    return results
