#!/usr/bin/env bash
# The README's results tables: scores the shipped weights (and, given PREVIOUS, an earlier
# file) on every validation set, and trains the design's variants on one fixed subset of the
# data (the same for every row) to compare them. Prints the tables.
#   bench/accuracy.sh                     # everything: about an hour on two CPU cores
#   ROWS="default" bench/accuracy.sh      # only score the shipped weights (about 10 minutes)
#   git show bf542a5:weights/phototag-cpu.safetensors > build/previous.safetensors
#   ROWS="previous" PREVIOUS=build/previous.safetensors bench/accuracy.sh
# Each training run resumes from its checkpoint when rerun after a stop.
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_RESULTS_DIR:-build/results}
ROWS=${ROWS:-"default gated-sam gated-adamw fusion caer"}
mkdir -p "$OUT"

# The subset: at most LIMIT images per class and dataset; validation as for the default weights.
# PRESET: the README's comparison rows were trained with scratch-cpu (ResNet-18s from random
# weights at 64 px), the preset that shipped when they were measured.
LIMIT=${LIMIT:-250}
PRESET=${PRESET:-scratch-cpu}
EPOCHS=${EPOCHS:-2}
subset=(
  --task both --seed 0 --preset "$PRESET" --limit-per-class "$LIMIT" --epochs "$EPOCHS" --resume
  "${DATASETS[@]}"
)

score() {  # score NAME WEIGHTS: emotion on FER2013 val, age on the UTKFace part held out
  phototag eval "$2" --task emotion --data "emotion:$DATA/emotion/fer2013/val" --branches --json \
    > "$OUT/$1.emotion.json"
  phototag eval "$2" --task age --data "age:$DATA/age/utkface_200/labels.csv" --held-out 0.1 \
    --branches --json > "$OUT/$1.age.json"
}

score_everywhere() {  # the held-out tenth of every other dataset, and faces made small
  for set in ckplus48 muxspace/train sfew/train; do
    phototag eval "$2" --task emotion --held-out 0.1 --data "emotion:$DATA/emotion/$set" --json \
      > "$OUT/$1.emotion-${set%%/*}.json"
  done
  phototag eval "$2" --task age --held-out 0.1 --data "age:$DATA/age/images_of_groups/labels.csv" \
    --json > "$OUT/$1.age-groups.json"
  for pixels in 64 32; do
    phototag eval "$2" --task age --held-out 0.1 --data "age:$DATA/age/utkface_200/labels.csv" \
      --face-size-test "$pixels" --json > "$OUT/$1.age-$pixels.json"
    phototag eval "$2" --task emotion --data "emotion:$DATA/emotion/fer2013/val" \
      --face-size-test "$pixels" --json > "$OUT/$1.emotion-$pixels.json"
  done
}

for row in $ROWS; do
  case $row in
    default)
      score default weights/phototag-cpu.safetensors
      score_everywhere default weights/phototag-cpu.safetensors ;;
    previous)
      score previous "$PREVIOUS"
      score_everywhere previous "$PREVIOUS" ;;
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
python -m bench accuracy_table "$OUT"
