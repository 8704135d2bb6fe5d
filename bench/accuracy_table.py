"""Print the README's results tables from the JSON files `bench/accuracy.sh` writes.

    python -m bench accuracy_table build/results
"""

import json
import sys
from pathlib import Path

ROWS = {  # name → (what it is, the command that reproduces it)
    "default": ("gated, `cpu` with a MobileNetV2 face branch (the shipped weights)",
                "weights/train.sh; ROWS=default bench/accuracy.sh"),
    "previous": ("the weights given as PREVIOUS (an earlier or a candidate file)",
                 "ROWS=previous PREVIOUS=... bench/accuracy.sh"),
    "gated-sam": ("gated, SAM", "ROWS=gated-sam bench/accuracy.sh"),
    "gated-adamw": ("gated, AdamW", "ROWS=gated-adamw bench/accuracy.sh"),
    "fusion": ("fusion (Adaptive Fusion), SAM", "ROWS=fusion bench/accuracy.sh"),
    "caer": ("CAER-Net, SAM", "ROWS=caer bench/accuracy.sh"),
}
BRANCH_NAMES = {"face": "face only", "context": "context only"}


def percent(value):
    return "–" if value is None else f"{value:.1%}"


def load(folder, name, task, part=None):
    path = Path(folder) / f"{name}.{part or task}.json"
    return json.loads(path.read_text()).get(task) if path.is_file() else None


def rows(folder):
    for name, (label, command) in ROWS.items():
        emotion, age = load(folder, name, "emotion"), load(folder, name, "age")
        if not emotion and not age:
            continue
        modes = ["model"] + [m for m in ("face", "context") if emotion and m in emotion.get("branches", {})]
        for mode in modes:
            if mode == "model":
                six = emotion and emotion["accuracy"]
                five = emotion and emotion.get("accuracy_five")
                age_acc = age and age["accuracy"]
                within = age and age.get("accuracy_within_one")
                gates = emotion and emotion.get("mean_gates")
                what = label
            else:
                six = emotion["branches"][mode]
                five = emotion.get("branches_five", {}).get(mode)
                age_acc = age and age.get("branches", {}).get(mode)
                within, gates, what = None, None, f"{label}: {BRANCH_NAMES[mode]}"
            gate_text = f"{gates['face']:.2f} / {gates['context']:.2f}" if gates else "–"
            yield (what, percent(five), percent(six), percent(age_acc), percent(within), gate_text,
                   f"`{command}`")


def everywhere(folder):
    """The shipped (and previous) weights on every dataset's held-out part, and on small faces."""
    for name in ("default", "previous"):
        if not load(folder, name, "emotion", "emotion-sfew"):
            continue
        cells = [ROWS[name][0]]
        for part in ("emotion-ckplus48", "emotion-muxspace", "emotion-sfew"):
            entry = load(folder, name, "emotion", part)
            cells.append(f"{percent(entry['accuracy'])} / {percent(entry.get('accuracy_five'))}")
        for part in ("emotion-64", "emotion-32"):
            entry = load(folder, name, "emotion", part)
            cells.append(f"{percent(entry['accuracy'])} / {percent(entry.get('accuracy_five'))}")
        cells.append(percent(load(folder, name, "age", "age-groups")["accuracy"]))
        for part in ("age", "age-64", "age-32"):
            cells.append(percent(load(folder, name, "age", part)["accuracy"]))
        yield cells


def main(argv=None):
    folder = (argv or ["build/results"])[0]
    header = ("model", "emotion, 5 original", "emotion, 6 with neutral", "age group, 6",
              "age, within one group", "mean weight face / context (emotion)", "reproduce")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows(folder):
        print("| " + " | ".join(row) + " |")
    more = list(everywhere(folder))
    if more:
        print()
        header = ("weights", "CK+ held out (6 / 5)", "muxspace held out (6 / 5)", "SFEW held out (6 / 5)",
                  "FER2013 val, faces at 64 px (6 / 5)", "FER2013 val, faces at 32 px (6 / 5)",
                  "age, Images of Groups held out", "age, UTKFace held out, 200 px",
                  "UTKFace at 64 px", "UTKFace at 32 px")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for cells in more:
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
