#!/usr/bin/env bash
# How the `cpu` configuration's face branch was chosen: the face stage alone, three AdamW
# epochs on all the data of weights/datasets.sh, for each candidate (MobileNetV2, 3.5 times
# FaceMesh's cost per epoch: six at half the learning rate); then the face branch's
# accuracy on FER2013 val (six emotions, and the five original ones) and on the held-out
# UTKFace tenth (age), with and without the mirror pass. About 10 minutes a row on two cores.
#   bench/face_branch.sh                 # every row
#   ROWS="facemesh-96" bench/face_branch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_RESULTS_DIR:-build/face-branch}
ROWS=${ROWS:-"facemesh-96 facemesh-128 facemesh-96-scratch mobilenetv2-96"}
mkdir -p "$OUT"
for row in $ROWS; do
  case $row in
    facemesh-96) options=(--face-size 96) ;;
    facemesh-128) options=(--face-size 128) ;;
    facemesh-96-scratch) options=(--face-size 96 --scratch) ;;
    mobilenetv2-96) options=(--face-size 96 --face-backbone mobilenetv2 --epochs 6 --lr 5e-4) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  phototag train "${DATASETS[@]}" --preset cpu --epochs 3 "${options[@]}" --stage face \
    --optimizer adamw --seed 0 --resume --out "$OUT/$row.safetensors"
  phototag eval "$OUT/$row.safetensors" --task emotion --branches --json \
    --data "emotion:$DATA/emotion/fer2013/val" > "$OUT/$row.emotion.json"
  phototag eval "$OUT/$row.safetensors" --task emotion --branches --json --no-mirror \
    --data "emotion:$DATA/emotion/fer2013/val" > "$OUT/$row.emotion-no-mirror.json"
  phototag eval "$OUT/$row.safetensors" --task age --branches --json --held-out 0.1 \
    --data "age:$DATA/age/utkface_200/labels.csv" > "$OUT/$row.age.json"
done
python - "$OUT" $ROWS <<'PYTHON'
import json, sys
from pathlib import Path
folder = Path(sys.argv[1])
print("| face branch | emotion, 6 | emotion, 5 original | emotion, 6, no mirror pass "
      "| age group, 6 (UTKFace held out) |")
print("|---|---|---|---|---|")
for row in sys.argv[2:]:
    read = lambda part: json.loads((folder / f"{row}.{part}.json").read_text())
    emotion, plain, age = read("emotion")["emotion"], read("emotion-no-mirror")["emotion"], read("age")["age"]
    print(f"| {row} | {emotion['branches']['face']:.1%} | {emotion['branches_five']['face']:.1%} "
          f"| {plain['branches']['face']:.1%} | {age['branches']['face']:.1%} |")
PYTHON
