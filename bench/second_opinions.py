"""Can a second opinion or a recalibration lift the shipped emotion answer? Every choice is
fitted on faces no file here learnt from (the tenth of FER2013 `train` that `weights/datasets.sh`
holds out) and then scored once on FER2013 `val`, in one run:

    python -m bench second_opinions [--base WEIGHTS] OTHER.safetensors [OTHER ...]

- the base file's answer with the log class shares scaled by tau (1 is what an index run adds);
- the base file with one offset per class, fitted by log-likelihood;
- the base file's logits plus w times each other file's (w chosen on the tenth): another
  training cycle, or an older file whose face branch is the shipped file's age backbone, whose
  emotion head then costs the index nothing.

Six emotions, and the five original ones (neutral left out of the answers). Each file answers
as an index run does (its mirror pass and emotion zooms); the faces are those `phototag eval`
stores.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np
import torch
import torch.nn.functional as F

from bench.ensemble import accuracy
from bench.library import SHARED, WEIGHTS
from phototag.train.commands import located_crops, split_off_holdout
from phototag.train.loop import batches
from phototag.vision.models import predict
from phototag.vision.weightsfile import load_weights

SETS = {"FER2013 val": (f"emotion:{SHARED}/emotion/fer2013/val", 0.0),
        "FER2013 train's held-out tenth": (f"emotion:{SHARED}/emotion/fer2013/train", 0.1)}
TAUS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5)
MIXES = (0.1, 0.2, 0.3, 0.5, 1.0)


@torch.no_grad()
def raw_logits(model):
    """{set: (emotion logits without class shares, true labels)}."""
    model.eval()
    results = {}
    for name, (spec, held_out) in SETS.items():
        crops = located_crops([spec], "emotion", model.config, str(WEIGHTS), None, "eval")
        if held_out:
            _, crops = split_off_holdout(crops, held_out, {"emotion"})
        logits, truth = [], []
        for face, context, gate, emotion, _, _ in batches(crops, np.arange(len(crops)), 128,
                                                          model.config.face_size):
            output = predict(model, face, context, gate, flip=model.config.test_flip, shares=False,
                             emotion_zooms=model.config.emotion_zooms)
            logits.append(output.logits["emotion"])
            truth.append(emotion)
        results[name] = (torch.cat(logits), torch.cat(truth))
    return results


def fitted_offsets(logits, truth):
    """One offset per class maximising the log-likelihood of ``truth``."""
    offsets = torch.zeros(logits.shape[1], requires_grad=True)
    optimiser = torch.optim.LBFGS([offsets], max_iter=200)

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(logits + offsets, truth)
        loss.backward()
        return loss

    optimiser.step(closure)
    return offsets.detach()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=str(ROOT / "weights" / "phototag-cpu.safetensors"))
    parser.add_argument("others", nargs="*", metavar="OTHER")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    base = load_weights(args.base)[0].float()
    neutral = base.config.emotions.index("neutral")
    log_shares = base.config.log_shares().get("emotion", torch.zeros(len(base.config.emotions)))
    fit_name, test_name = "FER2013 train's held-out tenth", "FER2013 val"
    answers = raw_logits(base)
    (fit, fit_truth), (test, test_truth) = answers[fit_name], answers[test_name]
    print(f"{test_name}: {len(test_truth)} faces; fitted on {fit_name}: {len(fit_truth)} faces")
    print("six / five emotions, on the fitting faces, then on FER2013 val\n")

    def row(name, fit_logits, test_logits):
        six_fit, five_fit = accuracy(fit_logits, fit_truth, neutral)
        six, five = accuracy(test_logits, test_truth, neutral)
        print(f"{name:<58} {100 * six_fit:5.1f} / {100 * five_fit:5.1f}   "
              f"{100 * six:5.1f} / {100 * five:5.1f}")

    print(Path(args.base).name)
    for tau in TAUS:
        shipped = " (as an index run answers)" if tau == 1.0 else ""
        row(f"  class shares times {tau}{shipped}", fit + tau * log_shares, test + tau * log_shares)
    offsets = fitted_offsets(fit + log_shares, fit_truth)
    offsets = offsets - offsets[neutral]
    row(f"  plus fitted offsets {[round(float(x), 2) for x in offsets]}", fit + log_shares + offsets,
        test + log_shares + offsets)
    for path in args.others:
        other = load_weights(path)[0].float()
        if other.config.emotions != base.config.emotions:
            sys.exit(f"{path} answers other emotion labels")
        other_answers = raw_logits(other)
        (other_fit, other_fit_truth), (other_test, _) = (other_answers[fit_name], other_answers[test_name])
        if not torch.equal(other_fit_truth, fit_truth):
            sys.exit(f"{path} did not see the same faces")
        row(f"{Path(path).name} alone", other_fit + log_shares, other_test + log_shares)

        def mixed(base_logits, other_logits, w):
            return (base_logits + w * other_logits) / (1 + w) + log_shares

        best = max(MIXES, key=lambda w: accuracy(mixed(fit, other_fit, w), fit_truth, neutral)[1])
        for w in MIXES:
            mark = " (best on the tenth)" if w == best else ""
            row(f"  (base + {w} × it) / {1 + w}{mark}", mixed(fit, other_fit, w), mixed(test, other_test, w))


if __name__ == "__main__":
    main()
