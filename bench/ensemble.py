"""Do two emotion models make different mistakes? Each model's accuracy on FER2013 `val`, and
that of the mean of their answers (whole models, and face branches alone), in one run.

    python -m bench ensemble A.safetensors B.safetensors

Six emotions, and the five original ones (neutral left out of the answers). The faces are
located and cut as `phototag eval` does (the crops it stores are reused); the mirror pass as
each model's configuration says.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np
import torch

from bench.library import SHARED, WEIGHTS
from phototag.train.commands import located_crops
from phototag.train.loop import batches
from phototag.vision.models import predict
from phototag.vision.weightsfile import load_weights

FER_VAL = f"emotion:{SHARED}/emotion/fer2013/val"


@torch.no_grad()
def answers(model):
    """(whole-model probabilities, face-branch probabilities, true labels) on FER2013 val."""
    model.eval()
    crops = located_crops([FER_VAL], "emotion", model.config, str(WEIGHTS), None, "val")
    whole, face, truth = [], [], []
    for faces, context, gate, emotion, _, _ in batches(crops, np.arange(len(crops)), 128,
                                                       model.config.face_size):
        output = predict(model, faces, context, gate, flip=model.config.test_flip)
        whole.append(output.logits["emotion"].softmax(1))
        face.append((output.face_logits or output.logits)["emotion"].softmax(1))
        truth.append(emotion)
    return torch.cat(whole), torch.cat(face), torch.cat(truth)


def accuracy(answers, truth, neutral):
    """(six-way, five-way) accuracy of ``answers`` (probabilities or logits, a row per face);
    five-way: the faces of the five original emotions, answered among those five."""
    six = (answers.argmax(1) == truth).float().mean().item()
    expressive = truth != neutral
    five = answers[expressive].clone()
    five[:, neutral] = float("-inf")
    return six, (five.argmax(1) == truth[expressive]).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs=2, metavar="WEIGHTS")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    models = [load_weights(path)[0] for path in args.models]
    if models[0].config.emotions != models[1].config.emotions:
        sys.exit("the two models answer different emotion labels")
    neutral = models[0].config.emotions.index("neutral")
    results = [answers(model) for model in models]
    truth = results[0][2]
    if not torch.equal(truth, results[1][2]):
        sys.exit("the two models did not see the same faces")
    rows = [(f"{Path(path).name}", r[0]) for path, r in zip(args.models, results)]
    rows += [(f"{Path(path).name}, face branch", r[1]) for path, r in zip(args.models, results)]
    rows += [("mean of the two models", (results[0][0] + results[1][0]) / 2),
             ("mean of the two face branches", (results[0][1] + results[1][1]) / 2)]
    print(f"FER2013 val, {len(truth)} faces: six emotions / the five original")
    for name, probabilities in rows:
        six, five = accuracy(probabilities, truth, neutral)
        print(f"{name:<48} {six:6.1%} / {five:6.1%}")
    best = max(accuracy(r[0], truth, neutral)[0] for r in results)
    mean = accuracy(rows[-2][1], truth, neutral)[0]
    print(f"gain of the mean over the better model, six emotions: {100 * (mean - best):+.1f} points")


if __name__ == "__main__":
    main()
