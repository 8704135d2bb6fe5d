"""The shipped model's answers on labelled faces, as an index run gives them (its mirror pass,
emotion zoom and class shares), face by face: what the tag-size and reliability benchmarks
score. The faces are located and cut as `phototag eval` does (the crops it stores are reused)."""

import numpy as np
import torch

from bench.library import SHARED, SHIPPED, WEIGHTS

# Labelled faces no shipped file learnt from: FER2013 `val` (training's validation set), and the
# tenth of every training set that `weights/datasets.sh` holds out (--holdout 0.1).
EMOTION_SETS = {
    "FER2013 val": (f"emotion:{SHARED}/emotion/fer2013/val", 0.0),
    "FER2013 train, held-out tenth": (f"emotion:{SHARED}/emotion/fer2013/train", 0.1),
    "muxspace, held-out tenth": (f"emotion:{SHARED}/emotion/muxspace/train", 0.1),
    "SFEW, held-out tenth": (f"emotion:{SHARED}/emotion/sfew/train", 0.1),
    "CK+, held-out tenth": (f"emotion:{SHARED}/emotion/ckplus48", 0.1),
}
AGE_SETS = {
    "UTKFace, held-out tenth": (f"age:{SHARED}/age/utkface_200/labels.csv", 0.1),
}


def load_model(path=SHIPPED):
    from phototag.vision.weightsfile import load_weights

    model, _ = load_weights(path)
    return model.eval()


def faces(model, spec, held_out, task):
    """The located crops of one labelled set (only its held-out part when ``held_out``)."""
    from phototag.train.commands import located_crops, split_off_holdout

    crops = located_crops([spec], task, model.config, str(WEIGHTS), None, "eval")
    if held_out:
        _, crops = split_off_holdout(crops, held_out, {task})
    return crops


@torch.no_grad()
def probabilities(model, crops, task, face_pixels=None):
    """(probabilities N×classes, true labels N) of ``task`` for every labelled face of ``crops``;
    ``face_pixels``: each aligned face brought down to that many pixels and back up first."""
    from phototag.train.evaluate import lower_resolution
    from phototag.train.loop import batches
    from phototag.vision.models import predict

    probs, truth = [], []
    for face, context, gate, emotion, age, _ in batches(crops, np.arange(len(crops)), 128,
                                                        model.config.face_size):
        if face_pixels:
            face = lower_resolution(face, face_pixels)
        output = predict(model, face, context, gate, flip=model.config.test_flip,
                         emotion_zooms=model.config.emotion_zooms)
        target = emotion if task == "emotion" else age
        known = target >= 0
        probs.append(output.logits[task].float().softmax(1)[known])
        truth.append(target[known])
    return torch.cat(probs), torch.cat(truth)


def six_and_five(probs, truth, classes):
    """Accuracy over every class, and (emotion) over the five original ones, neutral left out
    of both the faces and the answers; None where there is no neutral class."""
    six = (probs.argmax(1) == truth).float().mean().item()
    if "neutral" not in classes:
        return six, None
    neutral = classes.index("neutral")
    expressive = truth != neutral
    five = probs[expressive].clone()
    five[:, neutral] = -1
    return six, (five.argmax(1) == truth[expressive]).float().mean().item()
