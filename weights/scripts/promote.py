"""Ship a newly trained weights file only if it is better than the shipped one.

    python weights/scripts/promote.py CANDIDATE [SHIPPED]

Both are scored with `phototag eval` on the validation data of weights/datasets.sh: emotion on
FER2013 `val` (six classes), age on the held-out tenth of UTKFace. The candidate replaces SHIPPED
(default weights/phototag-cpu.safetensors), and its line in weights/manifest is rewritten with
the new sha256 and size, only when the mean of the two accuracies is higher by at least MARGIN:
on 3,533 FER2013 faces one point is within chance, and every shipped file stays in the
repository's history. Either way it prints both scores.

Images of Groups' held-out tenth is printed beside them but not counted. Its labels in
../shared hold no adult (0-2, 3-7, 8-12, 13-19 and 66+), so a model that answers "not an adult"
for every face in a group photo scores best on it; that is the fault that took the dataset out of
training (weights/datasets.sh), and a file trained on it would win here for that reason.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PHOTOTAG_DATA", ROOT.parent / "shared" / "data"))
MARGIN = 0.005  # of the mean accuracy: half a point
# A score must keep meaning what the README says it does (the share of tags right at that
# score): a candidate whose emotion scores on FER2013 `val` are further off than this is not
# shipped (the shipped file: 0.024, `python -m bench reliability`).
CALIBRATION_LIMIT = 0.05


def score(weights):
    def scores(task, *data):
        # The interpreter running this script, so that an unactivated virtual environment works.
        out = subprocess.run([sys.executable, "-m", "phototag", "eval", str(weights), "--task", task,
                              "--json", *data],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)[task]

    scored = scores("emotion", "--data", f"emotion:{DATA}/emotion/fer2013/val")
    emotion, calibration = scored["accuracy"], scored["calibration_error"]
    age = scores("age", "--held-out", "0.1", "--data", f"age:{DATA}/age/utkface_200/labels.csv")["accuracy"]
    groups = scores("age", "--held-out", "0.1",
                      "--data", f"age:{DATA}/age/images_of_groups/labels.csv")["accuracy"]
    return {"emotion": emotion, "age": age, "groups": groups, "mean": (emotion + age) / 2,
            "calibration": calibration}


def record_problems(path):
    """What is missing from a candidate's record of how it was made (an index run needs none
    of it, but a shipped file must say how to make it again): [] when complete."""
    sys.path.insert(0, str(ROOT))
    from phototag.vision.weightsfile import read_metadata

    config, info = read_metadata(path)
    problems = []
    stages = {h["stage"] for h in info.get("history", [])}
    if not info.get("epochs") or not {"face", "context", "gate"} <= stages:
        problems.append(f"trained stages {sorted(stages)}: the face, context and gate stages all belong in it")
    commands = info.get("earlier_commands", []) + [info.get("command", "")]
    if not all(c.startswith(("phototag train", "python weights/")) for c in commands if c):
        problems.append("a command of its making is not `phototag train` or a weights/ script")
    if config.kind == "gated" and not info.get("pretrained"):
        problems.append("no pretrained start recorded")
    if config.class_shares and any(abs(sum(v) - 1) > 1e-3 for _, v in config.class_shares):
        problems.append("class shares that do not sum to 1")
    return problems


def ship(candidate, shipped, manifest=ROOT / "weights" / "manifest"):
    """Copy the candidate over SHIPPED; where SHIPPED is in the manifest's folder, rewrite its
    line there with the new sha256 and size. A file elsewhere (a copy to compare against) has no
    manifest line, even under the same name."""
    sys.path.insert(0, str(ROOT))
    from phototag.weights import record_in_manifest

    shipped, manifest = Path(shipped), Path(manifest)
    shutil.copyfile(candidate, shipped)
    if not record_in_manifest(shipped, manifest):
        print(f"shipped the candidate as {shipped}")
        return
    print(f"shipped the candidate as {shipped}; {manifest} updated")


def main(candidate, shipped=ROOT / "weights" / "phototag-cpu.safetensors"):
    candidate, shipped = Path(candidate), Path(shipped)
    problems = record_problems(candidate)
    if problems:
        print(f"kept the shipped weights: {candidate}'s record is incomplete: " + "; ".join(problems))
        return 1
    new = score(candidate)
    old = score(shipped) if shipped.is_file() else None
    def line(scores):
        return (f"emotion {scores['emotion']:.1%} (calibration error {scores['calibration']:.3f}), "
                f"age {scores['age']:.1%} (Images of Groups, not counted: {scores['groups']:.1%})")

    print(f"candidate {candidate}: {line(new)}")
    if old:
        print(f"shipped   {shipped}: {line(old)}")
    if new["calibration"] > CALIBRATION_LIMIT:
        print(f"kept the shipped weights: the candidate's emotion scores are off by "
              f"{new['calibration']:.3f} (at most {CALIBRATION_LIMIT}): calibrate it first")
        return 1
    if old and new["mean"] < old["mean"] + MARGIN:
        print(f"kept the shipped weights: the candidate's mean is not {MARGIN:.1%} higher "
              f"({new['mean']:.2%} against {old['mean']:.2%})")
        return 1
    ship(candidate, shipped)
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", help="the newly trained weights file")
    parser.add_argument("shipped", nargs="?", default=ROOT / "weights" / "phototag-cpu.safetensors",
                        help="the file it may replace [default: weights/phototag-cpu.safetensors]")
    arguments = parser.parse_args()
    if not Path(arguments.candidate).is_file():
        parser.error(f"no such weights file: {arguments.candidate}")
    sys.exit(main(arguments.candidate, arguments.shipped))
