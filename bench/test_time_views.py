"""Does test-time augmentation beyond the mirror pass pay? The shipped model's emotion accuracy
on FER2013 `val` with each face seen as the index sees it, zoomed in or out by 10%, or moved by
4% of its side, and with the answers of several views averaged, in one run.

    python -m bench test_time_views [WEIGHTS]
    python -m bench test_time_views --emotion-zooms 1.2 [WEIGHTS]

Every view keeps the model's mirror pass; averaging k views costs k times the tagging. The views
are of the plain crop, whatever emotion zooms the file records (`ModelConfig.emotion_zooms`).
With --emotion-zooms, instead: the model's answer with each of those zooms against none, and
how many faces each puts right and wrong that the crop alone did not (a sign test's p, two-sided).
"""

import argparse
import math
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np
import torch
import torch.nn.functional as F

from bench.ensemble import FER_VAL, accuracy
from bench.library import WEIGHTS
from phototag.allocator import keep_freed_memory
from phototag.train.augment import plain_batch, to_float
from phototag.train.commands import located_crops
from phototag.vision.config import parse_zooms
from phototag.vision.models import predict
from phototag.vision.weightsfile import load_weights

# name: (shift right, shift down, both as a share of the face's side; zoom)
VIEWS = {"as indexed": (0, 0, 1.0), "zoomed out 10%": (0, 0, 0.9), "zoomed in 10%": (0, 0, 1.1),
         "moved right": (0.04, 0, 1.0), "moved left": (-0.04, 0, 1.0),
         "moved down": (0, 0.04, 1.0), "moved up": (0, -0.04, 1.0)}
AVERAGES = {"as indexed + both zooms (3 views)": ["as indexed", "zoomed out 10%", "zoomed in 10%"],
            "as indexed + four moves (5 views)": ["as indexed", "moved right", "moved left",
                                                  "moved down", "moved up"],
            "all seven views": list(VIEWS)}


def view(canvas, size, dx, dy, zoom):
    """The ``size`` crop of each face canvas's centre, moved and zoomed."""
    n, side = len(canvas), canvas.shape[-1]
    ratio = size / side / zoom
    theta = torch.tensor([[ratio, 0, 2 * dx * size / side],
                          [0, ratio, 2 * dy * size / side]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="border",
                         align_corners=False).contiguous()


@torch.no_grad()
def answers(model):
    model.eval()
    size = model.config.face_size
    crops = located_crops([FER_VAL], "emotion", model.config, str(WEIGHTS), None, "val")
    labels = torch.from_numpy(crops.labels("emotion"))
    probabilities = {name: [] for name in VIEWS}
    for start in range(0, len(crops), 128):
        chosen = np.arange(start, min(start + 128, len(crops)))
        faces, contexts, boxes = crops.gather(chosen, True)
        _, context, gate = plain_batch(faces, contexts, boxes, size)
        canvas = to_float(faces)
        for name, (dx, dy, zoom) in VIEWS.items():
            output = predict(model, view(canvas, size, dx, dy, zoom), context, gate,
                             flip=model.config.test_flip)
            probabilities[name].append(output.logits["emotion"].softmax(1))
    return {name: torch.cat(p) for name, p in probabilities.items()}, labels


@torch.no_grad()
def zoom_answers(model, zooms):
    """{zooms: emotion answers (argmax of six, argmax of the five without neutral)} for the
    model with no zoom and with each of ``zooms``."""
    model.eval()
    neutral = model.config.emotions.index("neutral")
    crops = located_crops([FER_VAL], "emotion", model.config, str(WEIGHTS), None, "val")
    labels = torch.from_numpy(crops.labels("emotion"))
    settings = [()] + [(zoom,) for zoom in zooms]
    logits = {setting: [] for setting in settings}
    for start in range(0, len(crops), 128):
        chosen = np.arange(start, min(start + 128, len(crops)))
        face, context, gate = plain_batch(*crops.gather(chosen, True), model.config.face_size)
        for setting in settings:
            output = predict(model, face, context, gate, flip=model.config.test_flip,
                             emotion_zooms=setting)
            logits[setting].append(output.logits["emotion"])
    answers = {}
    for setting, parts in logits.items():
        six = torch.cat(parts)
        five = six.clone()
        five[:, neutral] = float("-inf")
        answers[setting] = (six.argmax(1), five.argmax(1))
    return answers, labels, labels != neutral


def sign_test(better, worse):
    """Two-sided p of so uneven a split of the changed answers, were either way as likely."""
    n, k = better + worse, min(better, worse)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def compare_zooms(model, zooms):
    answers, labels, expressive = zoom_answers(model, zooms)
    plain = answers[()]
    print(f"FER2013 val, {len(labels)} faces, mirror pass {'on' if model.config.test_flip else 'off'}: "
          "emotion zoom against none")
    for setting, (six, five) in answers.items():
        line = f"zoom {setting[0] if setting else 'none':<5}"
        for name, mine, base, keep in (("six", six, plain[0], slice(None)),
                                       ("five", five, plain[1], expressive)):
            right, was_right = mine[keep] == labels[keep], base[keep] == labels[keep]
            better, worse = int((right & ~was_right).sum()), int((~right & was_right).sum())
            line += f"  {name} {right.float().mean().item():6.1%}"
            if setting:
                line += f" (+{better} -{worse}, p = {sign_test(better, worse):.3f})"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="?", default=str(ROOT / "weights" / "phototag-cpu.safetensors"))
    parser.add_argument("--emotion-zooms", help="comma-separated zooms to compare with none (e.g. 1.1,1.2)")
    args = parser.parse_args(argv)
    try:
        zooms = parse_zooms(args.emotion_zooms) if args.emotion_zooms else ()
    except ValueError as exc:
        parser.error(str(exc))
    keep_freed_memory()
    torch.set_num_threads(os.cpu_count())
    model = load_weights(args.weights)[0]
    if zooms:
        compare_zooms(model, zooms)
        return
    neutral = model.config.emotions.index("neutral")
    probabilities, truth = answers(model)
    print(f"FER2013 val, {len(truth)} faces, mirror pass {'on' if model.config.test_flip else 'off'}:"
          " six emotions / the five original")
    for name, p in probabilities.items():
        six, five = accuracy(p, truth, neutral)
        print(f"{name:<40} {six:6.1%} / {five:6.1%}")
    base = accuracy(probabilities["as indexed"], truth, neutral)[0]
    for name, members in AVERAGES.items():
        six, five = accuracy(sum(probabilities[m] for m in members), truth, neutral)
        print(f"{name:<40} {six:6.1%} / {five:6.1%}  ({100 * (six - base):+.1f} points six-way, "
              f"{len(members)} times the tagging)")


if __name__ == "__main__":
    main()
