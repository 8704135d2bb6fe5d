#!/usr/bin/env bash
# The README's results table: trains the comparison variants on one fixed subset of the data
# (the same for every row), scores them and the shipped weights, and prints the table.
#   bench/accuracy.sh            # everything: about 45 minutes on two CPU cores
#   ROWS="default" bench/accuracy.sh   # only score the shipped weights (about 2 minutes)
# Each training run resumes from its checkpoint when rerun after a stop.
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_RESULTS_DIR:-build/results}
ROWS=${ROWS:-"default gated-sam gated-adamw fusion caer"}
mkdir -p "$OUT"

# The subset: at most LIMIT images per class and dataset; validation as for the default weights.
LIMIT=${LIMIT:-250}
EPOCHS=${EPOCHS:-2}
subset=(
  --task both --seed 0 --preset cpu --limit-per-class "$LIMIT" --epochs "$EPOCHS" --resume
  "${DATASETS[@]}"
)

score() {  # score NAME WEIGHTS: emotion on FER2013 val, age on the UTKFace part held out
  phototag eval "$2" --task emotion --data "emotion:$DATA/emotion/fer2013/val" --branches --json \
    > "$OUT/$1.emotion.json"
  phototag eval "$2" --task age --data "age:$DATA/age/utkface_200/labels.csv" --held-out 0.1 \
    --branches --json > "$OUT/$1.age.json"
}

for row in $ROWS; do
  case $row in
    default)
      score default weights/phototag-cpu.safetensors ;;
    gated-sam|gated-adamw)
      optimizer=${row#gated-}
      phototag train "${subset[@]}" --optimizer "$optimizer" --stage face --out "$OUT/$row-face.safetensors"
      phototag train "${subset[@]}" --optimizer "$optimizer" --stage context \
        --init "$OUT/$row-face.safetensors" --out "$OUT/$row-context.safetensors"
      phototag train "${subset[@]}" --optimizer "$optimizer" --stage gate \
        --init "$OUT/$row-context.safetensors" --out "$OUT/$row.safetensors"
      score "$row" "$OUT/$row.safetensors" ;;
    fusion|caer)
      phototag train "${subset[@]}" --optimizer sam --kind "$row" --stage all --out "$OUT/$row.safetensors"
      score "$row" "$OUT/$row.safetensors" ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
done
python bench/accuracy_table.py "$OUT"
