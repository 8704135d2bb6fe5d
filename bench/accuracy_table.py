"""Print the README's results table from the JSON files `bench/accuracy.sh` writes.

    python bench/accuracy_table.py build/results
"""

import json
import sys
from pathlib import Path

ROWS = {  # name → (what it is, the command that reproduces it)
    "default": ("gated (shipped weights, all data)", "weights/train.sh; ROWS=default bench/accuracy.sh"),
    "gated-sam": ("gated, SAM", "ROWS=gated-sam bench/accuracy.sh"),
    "gated-adamw": ("gated, AdamW", "ROWS=gated-adamw bench/accuracy.sh"),
    "fusion": ("fusion (Adaptive Fusion), SAM", "ROWS=fusion bench/accuracy.sh"),
    "caer": ("CAER-Net, SAM", "ROWS=caer bench/accuracy.sh"),
}
BRANCH_NAMES = {"face": "face only", "context": "context only"}


def percent(value):
    return "–" if value is None else f"{value:.1%}"


def load(folder, name, task):
    path = Path(folder) / f"{name}.{task}.json"
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


def main(folder):
    header = ("model", "emotion, 5 original", "emotion, 6 with neutral", "age group, 6",
              "age, within one group", "mean weight face / context (emotion)", "reproduce")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows(folder):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/results")
