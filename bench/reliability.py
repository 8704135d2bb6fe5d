"""What a tag's score means: faces grouped by the score the index stores for their emotion (and
age group), against how often that tag was right, on labelled faces the shipped model never
learnt from, in one run:

    python -m bench reliability [--bins 0.3,0.4,0.5,0.6,0.7,0.8,0.9]

Emotion on FER2013 `val` and the held-out tenths of FER2013 `train`, muxspace, SFEW and CK+; age
on UTKFace's held-out tenth. Also the expected calibration error (the mean gap between score and
accuracy, weighted by faces) and the temperature that would minimise the log-loss on FER2013
`train`'s tenth, with the error it would leave on the other sets: a temperature near 1 means the
scores need no correction. Prints markdown tables; docs/accuracy.md keeps them.
"""

import argparse

import torch

from bench.answers import AGE_SETS, EMOTION_SETS, faces, load_model, probabilities
from bench.machine import describe


def bins_of(edges):
    edges = [0.0] + list(edges) + [1.0000001]
    return list(zip(edges[:-1], edges[1:]))


def table(probs, truth, bins):
    """Rows (low, high, faces, mean score, accuracy) and the expected calibration error."""
    score, answer = probs.max(1)
    right = (answer == truth).float()
    rows, gap = [], 0.0
    for low, high in bins:
        inside = (score >= low) & (score < high)
        n = int(inside.sum())
        if not n:
            continue
        mean, accuracy = score[inside].mean().item(), right[inside].mean().item()
        rows.append((low, high, n, mean, accuracy))
        gap += n * abs(mean - accuracy)
    return rows, gap / len(truth)


def tempered(probs, temperature):
    return torch.softmax(probs.clamp_min(1e-12).log() / temperature, 1)


def fitted_temperature(probs, truth):
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], max_iter=100)
    logp = probs.clamp_min(1e-12).log()

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(logp / log_t.exp(), truth)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def print_table(title, probs, truth, bins):
    rows, ece = table(probs, truth, bins)
    print(f"\n{title}: {len(truth)} faces, expected calibration error {ece:.3f}\n")
    print("| score | faces | mean score | right |")
    print("|---|---|---|---|")
    for low, high, n, mean, accuracy in rows:
        print(f"| {low:.1f}–{min(high, 1.0):.1f} | {n} | {mean:.2f} | {accuracy:.0%} |")
    return ece


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", default="0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    args = parser.parse_args(argv)
    bins = bins_of(float(b) for b in args.bins.split(","))
    print(describe())
    model = load_model()
    answers = {}
    for task, sets in (("emotion", EMOTION_SETS), ("age", AGE_SETS)):
        for name, (spec, held_out) in sets.items():
            answers[(task, name)] = probabilities(model, faces(model, spec, held_out, task), task)
    for task in ("emotion", "age"):
        chosen = [answers[key] for key in answers if key[0] == task]
        probs, truth = torch.cat([p for p, _ in chosen]), torch.cat([t for _, t in chosen])
        names = ", ".join(name for t, name in answers if t == task)
        print_table(f"{task} ({names})", probs, truth, bins)
        for (t, name), (p, y) in answers.items():
            if t == task:
                print(f"  {name}: {len(y)} faces, ECE {table(p, y, bins)[1]:.3f}, "
                      f"right {(p.argmax(1) == y).float().mean():.1%}")
    fit_probs, fit_truth = answers[("emotion", "FER2013 train, held-out tenth")]
    temperature = fitted_temperature(fit_probs, fit_truth)
    print(f"\nemotion temperature fitted on FER2013 train's held-out tenth: {temperature:.3f}")
    for (task, name), (p, y) in answers.items():
        if task == "emotion" and name != "FER2013 train, held-out tenth":
            before, after = table(p, y, bins)[1], table(tempered(p, temperature), y, bins)[1]
            print(f"  {name}: ECE {before:.3f} as shipped, {after:.3f} at that temperature")


if __name__ == "__main__":
    main()
