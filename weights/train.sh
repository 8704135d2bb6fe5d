#!/usr/bin/env bash
# Trains the default weights on the data in ../shared and ships them only if they are better:
# the `cpu` preset with MobileNetV2 (ImageNet, pretrained) as the face branch and FaceMesh's
# pretrained trunk as the context branch and GatingNet, AdamW, the three stages of the original
# design. The face stage runs two one-cycle schedules (6 epochs at a peak learning rate of
# 5e-4, then 7 at 3e-4), as the shipped file was made. Each stage is resumable (rerun the script
# after a stop and it continues from the last checkpoint). Two CPU cores: about 100 minutes.
#   weights/train.sh                       # from the pretrained start
#   INIT=weights/phototag-cpu.safetensors weights/train.sh   # one more face cycle on the shipped weights
# The result replaces weights/phototag-cpu.safetensors (and its manifest line) only when it
# scores better on the validation data (weights/promote.py says which and why).
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_TRAIN_DIR:-build/train}
FIRST_EPOCHS=${FIRST_EPOCHS:-6}
SECOND_EPOCHS=${SECOND_EPOCHS:-7}
mkdir -p "$OUT"
common=(--task both --optimizer adamw "${DATASETS[@]}" --resume)
if [ -n "${INIT:-}" ]; then
  face_start=(--init "$INIT")
else
  phototag train "${common[@]}" --seed 0 --preset cpu --face-backbone mobilenetv2 --lr 5e-4 \
    --stage face --epochs "$FIRST_EPOCHS" --out "$OUT/stage1-face.safetensors"
  face_start=(--init "$OUT/stage1-face.safetensors")
fi
phototag train "${common[@]}" --seed 1 "${face_start[@]}" --lr 3e-4 --stage face \
  --epochs "$SECOND_EPOCHS" --out "$OUT/stage1b-face.safetensors"
phototag train "${common[@]}" --seed 1 --init "$OUT/stage1b-face.safetensors" --stage context \
  --epochs 1 --out "$OUT/stage2-context.safetensors"
phototag train "${common[@]}" --seed 1 --init "$OUT/stage2-context.safetensors" --stage gate \
  --epochs 1 --fp16 --out "$OUT/candidate.safetensors"
python weights/promote.py "$OUT/candidate.safetensors" weights/phototag-cpu.safetensors
